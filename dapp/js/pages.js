// @ts-check
/**
 * The component's pages: Pledge, Create, Withdraw (withdraw, refund, cancel) and the Member
 * area. Each keeps every secret in this frame: the record's fields and the instructions are
 * inputs here, the member key is made (or opened) here, the envelope, the instructions, the
 * relay note and the calldata are built here. What goes to the server is public: a transaction
 * hash, a signed forwarder request, or calldata of ciphertext (a local account of the machine
 * that runs the dApp signs it), and the address whose pledge the Withdraw page should look up.
 */
import * as lib from "./crypto.js";
import { pledgeCall, simpleCall, createCall, predictCampaign } from "./calldata.js";
import { signRequest } from "./forwarder.js";
import { sealRelayNote } from "./relaynote.js";
import { discover, ask, built, sendBuilt, walletErrorText } from "./wallet.js";
import { setValue, fitHeight } from "./streamlit.js";
import { h, fill, download, readFile } from "./dom.js";

/** @type {any} */
let args = {};
/** @type {Record<string, any>} */
const S = { sender: null, wallet: null, address: null, local: null, memberKey: null, saved: "", sentId: null, shownOutcome: null, whoPosted: "", walletRestored: false };
const newId = () => lib.toHex(lib.randomBytes(12));
/** @type {HTMLElement} */
let status;
const newStatus = () => (status = h("div", { role: "status", className: "note" }));

/** Shows a sentence in the status area (as text). @param {string} text @param {"note"|"err"|"ok"|"warn"} [kind] */
function say(text, kind = "note") {
  status.className = kind;
  status.textContent = text;
  fitHeight();
}

const capital = (/** @type {string} */ s) => (s ? s[0].toUpperCase() + s.slice(1) : s);
const errorText = (/** @type {unknown} */ e) => capital(e instanceof Error ? e.message : String(e));

// ─── contact lines (as spartacus.inputs / the old form: key=value per line) ────────────

function contactOf(/** @type {string} */ email, /** @type {string} */ lines) {
  /** @type {Record<string, string>} */
  const contact = {};
  if (email.trim()) contact.email = email.trim();
  lines.split(/\r\n|\r|\n/).forEach((line, n) => {
    if (!line.trim()) return;
    const m = /^\s*([^=:]+?)\s*[=:]\s*(.*?)\s*$/.exec(line);
    if (!m) throw new lib.InputError(`Contact line ${n + 1} (${JSON.stringify(line.trim())}): write it as key=value, e.g. signal=+41 79 123 45 67`);
    const key = m[1].trim().toLowerCase();
    if (key in contact) throw new lib.InputError(`Contact field ${JSON.stringify(key)} is given twice: give each field once`);
    contact[key] = m[2];
  });
  return contact;
}

/** A labelled input. @param {string} label @param {HTMLElement} input @param {string} [help] */
const field = (label, input, help) =>
  h("label", null, label, input, help ? h("span", { className: "note" }, help) : null);

// ─── the sender: a browser wallet, the relayer, or a local account ───────────────────

