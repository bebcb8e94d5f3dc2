// @ts-check
/**
 * Roster exports made in the member's browser: CSV (RFC 4180, CRLF) and vCard 3.0.
 *
 * Members' texts are written by strangers. In CSV a cell that a spreadsheet would run as a
 * formula is prefixed with an apostrophe (OWASP CSV injection), phone numbers left as they are.
 * In vCards every line break is escaped, a bare carriage return included: some readers start a
 * new line at a lone `\r`, which would let a member forge a second contact (a fake "organizer").
 */

/** @typedef {import("./roster.js").Roster} Roster */

/** Contact field names of the roster: `email` first, the rest sorted. @param {Roster} roster */
export function contactKeys(roster) {
  const keys = [...new Set(roster.members.flatMap((m) => Object.keys(m.contact)))].sort();
  return keys.includes("email") ? ["email", ...keys.filter((k) => k !== "email")] : keys;
}

/** One row per member: pledge (its number as the pages say it: the first is 1), name, each contact field, message. @param {Roster} roster */
export function rosterRows(roster) {
  const keys = contactKeys(roster);
  return roster.members.map((m) => ({
    pledge: m.index + 1, name: m.name, ...Object.fromEntries(keys.map((k) => [k, m.contact[k] || ""])), message: m.message || "",
  }));
}

const SAFE_NUMBER = /^[+\-]?[\d\s().\-/]*$/;

/** @param {unknown} value */
function csvCell(value) {
  let text = String(value);
  if (typeof value === "string" && value && ("=@\t\r".includes(value[0]) || ("+-".includes(value[0]) && !SAFE_NUMBER.test(value)))) {
    text = "'" + value;
  }
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The roster as CSV text. @param {Roster} roster */
export function rosterCsv(roster) {
  const columns = ["pledge", "name", ...contactKeys(roster), "message"];
  const lines = [columns.join(",")];
  for (const row of rosterRows(roster)) lines.push(columns.map((c) => csvCell(/** @type {any} */ (row)[c])).join(","));
  return lines.join("\r\n") + "\r\n";
}

/** vCard text escaping (RFC 6350 §3.4): backslash, `;`, `,`, and every line break as `\n`. @param {string} text */
export const vcardEscape = (text) =>
  text.replace(/\\/g, "\\\\").replace(/;/g, "\\;").replace(/,/g, "\\,").replace(/\r\n|\r|\n/g, "\\n");

/** Folding at 75 octets; continuation lines start with a space. @param {string} line */
function fold(line) {
  const enc = new TextEncoder();
  const out = [];
  let current = "";
  let size = 0;
  for (const ch of line) {
    const n = enc.encode(ch).length;
    if (size + n > (out.length ? 74 : 75)) {
      out.push(current);
      current = "";
      size = 0;
    }
    current += ch;
    size += n;
  }
  out.push(current);
  return out.join("\r\n ");
}

const PHONE_KEYS = new Set(["phone", "tel", "mobile", "signal", "whatsapp", "sms"]);

/** One vCard 3.0 per member (name, e-mail, phones, the rest in the note). @param {Roster} roster @param {string} [title] */
export function rosterVcards(roster, title = "") {
  const cards = roster.members.map((m) => {
    const lines = ["BEGIN:VCARD", "VERSION:3.0", `FN:${vcardEscape(m.name)}`, `N:${vcardEscape(m.name)};;;;`];
    const notes = [];
    for (const [key, value] of Object.entries(m.contact)) {
      if (key === "email") lines.push(`EMAIL;TYPE=INTERNET:${vcardEscape(value)}`);
      else if (PHONE_KEYS.has(key)) {
        lines.push(`TEL;TYPE=${key.toUpperCase()}:${vcardEscape(value)}`);
        if (key !== "phone") notes.push(`${key}: ${value}`);
      } else notes.push(`${key}: ${value}`);
    }
    if (m.message) notes.push(`message: ${m.message}`);
    if (title) lines.push(`ORG:${vcardEscape(title)}`);
    if (notes.length) lines.push(`NOTE:${vcardEscape(notes.join("\n"))}`);
    lines.push("END:VCARD");
    return lines.map(fold).join("\r\n");
  });
  return cards.length ? cards.join("\r\n") + "\r\n" : "";
}
