// @ts-check
/**
 * Format v2 releases, byte for byte as `spartacus/release.py` documents them: the payload
 * `b"SPR" 2 | record+`, index sets, GRANTS / SHARES / INSTRUCTIONS / RELAY / PUBLIC_* records,
 * the roster and late keys of a keeper, and what a reader collects from them.
 *
 * `buildRelease` (the keeper's side) is here so that the known-answer vectors check every byte
 * in both languages; the dApp itself only reads releases (`collect`).
 */
import {
  NONCE_SIZE, TAG_SIZE, WRAP_SIZE, InputError, EnvelopeError, DecryptionError,
  concat, utf8, uint, readUint, equalBytes, ecdh, hkdf16, gcmSeal, gcmOpen, kwWrap, kwUnwrap, randomBytes,
} from "./primitives.js";
import { SHARE_Y_SIZE, addressBytes } from "./format.js";
import { keyPairFromSecret, generateKeyPair, compressPublicKey } from "./keys.js";

export const RELEASE_MAGIC = utf8("SPR");
const PREFIX = concat(RELEASE_MAGIC, Uint8Array.of(2));
export const GRANTS = 1, SHARES = 2, INSTRUCTIONS = 3, RELAY = 4, PUBLIC_SHARES = 5, PUBLIC_INSTRUCTIONS = 6;
export const ROSTER_KEY = 0, LATE_KEY = 1;
const HEADER = 3, SET_HEADER = 6, MAX_SPAN = 0xffff, MAX_INDEX = 2 ** 32 - 2, EPHEMERAL = 33;
export const DEFAULT_MAX_BYTES = 20000;
const GRANT_LABEL = utf8("spartacus/v2 grant");
const RELAY_LABEL = utf8("spartacus/v2 relay");
const SHARES_LABEL = utf8("spartacus/v2 shares");
const INSTRUCTIONS_LABEL = utf8("spartacus/v2 instructions");
const KEY_LABEL = utf8("spartacus/v2 release key");

/**
 * @typedef {import("./format.js").CampaignContext} CampaignContext
 * @typedef {{ keeperIndex: number, keeper: string, data: Uint8Array, blockNumber: number, logIndex: number }} ReleaseRecord
 * @typedef {{ type: number, keyId?: number, ephemeral?: Uint8Array, indices?: number[], wraps?: Uint8Array[],
 *   indexSet?: Uint8Array, nonce?: Uint8Array, sealed?: Uint8Array, wrap?: Uint8Array, ys?: Uint8Array[], y?: Uint8Array }} Record
 * @typedef {{ index: number, y: Uint8Array, memberKey: Uint8Array, grant?: number }} Entry
 * @typedef {{ keeperIndex: number, blockNumber: number, logIndex: number, reason: string }} ReleaseProblem
 */

const context = (/** @type {CampaignContext} */ ctx, /** @type {number} */ k, /** @type {number} */ keyId) =>
  concat(uint(ctx.chainId, 32), addressBytes(ctx.campaign, "campaign address"), Uint8Array.of(k, keyId));

/** `[R, L]`: keeper `k`'s roster and late keys for `ctx`, derived from its secret. */
export const releaseKeys = (/** @type {Uint8Array} */ keeperSecret, /** @type {CampaignContext} */ ctx, /** @type {number} */ k) =>
  [ROSTER_KEY, LATE_KEY].map((id) => hkdf16(keeperSecret, concat(KEY_LABEL, context(ctx, k, id))));

// ─── index sets ──────────────────────────────────────────────────────────────────────

/** `first (4) | span (2) | bitmap` of strictly ascending indices. @param {number[]} indices */
export function encodeIndexSet(indices) {
  if (!indices.length) throw new InputError("an index set holds at least one pledge");
  for (let i = 1; i < indices.length; i++) if (indices[i] <= indices[i - 1]) throw new InputError("pledge indices of an index set must be strictly ascending");
  const first = indices[0], last = indices[indices.length - 1];
  if (first < 0 || last > MAX_INDEX || last - first + 1 > MAX_SPAN) throw new InputError("an index set spans at most 65,535 pledges, each a uint32 below 2^32 - 1");
  const span = last - first + 1;
  const bitmap = new Uint8Array((span + 7) >> 3);
  for (const i of indices) bitmap[(i - first) >> 3] |= 0x80 >> ((i - first) & 7);
  return concat(uint(first, 4), uint(span, 2), bitmap);
}