/** The sender section; `onChange` runs when the sending address changes. @param {{keyFile?: boolean, onChange: () => void}} opts */
function senderSection(opts) {
  const box = h("fieldset", null);
  const choices = [["wallet", "A browser wallet"]];
  if (args.relayer) choices.push(["relayer", "No wallet: send through the relayer"]);
  if ((args.localAccounts || []).length) choices.push(["local", "A local account of the machine that runs this dApp"]);
  // The default: a wallet if this browser has one, else the relayer, else a local account.
  if (!S.sender) S.sender = discover().length ? "wallet" : args.relayer ? "relayer" : (args.localAccounts || []).length ? "local" : "wallet";
  const detail = h("div", { className: "sp" });
  const draw = () => {
    fill(detail);
    if (S.sender === "wallet") {
      const wallets = discover();
      if (!wallets.length) detail.append(h("p", { className: "note" }, "No browser wallet found in this browser." + (args.relayer ? " Send through the relayer instead: no wallet and no ether needed." : "")));
      for (const w of wallets) {
        detail.append(h("button", { type: "button", onclick: () => connect(w), "data-wallet": w.rdns || w.name }, S.address && S.wallet === w ? `Reconnect ${w.name}` : `Connect ${w.name}`));
      }
      if (S.address && S.wallet) detail.append(h("p", { className: "ok" }, `Wallet connected: ${S.address}`));
    } else if (S.sender === "relayer") {
      detail.append(h("p", { className: "note" }, opts.keyFile
        ? "Your member key signs the request in this browser; a relayer sends it and pays the gas. Open the member key file of this campaign."
        : "Your new member key signs the request in this browser; a relayer sends it and pays the gas. The pledger is your member key's own address: no wallet, no ether, nothing that ties it to you."));
      if (opts.keyFile) detail.append(keyFileInput((key) => { S.memberKey = key; S.address = key.address; opts.onChange(); draw(); }));
      if (S.address && S.sender === "relayer") detail.append(h("p", { className: "note" }, `Signing address: ${S.address}`));
    } else {
      const select = h("select", { name: "account", onchange: (/** @type {Event} */ e) => { S.local = /** @type {HTMLSelectElement} */ (e.target).value; S.address = localAddress(); opts.onChange(); } },
        ...(args.localAccounts || []).map((/** @type {any} */ a) => h("option", { value: a.alias, selected: a.alias === S.local }, `${a.alias} · ${a.address}`)));
      if (!S.local) S.local = args.localAccounts[0].alias;
      detail.append(field("Account", select, "Signs in the dApp's own process, with calldata built here (the local stack's test accounts)."));
    }
    fitHeight();
  };
  const connect = async (/** @type {import("./wallet.js").Wallet} */ w) => {
    try {
      const accounts = await ask(w.provider, "eth_requestAccounts");
      if (!accounts?.length) throw new Error("the wallet shared no account: unlock it, then connect again");
      S.wallet = w;
      S.address = lib.checksumAddress(accounts[0]);
      setValue({ id: newId(), kind: "wallet", address: S.address });
      say("");
    } catch (e) {
      say(walletErrorText(e), "err");
    }
    opts.onChange();
    draw();
  };
  const localAddress = () => (args.localAccounts || []).find((/** @type {any} */ a) => a.alias === S.local)?.address || null;
  box.append(h("legend", null, "Send with"));
  for (const [value, label] of choices) {
    box.append(h("label", { className: "row" }, h("input", {
      type: "radio", name: "send-with", value, checked: S.sender === value,
      onchange: () => {
        S.sender = value;
        S.address = value === "wallet" ? (S.wallet ? S.address : null) : value === "local" ? (S.local ? localAddress() : null) : opts.keyFile ? S.memberKey?.address || null : null;
        if (value === "local" && !S.local) { S.local = args.localAccounts[0].alias; S.address = localAddress(); }
        opts.onChange();
        draw();
      },
    }), label));
  }
  if (S.sender === "local" && !S.local) S.local = args.localAccounts[0].alias;
  if (S.sender === "local") S.address = localAddress();
  box.append(detail);
  draw();
  // A session that connected a wallet before gets its address back without a prompt.
  if (args.walletConnected && !S.walletRestored && S.sender === "wallet") {
    S.walletRestored = true;
    const [w] = discover();
    if (w) ask(w.provider, "eth_accounts").then((accounts) => {
      if (accounts?.length && !S.address) { S.wallet = w; S.address = lib.checksumAddress(accounts[0]); opts.onChange(); draw(); }
    }).catch(() => {});
  }
  return box;
}

/** A file input for a member key file of this campaign. @param {(key: lib.MemberKey) => void} onKey */
function keyFileInput(onKey) {
  const message = h("p", { className: "note" });
  const input = h("input", { type: "file", name: "member-key-file", accept: ".key,application/json,application/octet-stream",
    onchange: async (/** @type {Event} */ e) => {
      const file = /** @type {HTMLInputElement} */ (e.target).files?.[0];
      if (!file) return;
      try {
        const key = lib.parseMemberKeyFile(await readFile(file), { campaign: args.campaign, chainId: args.chainId, name: file.name });
        message.className = "note";
        message.textContent = `Opened ${file.name} (member key ${key.address}); it stays in this browser.`;
        onKey(key);
      } catch (err) {
        message.className = "err";
        message.textContent = errorText(err);
      }
      fitHeight();
    } });
  return h("div", null, field("Your member key file", input), message);
}

