// @ts-check
/**
 * The sealed pledge, format v2, byte for byte as `spartacus/envelope.py` documents it (read its
 * module docstring: the record, the padding, the 144-byte binding A, the commitments, the wraps
 * and the wire format `b"SPX" 2 | n | t | body | n × (x | c | w)`).
 *
 * Every function here is pure over Uint8Array, except that `seal` draws fresh randomness unless
 * the caller passes it (known-answer vectors only).
 */
import {
  KEY_SIZE, TAG_SIZE, WRAP_SIZE, ZERO_NONCE, InputError, EnvelopeError, DecryptionError,
  concat, utf8, fromUtf8, uint, readUint, sha256, keccak256, ecdh, hkdf16, gcmSeal, gcmOpen, kwWrap, kwUnwrap,
  randomBytes, split, equalBytes, fromHex,
} from "./primitives.js";
import { keyPairFromSecret, parsePublicKey } from "./keys.js";

export const MAGIC = utf8("SPX");
export const VERSION = 2;
const PREFIX = concat(MAGIC, Uint8Array.of(VERSION));
export const ROLE_PLEDGE = 1;
export const ROLE_INSTRUCTIONS = 2;
export const BUCKETS = [256, 512, 1024, 2048, 4096, 8192, 16384];
export const MAX_KEEPERS = 32;
export const SHARE_Y_SIZE = KEY_SIZE;
export const COMMITMENT_SIZE = 8;
export const KEEPER_SLOT_SIZE = 1 + COMMITMENT_SIZE + WRAP_SIZE;
export const HEADER_SIZE = 6;
export const NAME_MAX = 200;
export const CONTACT_MAX_FIELDS = 16;
export const CONTACT_VALUE_MAX = 320;
export const MESSAGE_MAX = 2000;
export const INSTRUCTIONS_MAX = 12000;
const COMMIT_LABEL = utf8("spartacus/v2 commit");
const WRAP_LABEL = utf8("spartacus/v2 wrap");
const CONTACT_KEY_RE = /^[a-z][a-z0-9_-]{0,31}$/;
const EMAIL_RE = /^[^@\s]+@[^@\s]+\.[^@\s.]+$/u;
// Unicode category Cc: C0 controls, DEL and the C1 controls.
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/u;
const CONTROL_MULTILINE_RE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/u;
// What Python's str.strip() removes (str.isspace), so that both sides trim alike.
const SPACE = "\\t\\n\\v\\f\\r\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const STRIP_RE = new RegExp(`^[${SPACE}]+|[${SPACE}]+$`, "gu");
export const pyStrip = (/** @type {string} */ s) => s.replace(STRIP_RE, "");
const chars = (/** @type {string} */ s) => [...s].length;

/**
 * @typedef {{ name: string, contact: Record<string, string>, message: string | null }} PledgeContent
 * @typedef {{ chainId: number, campaign: string, keepers: Uint8Array[], t: number, scope?: string,
 *   lateJoiners?: string, relay?: Uint8Array | null }} CampaignContext  keepers: 64-byte keys in campaign order
 * @typedef {{ contentKey: Uint8Array, shares: Uint8Array[] }} Randomness
 * @typedef {{ n: number, t: number, body: Uint8Array, xs: number[], commitments: Uint8Array[], wraps: Uint8Array[] }} ParsedEnvelope
 */

// ─── record ──────────────────────────────────────────────────────────────────────────

function checkText(/** @type {string} */ what, /** @type {unknown} */ value, /** @type {number} */ maxChars, /** @type {boolean} */ multiline) {
  if (typeof value !== "string") throw new InputError(`${what} must be text`);
  if (chars(value) > maxChars) throw new InputError(`${what} is ${chars(value)} characters; the limit is ${maxChars}`);
  const bad = (multiline ? CONTROL_MULTILINE_RE : CONTROL_RE).exec(value);
  if (bad) {
    const code = bad[0].codePointAt(0)?.toString(16).toUpperCase().padStart(4, "0");
    throw new InputError(`${what} contains a control character U+${code}; remove it${multiline ? " (line breaks and tabs are fine)" : ""}`);
  }
  if (!value.isWellFormed()) throw new InputError(`${what} is not valid Unicode text (lone surrogate)`);
  return value;
}