/** `[indices, end]` of the canonical index set at `data[pos:]`. @param {Uint8Array} data @param {number} pos @returns {[number[], number]} */
export function decodeIndexSet(data, pos = 0) {
  if (data.length - pos < SET_HEADER) throw new EnvelopeError("release: truncated index set");
  const first = readUint(data.subarray(pos, pos + 4));
  const span = readUint(data.subarray(pos + 4, pos + 6));
  const end = pos + SET_HEADER + ((span + 7) >> 3);
  if (span === 0 || end > data.length || first + span - 1 > MAX_INDEX) throw new EnvelopeError("release: malformed index set");
  const out = [];
  for (let q = pos + SET_HEADER; q < end; q++) {
    const byte = data[q];
    if (byte) for (let b = 0; b < 8; b++) if (byte & (0x80 >> b)) out.push(first + 8 * (q - pos - SET_HEADER) + b);
  }
  if (!out.length || out[0] !== first || out[out.length - 1] !== first + span - 1) {
    throw new EnvelopeError("release: index set not canonical (its first and last pledge must be in it)");
  }
  return [out, end];
}

// ─── parse ───────────────────────────────────────────────────────────────────────────

function keyId(/** @type {number} */ byte) {
  if (byte !== ROSTER_KEY && byte !== LATE_KEY) throw new EnvelopeError(`release: unknown key id ${byte}`);
  return byte;
}

const slices = (/** @type {Uint8Array} */ data, /** @type {number} */ at, /** @type {number} */ size, /** @type {number} */ count) =>
  Array.from({ length: count }, (_, i) => data.subarray(at + size * i, at + size * (i + 1)));

/** @param {number} type @param {Uint8Array} body @returns {Record} */
function parseRecord(type, body) {
  if (type === GRANTS) {
    if (body.length < 1 + EPHEMERAL + SET_HEADER) throw new EnvelopeError("release: truncated GRANTS record");
    const [indices, end] = decodeIndexSet(body, 1 + EPHEMERAL);
    if (body.length - end !== WRAP_SIZE * indices.length) throw new EnvelopeError("release: GRANTS record holds the wrong number of wraps for its index set");
    return { type, keyId: keyId(body[0]), ephemeral: body.subarray(1, 1 + EPHEMERAL), indices, wraps: slices(body, end, WRAP_SIZE, indices.length) };
  }
  if (type === SHARES) {
    if (body.length < 1 + SET_HEADER) throw new EnvelopeError("release: truncated SHARES record");
    const [indices, end] = decodeIndexSet(body, 1);
    if (body.length - end !== NONCE_SIZE + SHARE_Y_SIZE * indices.length + TAG_SIZE) throw new EnvelopeError("release: SHARES record holds the wrong number of shares for its index set");
    return { type, keyId: keyId(body[0]), indices, indexSet: body.subarray(1, end), nonce: body.subarray(end, end + NONCE_SIZE), sealed: body.subarray(end + NONCE_SIZE) };
  }
  if (type === INSTRUCTIONS) {
    if (body.length !== 1 + NONCE_SIZE + SHARE_Y_SIZE + TAG_SIZE) throw new EnvelopeError("release: INSTRUCTIONS record of the wrong size");
    return { type, keyId: keyId(body[0]), nonce: body.subarray(1, 1 + NONCE_SIZE), sealed: body.subarray(1 + NONCE_SIZE) };
  }
  if (type === RELAY) {
    if (body.length !== 1 + EPHEMERAL + WRAP_SIZE) throw new EnvelopeError("release: RELAY record of the wrong size");
    return { type, keyId: keyId(body[0]), ephemeral: body.subarray(1, 1 + EPHEMERAL), wrap: body.subarray(1 + EPHEMERAL) };
  }
  if (type === PUBLIC_SHARES) {
    const [indices, end] = decodeIndexSet(body, 0);
    if (body.length - end !== SHARE_Y_SIZE * indices.length) throw new EnvelopeError("release: PUBLIC_SHARES record holds the wrong number of shares");
    return { type, indices, ys: slices(body, end, SHARE_Y_SIZE, indices.length) };
  }
  if (type === PUBLIC_INSTRUCTIONS) {
    if (body.length !== SHARE_Y_SIZE) throw new EnvelopeError("release: PUBLIC_INSTRUCTIONS record of the wrong size");
    return { type, y: body };
  }
  throw new EnvelopeError(`release: unknown record type 0x${type.toString(16).padStart(2, "0")}`);
}

