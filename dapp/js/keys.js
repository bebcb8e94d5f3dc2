// @ts-check
/**
 * secp256k1 keys, addresses and member key files (the browser twin of `spartacus/keys.py`).
 *
 * A member key file is one line of UTF-8 JSON, version 2, naming its campaign and chain:
 *   {"version":2,"kind":"spartacus-member-key","chain_id":31337,"campaign":"0x…","private_key":"0x…"}\n
 * exactly the bytes `spartacus.keys.key_file_bytes` writes and `spartacus roster
 * --member-key-file` reads. A member key serves one campaign: a file of another campaign or chain
 * is refused, because a reused member key links two pledges on-chain.
 */
import { secp256k1, keccak256, fromHex, toHex, utf8, fromUtf8, InputError } from "./primitives.js";

export const KIND_MEMBER = "spartacus-member-key";
const KEY_FILE_MAX_BYTES = 4096;

/** A key file that cannot be used here, with the fix in the message. */
export class KeyFileError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "KeyFileError";
  }
}

/**
 * @typedef {{ secret: Uint8Array, publicKey: Uint8Array, compressed: Uint8Array, address: string }} KeyPair
 *   publicKey: 64 bytes X‖Y; compressed: 33 bytes; address: EIP-55.
 * @typedef {KeyPair & { campaign: string, chainId: number }} MemberKey
 */

/** EIP-55 checksummed address of 20 bytes, or of 0x + 40 hex digits. @param {Uint8Array | string} address */
export function checksumAddress(address) {
  const raw = typeof address === "string" ? address : "0x" + toHex(address);
  if (!/^0[xX][0-9a-fA-F]{40}$/.test(raw)) throw new InputError(`${JSON.stringify(raw)} is not 0x followed by 40 hex digits`);
  const lower = raw.slice(2).toLowerCase();
  const digest = toHex(keccak256(utf8(lower)));
  let out = "0x";
  for (let i = 0; i < 40; i++) out += parseInt(digest[i], 16) >= 8 ? lower[i].toUpperCase() : lower[i];
  return out;
}

/** The address of a 64-byte public key: the last 20 bytes of its keccak-256. @param {Uint8Array} pub64 */
export function addressOfPublicKey(pub64) {
  if (pub64.length !== 64) throw new InputError("an address is derived from a 64-byte uncompressed public key");
  return checksumAddress(keccak256(pub64).slice(12));
}

/** A key pair from a 32-byte secret in [1, n-1]. @param {Uint8Array} secret @returns {KeyPair} */
export function keyPairFromSecret(secret) {
  if (!(secret instanceof Uint8Array) || secret.length !== 32) throw new InputError("a secp256k1 private key is exactly 32 bytes");
  if (!secp256k1.utils.isValidSecretKey(secret)) throw new InputError("a secp256k1 private key must be in [1, n-1]");
  const publicKey = secp256k1.getPublicKey(secret, false).slice(1);
  return { secret: Uint8Array.from(secret), publicKey, compressed: secp256k1.getPublicKey(secret, true), address: addressOfPublicKey(publicKey) };
}

/** A fresh key pair from the platform's CSPRNG. @returns {KeyPair} */
export const generateKeyPair = () => keyPairFromSecret(secp256k1.utils.randomSecretKey());

/** A point in any usual encoding (hex or bytes; 64, 65 or 33 bytes) on secp256k1. */
function point(/** @type {string | Uint8Array} */ key) {
  let raw = typeof key === "string" ? fromHex(key.trim()) : key;
  if (raw.length === 64) raw = Uint8Array.of(4, ...raw);
  if (!((raw.length === 65 && raw[0] === 4) || (raw.length === 33 && (raw[0] === 2 || raw[0] === 3)))) {
    throw new InputError(`a public key is 64 bytes (X||Y), 65 bytes (04||X||Y) or 33 bytes (02/03||X); got ${raw.length} bytes`);
  }
  try {
    return secp256k1.Point.fromBytes(raw);
  } catch {
    throw new InputError("the public key is not a point on the secp256k1 curve; check it was copied whole");
  }
}

