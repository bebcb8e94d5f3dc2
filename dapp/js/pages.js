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
import { pledgeCall, simpleCall, createCall, predictCampaign, revertText } from "./calldata.js";
import { signRequest } from "./forwarder.js";
import { sealRelayNote } from "./relaynote.js";
import { discover, ask, built, sendBuilt, walletErrorText, walletChain, switchChain, addChain, unknownChain, estimateFee, signKeyMessage } from "./wallet.js";
import { setValue, fitHeight } from "./streamlit.js";
import { h, fill, download, readFile, qrSvg } from "./dom.js";
import { keyFromSignature, sameSignature } from "./derive.js";

/** @type {any} */
let args = {};
/** @type {Record<string, any>} */
const S = { sender: null, wallet: null, address: null, local: null, memberKey: null, saved: "", sentId: null, shownOutcome: null, whoPosted: "", walletRestored: false, walletChain: null, chainUnknown: false, keyNote: null, watched: null };
const newId = () => lib.toHex(lib.randomBytes(12));
/** @type {HTMLElement} */
let status;
const newStatus = () => (status = h("div", { role: "status", className: "note" }));

/** Shows a sentence in the status area (as text), with the transaction's link if one is given.
 * @param {string} text @param {"note"|"err"|"ok"|"warn"} [kind] @param {string} [tx] */