/** Parse one payload strictly (EnvelopeError). @param {Uint8Array} raw @returns {Record[]} */
export function parseRelease(raw) {
  if (!equalBytes(raw.subarray(0, 3), RELEASE_MAGIC)) throw new EnvelopeError("not a Spartacus release (bad magic bytes)");
  if (raw.length < 4 || raw[3] !== 2) throw new EnvelopeError(`release version ${raw.length > 3 ? raw[3] : null} is not supported; this program reads 2`);
  const records = [];
  let pos = 4;
  while (pos < raw.length) {
    if (raw.length - pos < HEADER) throw new EnvelopeError("release truncated inside a record header");
    const type = raw[pos], length = readUint(raw.subarray(pos + 1, pos + HEADER));
    const start = pos + HEADER, end = start + length;
    if (end > raw.length) throw new EnvelopeError(`release truncated: a record announces ${length} bytes, ${raw.length - start} left`);
    records.push(parseRecord(type, raw.subarray(start, end)));
    pos = end;
  }
  if (!records.length) throw new EnvelopeError("release holds no record");
  return records;
}

// ─── keeper side (for the vectors) ───────────────────────────────────────────────────

const record = (/** @type {number} */ type, /** @type {Uint8Array} */ body) => concat(Uint8Array.of(type), uint(body.length, 2), body);
const grantKek = (/** @type {Uint8Array[]} */ ...parts) => hkdf16(parts[0], concat(GRANT_LABEL, ...parts.slice(1)));

/** A 33-byte compressed point on secp256k1. @param {Uint8Array} key */
function isMemberKey(key) {
  if (!(key instanceof Uint8Array) || key.length !== 33 || (key[0] !== 2 && key[0] !== 3)) return false;
  try {
    compressPublicKey(key);
    return true;
  } catch {
    return false;
  }
}

class Fixed {
  constructor(/** @type {Uint8Array[] | undefined} */ values) {
    this.values = values ? [...values] : null;
  }
  take(/** @type {number} */ size) {
    if (!this.values) return randomBytes(size);
    const v = this.values.shift();
    if (!v) throw new InputError("the fixed randomness ran out");
    if (v.length !== size) throw new InputError(`fixed randomness: expected ${size} bytes, got ${v.length}`);
    return v;
  }
  keypair() {
    return this.values ? keyPairFromSecret(this.take(32)) : generateKeyPair();
  }
}

/**
 * Keeper `k`'s release payloads for `entries`, in one payload when they fit (the vectors' case),
 * with the same records and randomness order as `spartacus.release.build_release`.
 * @param {CampaignContext} ctx @param {Uint8Array} keeperSecret @param {number} k @param {Entry[]} entries
 * @param {{instructions?: Uint8Array, lateInstructions?: Uint8Array, relayKey?: Uint8Array, randomness?: Uint8Array[]}} [opts]
 */