/** Any public key as 64 bytes X‖Y. @param {string | Uint8Array} key */
export const parsePublicKey = (key) => point(key).toBytes(false).slice(1);
/** Any public key as 33 bytes (compressed). @param {string | Uint8Array} key */
export const compressPublicKey = (key) => point(key).toBytes(true);

/** The exact bytes of a member key file (see the module comment). */
export function memberKeyFileBytes(/** @type {KeyPair} */ pair, /** @type {string} */ campaign, /** @type {number} */ chainId) {
  const doc = { version: 2, kind: KIND_MEMBER, chain_id: chainId, campaign: checksumAddress(campaign), private_key: "0x" + toHex(pair.secret) };
  return utf8(JSON.stringify(doc) + "\n");
}

/** `spartacus-member-<first 8 hex digits of the campaign>.key`. @param {string} campaign */
export const keyFileName = (campaign) => `spartacus-member-${campaign.slice(2, 10).toLowerCase()}.key`;

/**
 * Parse a member key file (uploaded bytes), with the checks of `spartacus.keys.parse_key_file`:
 * a file of another campaign or chain than the ones given is refused.
 * @param {Uint8Array} raw @param {{campaign?: string, chainId?: number, name?: string}} [expect]
 * @returns {MemberKey}
 */
export function parseMemberKeyFile(raw, expect = {}) {
  const name = expect.name || "this file";
  const bad = `${name} is not a Spartacus member key file`;
  if (raw.length > KEY_FILE_MAX_BYTES) throw new KeyFileError(`${bad} (too large): open the .key file you saved when you pledged`);
  let data;
  try {
    data = JSON.parse(fromUtf8(raw));
  } catch {
    throw new KeyFileError(`${bad} (not JSON): open the .key file you saved when you pledged`);
  }
  if (!data || typeof data !== "object" || Array.isArray(data) || !("version" in data)) {
    throw new KeyFileError(`${bad} (expected the keys version, kind, private_key)`);
  }
  if (data.kind !== undefined && data.kind !== KIND_MEMBER && typeof data.kind === "string" && data.kind.startsWith("spartacus-")) {
    throw new KeyFileError(`${name} holds a ${data.kind}, but a member key is needed here: open your member key file`);
  }
  if (data.version === 1 && data.kind === KIND_MEMBER) {
    throw new KeyFileError(`${bad} (a version 1 file names no campaign; this dApp reads version 2 files, one per campaign)`);
  }
  const keys = Object.keys(data).sort().join(",");
  if (data.version !== 2 || keys !== "campaign,chain_id,kind,private_key,version" || data.kind !== KIND_MEMBER) {
    throw new KeyFileError(`${bad} (expected version 2 with the keys campaign, chain_id, kind, private_key, version)`);
  }
  if (typeof data.private_key !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(data.private_key)) {
    throw new KeyFileError(`${bad} (private_key must be 0x and 64 hex digits)`);
  }
  if (typeof data.campaign !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(data.campaign)) {
    throw new KeyFileError(`${bad} (campaign must be 0x and 40 hex digits)`);
  }
  if (!Number.isSafeInteger(data.chain_id) || data.chain_id < 0) throw new KeyFileError(`${bad} (chain_id must be a non-negative integer)`);
  let pair;
  try {
    pair = keyPairFromSecret(fromHex(data.private_key));
  } catch {
    throw new KeyFileError(`${bad} (private_key is not a valid secp256k1 key)`);
  }
  const campaign = checksumAddress(data.campaign);
  if (expect.campaign && campaign.toLowerCase() !== expect.campaign.toLowerCase()) {
    throw new KeyFileError(
      `${name} is the member key of campaign ${campaign}, not of ${checksumAddress(expect.campaign)}: a member key serves one ` +
        "campaign only (reusing it would link your two pledges on-chain); open this campaign's key file",
    );
  }
  if (expect.chainId !== undefined && data.chain_id !== expect.chainId) {
    throw new KeyFileError(`${name} is a member key for chain ${data.chain_id}, not chain ${expect.chainId}: open the key file of this network's campaign`);
  }
  return { ...pair, campaign, chainId: data.chain_id };
}
