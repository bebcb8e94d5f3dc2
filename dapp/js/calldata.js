// @ts-check
/**
 * The transactions a page sends, built in the browser: ABI-encoded calls to the factory and to a
 * campaign (viem), and the campaign address a creation will get (CREATE2 of the EIP-1167 clone
 * code, exactly `CampaignFactory.predictCampaign`). The server never builds these: it only ever
 * receives a transaction hash, a signed request, or this calldata of ciphertext.
 */
import { decodeErrorResult, encodeFunctionData, parseAbi } from "viem";
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

/** The campaign's refusals a pledger can meet (ICampaign's custom errors), to say them before signing. */
export const ERRORS = parseAbi([
  "error CampaignWrongState(uint8 state)",
  "error CampaignClosedToLateJoiners()",
  "error CampaignWrongDeposit(uint256 sent, uint256 required)",
  "error CampaignAlreadyPledged(address pledger, uint256 index)",
  "error CampaignNoLivePledge(address caller)",
  "error CampaignCreatorCannotWithdraw()",
  "error CampaignInvalidEnvelope(uint256 length, uint256 max)",
  "error CampaignNotCreator(address caller)",
  "error CampaignNothingToRefund(address caller)",
  "error CampaignInvalidThreshold(uint256 threshold, uint256 max)",
  "error CampaignInvalidDeadline(uint256 deadline, uint256 now_, uint256 latest)",
]);
const STATE_NAMES = ["open", "revealed", "expired", "cancelled"];

/** The revert data inside a wallet's or a node's error, wherever the wallet put it. @param {any} e */
function revertData(e) {
  for (const d of [e?.data, e?.data?.data, e?.data?.originalError?.data, e?.error?.data, e?.cause?.data]) {
    if (typeof d === "string" && /^0x[0-9a-fA-F]{8,}$/.test(d)) return /** @type {`0x${string}`} */ (d);
  }
  return null;
}

/** The contract's refusal in words (from an estimate that failed), or null if it is not one of ours. @param {any} e */
export function revertText(e) {
  const data = revertData(e);
  if (!data) return null;
  let decoded;
  try {
    decoded = decodeErrorResult({ abi: ERRORS, data });
  } catch {
    return null;
  }
  const a = /** @type {any[]} */ (decoded.args || []);
  const why = {
    CampaignWrongState: () => `the campaign is ${STATE_NAMES[Number(a[0])] || "in another state"}: it takes no such call now`,
    CampaignClosedToLateJoiners: () => "the campaign is revealed and closed to late joiners: it takes no more pledges",
    CampaignWrongDeposit: () => `the deposit is ${a[1]} wei, not ${a[0]}`,
    CampaignAlreadyPledged: () => `${a[0]} already has a pledge here (pledge #${Number(a[1]) + 1}): one per address; pledge with no wallet (a fresh key) or from another address`,
    CampaignNoLivePledge: () => `${a[0]} has no live pledge in this campaign`,
    CampaignCreatorCannotWithdraw: () => "the creator cannot withdraw: cancel the campaign instead",
    CampaignInvalidEnvelope: () => `the sealed record is ${a[0]} bytes, more than the ${a[1]} allowed: shorten it`,
    CampaignNotCreator: () => `${a[0]} is not the campaign's creator`,
    CampaignNothingToRefund: () => `nothing to refund to ${a[0]} now`,
    CampaignInvalidThreshold: () => `threshold ${a[0]}: it must be 1 to ${a[1]}`,
    CampaignInvalidDeadline: () => "the deadline is in the past or too far away: pick another",
  }[decoded.errorName];
  return `The contract would refuse it (${decoded.errorName}): ${why ? why() : "see the campaign's state"}. Nothing was signed or sent.`;
}

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