export function buildRelease(ctx, keeperSecret, k, entries, opts = {}) {
  const rng = new Fixed(opts.randomness);
  const [rosterKey, lateKey] = releaseKeys(keeperSecret, ctx, k);
  const ctxR = context(ctx, k, ROSTER_KEY), ctxL = context(ctx, k, LATE_KEY);
  let ordered = [...entries].sort((a, b) => a.index - b.index);
  if (ctx.scope !== "public") ordered = ordered.filter((e) => isMemberKey(e.memberKey)); // never granted: its share neither (P5)
  const records = [];
  const instructionsRecord = (/** @type {Uint8Array} */ key, /** @type {number} */ id, /** @type {Uint8Array} */ c, /** @type {Uint8Array} */ y) => {
    const nonce = rng.take(NONCE_SIZE);
    return record(INSTRUCTIONS, concat(Uint8Array.of(id), nonce, gcmSeal(key, nonce, y, concat(INSTRUCTIONS_LABEL, c))));
  };
  if (ctx.scope === "public") {
    if (opts.instructions) records.push(record(PUBLIC_INSTRUCTIONS, opts.instructions));
    if (ordered.length) records.push(record(PUBLIC_SHARES, concat(encodeIndexSet(ordered.map((e) => e.index)), ...ordered.map((e) => e.y))));
    return [concat(PREFIX, ...records)];
  }
  if (opts.instructions) records.push(instructionsRecord(rosterKey, ROSTER_KEY, ctxR, opts.instructions));
  if (opts.relayKey) {
    const e = rng.keypair();
    const z = ecdh(e.secret, opts.relayKey);
    const wrap = kwWrap(hkdf16(z, concat(RELAY_LABEL, ctxR, e.compressed, opts.relayKey)), rosterKey);
    records.push(record(RELAY, concat(Uint8Array.of(ROSTER_KEY), e.compressed, wrap)));
  }
  if (ordered.length) {
    const indexSet = encodeIndexSet(ordered.map((e) => e.index));
    const nonce = rng.take(NONCE_SIZE);
    const sealed = gcmSeal(rosterKey, nonce, concat(...ordered.map((e) => e.y)), concat(SHARES_LABEL, ctxR, indexSet));
    records.push(record(SHARES, concat(Uint8Array.of(ROSTER_KEY), indexSet, nonce, sealed)));
    for (const [key, id, c] of /** @type {[Uint8Array, number, Uint8Array][]} */ ([[rosterKey, ROSTER_KEY, ctxR], [lateKey, LATE_KEY, ctxL]])) {
      const group = ordered.filter((e) => (e.grant ?? ROSTER_KEY) === id);
      if (!group.length) continue;
      const e = rng.keypair();
      const wraps = group.map((g) => kwWrap(grantKek(ecdh(e.secret, g.memberKey), c, e.compressed, g.memberKey, uint(g.index, 4)), key));
      records.push(record(GRANTS, concat(Uint8Array.of(id), e.compressed, encodeIndexSet(group.map((g) => g.index)), ...wraps)));
    }
    if (opts.lateInstructions && ordered.some((e) => e.grant === LATE_KEY)) records.push(instructionsRecord(lateKey, LATE_KEY, ctxL, opts.lateInstructions));
  }
  return [concat(PREFIX, ...records)];
}

// ─── reader side ─────────────────────────────────────────────────────────────────────

/**
 * @typedef {{ shares: Map<number, Map<number, Uint8Array[]>>, instructions: Map<number, Uint8Array[]>,
 *   problems: ReleaseProblem[], grantedBy: [Set<number>, Set<number>], sawGrants: boolean }} Collected
 */

function add(/** @type {Map<number, Uint8Array[]>} */ bucket, /** @type {number} */ k, /** @type {Uint8Array} */ y) {
  const values = bucket.get(k) || [];
  if (!values.some((v) => equalBytes(v, y))) values.push(y);
  bucket.set(k, values);
}

function openAny(/** @type {Uint8Array[]} */ keys, /** @type {Uint8Array} */ nonce, /** @type {Uint8Array} */ sealed, /** @type {Uint8Array} */ aad) {
  for (const key of keys) {
    try {
      return gcmOpen(key, nonce, sealed, aad);
    } catch {}
  }
  return null;
}

/**
 * Every share value the reader can obtain: the member key (with its pledge's index), or with
 * `relay` the relay service's key; no key reads public scope only. Bad releases are listed in
 * `problems`, never fatal (P9). Mirrors `spartacus.release.collect`.
 * @param {ReleaseRecord[]} releases @param {CampaignContext} ctx @param {Uint8Array | null} readerSecret
 * @param {{memberIndex?: number | null, relay?: boolean}} [opts] @returns {Collected}
 */
