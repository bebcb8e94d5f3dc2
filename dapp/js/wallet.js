// @ts-check
/**
 * The wallet bridge, inside the component: browser wallets found through EIP-6963 (several
 * wallets), else the injected `window.ethereum` (of this frame, or of the same-origin parent for
 * wallets that inject only into the top page). Hardened:
 *  - it asks the wallet only for the methods the pages need (ALLOWED);
 *  - it sends only transactions that this component built for the action the user clicked:
 *    `sendBuilt` takes a call made by `built()` in the click's own handler, never parameters
 *    that came in a message.
 */
export const ALLOWED = new Set(["eth_requestAccounts", "eth_accounts", "eth_chainId", "wallet_switchEthereumChain", "eth_sendTransaction"]);

/** @typedef {{ request: (a: {method: string, params?: unknown[]}) => Promise<any> }} Provider */
/** @typedef {{ name: string, rdns: string, provider: Provider }} Wallet */

/** @type {Wallet[]} */
const found = [];

function announce(/** @type {Event} */ event) {
  const detail = /** @type {any} */ (event).detail;
  if (!detail || !detail.provider || typeof detail.provider.request !== "function") return;
  const rdns = String(detail.info?.rdns || "");
  if (found.some((w) => w.provider === detail.provider || (rdns && w.rdns === rdns))) return; // this frame's and the page's copy
  found.push({ name: String(detail.info?.name || "Browser wallet"), rdns, provider: detail.provider });
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
      found.push({ name: injected.isMetaMask ? "MetaMask (injected)" : "Browser wallet (injected)", rdns: "", provider: injected });
    }
  }
  return found;
}

/** One allowed wallet request. @param {Provider} provider @param {string} method @param {unknown[]} [params] */
export async function ask(provider, method, params = []) {
  if (!ALLOWED.has(method)) throw Object.assign(new Error(`the dApp never asks a wallet for ${method}`), { code: 4200 });
  return provider.request({ method, params });
}

/** @type {WeakSet<object>} */
const BUILT = new WeakSet();
/** Marks a call as built by this component for a click (see sendBuilt). @template {object} T @param {T} call */
export function built(call) {
  BUILT.add(call);
  return call;
}

/**
 * Sends a call this component built, from `from`, on `chainId` (asking the wallet to switch).
 * @param {Provider} provider @param {{to: string, data: string, value: bigint}} call @param {string} from @param {number} chainId
 * @returns {Promise<string>} the transaction hash
 */
export async function sendBuilt(provider, call, from, chainId) {
  if (!BUILT.has(call)) throw new Error("refused: this transaction was not built by this page for your click");
  const current = parseInt(await ask(provider, "eth_chainId"), 16);
  if (current !== chainId) {
    try {
      await ask(provider, "wallet_switchEthereumChain", [{ chainId: "0x" + chainId.toString(16) }]);
    } catch (e) {
      if (/** @type {any} */ (e)?.code === 4001) throw e;
      throw Object.assign(new Error(`the wallet is on chain ${current}, the campaign on chain ${chainId}: switch networks in the wallet`), { code: 4901 });
    }
  }
  return ask(provider, "eth_sendTransaction", [{ from, to: call.to, data: call.data, value: "0x" + call.value.toString(16) }]);
}

/** A wallet's EIP-1193 error in words. @param {any} error */
export function walletErrorText(error) {
  const code = error?.code;
  const message = String(error?.message || error || "");
  if (code === 4001) return "You rejected the request in your wallet: nothing was sent.";
  if (code === 4100) return "The wallet has not authorised this page: connect the wallet first.";
  if (code === 4900 || code === 4901) return `The wallet is on another network: ${message}.`;
  if (code === -32002) return "Your wallet already has a request waiting: answer it in the wallet, then try again.";
  return `The wallet refused: ${message || "no reason given"}${code !== undefined ? ` (code ${code})` : ""}.`;
}
