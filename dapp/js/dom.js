// @ts-check
import encodeQR from "qr";
/**
 * A few DOM helpers. Every text goes in as a text node (`textContent`), never as HTML: names,
 * titles, revert strings and roster entries come from strangers and are shown as text only.
 */

/**
 * `h("button", {onclick, disabled: true}, "Seal and pledge")`.
 * @param {string} tag @param {Record<string, any> | null} [attrs] @param {...(Node | string | null | undefined | false)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "className") el.className = v;
    else if (k === "value") /** @type {any} */ (el).value = v;
    else if (k === "checked" || k === "disabled") /** @type {any} */ (el)[k] = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(typeof c === "string" ? document.createTextNode(c) : c);
  return el;
}

/** Replace the children of `el`. @param {Element} el @param {...(Node | string | null | false)} children */
export function fill(el, ...children) {
  el.replaceChildren();
  for (const c of children) if (c !== null && c !== false) el.append(typeof c === "string" ? document.createTextNode(c) : c);
}

/**
 * The QR code of `text` as an SVG element (one path of dark modules on white, a quiet zone of 4),
 * drawn with DOM calls: no markup is parsed. Encoded by paulmillr's `qr`.
 * @param {string} text @returns {SVGSVGElement}
 */
export function qrSvg(text) {
  const SVG = "http://www.w3.org/2000/svg";
  const rows = encodeQR(text, "raw", { ecc: "medium", border: 4 }); // the standard quiet zone, in white
  const n = rows.length;
  const svg = /** @type {SVGSVGElement} */ (document.createElementNS(SVG, "svg"));
  for (const [k, v] of Object.entries({ viewBox: `0 0 ${n} ${n}`, width: "240", height: "240", role: "img", "aria-label": `QR code of ${text}`,
    "data-testid": "qr", "shape-rendering": "crispEdges" })) svg.setAttribute(k, v);
  const back = document.createElementNS(SVG, "rect");
  for (const [k, v] of Object.entries({ width: String(n), height: String(n), fill: "#fff" })) back.setAttribute(k, v);
  let d = "";
  rows.forEach((row, y) => row.forEach((dark, x) => { if (dark) d += `M${x} ${y}h1v1h-1z`; }));
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000");
  svg.append(back, path);
  return svg;
}

/** Offers `bytes` as a file download, made here (the server never holds it). */
export function download(/** @type {string} */ name, /** @type {Uint8Array | string} */ bytes, /** @type {string} */ mime) {
  const blob = new Blob([/** @type {BlobPart} */ (bytes)], { type: mime });
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name, style: "display:none" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Reads a chosen file's bytes. @param {File} file @returns {Promise<Uint8Array>} */
export const readFile = async (file) => new Uint8Array(await file.arrayBuffer());

/** The component's look, from Streamlit's theme (light or dark). @param {any} theme */
export function style(theme) {
  const t = theme || {};
  const css = `
    :root { color-scheme: ${t.base === "dark" ? "dark" : "light"}; }
    body { margin: 0; font-family: ${t.font || "'Source Sans Pro', sans-serif"}; color: ${t.textColor || "#31333F"};
      background: transparent; font-size: 16px; line-height: 1.5; }
    .sp { display: flex; flex-direction: column; gap: 0.75rem; padding: 0 2px 8px; }
    label { display: flex; flex-direction: column; gap: 0.25rem; font-size: 0.875rem; }
    label.row { flex-direction: row; align-items: center; gap: 0.5rem; }
    input[type=text], input[type=email], textarea, select { font: inherit; color: inherit; padding: 0.45rem 0.6rem; border-radius: 0.5rem;
      border: 1px solid ${t.base === "dark" ? "#555" : "#ccc"}; background: ${t.secondaryBackgroundColor || (t.base === "dark" ? "#262730" : "#f0f2f6")}; }
    textarea { min-height: 4.5rem; resize: vertical; }
    button { font: inherit; padding: 0.4rem 0.9rem; border-radius: 0.5rem; border: 1px solid ${t.base === "dark" ? "#555" : "#ccc"};
      background: transparent; color: inherit; cursor: pointer; align-self: flex-start; }
    button.primary { background: ${t.primaryColor || "#ff4b4b"}; border-color: ${t.primaryColor || "#ff4b4b"}; color: #fff; }
    button:disabled { opacity: 0.45; cursor: not-allowed; }
    fieldset { border: 1px solid ${t.base === "dark" ? "#444" : "#ddd"}; border-radius: 0.5rem; display: flex; flex-direction: column; gap: 0.5rem; }
    h3 { margin: 0.5rem 0 0; font-size: 1.15rem; }
    .note { font-size: 0.875rem; opacity: 0.8; margin: 0; }
    .warn { border-left: 4px solid #e4a11b; padding: 0.5rem 0.75rem; background: rgba(228,161,27,0.12); border-radius: 0.25rem; }
    .err { border-left: 4px solid #e4572e; padding: 0.5rem 0.75rem; background: rgba(228,87,46,0.12); border-radius: 0.25rem; }
    .ok { border-left: 4px solid #21a366; padding: 0.5rem 0.75rem; background: rgba(33,163,102,0.12); border-radius: 0.25rem; }
    .table { overflow-x: auto; } table { border-collapse: collapse; width: 100%; font-size: 0.875rem; }
    th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid ${t.base === "dark" ? "#444" : "#e6e6e6"}; vertical-align: top;
      overflow-wrap: anywhere; }
    pre { white-space: pre-wrap; overflow-wrap: anywhere; font: inherit; margin: 0; }
    code { overflow-wrap: anywhere; }
    a { color: ${t.primaryColor || "#ff4b4b"}; overflow-wrap: anywhere; }
    .wallets { display: flex; flex-wrap: wrap; gap: 0.5rem; }
    .wallets button { display: inline-flex; align-items: center; gap: 0.4rem; }
    .row-buttons { display: flex; flex-wrap: wrap; gap: 0.5rem; }
    .link { overflow-wrap: anywhere; font-family: monospace; margin: 0; }
    svg[data-testid=qr] { align-self: flex-start; max-width: 100%; height: auto; border-radius: 0.25rem; }
    [hidden] { display: none !important; }`;
  let el = document.getElementById("sp-style");
  if (!el) {
    el = h("style", { id: "sp-style" });
    document.head.append(el);
  }
  el.textContent = css;
}