function checkContact(/** @type {Record<string, unknown>} */ contact, /** @type {boolean} */ trim) {
  if (!contact || typeof contact !== "object") throw new InputError("contact must be a mapping of field name to value");
  const entries = Object.entries(contact);
  if (entries.length > CONTACT_MAX_FIELDS) throw new InputError(`${entries.length} contact fields; the limit is ${CONTACT_MAX_FIELDS}`);
  /** @type {Record<string, string>} */
  const out = {};
  for (const [key, raw] of entries) {
    if (!CONTACT_KEY_RE.test(key)) {
      throw new InputError(`contact field name ${JSON.stringify(key)} is invalid: use 1-32 of a-z, 0-9, _ and -, starting with a letter (e.g. email, signal, phone)`);
    }
    let value = checkText(`contact ${key}`, raw, 10 * CONTACT_VALUE_MAX, false);
    if (trim) value = pyStrip(value);
    if (!pyStrip(value)) throw new InputError(`contact ${key} is empty; drop the field or give a value`);
    if (chars(value) > CONTACT_VALUE_MAX) throw new InputError(`contact ${key} is ${chars(value)} characters; the limit is ${CONTACT_VALUE_MAX}`);
    if (key === "email" && !EMAIL_RE.test(value)) throw new InputError(`contact email ${JSON.stringify(value)} does not look like an e-mail address`);
    out[key] = value;
  }
  return out;
}

/** A validated record, as `PledgeContent(...)` builds it (blanks trimmed, empty message: none). */
export function pledgeContent(/** @type {{name: string, contact?: Record<string, string>, message?: string | null}} */ input) {
  const name = pyStrip(checkText("name", input.name, 10 * NAME_MAX, false));
  if (!name) throw new InputError("name is empty; give the name the other members will know you by");
  if (chars(name) > NAME_MAX) throw new InputError(`name is ${chars(name)} characters; the limit is ${NAME_MAX}`);
  const contact = checkContact(input.contact || {}, true);
  let message = input.message ?? null;
  if (message !== null) {
    checkText("message", message, MESSAGE_MAX, true);
    if (message === "") message = null;
  }
  return /** @type {PledgeContent} */ ({ name, contact, message });
}

const u16 = (/** @type {Uint8Array} */ data) => concat(uint(data.length, 2), data);

/** The canonical binary member record (role 1). @param {PledgeContent} content */
export function encodeContent(content) {
  const keys = Object.keys(content.contact).sort();
  const parts = [Uint8Array.of(1), u16(utf8(content.name)), Uint8Array.of(keys.length)];
  for (const key of keys) parts.push(Uint8Array.of(key.length), utf8(key), u16(utf8(content.contact[key])));
  parts.push(u16(utf8(content.message || "")));
  return concat(...parts);
}

class Reader {
  constructor(/** @type {Uint8Array} */ data) {
    this.data = data;
    this.pos = 0;
  }
  take(/** @type {number} */ size) {
    if (this.pos + size > this.data.length) throw new EnvelopeError("the sealed record is truncated");
    const out = this.data.subarray(this.pos, this.pos + size);
    this.pos += size;
    return out;
  }
  number(/** @type {number} */ size) {
    return readUint(this.take(size));
  }
  text(/** @type {number} */ size, /** @type {string} */ what) {
    const raw = this.take(this.number(size));
    try {
      return fromUtf8(raw);
    } catch {
      throw new EnvelopeError(`the sealed record's ${what} is not UTF-8`);
    }
  }
}

/** Parse a member record strictly (EnvelopeError otherwise). @param {Uint8Array} payload @returns {PledgeContent} */
export function decodeContent(payload) {
  const r = new Reader(payload);
  if (r.take(1)[0] !== 1) throw new EnvelopeError("the sealed record is not a member record (kind byte)");
  let name, contact, message;
  try {
    name = checkText("name", r.text(2, "name"), NAME_MAX, false);
    if (!pyStrip(name)) throw new InputError("name is empty");
    const count = r.number(1);
    /** @type {Record<string, string>} */
    const raw = {};
    /** @type {Uint8Array} */
    let previous = new Uint8Array(0);
    for (let i = 0; i < count; i++) {
      const key = r.take(r.number(1));
      if (compareBytes(key, previous) <= 0) throw new EnvelopeError("the sealed record's contact fields are not in strictly ascending order");
      previous = key;
      const keyText = String.fromCharCode(...key);
      raw[keyText] = r.text(2, `contact ${keyText}`);
    }
    contact = checkContact(raw, false);
    message = checkText("message", r.text(2, "message"), MESSAGE_MAX, true);
  } catch (e) {
    if (e instanceof InputError) throw new EnvelopeError(`the sealed record is invalid: ${e.message}`);
    throw e;
  }
  if (r.pos !== payload.length) throw new EnvelopeError(`the sealed record has ${payload.length - r.pos} trailing bytes`);
  return { name, contact, message: message || null };
}

