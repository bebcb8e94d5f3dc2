// @ts-check
/**
 * Walletless sending (ERC-2771): the member key signs an OpenZeppelin `ForwardRequest` for the
 * deployment's forwarder (EIP-712 domain "Spartacus", version "1"), in the browser; a relayer
 * carries it (see the relayer API). The pledger is then the member key's own address, which holds
 * no ether and is tied to nobody.
 */
import { privateKeyToAccount } from "viem/accounts";
import { hex0x } from "./primitives.js";
import { checksumAddress } from "./keys.js";

export const FORWARD_REQUEST_TYPES = {
  ForwardRequest: [
    { name: "from", type: "address" }, { name: "to", type: "address" }, { name: "value", type: "uint256" },
    { name: "gas", type: "uint256" }, { name: "nonce", type: "uint256" }, { name: "deadline", type: "uint48" },
    { name: "data", type: "bytes" },
  ],
};

/** Gas the request forwards to the target: generous bounds per action (the relayer pays what is used). */
export function requestGas(/** @type {string} */ action, /** @type {string} */ data) {
  const bytes = (data.length - 2) / 2;
  return BigInt(action === "create" ? 900_000 + 60 * bytes : action === "pledge" ? 200_000 + 60 * bytes : 150_000);
}

/**
 * The relayer's `POST /relay` body for `call`, signed by `secret` (decimal strings for integers).
 * @param {Uint8Array} secret @param {import("./calldata.js").Call} call
 * @param {{chainId: number, forwarder: string, nonce: number | string, deadline: number}} opts
 */
export async function signRequest(secret, call, opts) {
  const account = privateKeyToAccount(/** @type {`0x${string}`} */ (hex0x(secret)));
  const message = {
    from: account.address, to: /** @type {`0x${string}`} */ (checksumAddress(call.to)), value: call.value,
    gas: requestGas(call.action, call.data), nonce: BigInt(opts.nonce), deadline: opts.deadline, data: /** @type {`0x${string}`} */ (call.data),
  };
  const signature = await account.signTypedData({
    domain: { name: "Spartacus", version: "1", chainId: opts.chainId, verifyingContract: /** @type {`0x${string}`} */ (checksumAddress(opts.forwarder)) },
    types: FORWARD_REQUEST_TYPES, primaryType: "ForwardRequest", message,
  });
  return {
    from: message.from, to: message.to, value: message.value.toString(), gas: message.gas.toString(), nonce: message.nonce.toString(),
    deadline: message.deadline, data: message.data, signature,
  };
}