function say(text, kind = "note", tx) {
  status.className = kind;
  status.textContent = text;
  if (tx) status.append(" Transaction ", explorerLink("tx", tx, tx) || h("code", null, tx), ".");
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

// ─── chains, fees and links, in words ──────────────────────────────────────────────

/** `Sepolia (chain 11155111)`: a chain by name when the dApp knows it. @param {number} id */
export function chainLabel(id) {
  const name = (args.chainNames || {})[String(id)];
  return name ? `${name} (chain ${id})` : `chain ${id}`;
}
const chainName = () => args.chainName || `chain ${args.chainId}`;

/** `0.0001311`: an amount of wei in the currency, 4 significant digits. @param {bigint} wei @param {number} [decimals] */
export function formatAmount(wei, decimals = 18) {
  if (wei === 0n) return "0";
  const digits = wei.toString();
  const exp = digits.length - 1 - decimals; // the power of ten of the first digit
  const sig = BigInt(digits.slice(0, 5).padEnd(5, "0"));
  const rounded = (sig + 5n) / 10n; // 4 significant digits
  let text = rounded.toString();
  let e = exp + (text.length > 4 ? 1 : 0);
  text = text.slice(0, 4);
  const point = e + 1; // digits before the decimal point
  const out = point <= 0 ? "0." + "0".repeat(-point) + text : point >= text.length ? text + "0".repeat(point - text.length) : text.slice(0, point) + "." + text.slice(point);
  return out.includes(".") ? out.replace(/0+$/, "").replace(/\.$/, "") : out;
}

/** A link to the explorer's page of a transaction or an address, if the dApp has one. */
function explorerLink(/** @type {"tx" | "address"} */ kind, /** @type {string} */ value, /** @type {string} */ text) {
  if (!args.explorer || !/^0x[0-9a-fA-F]+$/.test(value)) return null;
  return h("a", { href: `${args.explorer}/${kind}/${value}`, target: "_blank", rel: "noopener noreferrer" }, text);
}

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
      if (wallets.length > 1) detail.append(h("p", { className: "note" }, `${wallets.length} wallets found in this browser: choose one.`));
      const picker = h("div", { className: "wallets" });
      for (const w of wallets) {
        picker.append(h("button", { type: "button", onclick: () => connect(w), "data-wallet": w.rdns || w.name },
          w.icon ? h("img", { src: w.icon, alt: "", width: 20, height: 20 }) : null,
          S.address && S.wallet === w ? `Reconnect ${w.name}` : `Connect ${w.name}`));
      }
      detail.append(picker);
      if (S.address && S.wallet) {
        detail.append(h("p", { className: "ok" }, `Wallet connected: ${S.address}`));
        detail.append(chainBox());
      }
    } else if (S.sender === "relayer") {
      detail.append(h("p", { className: "note" }, opts.keyFile
        ? "Your member key signs the request in this browser; a relayer sends it and pays the gas: no fee for you. Open the member key file of this campaign."
        : "Your new member key signs the request in this browser; a relayer sends it and pays the gas: no fee for you. The pledger is your member key's own address: no wallet, no ether, nothing that ties it to you."));
      if (opts.keyFile) {
        detail.append(keyFileInput(
          (key) => { S.memberKey = key; S.address = key.address; opts.onChange(); draw(); },
          () => { S.memberKey = null; S.address = null; opts.onChange(); draw(); },
        ));
      }
      if (S.address && S.sender === "relayer") detail.append(h("p", { className: "note" }, `Signing address: ${S.address}`));
    } else {
      const select = h("select", { name: "account", onchange: (/** @type {Event} */ e) => { S.local = /** @type {HTMLSelectElement} */ (e.target).value; S.address = localAddress(); opts.onChange(); } },
        ...(args.localAccounts || []).map((/** @type {any} */ a) => h("option", { value: a.alias, selected: a.alias === S.local }, `${a.alias} · ${a.address}`)));
      if (!S.local) S.local = args.localAccounts[0].alias;
      detail.append(field("Account", select, "Signs in the dApp's own process, with calldata built here (the local stack's test accounts); it pays the gas."));
    }
    fitHeight();
  };
  /** Where the connected wallet is: on the campaign's chain, or not (then a switch, or an offer to add it). */
  const chainBox = () => {
    const out = h("div", { className: "sp", "data-testid": "wallet-chain" });
    const w = S.wallet;
    if (S.walletChain === args.chainId) {
      out.append(h("p", { className: "note" }, `${w.name} is on ${chainName()}.`));
    } else if (S.walletChain !== null && S.walletChain !== undefined) {
      out.append(h("p", { className: "warn" }, `${w.name} is on ${chainLabel(S.walletChain)}; this campaign is on ${chainLabel(args.chainId)}.`));
      if (S.chainUnknown) {
        const rpc = (args.addChain?.rpcUrls || [])[0];
        out.append(h("p", { className: "note" }, `${w.name} does not know ${chainName()} yet.` + (rpc
          ? ` Add it: chain id ${args.chainId}, RPC ${rpc}, currency ${args.addChain.nativeCurrency.symbol}.`
          : ` Add it in the wallet by hand (chain id ${args.chainId}, with an RPC URL of this network), then switch to it.`)));
        if (rpc) out.append(h("button", { type: "button", name: "add-chain", onclick: () => chainAction(() => addChain(w.provider, args.addChain)) }, `Add ${chainName()} to ${w.name}`));
      } else {
        out.append(h("button", { type: "button", name: "switch-chain", onclick: () => chainAction(() => switchChain(w.provider, args.chainId)) }, `Switch ${w.name} to ${chainName()}`));
      }
    }
    return out;
  };
  const chainAction = async (/** @type {() => Promise<any>} */ action) => {
    try {
      await action();
      say("");
    } catch (e) {
      if (unknownChain(e)) S.chainUnknown = true;
      else say(walletErrorText(e), "err");
    }
    await readChain();
  };
  const readChain = async () => {
    try {
      S.walletChain = S.wallet ? await walletChain(S.wallet.provider) : null;
    } catch {
      S.walletChain = null;
    }
    opts.onChange();
    draw();
  };
  const connect = async (/** @type {import("./wallet.js").Wallet} */ w) => {
    try {
      const accounts = await ask(w.provider, "eth_requestAccounts");
      if (!accounts?.length) throw new Error("the wallet shared no account: unlock it, then connect again");
      S.wallet = w;
      S.address = lib.checksumAddress(accounts[0]);
      S.chainUnknown = false;
      watch(w);
      setValue({ id: newId(), kind: "wallet", address: S.address });
      say("");
    } catch (e) {
      say(walletErrorText(e), "err");
    }
    await readChain();
  };
  /** The wallet's own changes (another account, another chain) are followed, as dApps do. */
  const watch = (/** @type {import("./wallet.js").Wallet} */ w) => {
    if (S.watched === w || typeof w.provider.on !== "function") return;
    S.watched = w;
    w.provider.on("chainChanged", () => { if (S.wallet === w) readChain(); });
    w.provider.on("accountsChanged", (/** @type {string[]} */ accounts) => {
      if (S.wallet !== w) return;
      S.address = accounts?.length ? lib.checksumAddress(accounts[0]) : null;
      if (!S.address) S.wallet = null;
      opts.onChange();
      draw();
    });
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
      if (accounts?.length && !S.address) { S.wallet = w; S.address = lib.checksumAddress(accounts[0]); watch(w); readChain(); }
    }).catch(() => {});
  }
  return box;
}

