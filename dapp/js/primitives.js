// @ts-check
/**
 * The primitives format v2 composes, each one call into an audited library (the browser twin of
 * `spartacus/_primitives.py`; the known-answer vectors bind the two):
 * secp256k1 ECDH (compressed shared point, 33 bytes), HKDF-SHA256 (empty salt, 16-byte output),
 * AES-128-GCM (16-byte tag), AES-KW (RFC 3394), SHA-256, keccak-256, and Shamir over GF(2^8)
 * (Privy's `shamir-secret-sharing`, HashiCorp Vault's scheme, as `pyshamir`).
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { gcm, aeskw } from "@noble/ciphers/aes.js";
import { split as shamirSplit, combine as shamirCombine } from "shamir-secret-sharing";

export const KEY_SIZE = 16;
export const TAG_SIZE = 16;
export const NONCE_SIZE = 12;
export const WRAP_SIZE = 24;
export const ZERO_NONCE = new Uint8Array(NONCE_SIZE);

/** An input that does not fit the format (a one-line reason, like Python's InputError). */
export class InputError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "InputError";
  }
}

/** Bytes that do not authenticate or unwrap (Python's DecryptionError). */
export class DecryptionError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "DecryptionError";
  }
}

/** Malformed sealed bytes (Python's EnvelopeError). */
export class EnvelopeError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "EnvelopeError";
  }
}

// ─── bytes ─────────────────────────────────────────────────────────────────────────

/** @param {...Uint8Array} parts @returns {Uint8Array} */
export function concat(...parts) {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Hex (with or without 0x) to bytes; an InputError for anything else. @param {string} text */
export function fromHex(text) {
  const h = typeof text === "string" && /^0[xX]/.test(text) ? text.slice(2) : text;
  if (typeof h !== "string" || h.length % 2 || !/^[0-9a-fA-F]*$/.test(h)) {
    throw new InputError("not hex: expected an even number of hex digits");
  }
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Bytes to lowercase hex without 0x. @param {Uint8Array} bytes */
export function toHex(bytes) {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Bytes to 0x-prefixed lowercase hex. @param {Uint8Array} bytes @returns {`0x${string}`} */
export const hex0x = (bytes) => `0x${toHex(bytes)}`;

/** @param {Uint8Array} a @param {Uint8Array} b */
export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** Big-endian unsigned integer of `size` bytes. @param {number | bigint} value @param {number} size */
export function uint(value, size) {
  let v = BigInt(value);
  if (v < 0n || v >= 1n << BigInt(8 * size)) throw new InputError(`${value} does not fit in ${size} bytes`);
  const out = new Uint8Array(size);
  for (let i = size - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** @param {Uint8Array} bytes @returns {number} big-endian, at most 6 bytes */
export function readUint(bytes) {
  let v = 0;
  for (const b of bytes) v = v * 256 + b;
  return v;
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });
/** @param {string} text */
export const utf8 = (text) => encoder.encode(text);
/** Strict UTF-8 decoding (a TypeError on invalid bytes). @param {Uint8Array} bytes */
export const fromUtf8 = (bytes) => strictDecoder.decode(bytes);

/** Cryptographically secure random bytes (the browser's or Node's WebCrypto). @param {number} size */
export function randomBytes(size) {
  const out = new Uint8Array(size);
  globalThis.crypto.getRandomValues(out);
  return out;
}

// ─── primitives ────────────────────────────────────────────────────────────────────

/** SHA-256. @param {Uint8Array} data */
export const sha256 = (data) => nobleSha256(data);

/** keccak-256 (Ethereum's). @param {Uint8Array} data */
export const keccak256 = (data) => keccak_256(data);

/** `secret · P` as a 33-byte compressed point; InputError if P is not on the curve. */
export function ecdh(/** @type {Uint8Array} */ secret, /** @type {Uint8Array} */ publicKey) {
  try {
    return secp256k1.getSharedSecret(secret, publicKey, true);
  } catch {
    throw new InputError("the public key is not a point on the secp256k1 curve");
  }
}

/** HKDF-SHA256 of `ikm`, empty salt, `info`: a 16-byte key. */
export const hkdf16 = (/** @type {Uint8Array} */ ikm, /** @type {Uint8Array} */ info) =>
  hkdf(nobleSha256, ikm, new Uint8Array(0), info, KEY_SIZE);

/** AES-GCM: ciphertext then the 16-byte tag. */
export function gcmSeal(
  /** @type {Uint8Array} */ key,
  /** @type {Uint8Array} */ nonce,
  /** @type {Uint8Array} */ plaintext,
  /** @type {Uint8Array} */ aad,
) {
  return gcm(key, nonce, aad).encrypt(plaintext);
}

/** Inverse of gcmSeal; DecryptionError when it does not authenticate. */
export function gcmOpen(
  /** @type {Uint8Array} */ key,
  /** @type {Uint8Array} */ nonce,
  /** @type {Uint8Array} */ sealed,
  /** @type {Uint8Array} */ aad,
) {
  if (sealed.length < TAG_SIZE) throw new DecryptionError("AES-GCM ciphertext shorter than its tag");
  try {
    return gcm(key, nonce, aad).decrypt(sealed);
  } catch {
    throw new DecryptionError("AES-GCM authentication failed: wrong key or altered bytes");
  }
}

/** AES key wrap (RFC 3394) of a 16-byte key: 24 bytes. */
export const kwWrap = (/** @type {Uint8Array} */ kek, /** @type {Uint8Array} */ key) => aeskw(kek).encrypt(key);

/** Inverse of kwWrap; DecryptionError when the integrity check fails. */
export function kwUnwrap(/** @type {Uint8Array} */ kek, /** @type {Uint8Array} */ wrapped) {
  if (wrapped.length !== WRAP_SIZE) throw new DecryptionError(`a wrapped key is ${WRAP_SIZE} bytes`);
  try {
    return aeskw(kek).decrypt(wrapped);
  } catch {
    throw new DecryptionError("AES key unwrap failed: wrong key or altered bytes");
  }
}

/** `n` shares `y ‖ x` of `secret`, any `t` of which rebuild it (t = 1: y = secret, x = i + 1). */
export async function split(/** @type {Uint8Array} */ secret, /** @type {number} */ n, /** @type {number} */ t) {
  if (!Number.isInteger(n) || !Number.isInteger(t) || !(1 <= t && t <= n && n <= 255)) {
    throw new InputError(`cannot split ${t}-of-${n}: need 1 <= t <= n <= 255`);
  }
  if (t === 1) return Array.from({ length: n }, (_, i) => concat(secret, Uint8Array.of(i + 1)));
  return shamirSplit(Uint8Array.from(secret), n, t);
}

/** The secret from `t` shares `y ‖ x` (one share: t = 1, its y). */
export async function combine(/** @type {Uint8Array[]} */ shares) {
  if (shares.length === 0) throw new DecryptionError("no share to combine");
  if (shares.length === 1) return shares[0].slice(0, -1);
  try {
    return await shamirCombine(shares.map((s) => Uint8Array.from(s)));
  } catch (e) {
    throw new DecryptionError(`shares do not combine: ${e instanceof Error ? e.message : e}`);
  }
}

export { secp256k1 };