/** Sends a built call the chosen way; posts only public data to the server. */
async function send(/** @type {lib.KeyPair | null} */ signer, /** @type {import("./calldata.js").Call} */ call) {
  const id = newId();
  S.sentId = id;
  if (S.sender === "wallet") {
    say("Confirm the transaction in your wallet…");
    const tx = await sendBuilt(S.wallet.provider, call, S.address, args.chainId);
    setValue({ id, kind: "sent", action: call.action, via: "wallet", tx, from: S.address });
  } else if (S.sender === "relayer") {
    if (!signer) throw new Error("no member key to sign with");
    const request = await signRequest(signer.secret, call, { chainId: args.chainId, forwarder: args.forwarder, nonce: args.nonce ?? 0, deadline: Number(args.now) + 3600 });
    setValue({ id, kind: "sent", action: call.action, via: "relayer", request });
  } else {
    setValue({ id, kind: "sent", action: call.action, via: "local", account: S.local, to: call.to, data: call.data, value: call.value.toString() });
  }
  say("Sent: waiting for the transaction to be mined…");
}

/** The server's answer to what this component sent (shown as text). */
function showOutcome() {
  const o = args.outcome;
  if (!o || o.id !== S.sentId || S.shownOutcome === o.id) return false;
  S.shownOutcome = o.id;
  say(o.text, o.ok ? "ok" : "err");
  return true;
}

// ─── Pledge and Create ───────────────────────────────────────────────────────────────

function keySection(/** @type {() => string | null} */ campaignOf, /** @type {() => void} */ changed) {
  if (!S.memberKey) S.memberKey = lib.generateKeyPair();
  const box = h("div", { className: "sp" });
  const saved = h("input", { type: "checkbox", name: "key-saved", onchange: changed });
  const button = h("button", { type: "button", name: "save-key", onclick: () => {
    const campaign = campaignOf();
    if (!campaign) return;
    download(lib.keyFileName(campaign), lib.memberKeyFileBytes(S.memberKey, campaign, args.chainId), "application/octet-stream");
    S.saved = campaign;
    /** @type {HTMLInputElement} */ (saved).checked = true;
    changed();
  } }, "Save my member key file");
  box.append(
    h("h3", null, "Your member key"),
    h("p", { className: "note" }, "A fresh key made in this browser for this one campaign: the roster is encrypted to it. Save the file and keep it; it is never shown, and never sent anywhere."),
    button,
    h("label", { className: "row" }, saved, "I have saved my member key file (without it I cannot read the roster)"),
  );
  return { box, button, saved: /** @type {HTMLInputElement} */ (saved) };
}

