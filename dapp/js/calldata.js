// @ts-check
/**
 * The transactions a page sends, built in the browser: ABI-encoded calls to the factory and to a
 * campaign (viem), and the campaign address a creation will get (CREATE2 of the EIP-1167 clone
 * code, exactly `CampaignFactory.predictCampaign`). The server never builds these: it only ever
 * receives a transaction hash, a signed request, or this calldata of ciphertext.
 */
import { encodeFunctionData, parseAbi } from "viem";
import { concat, fromHex, hex0x, keccak256, InputError } from "./primitives.js";
import { checksumAddress } from "./keys.js";

export const ABI = parseAbi([
  "struct Config { string title; string purpose; string description; string plan; uint32 threshold; uint64 deadline; bytes[] keepers; uint8 keeperThreshold; uint8 scope; uint8 lateJoiners; uint96 deposit; address beneficiary; bytes relay; bytes relayNote; bytes instructions; }",
  "function createCampaign(Config config, bytes32 salt, bytes envelope, bytes memberKey) payable returns (address)",
  "function pledge(bytes envelope, bytes memberKey) payable returns (uint256)",
  "function withdraw()",
  "function refund()",
  "function cancel()",
]);

/**
 * @typedef {{ title: string, purpose: string, description: string, plan: string, threshold: number, deadline: number,
 *   keepers: string[], keeperThreshold: number, scope: number, lateJoiners: number, deposit: string, beneficiary: string,
 *   relay: string, relayNote: string, instructions: string }} Config  hex strings for bytes, decimal string for deposit
 * @typedef {{ action: string, to: string, data: string, value: bigint }} Call
 */

/** `pledge(envelope, memberKey)` to `campaign`. */
export const pledgeCall = (/** @type {string} */ campaign, /** @type {Uint8Array} */ envelope, /** @type {Uint8Array} */ memberKey, /** @type {bigint} */ value) =>
  /** @type {Call} */ ({ action: "pledge", to: checksumAddress(campaign), value, data: encodeFunctionData({ abi: ABI, functionName: "pledge", args: [hex0x(envelope), hex0x(memberKey)] }) });

/** `withdraw()`, `refund()` or `cancel()` of `campaign`. */
export function simpleCall(/** @type {"withdraw" | "refund" | "cancel"} */ action, /** @type {string} */ campaign) {
  if (!["withdraw", "refund", "cancel"].includes(action)) throw new InputError(`unknown action ${action}`);
  return /** @type {Call} */ ({ action, to: checksumAddress(campaign), value: 0n, data: encodeFunctionData({ abi: ABI, functionName: action }) });
}

/** `createCampaign(config, salt, envelope, memberKey)` to `factory`, paying the deposit. */
export function createCall(/** @type {string} */ factory, /** @type {Config} */ c, /** @type {Uint8Array} */ salt, /** @type {Uint8Array} */ envelope, /** @type {Uint8Array} */ memberKey) {
  const config = {
    title: c.title, purpose: c.purpose, description: c.description, plan: c.plan, threshold: c.threshold, deadline: BigInt(c.deadline),
    keepers: /** @type {`0x${string}`[]} */ (c.keepers.map((k) => hex0x(fromHex(k)))), keeperThreshold: c.keeperThreshold, scope: c.scope,
    lateJoiners: c.lateJoiners, deposit: BigInt(c.deposit), beneficiary: /** @type {`0x${string}`} */ (checksumAddress(c.beneficiary)),
    relay: /** @type {`0x${string}`} */ (hex0x(fromHex(c.relay))), relayNote: /** @type {`0x${string}`} */ (hex0x(fromHex(c.relayNote))),
    instructions: /** @type {`0x${string}`} */ (hex0x(fromHex(c.instructions))),
  };
  const data = encodeFunctionData({ abi: ABI, functionName: "createCampaign", args: [config, hex0x(salt), hex0x(envelope), hex0x(memberKey)] });
  return /** @type {Call} */ ({ action: "create", to: checksumAddress(factory), value: BigInt(c.deposit), data });
}

/** The address `createCampaign` gives `creator` for `salt` (EIP-1167 clone of `implementation`, CREATE2). */
export function predictCampaign(/** @type {string} */ factory, /** @type {string} */ implementation, /** @type {string} */ creator, /** @type {Uint8Array} */ salt) {
  if (salt.length !== 32) throw new InputError("a salt is 32 bytes");
  const code = concat(fromHex("3d602d80600a3d3981f3363d3d373d3d3d363d73"), fromHex(implementation), fromHex("5af43d82803e903d91602b57fd5bf3"));
  const scoped = keccak256(concat(new Uint8Array(12), fromHex(creator), salt)); // keccak256(abi.encode(creator, salt))
  const h = keccak256(concat(Uint8Array.of(0xff), fromHex(factory), scoped, keccak256(code)));
  return checksumAddress(h.slice(12));
}
