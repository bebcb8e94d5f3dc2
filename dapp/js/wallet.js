// @ts-check
/**
 * The wallet bridge, inside the component: browser wallets found through EIP-6963 (several
 * wallets, each with its name and icon), else the injected `window.ethereum` (of this frame, or of
 * the same-origin parent for wallets that inject only into the top page). Hardened:
 *  - it asks the wallet only for the methods the pages need (ALLOWED): accounts, the chain (and to
 *    switch to it, or add it: EIP-3326, EIP-3085), a gas estimate and the gas price (the fee shown
 *    before signing), and the transaction;
 *  - it sends only transactions that this component built for the action the user clicked:
 *    `sendBuilt` takes a call made by `built()` in the click's own handler, never parameters
 *    that came in a message; and only on the campaign's chain;
 *  - the one message it asks a wallet to sign is the member-key message of this page's campaign
 *    (`signKeyMessage`, derive.js), never text that came in a message.
 */
import { deriveMessage } from "./derive.js";
import { toHex, utf8 } from "./primitives.js";
export const ALLOWED = new Set([
  "eth_requestAccounts", "eth_accounts", "eth_chainId", "wallet_switchEthereumChain", "wallet_addEthereumChain",
  "eth_estimateGas", "eth_gasPrice", "eth_sendTransaction", "personal_sign",
]);

/** @typedef {{ request: (a: {method: string, params?: unknown[]}) => Promise<any>, on?: Function, removeListener?: Function }} Provider */
/** @typedef {{ name: string, rdns: string, icon: string, provider: Provider }} Wallet */

/** @type {Wallet[]} */
const found = [];

function announce(/** @type {Event} */ event) {
  const detail = /** @type {any} */ (event).detail;
  if (!detail || !detail.provider || typeof detail.provider.request !== "function") return;
  const rdns = String(detail.info?.rdns || "");
  if (found.some((w) => w.provider === detail.provider || (rdns && w.rdns === rdns))) return; // this frame's and the page's copy
  const icon = String(detail.info?.icon || "");
  found.push({
    name: String(detail.info?.name || "Browser wallet").slice(0, 60), rdns, provider: detail.provider,
    icon: /^data:image\/(svg\+xml|png|webp|jpeg|gif)[;,]/.test(icon) ? icon : "", // EIP-6963: a data URI (CSP: img-src data:)
  });
}

/** The wallets of this browser (EIP-6963 announcements, then the injected provider). @returns {Wallet[]} */
export function discover() {
  /** @type {Window[]} */
  const windows = [window];
  try {
    if (window.parent !== window && window.parent.location.origin === window.location.origin) windows.push(window.parent);
  } catch {}
  for (const w of windows) {
    w.addEventListener("eip6963:announceProvider", announce);
    w.dispatchEvent(new Event("eip6963:requestProvider"));
  }
  for (const w of windows) {
    const injected = /** @type {any} */ (w).ethereum;
    if (injected && typeof injected.request === "function" && !found.length) {
      found.push({ name: injected.isMetaMask ? "MetaMask (injected)" : "Browser wallet (injected)", rdns: "", icon: "", provider: injected });
    }
  }
  return found;
}

/** One allowed wallet request. @param {Provider} provider @param {string} method @param {unknown[]} [params] */
export async function ask(provider, method, params = []) {
  if (!ALLOWED.has(method)) throw Object.assign(new Error(`the dApp never asks a wallet for ${method}`), { code: 4200 });
  return provider.request({ method, params });
}

/** The wallet's current chain id. @param {Provider} provider @returns {Promise<number>} */
export const walletChain = async (provider) => parseInt(await ask(provider, "eth_chainId"), 16);

/** True for a wallet's "I do not know this chain" (4902; some wallets wrap it in -32603). @param {any} e */
export function unknownChain(e) {
  const code = e?.code ?? e?.data?.originalError?.code;
  return code === 4902 || e?.data?.originalError?.code === 4902 || /unrecognized chain|unknown chain|not been added|add.*chain first/i.test(String(e?.message || ""));
}

/** Asks the wallet to switch to `chainId` (EIP-3326); a wallet that does not know it throws (see unknownChain). */
export const switchChain = (/** @type {Provider} */ provider, /** @type {number} */ chainId) =>
  ask(provider, "wallet_switchEthereumChain", [{ chainId: "0x" + chainId.toString(16) }]);