export function pledgePage(/** @type {HTMLElement} */ root) {
  newStatus();
  const name = h("input", { type: "text", name: "name", maxlength: 200, autocomplete: "off" });
  const email = h("input", { type: "email", name: "email", autocomplete: "off" });
  const contacts = h("textarea", { name: "contacts", placeholder: "signal=+41 79 123 45 67\nmatrix=@me:example.org" });
  const message = h("textarea", { name: "message", maxlength: lib.MESSAGE_MAX });
  const ack = h("input", { type: "checkbox", name: "untrusted-ack" });
  const go = h("button", { type: "button", className: "primary", name: "seal" }, "Seal and pledge");
  const update = () => {
    const keyOk = keys.saved.checked && S.saved === args.campaign;
    /** @type {HTMLButtonElement} */ (keys.button).disabled = false;
    /** @type {HTMLButtonElement} */ (go).disabled = !S.address || !keyOk || (!args.trusted && !/** @type {HTMLInputElement} */ (ack).checked) || S.busy;
    go.title = !keyOk ? "Save your member key file first." : !S.address ? "Choose how to send first." : "";
  };
  const sender = senderSection({ onChange: () => { if (S.sender === "relayer") S.address = S.memberKey.address; update(); } });
  const keys = keySection(() => args.campaign, update);
  if (S.sender === "relayer") S.address = S.memberKey.address;
  go.addEventListener("click", async () => {
    S.busy = true;
    update();
    try {
      const content = lib.pledgeContent({ name: /** @type {any} */ (name).value, contact: contactOf(/** @type {any} */ (email).value, /** @type {any} */ (contacts).value), message: /** @type {any} */ (message).value || null });
      const pledger = S.sender === "relayer" ? S.memberKey.address : S.address;
      say("Sealing your record in this browser…");
      const envelope = await lib.seal(content, contextOf(args), S.memberKey.secret, { pledger });
      await send(S.memberKey, built(pledgeCall(args.campaign, envelope, S.memberKey.compressed, BigInt(args.deposit || 0))));
    } catch (e) {
      S.busy = false;
      say(e && /** @type {any} */ (e).code !== undefined ? walletErrorText(e) : errorText(e), "err");
      update();
    }
  });
  root.append(...[
    h("h3", null, "What the other members will see"),
    h("p", { className: "note" }, "Typed and sealed in this browser: only the members read it, and only after the reveal. This page's server never receives it."),
    field("Your name (as the others will know you)", name),
    field("E-mail (optional)", email, "The relay writes to this address after the reveal."),
    field("Other contact fields (optional), one per line as key=value", contacts),
    field("A message to the other members (optional)", message),
    h("h3", null, "Send"),
    sender,
    keys.box,
    args.trusted ? null : h("div", { className: "warn" },
      h("p", null, args.untrustedText || "This campaign was not created by this dApp's factory."),
      h("label", { className: "row" }, ack, "I understand, and still want to pledge to it")),
    go,
    status,
  ].filter((el) => el !== null));
  ack.addEventListener("change", update);
  update();
  return () => { if (showOutcome()) { S.busy = !args.outcome.ok ? false : S.busy; if (args.outcome.ok) { S.memberKey = null; } } update(); };
}

/** The campaign context of the render args (public facts). */
const contextOf = (/** @type {any} */ a) => ({
  chainId: a.chainId, campaign: a.campaign, keepers: a.keepers.map(lib.fromHex), t: a.t, scope: a.scope, lateJoiners: a.lateJoiners,
  relay: a.relay ? lib.fromHex(a.relay) : null,
});

export function createPage(/** @type {HTMLElement} */ root) {
  newStatus();
  if (!S.salt) S.salt = lib.randomBytes(32);
  const name = h("input", { type: "text", name: "name", maxlength: 200, autocomplete: "off" });
  const email = h("input", { type: "email", name: "email", autocomplete: "off" });
  const contacts = h("textarea", { name: "contacts" });
  const instructions = h("textarea", { name: "instructions", maxlength: lib.INSTRUCTIONS_MAX, rows: 5 });
  const go = h("button", { type: "button", className: "primary", name: "create" }, "Create the campaign");
  const where = h("p", { className: "note" });
  const creator = () => (S.sender === "relayer" ? S.memberKey.address : S.address);
  const predicted = () => (creator() && args.config ? predictCampaign(args.factory, args.implementation, creator(), S.salt) : null);
  const update = () => {
    const campaign = predicted();
    where.textContent = campaign ? `Your campaign's address will be ${campaign}: your member key file names it.` : "Choose how to send first: the campaign's address depends on who creates it.";
    /** @type {HTMLButtonElement} */ (keys.button).disabled = !campaign;
    if (campaign && S.saved !== campaign) keys.saved.checked = false;
    /** @type {HTMLButtonElement} */ (go).disabled = !campaign || !args.config || !(keys.saved.checked && S.saved === campaign) || S.busy;
    fitHeight();
  };
  const sender = senderSection({ onChange: update });
  const keys = keySection(predicted, update);
  go.addEventListener("click", async () => {
    S.busy = true;
    update();
    try {
      const content = lib.pledgeContent({ name: /** @type {any} */ (name).value, contact: contactOf(/** @type {any} */ (email).value, /** @type {any} */ (contacts).value) });
      const text = /** @type {any} */ (instructions).value;
      const from = /** @type {string} */ (creator());
      const campaign = /** @type {string} */ (predicted());
      const c = args.config;
      const ctx = { chainId: args.chainId, campaign, keepers: c.keepers.map(lib.fromHex), t: c.keeperThreshold, scope: args.scope, lateJoiners: args.lateJoiners, relay: c.relay ? lib.fromHex(c.relay) : null };
      say("Sealing your record and the instructions in this browser…");
      const sealedInstructions = await lib.sealInstructions(text, ctx, S.memberKey.secret, { creator: from });
      const envelope = await lib.seal(content, ctx, S.memberKey.secret, { pledger: from });
      let relayNote = "";
      if (c.relay && args.relayService && content.contact.email) relayNote = lib.hex0x(sealRelayNote(lib.fromHex(c.relay), { campaign, contact: content.contact, name: content.name }));
      const call = built(createCall(args.factory, { ...c, relayNote, instructions: lib.hex0x(sealedInstructions) }, S.salt, envelope, S.memberKey.compressed));
      await send(S.memberKey, call);
    } catch (e) {
      S.busy = false;
      say(e && /** @type {any} */ (e).code !== undefined ? walletErrorText(e) : errorText(e), "err");
      update();
    }
  });
  root.append(
    h("h3", null, "Sealed: you, and the instructions"),
    h("p", { className: "note" }, "Typed and sealed in this browser, like any pledge: the members read them only after the reveal. Your record is pledge #0; the instructions are sealed apart, so that a late joiner can receive them without your identity."),
    field("Your name (as the members will know you)", name),
    field("Your e-mail (optional)", email),
    field("Other contact fields (optional), one per line as key=value", contacts),
    field("Instructions for the members", instructions, "What the members should do once they are enough. Only they will read it."),
    h("h3", null, "Send"),
    sender,
    where,
    keys.box,
    go,
    status,
  );
  update();
  return () => { if (showOutcome() && !args.outcome.ok) S.busy = false; update(); };
}