export function collect(releases, ctx, readerSecret, opts = {}) {
  /** @type {Collected} */
  const out = { shares: new Map(), instructions: new Map(), problems: [], grantedBy: [new Set(), new Set()], sawGrants: false };
  const n = ctx.keepers.length;
  const reader = readerSecret ? keyPairFromSecret(readerSecret) : null;
  const problem = (/** @type {ReleaseRecord} */ rel, /** @type {number} */ k, /** @type {string} */ reason) =>
    out.problems.push({ keeperIndex: k, blockNumber: rel.blockNumber, logIndex: rel.logIndex, reason });
  /** @type {Map<number, [ReleaseRecord, Record[]][]>} */
  const byKeeper = new Map();
  const sorted = [...releases].sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex);
  for (const rel of sorted) {
    if (!Number.isInteger(rel.keeperIndex) || rel.keeperIndex < 0 || rel.keeperIndex >= n) {
      problem(rel, rel.keeperIndex, `keeper index ${rel.keeperIndex} is not in the campaign's keeper set (0..${n - 1})`);
      continue;
    }
    let records;
    try {
      records = parseRelease(rel.data);
    } catch (e) {
      problem(rel, rel.keeperIndex, e instanceof Error ? e.message : String(e));
      continue;
    }
    if (!byKeeper.has(rel.keeperIndex)) byKeeper.set(rel.keeperIndex, []);
    byKeeper.get(rel.keeperIndex)?.push([rel, records]);
  }
  for (const k of [...byKeeper.keys()].sort((a, b) => a - b)) {
    const items = byKeeper.get(k) || [];
    /** @type {[Uint8Array[], Uint8Array[]]} */
    const keys = [[], []];
    const keep = (/** @type {number} */ id, /** @type {Uint8Array} */ key) => {
      if (!keys[id].some((v) => equalBytes(v, key))) keys[id].push(key);
    };
    for (const [rel, records] of items) {
      for (const rec of records) {
        if (rec.type === PUBLIC_SHARES) rec.indices?.forEach((index, j) => add(mapOf(out.shares, index), k, /** @type {Uint8Array[]} */ (rec.ys)[j]));
        else if (rec.type === PUBLIC_INSTRUCTIONS) add(out.instructions, k, /** @type {Uint8Array} */ (rec.y));
        else if (!reader) continue;
        else if (rec.type === GRANTS && !opts.relay) {
          out.sawGrants = true;
          const at = opts.memberIndex == null ? -1 : (rec.indices || []).indexOf(opts.memberIndex);
          if (at < 0) continue;
          const id = /** @type {number} */ (rec.keyId), e = /** @type {Uint8Array} */ (rec.ephemeral);
          try {
            const z = ecdh(reader.secret, e);
            keep(id, kwUnwrap(grantKek(z, context(ctx, k, id), e, reader.compressed, uint(/** @type {number} */ (opts.memberIndex), 4)), /** @type {Uint8Array[]} */ (rec.wraps)[at]));
          } catch {
            problem(rel, k, `keeper #${k}'s grant does not unwrap`);
          }
        } else if (rec.type === RELAY && opts.relay) {
          out.sawGrants = true;
          const id = /** @type {number} */ (rec.keyId), e = /** @type {Uint8Array} */ (rec.ephemeral);
          try {
            const z = ecdh(reader.secret, e);
            keep(id, kwUnwrap(hkdf16(z, concat(RELAY_LABEL, context(ctx, k, id), e, reader.compressed)), /** @type {Uint8Array} */ (rec.wrap)));
          } catch {
            problem(rel, k, `keeper #${k}'s relay grant does not unwrap`);
          }
        }
      }
    }
    [ROSTER_KEY, LATE_KEY].forEach((id) => keys[id].length && out.grantedBy[id].add(k));
    for (const [rel, records] of items) {
      for (const rec of records) {
        if (rec.type !== SHARES && rec.type !== INSTRUCTIONS) continue;
        const id = /** @type {number} */ (rec.keyId);
        if (!keys[id].length) continue;
        const nonce = /** @type {Uint8Array} */ (rec.nonce), sealed = /** @type {Uint8Array} */ (rec.sealed);
        if (rec.type === SHARES) {
          const plain = openAny(keys[id], nonce, sealed, concat(SHARES_LABEL, context(ctx, k, id), /** @type {Uint8Array} */ (rec.indexSet)));
          if (!plain) {
            problem(rel, k, `a SHARES record of keeper #${k} does not decrypt`);
            continue;
          }
          rec.indices?.forEach((index, j) => add(mapOf(out.shares, index), k, plain.subarray(SHARE_Y_SIZE * j, SHARE_Y_SIZE * (j + 1))));
        } else {
          const plain = openAny(keys[id], nonce, sealed, concat(INSTRUCTIONS_LABEL, context(ctx, k, id)));
          if (!plain) {
            problem(rel, k, `keeper #${k}'s instructions record does not decrypt`);
            continue;
          }
          add(out.instructions, k, plain);
        }
      }
    }
  }
  return out;
}

function mapOf(/** @type {Map<number, Map<number, Uint8Array[]>>} */ m, /** @type {number} */ key) {
  let v = m.get(key);
  if (!v) m.set(key, (v = new Map()));
  return v;
}

export { DecryptionError };