/** Why the sending button is disabled, in words (null: it is not), for the sender part; `keyFile`:
 * the relayer signs with a key file opened here (else with the page's fresh member key). */
function senderWhy(keyFile = false) {
  if (S.sender === "wallet" && !S.address) return "connect a wallet first" + (args.relayer ? " (or send through the relayer: no wallet needed)" : "");
  if (S.sender === "wallet" && S.walletChain !== args.chainId) return `switch the wallet to ${chainName()} first (the button above)`;
  if (S.sender === "relayer") return keyFile && !S.memberKey ? "open your member key file first" : null;
  if (!S.address) return "choose how to send first";
  return null;
}

/** A file input for a member key file of this campaign; a refused file drops the key in use.
 * @param {(key: lib.MemberKey) => void} onKey @param {() => void} [onRefused] */
function keyFileInput(onKey, onRefused) {
  const message = h("p", { className: S.keyNote?.kind || "note" }, S.keyNote?.text || "");
  const input = h("input", { type: "file", name: "member-key-file", accept: ".key,application/json,application/octet-stream",
    onchange: async (/** @type {Event} */ e) => {
      const file = /** @type {HTMLInputElement} */ (e.target).files?.[0];
      if (!file) return;
      try {
        const key = lib.parseMemberKeyFile(await readFile(file), { campaign: args.campaign, chainId: args.chainId, name: file.name });
        S.keyNote = { kind: "note", text: `Opened ${file.name} (member key ${key.address}); it stays in this browser.` };
        onKey(key);
      } catch (err) {
        S.keyNote = { kind: "err", text: err instanceof Error ? err.message : String(err) }; // as it is: it starts with the file's name
        if (onRefused) onRefused();
      }
      message.className = S.keyNote.kind;
      message.textContent = S.keyNote.text;
      fitHeight();
    } });
  return h("div", null, field("Your member key file", input), message);
}