// ─── Withdraw, refund, cancel ────────────────────────────────────────────────────────

export function actionPage(/** @type {HTMLElement} */ root) {
  newStatus();
  const info = h("div", { className: "sp" });
  const sure = h("input", { type: "checkbox", name: "cancel-sure" });
  const buttons = {
    withdraw: h("button", { type: "button", name: "withdraw" }, "Withdraw my pledge"),
    refund: h("button", { type: "button", name: "refund" }, "Refund my deposit"),
    cancel: h("button", { type: "button", name: "cancel" }, "Cancel the campaign"),
  };
  const cancelBox = h("div", { className: "sp" }, h("label", { className: "row" }, sure, "Yes, cancel it: nothing will ever be revealed"), buttons.cancel);
  const update = () => {
    if (S.address && S.whoPosted !== S.address) {
      S.whoPosted = S.address;
      setValue({ id: newId(), kind: "who", address: S.address });
    }
    const who = args.who && S.address && args.who.address.toLowerCase() === S.address.toLowerCase() ? args.who : null;
    fill(info, !S.address ? h("p", { className: "note" }, "Choose how to send: your pledge is looked up by its address.")
      : !who ? h("p", { className: "note" }, `Looking up ${S.address}…`)
      : h("div", null,
        h("p", null, who.status === "none" ? `${who.address} has no pledge in this campaign.`
          : `${who.address}: pledge #${who.index}, ${who.status}${who.isCreator ? " (you created this campaign)" : ""}${who.held ? "; deposit held" : ""}.`),
        h("p", null, `Refundable now: ${who.refundableText}`)));
    const busy = S.busy || !who;
    /** @type {HTMLButtonElement} */ (buttons.withdraw).disabled = busy || !(args.state === "open" && who?.status === "live" && !who?.isCreator);
    /** @type {HTMLButtonElement} */ (buttons.refund).disabled = busy || !(who && BigInt(who.refundable) > 0n);
    /** @type {HTMLButtonElement} */ (buttons.cancel).disabled = busy || !/** @type {HTMLInputElement} */ (sure).checked;
    cancelBox.style.display = who?.isCreator && args.state === "open" ? "" : "none";
    fitHeight();
  };
  for (const [action, button] of Object.entries(buttons)) {
    button.addEventListener("click", async () => {
      S.busy = true;
      update();
      try {
        await send(S.memberKey, built(simpleCall(/** @type {any} */ (action), args.campaign)));
      } catch (e) {
        S.busy = false;
        say(e && /** @type {any} */ (e).code !== undefined ? walletErrorText(e) : errorText(e), "err");
        update();
      }
    });
  }
  sure.addEventListener("change", update);
  root.append(senderSection({ keyFile: true, onChange: update }), h("h3", null, "Your pledge"), info, buttons.withdraw, buttons.refund, cancelBox, status);
  update();
  return () => { if (showOutcome()) { S.busy = false; S.whoPosted = ""; } update(); };
}