function compareBytes(/** @type {Uint8Array} */ a, /** @type {Uint8Array} */ b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** `0x02 | UTF-8`; InputError when empty or too long. @param {string} text */
export function encodeInstructions(text) {
  checkText("instructions", text, INSTRUCTIONS_MAX, true);
  if (!pyStrip(text)) throw new InputError("the instructions are empty; write what the members should do once revealed");
  return concat(Uint8Array.of(2), utf8(text));
}

/** @param {Uint8Array} payload */
export function decodeInstructions(payload) {
  if (payload[0] !== 2) throw new EnvelopeError("the sealed record is not instructions (kind byte)");
  let text;
  try {
    text = fromUtf8(payload.subarray(1));
  } catch {
    throw new EnvelopeError("the sealed instructions are not UTF-8");
  }
  try {
    return checkText("instructions", text, INSTRUCTIONS_MAX, true);
  } catch (e) {
    throw new EnvelopeError(`the sealed instructions are invalid: ${e instanceof Error ? e.message : e}`);
  }
}

/** The padded size for a payload of `len` bytes. @param {number} len */
export function bucketFor(len) {
  for (const b of BUCKETS) if (2 + len <= b) return b;
  throw new InputError(`the sealed record is ${len} bytes once encoded; the limit is ${BUCKETS[BUCKETS.length - 1] - 2} bytes (UTF-8): shorten the message, instructions or contact fields`);
}

/** `len (2) | payload | zeros` up to its bucket. @param {Uint8Array} payload */
export function pad(payload) {
  const out = new Uint8Array(bucketFor(payload.length));
  out.set(uint(payload.length, 2), 0);
  out.set(payload, 2);
  return out;
}

/** @param {Uint8Array} padded */
export function unpad(padded) {
  if (!BUCKETS.includes(padded.length)) throw new EnvelopeError(`padded record of ${padded.length} bytes is not one of the buckets`);
  const end = 2 + readUint(padded.subarray(0, 2));
  if (end > padded.length) throw new EnvelopeError("padded record: the length prefix exceeds the bucket");
  for (let i = end; i < padded.length; i++) if (padded[i]) throw new EnvelopeError("padded record: the padding is not all zero");
  return padded.slice(2, end);
}

export const envelopeSize = (/** @type {number} */ n, /** @type {number} */ bucket) => HEADER_SIZE + bucket + TAG_SIZE + n * KEEPER_SLOT_SIZE;

// ─── binding ─────────────────────────────────────────────────────────────────────────

/** The 20 bytes of `0x` + 40 hex digits. @param {string} address @param {string} [what] */
export function addressBytes(address, what = "address") {
  if (typeof address !== "string" || !/^0[xX][0-9a-fA-F]{40}$/.test(address)) {
    throw new InputError(`${what} ${JSON.stringify(address)} is not 0x followed by 40 hex digits`);
  }
  return fromHex(address);
}

/** keccak-256 of the concatenated 64-byte keeper keys. @param {Uint8Array[]} keepers */
export const keeperSetDigest = (keepers) => keccak256(concat(...keepers));

/** Validate a context for sealing: 1 <= t <= n <= 32, distinct keys on the curve. @param {CampaignContext} ctx */
export function checkContext(ctx) {
  const n = ctx.keepers.length;
  if (n === 0) throw new InputError("the campaign names no keepers; at least one is needed");
  if (n > MAX_KEEPERS) throw new InputError(`${n} keepers; the limit is ${MAX_KEEPERS}`);
  if (!Number.isInteger(ctx.t) || ctx.t < 1 || ctx.t > n) throw new InputError(`keeper threshold t=${ctx.t} must be between 1 and the number of keepers (${n})`);
  ctx.keepers.forEach((k, i) => {
    if (k.length !== 64) throw new InputError(`keeper #${i}'s public key must be 64 bytes (X||Y)`);
    parsePublicKey(k);
  });
  if (new Set(ctx.keepers.map((k) => k.join(","))).size !== n) throw new InputError("the keeper set names the same key twice; each keeper must be distinct");
  addressBytes(ctx.campaign, "campaign address");
}

/** The 144-byte associated data A. */
export function binding(/** @type {CampaignContext} */ ctx, /** @type {number} */ role, /** @type {Uint8Array} */ memberKey33, /** @type {string} */ pledger) {
  if (role !== ROLE_PLEDGE && role !== ROLE_INSTRUCTIONS) throw new InputError(`unknown role ${role}`);
  if (memberKey33.length !== 33) throw new InputError("the member key must be a 33-byte compressed secp256k1 public key");
  return concat(
    PREFIX,
    Uint8Array.of(role),
    uint(ctx.chainId, 32),
    addressBytes(ctx.campaign, "campaign address"),
    memberKey33,
    addressBytes(pledger, "pledger address"),
    Uint8Array.of(ctx.keepers.length, ctx.t),
    keeperSetDigest(ctx.keepers),
  );
}

/** `SHA-256("spartacus/v2 commit" ‖ h ‖ i ‖ x ‖ y)[:8]`. */
export const commitment = (/** @type {Uint8Array} */ h, /** @type {number} */ i, /** @type {number} */ x, /** @type {Uint8Array} */ y) =>
  sha256(concat(COMMIT_LABEL, h, Uint8Array.of(i, x), y)).slice(0, COMMITMENT_SIZE);

const kek = (/** @type {Uint8Array} */ z, /** @type {Uint8Array} */ h, /** @type {number} */ i) => hkdf16(z, concat(WRAP_LABEL, h, Uint8Array.of(i)));

// ─── seal ────────────────────────────────────────────────────────────────────────────

async function sealPayload(
  /** @type {Uint8Array} */ payload, /** @type {number} */ role, /** @type {CampaignContext} */ ctx,
  /** @type {Uint8Array} */ memberSecret, /** @type {string} */ pledger, /** @type {Randomness | undefined} */ randomness,
) {
  checkContext(ctx);
  const member = keyPairFromSecret(memberSecret);
  const n = ctx.keepers.length;
  const aad = binding(ctx, role, member.compressed, pledger);
  const h = sha256(aad);
  let key, shares;
  if (randomness) {
    ({ contentKey: key, shares } = randomness);
    if (key.length !== KEY_SIZE || shares.length !== n || shares.some((s) => s.length !== SHARE_Y_SIZE + 1)) {
      throw new InputError("fixed randomness must be a 16-byte key and one 17-byte share per keeper");
    }
  } else {
    key = randomBytes(KEY_SIZE);
    shares = await split(key, n, ctx.t);
  }
  const body = gcmSeal(key, ZERO_NONCE, pad(payload), aad);
  const slots = shares.map((share, i) => {
    const y = share.subarray(0, SHARE_Y_SIZE);
    const x = share[SHARE_Y_SIZE];
    const z = ecdh(member.secret, concat(Uint8Array.of(4), ctx.keepers[i]));
    return concat(Uint8Array.of(x), commitment(h, i, x, y), kwWrap(kek(z, h, i), y));
  });
  return concat(PREFIX, Uint8Array.of(n, ctx.t), body, ...slots);
}

/**
 * Seal a member record for `ctx`'s keepers with the pledge's member key (its secret is the
 * envelope's one ephemeral key), bound to `pledger`, the address that will pledge it.
 * @param {PledgeContent} content @param {CampaignContext} ctx @param {Uint8Array} memberSecret
 * @param {{pledger: string, randomness?: Randomness}} opts
 */
export const seal = (content, ctx, memberSecret, opts) =>
  sealPayload(encodeContent(content), ROLE_PLEDGE, ctx, memberSecret, opts.pledger, opts.randomness);

/**
 * Seal the organizer's instructions with its member key, bound to the campaign's creator.
 * @param {string} text @param {CampaignContext} ctx @param {Uint8Array} memberSecret
 * @param {{creator: string, randomness?: Randomness}} opts
 */
export const sealInstructions = (text, ctx, memberSecret, opts) =>
  sealPayload(encodeInstructions(text), ROLE_INSTRUCTIONS, ctx, memberSecret, opts.creator, opts.randomness);

// ─── parse and open ──────────────────────────────────────────────────────────────────

const BODY_LENGTHS = new Set(BUCKETS.map((b) => b + TAG_SIZE));

/** Split wire bytes into fields, strictly (EnvelopeError). @param {Uint8Array} data @returns {ParsedEnvelope} */
export function parse(data) {
  if (!(data instanceof Uint8Array)) throw new EnvelopeError("an envelope is bytes");
  if (data.length < HEADER_SIZE) throw new EnvelopeError(`envelope truncated: ${data.length} bytes, the header alone is ${HEADER_SIZE}`);
  if (!equalBytes(data.subarray(0, 3), MAGIC)) throw new EnvelopeError("not a Spartacus envelope (bad magic bytes)");
  if (data[3] !== VERSION) throw new EnvelopeError(`envelope version ${data[3]} is not supported; this program reads ${VERSION}`);
  const n = data[4], t = data[5];
  if (!(1 <= t && t <= n && n <= MAX_KEEPERS)) throw new EnvelopeError(`envelope claims t=${t} of n=${n} keepers; need 1 <= t <= n <= ${MAX_KEEPERS}`);
  const bodyLen = data.length - HEADER_SIZE - n * KEEPER_SLOT_SIZE;
  if (!BODY_LENGTHS.has(bodyLen)) {
    throw new EnvelopeError(`envelope of ${data.length} bytes for ${n} keepers leaves a body of ${bodyLen} bytes, which is not a bucket size plus the tag`);
  }
  const start = HEADER_SIZE + bodyLen;
  const slots = Array.from({ length: n }, (_, i) => data.subarray(start + i * KEEPER_SLOT_SIZE, start + (i + 1) * KEEPER_SLOT_SIZE));
  const xs = slots.map((s) => s[0]);
  if (t > 1 && (xs.includes(0) || new Set(xs).size !== n)) throw new EnvelopeError("envelope's share coordinates are zero or repeated");
  return {
    n, t, body: data.subarray(HEADER_SIZE, start), xs,
    commitments: slots.map((s) => s.subarray(1, 1 + COMMITMENT_SIZE)),
    wraps: slots.map((s) => s.subarray(1 + COMMITMENT_SIZE)),
  };
}

/** The envelope was sealed for this campaign's t of n. @param {ParsedEnvelope} parsed @param {CampaignContext} ctx */
export function checkMatches(parsed, ctx) {
  if (parsed.n !== ctx.keepers.length || parsed.t !== ctx.t) {
    throw new EnvelopeError(`envelope sealed for t=${parsed.t} of n=${parsed.n} keepers, but the campaign has t=${ctx.t} of n=${ctx.keepers.length}`);
  }
}

/**
 * Keeper side: unwrap keeper `i`'s 16-byte y and check it against its commitment.
 * @param {ParsedEnvelope} parsed @param {number} i @param {Uint8Array} keeperSecret @param {CampaignContext} ctx
 * @param {{memberKey: Uint8Array, pledger: string, role?: number}} from
 */
export function openShare(parsed, i, keeperSecret, ctx, from) {
  checkMatches(parsed, ctx);
  const pair = keyPairFromSecret(keeperSecret);
  if (!equalBytes(pair.publicKey, ctx.keepers[i])) throw new InputError(`this key is not keeper #${i}'s key in the campaign's keeper set`);
  const h = sha256(binding(ctx, from.role ?? ROLE_PLEDGE, from.memberKey, from.pledger));
  let y;
  try {
    y = kwUnwrap(kek(ecdh(pair.secret, from.memberKey), h, i), parsed.wraps[i]);
  } catch {
    throw new DecryptionError("this envelope does not open for this keeper: sealed for another sender, member key or campaign, or garbage");
  }
  if (!equalBytes(commitment(h, i, parsed.xs[i], y), parsed.commitments[i])) {
    throw new DecryptionError(`the share wrapped to keeper #${i} does not match its commitment`);
  }
  return y;
}

/**
 * Decrypt the body with a rebuilt content key: the record, unpadded (not decoded).
 * @param {ParsedEnvelope} parsed @param {Uint8Array} contentKey @param {CampaignContext} ctx
 * @param {Uint8Array} memberKey33 @param {{pledger: string, role?: number}} opts
 */
export function openBody(parsed, contentKey, ctx, memberKey33, opts) {
  checkMatches(parsed, ctx);
  const aad = binding(ctx, opts.role ?? ROLE_PLEDGE, memberKey33, opts.pledger);
  return unpad(gcmOpen(contentKey, ZERO_NONCE, parsed.body, aad));
}