/** Sends a built call the chosen way; posts only public data to the server. */
async function send(/** @type {lib.KeyPair | null} */ signer, /** @type {import("./calldata.js").Call} */ call) {
  const id = newId();
  S.sentId = id;
  if (S.sender === "wallet") {
    say("Estimating the fee…");
    let estimate;
    try {
      estimate = await estimateFee(S.wallet.provider, call, S.address);
    } catch (e) {
      const refused = revertText(e);
      throw refused ? new lib.InputError(refused) : e;
    }
    const gwei = formatAmount(estimate.price, 9);
    say(`Fee estimate: about ${formatAmount(estimate.fee)} ${args.currency || "ETH"} (${estimate.gas.toLocaleString("en-US")} gas × ${gwei} gwei). Confirm the transaction in ${S.wallet.name}…`);
    const tx = await sendBuilt(S.wallet.provider, call, S.address, args.chainId, (estimate.gas * 6n) / 5n + 10_000n);
    setValue({ id, kind: "sent", action: call.action, via: "wallet", tx, from: S.address });
    say("Submitted: waiting for it to be mined…", "note", tx);
    return;
  } else if (S.sender === "relayer") {
    if (!signer) throw new Error("no member key to sign with");
    const request = await signRequest(signer.secret, call, { chainId: args.chainId, forwarder: args.forwarder, nonce: args.nonce ?? 0, deadline: Number(args.now) + 3600 });
    setValue({ id, kind: "sent", action: call.action, via: "relayer", request });
    say("Signed in this browser: the relayer sends it…");
  } else {
    setValue({ id, kind: "sent", action: call.action, via: "local", account: S.local, to: call.to, data: call.data, value: call.value.toString() });
    say(`Handed to ${S.local}: it signs and sends…`);
  }
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

/**
 * The member key: a fresh key, saved as a file by a click. The box "I have saved my member key
 * file" is the page's own record of that click, never a control: a click on it (its label invites
 * one) cannot untick it and lock the button again. With `derive` (the pledge page), the key can
 * instead be made from the wallet's signature (derive.js), after two signatures that must agree.
 * @param {() => string | null} campaignOf @param {() => void} changed @param {{derive?: boolean}} [opts]
 */
function keySection(campaignOf, changed, opts = {}) {
  if (!S.memberKey) S.memberKey = lib.generateKeyPair();
  if (!S.keyMode) S.keyMode = "file";
  const box = h("div", { className: "sp" });
  const saved = /** @type {HTMLInputElement} */ (h("input", { type: "checkbox", name: "key-saved", disabled: true }));
  const label = h("span", null);
  const button = h("button", { type: "button", name: "save-key", onclick: () => {
    const campaign = campaignOf();
    if (!campaign) return;
    S.savedName = lib.keyFileName(campaign);
    download(S.savedName, lib.memberKeyFileBytes(S.memberKey, campaign, args.chainId), "application/octet-stream");
    S.saved = campaign;
    changed();
  } }, "Save my member key file");
  const fileBox = h("div", { className: "sp" }, button, h("label", { className: "row" }, saved, label));
  const derivedNote = h("p", { className: "note", "data-testid": "derived-key" });
  const deriveButton = h("button", { type: "button", name: "derive-key", onclick: () => derive() }, "Sign with my wallet to make my member key");
  const deriveBox = h("div", { className: "sp" },
    h("p", { className: "warn" }, "Where this fails: it needs a wallet that signs the same message the same way every time. Most software wallets do; some hardware and smart-contract wallets do not, and would make another key next time: the roster could not be read with it, and nothing could bring it back. So your wallet is asked to sign twice, and the two signatures are compared before anything is sealed or sent. To read the roster later, sign again in the member area with the same wallet and account. A key file is safer: keep one if you can."),
    deriveButton, derivedNote);
  const derive = async () => {
    const campaign = campaignOf();
    if (!campaign || S.sender !== "wallet" || !S.wallet || !S.address) return;
    try {
      derivedNote.className = "note";
      derivedNote.textContent = `Sign the message in ${S.wallet.name} (1 of 2)…`;
      const first = await signKeyMessage(S.wallet.provider, campaign, args.chainId, S.address);
      derivedNote.textContent = `Sign it once more (2 of 2): the page checks that ${S.wallet.name} signs the same way each time…`;
      const second = await signKeyMessage(S.wallet.provider, campaign, args.chainId, S.address);
      if (!sameSignature(first, second)) {
        throw new lib.InputError(`${S.wallet.name} signed the same message differently the second time: it does not sign deterministically (as some hardware and smart-contract wallets), so it could not make this key again to read the roster. Nothing was sealed or sent: save a key file instead.`);
      }
      S.memberKey = keyFromSignature(first, campaign, args.chainId);
      S.derivedFor = campaign;
      derivedNote.className = "ok";
      derivedNote.textContent = `Member key made from the signature of ${S.wallet.name} (${S.address}), the same both times: ${S.memberKey.address}. No file to keep.`;
    } catch (e) {
      S.derivedFor = "";
      S.memberKey = lib.generateKeyPair();
      derivedNote.className = "err";
      derivedNote.textContent = e && /** @type {any} */ (e).code !== undefined ? walletErrorText(e) : errorText(e);
    }
    changed();
  };
  const modes = opts.derive ? h("div", { className: "sp" }, ...[
    ["file", "Save it as a file (recommended)"],
    ["derived", "Make it from my wallet's signature: no file to keep"],
  ].map(([value, text]) => h("label", { className: "row" }, h("input", { type: "radio", name: "key-mode", value, checked: S.keyMode === value,
    onchange: () => { S.keyMode = value; if (value === "file") { S.derivedFor = ""; S.memberKey = lib.generateKeyPair(); S.saved = ""; } changed(); } }), text))) : null;
  const refresh = () => {
    const campaign = campaignOf();
    const derived = opts.derive && S.keyMode === "derived";
    fileBox.hidden = derived;
    deriveBox.hidden = !derived;
    /** @type {HTMLButtonElement} */ (deriveButton).disabled = !(S.sender === "wallet" && S.wallet && S.address && S.walletChain === args.chainId) || S.busy;
    if (derived) return !!campaign && S.derivedFor === campaign;
    const ok = !!S.saved && S.saved === campaign;
    saved.checked = ok;
    label.textContent = ok
      ? `I have saved my member key file (${S.savedName}): without it I cannot read the roster. Keep it safe (the button saves it again).`
      : "I have saved my member key file (ticked when you save it: without it you cannot read the roster)";
    button.textContent = ok ? "Save my member key file again" : "Save my member key file";
    return ok;
  };
  box.append(...[
    h("h3", null, "Your member key"),
    h("p", { className: "note" }, "A fresh key for this one campaign: the roster is encrypted to it. It is made in this browser, never shown, and never sent anywhere."),
    modes,
    fileBox,
    opts.derive ? deriveBox : null,
  ].filter((el) => el !== null));
  refresh();
  return { box, button, saved, refresh };
}

/** Why the key part keeps the button disabled, in words (null: it does not). */
function keyWhy(/** @type {boolean} */ keyOk) {
  if (keyOk) return null;
  if (S.keyMode === "derived") return S.sender !== "wallet" || !S.wallet ? "connect a browser wallet to sign with (or save a key file instead)" : "sign with your wallet to make your member key first (the button above)";
  return "save your member key file first (the button above)";
}

/** The line under a disabled button that says why, on the page (hidden while the button works). */
const whyLine = () => h("p", { className: "note why", "data-testid": "why-disabled", hidden: true });
function explain(/** @type {HTMLElement} */ why, /** @type {string} */ action, /** @type {string | null} */ reason) {
  why.hidden = !reason;
  why.textContent = reason ? `To ${action}: ${reason}.` : "";
}

export function pledgePage(/** @type {HTMLElement} */ root) {
  newStatus();
  const name = h("input", { type: "text", name: "name", maxlength: 200, autocomplete: "off" });
  const email = h("input", { type: "email", name: "email", autocomplete: "off" });
  const contacts = h("textarea", { name: "contacts", placeholder: "signal=+41 79 123 45 67\nmatrix=@me:example.org" });
  const message = h("textarea", { name: "message", maxlength: lib.MESSAGE_MAX });
  const ack = h("input", { type: "checkbox", name: "untrusted-ack" });
  const go = h("button", { type: "button", className: "primary", name: "seal" }, "Seal and pledge");
  const why = whyLine();
  const update = () => {
    const keyOk = keys.refresh();
    /** @type {HTMLButtonElement} */ (keys.button).disabled = false;
    const reason = S.busy ? null
      : senderWhy()
      || keyWhy(keyOk)
      || (!args.trusted && !/** @type {HTMLInputElement} */ (ack).checked ? "tick \u201cI understand, and still want to pledge to it\u201d above first" : null);
    /** @type {HTMLButtonElement} */ (go).disabled = S.busy || !!reason;
    explain(why, "seal and pledge", reason);
    fitHeight();
  };
  const sender = senderSection({ onChange: () => { if (S.sender === "relayer") S.address = S.memberKey.address; update(); } });
  const keys = keySection(() => args.campaign, update, { derive: true });
  if (S.sender === "relayer") S.address = S.memberKey.address;
  go.addEventListener("click", async () => {
    S.busy = true;
    update();
    try {
      const content = lib.pledgeContent({ name: /** @type {any} */ (name).value, contact: contactOf(/** @type {any} */ (email).value, /** @type {any} */ (contacts).value), message: /** @type {any} */ (message).value || null });
      const pledger = S.sender === "relayer" ? S.memberKey.address : S.address;
      say("Sealing your record in this browser: it is encrypted here, and only the members can read it, after the reveal…");
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
    why,
    status,
  ].filter((el) => el !== null));
  ack.addEventListener("change", update);
  update();
  return () => { if (showOutcome()) { S.busy = !args.outcome.ok ? false : S.busy; if (args.outcome.ok) { S.memberKey = null; S.derivedFor = ""; S.saved = ""; } } update(); };
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
  const why = whyLine();
  const where = h("p", { className: "note" });
  const creator = () => (S.sender === "relayer" ? S.memberKey.address : S.address);
  const predicted = () => (creator() && args.config ? predictCampaign(args.factory, args.implementation, creator(), S.salt) : null);
  const update = () => {
    const campaign = predicted();
    where.textContent = campaign ? `Your campaign's address will be ${campaign}: your member key file names it.` : "Choose how to send first: the campaign's address depends on who creates it.";
    /** @type {HTMLButtonElement} */ (keys.button).disabled = !campaign;
    const keyOk = keys.refresh();
    const reason = S.busy ? null
      : !args.config ? "fill in the public fields above first (what is missing is listed there)"
      : senderWhy()
      || (!keyOk ? "save your member key file first (the button above)" : null);
    /** @type {HTMLButtonElement} */ (go).disabled = S.busy || !!reason || !campaign;
    explain(why, "create the campaign", reason);
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
      say("Sealing your record and the instructions in this browser: they are encrypted here, and only the members can read them, after the reveal…");
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
    h("p", { className: "note" }, "Typed and sealed in this browser, like any pledge: the members read them only after the reveal. Your record is pledge #1; the instructions are sealed apart, so that a late joiner can receive them without your identity."),
    field("Your name (as the members will know you)", name),
    field("Your e-mail (optional)", email),
    field("Other contact fields (optional), one per line as key=value", contacts),
    field("Instructions for the members", instructions, "What the members should do once they are enough. Only they will read it."),
    h("h3", null, "Send"),
    sender,
    where,
    keys.box,
    go,
    why,
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
  const why = whyLine();
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
          : `${who.address}: pledge #${who.index + 1}, ${who.status}${who.isCreator ? " (you created this campaign)" : ""}${who.held ? "; deposit held" : ""}.`),
        h("p", null, `Refundable now: ${who.refundableText}`)));
    const busy = S.busy || !who;
    const canWithdraw = args.state === "open" && who?.status === "live" && !who?.isCreator;
    const canRefund = !!who && BigInt(who.refundable) > 0n;
    /** @type {HTMLButtonElement} */ (buttons.withdraw).disabled = busy || !canWithdraw;
    /** @type {HTMLButtonElement} */ (buttons.refund).disabled = busy || !canRefund;
    /** @type {HTMLButtonElement} */ (buttons.cancel).disabled = busy || !/** @type {HTMLInputElement} */ (sure).checked;
    cancelBox.style.display = who?.isCreator && args.state === "open" ? "" : "none";
    // Each disabled button says why, on the page.
    const reason = S.busy ? null : senderWhy(true) || (!who ? "wait: your pledge is being looked up" : null);
    const reasons = reason ? [`To withdraw or refund: ${reason}.`] : S.busy ? [] : [
      canWithdraw ? null : `Withdraw: ${args.state !== "open" ? `the campaign is ${args.state}; only an open campaign's pledges can be withdrawn` : who.isCreator ? "the creator cannot withdraw (cancel the campaign instead)" : "there is no live pledge from this address"}.`,
      canRefund ? null : "Refund: nothing is refundable to this address now (a deposit comes back after a withdrawal, an expiry, a cancellation, or a reveal without beneficiary).",
    ].filter((r) => r !== null);
    why.hidden = !reasons.length;
    why.textContent = reasons.join(" ");
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
  root.append(senderSection({ keyFile: true, onChange: update }), h("h3", null, "Your pledge"), info, buttons.withdraw, buttons.refund, why, cancelBox, status);
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
        if (mine !== null && mine !== undefined && mine >= 0) out.append(h("p", null, `Your key belongs to pledge #${mine + 1}.`));
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
    const wallets = discover();
    const signWith = async (/** @type {import("./wallet.js").Wallet} */ w) => {
      try {
        const [account] = await ask(w.provider, "eth_requestAccounts");
        say(`Sign the member-key message in ${w.name}…`);
        const key = keyFromSignature(await signKeyMessage(w.provider, args.campaign, args.chainId, lib.checksumAddress(account)), args.campaign, args.chainId);
        fill(out);
        await open(key.secret);
      } catch (e) {
        say(e && /** @type {any} */ (e).code !== undefined ? walletErrorText(e) : errorText(e), "err");
      }
    };
    root.append(...[
      keyFileInput((key) => { fill(out); open(key.secret); }),
      wallets.length ? h("div", { className: "sp" },
        h("p", { className: "note" }, "Made your member key from your wallet's signature when you pledged? Sign the same message again, with the same wallet and account:"),
        h("div", { className: "wallets" }, ...wallets.map((w) => h("button", { type: "button", name: "derive-key", onclick: () => signWith(w) },
          w.icon ? h("img", { src: w.icon, alt: "", width: 20, height: 20 }) : null, `Sign with ${w.name}`)))) : null,
      out, status,
    ].filter((el) => el !== null));
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
      h("ul", null, ...roster.skipped.map((s) => h("li", null, `${s.index !== null ? `pledge #${s.index + 1}: ` : ""}${s.reason}`)))));
  }
  fitHeight();
}

// ─── Share: the campaign's link, to copy, to share, and as a QR code ───────────────────

export function sharePage(/** @type {HTMLElement} */ root) {
  newStatus();
  const url = String(args.url || "");
  const copy = h("button", { type: "button", name: "copy", onclick: async () => {
    try {
      await navigator.clipboard.writeText(url);
      say("Copied: paste it anywhere.", "ok");
    } catch {
      say("This browser did not let the page copy: select the link above and copy it.", "warn");
    }
  } }, "Copy link");
  const native = typeof navigator.share === "function"
    ? h("button", { type: "button", name: "share", onclick: () => navigator.share({ title: args.title || "Spartacus", url }).catch(() => {}) }, "Share…")
    : null;
  const svg = qrSvg(url);
  const save = h("button", { type: "button", name: "qr-download", onclick: () => download("campaign-qr.svg", new XMLSerializer().serializeToString(svg), "image/svg+xml") }, "Download the QR code");
  root.append(
    h("p", { className: "link" }, url),
    svg,
    h("div", { className: "row-buttons" }, copy, native, save),
    status,
  );
  return () => {};
}

/** @param {any} a */
export function setArgs(a) {
  args = a;
}