/**
 * Asks the wallet to add the network (EIP-3085) with the dApp's configured details, then to
 * switch to it if adding did not. @param {Provider} provider @param {any} params `wallet_addEthereumChain`'s
 */
export async function addChain(provider, params) {
  await ask(provider, "wallet_addEthereumChain", [params]);
  const chainId = parseInt(params.chainId, 16);
  if ((await walletChain(provider)) !== chainId) await switchChain(provider, chainId);
}

/**
 * The wallet's EIP-191 signature of the member-key message of `campaign` on `chainId`, by `address`.
 * @param {Provider} provider @param {string} campaign @param {number} chainId @param {string} address @returns {Promise<string>}
 */
export const signKeyMessage = (provider, campaign, chainId, address) =>
  ask(provider, "personal_sign", ["0x" + toHex(utf8(deriveMessage(campaign, chainId))), address]);

/** @type {WeakSet<object>} */
const BUILT = new WeakSet();
/** Marks a call as built by this component for a click (see sendBuilt). @template {object} T @param {T} call */
export function built(call) {
  BUILT.add(call);
  return call;
}

/**
 * The fee of a built call from `from`, before signing: the wallet's gas estimate and gas price
 * (a refusal by the contract surfaces here, before anything is signed).
 * @param {Provider} provider @param {{to: string, data: string, value: bigint}} call @param {string} from
 * @returns {Promise<{gas: bigint, price: bigint, fee: bigint}>}
 */
export async function estimateFee(provider, call, from) {
  const tx = { from, to: call.to, data: call.data, value: "0x" + call.value.toString(16) };
  const gas = BigInt(await ask(provider, "eth_estimateGas", [tx]));
  const price = BigInt(await ask(provider, "eth_gasPrice"));
  return { gas, price, fee: gas * price };
}

/**
 * Sends a call this component built, from `from`, on `chainId` only (asking the wallet to switch
 * first; a wallet that does not know the chain is told to add it).
 * @param {Provider} provider @param {{to: string, data: string, value: bigint}} call @param {string} from @param {number} chainId
 * @param {bigint} [gas] the gas limit (the estimate with a margin)
 * @returns {Promise<string>} the transaction hash
 */
export async function sendBuilt(provider, call, from, chainId, gas) {
  if (!BUILT.has(call)) throw new Error("refused: this transaction was not built by this page for your click");
  const current = await walletChain(provider);
  if (current !== chainId) {
    try {
      await switchChain(provider, chainId);
    } catch (e) {
      if (/** @type {any} */ (e)?.code === 4001) throw e;
      if (unknownChain(e)) throw Object.assign(new Error("the wallet does not know this campaign's network: add it first (the button above)"), { code: 4902 });
      throw Object.assign(new Error(`the wallet is on chain ${current}, the campaign on chain ${chainId}: switch networks in the wallet`), { code: 4901 });
    }
    if ((await walletChain(provider)) !== chainId) throw Object.assign(new Error(`the wallet is still on another chain than ${chainId}: switch networks in the wallet`), { code: 4901 });
  }
  const tx = { from, to: call.to, data: call.data, value: "0x" + call.value.toString(16) };
  return ask(provider, "eth_sendTransaction", [gas ? { ...tx, gas: "0x" + gas.toString(16) } : tx]);
}

/** A wallet's EIP-1193 error in words. @param {any} error */
export function walletErrorText(error) {
  const code = error?.code;
  const message = String(error?.message || error || "");
  if (code === 4001) return "You rejected the request in your wallet: nothing was sent.";
  if (code === 4100) return "The wallet has not authorised this page: connect the wallet first.";
  if (code === 4902) return `The wallet does not know this network: ${message.replace(/^the wallet does not know this campaign's network: /, "")}.`;
  if (code === 4900 || code === 4901) return `The wallet is on another network: ${message}.`;
  if (code === -32002) return "Your wallet already has a request waiting: answer it in the wallet, then try again.";
  return `The wallet refused: ${message || "no reason given"}${code !== undefined ? ` (code ${code})` : ""}.`;
}