// ─── Member area ─────────────────────────────────────────────────────────────────────

export function memberPage(/** @type {HTMLElement} */ root) {
  newStatus();
  const out = h("div", { className: "sp" });
  const open = async (/** @type {Uint8Array | null} */ secret) => {
    try {
      say("Opening the roster in this browser…");
      const ctx = contextOf(args);
      const pledges = args.pledges.map((/** @type {any} */ p) => ({ ...p, memberKey: lib.fromHex(p.memberKey), envelope: lib.fromHex(p.envelope) }));
      const releases = args.releases.map((/** @type {any} */ r) => ({ ...r, data: lib.fromHex(r.data) }));
      const t0 = performance.now();
      const roster = await lib.buildRoster(ctx, pledges, releases, secret, args.creator, { instructions: lib.fromHex(args.instructions || "0x") });
      S.rosterMs = performance.now() - t0;
      if (secret) {
        const mine = lib.findMemberIndex(pledges, lib.keyPairFromSecret(secret).compressed);
        out.append(h("p", null, `Your key belongs to pledge #${mine}.`));
      }
      showRoster(out, roster);
      say(`Read in this browser in ${Math.round(S.rosterMs)} ms.`);
    } catch (e) {
      say(errorText(e), "err");
    }
  };
  if (args.scope === "public") {
    root.append(h("p", { className: "note" }, "This campaign reveals to anyone: no key is needed."), out, status);
    open(null);
  } else {
    root.append(keyFileInput((key) => { fill(out); open(key.secret); }), out, status);
  }
  return () => {};
}

function showRoster(/** @type {HTMLElement} */ out, /** @type {lib.Roster} */ roster) {
  if (roster.late_joiner) {
    out.append(h("div", { className: "ok" }, "You joined after the reveal: this campaign gives late joiners the organizer's instructions, not the earlier roster."));
  } else {
    const rows = lib.rosterRows(roster);
    const columns = ["pledge", "name", ...lib.contactKeys(roster), "message"];
    out.append(
      h("h3", null, `The roster: ${roster.members.length} members`),
      h("div", { className: "table" }, h("table", { "data-testid": "roster" },
        h("thead", null, h("tr", null, ...columns.map((c) => h("th", null, c)))),
        h("tbody", null, ...rows.map((r) => h("tr", null, ...columns.map((c) => h("td", null, String(/** @type {any} */ (r)[c] ?? "")))))))),
      h("div", null,
        h("button", { type: "button", name: "csv", onclick: () => download(`roster-${args.campaign.slice(2, 10).toLowerCase()}.csv`, lib.rosterCsv(roster), "text/csv") }, "Download CSV"),
        " ",
        h("button", { type: "button", name: "vcf", onclick: () => download(`roster-${args.campaign.slice(2, 10).toLowerCase()}.vcf`, lib.rosterVcards(roster, args.title || ""), "text/vcard") }, "Download vCards")),
    );
  }
  out.append(h("h3", null, "The organizer's instructions"),
    roster.instructions ? h("pre", { "data-testid": "instructions" }, roster.instructions) : h("p", { className: "note" }, "None could be read yet."));
  if (roster.skipped.length) {
    out.append(h("details", null, h("summary", null, `${roster.skipped.length} item(s) could not be read`),
      h("ul", null, ...roster.skipped.map((s) => h("li", null, `${s.index !== null ? `#${s.index}: ` : ""}${s.reason}`)))));
  }
  fitHeight();
}

/** @param {any} a */
export function setArgs(a) {
  args = a;
}
