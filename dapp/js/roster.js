// @ts-check
/**
 * The roster rebuilt from the chain's bytes alone, in the reader's browser: the twin of
 * `spartacus.roster.build_roster` (same rules, same JSON): live pledges only; the instructions
 * are the campaign's own sealed instructions, bound to its creator; every published share is
 * checked against the envelope's commitment and liars are named in `skipped`; garbage is
 * skipped and reported, never fatal; a `known` late joiner reads the instructions only.
 */
import { DecryptionError, EnvelopeError, InputError, sha256, combine, equalBytes } from "./primitives.js";
import { ROLE_INSTRUCTIONS, ROLE_PLEDGE, binding, checkMatches, commitment, decodeContent, decodeInstructions, openBody, parse } from "./format.js";
import { keyPairFromSecret } from "./keys.js";
import { LATE_KEY, ROSTER_KEY, collect } from "./release.js";

/**
 * @typedef {import("./format.js").CampaignContext} CampaignContext
 * @typedef {import("./release.js").ReleaseRecord} ReleaseRecord
 * @typedef {{ index: number, pledger: string, memberKey: Uint8Array, envelope: Uint8Array, blockNumber?: number, live: boolean, late: boolean }} PledgeRecord
 * @typedef {{ index: number, name: string, contact: Record<string, string>, message: string | null, late: boolean }} RosterEntry
 * @typedef {{ index: number | null, keeper_index: number | null, reason: string }} Skipped
 * @typedef {{ members: RosterEntry[], instructions: string | null, skipped: Skipped[],
 *   release_problems: {keeper_index: number, block_number: number, log_index: number, reason: string}[], late_joiner: boolean }} Roster
 */

/** At most this many other t-subsets of commitment-matching shares are tried for one record. */
export const MAX_RETRIES = 64;

/** The t-subsets of `items` in lexicographic order (Python's itertools.combinations), from `skip` on, at most `limit`. */
function* subsets(/** @type {Uint8Array[]} */ items, /** @type {number} */ t, /** @type {number} */ skip, /** @type {number} */ limit) {
  const n = items.length;
  if (t > n) return;
  const idx = Array.from({ length: t }, (_, i) => i);
  let seen = 0;
  for (;;) {
    if (seen >= skip) {
      if (seen - skip >= limit) return;
      yield idx.map((i) => items[i]);
    }
    seen++;
    let i = t - 1;
    while (i >= 0 && idx[i] === i + n - t) i--;
    if (i < 0) return;
    idx[i]++;
    for (let j = i + 1; j < t; j++) idx[j] = idx[j - 1] + 1;
  }
}

/** Index of the first live pledge carrying `memberKey` (else of any; else null). */
export function findMemberIndex(/** @type {PledgeRecord[]} */ pledges, /** @type {Uint8Array} */ memberKey) {
  let fallback = null;
  for (const p of [...pledges].sort((a, b) => a.index - b.index)) {
    if (equalBytes(p.memberKey, memberKey)) {
      if (p.live) return p.index;
      if (fallback === null) fallback = p.index;
    }
  }
  return fallback;
}

/**
 * Rebuild the roster as the holder of `readerSecret` sees it (a member key; with `relay`, the
 * relay service's key; null in public scope). Throws InputError / DecryptionError with the same
 * sentences as the Python core when the key cannot read.
 * @param {CampaignContext} ctx @param {PledgeRecord[]} pledges @param {ReleaseRecord[]} releases
 * @param {Uint8Array | null} readerSecret @param {string} creator
 * @param {{instructions?: Uint8Array, relay?: boolean}} [opts] @returns {Promise<Roster>}
 */
export async function buildRoster(ctx, pledges, releases, readerSecret, creator, opts = {}) {
  const seen = new Set();
  const ordered = [];
  for (const p of [...pledges].sort((a, b) => a.index - b.index)) {
    if (!seen.has(p.index)) {
      seen.add(p.index);
      ordered.push(p);
    }
  }
  let memberIndex = null;
  let key = readerSecret;
  if (ctx.scope === "public") key = null;
  else if (!readerSecret) throw new InputError("this campaign reveals to members only: a member key is needed to read it");
  else if (!opts.relay) {
    const own = keyPairFromSecret(readerSecret).compressed;
    memberIndex = findMemberIndex(ordered, own);
    if (memberIndex === null) {
      throw new DecryptionError("this key is not a member of the campaign: no pledge carries its public key; use the member key file you pledged with");
    }
    const mine = ordered.find((p) => p.index === memberIndex);
    if (!mine?.live) {
      throw new DecryptionError(`this key's pledge #${memberIndex + 1} was withdrawn before the reveal: a withdrawn pledge is never revealed, and reads nothing`);
    }
  }
  const collected = collect(releases, ctx, key, { memberIndex, relay: opts.relay });
  /** @type {Roster} */
  const roster = {
    members: [], instructions: null, skipped: [],
    release_problems: collected.problems.map((p) => ({ keeper_index: p.keeperIndex, block_number: p.blockNumber, log_index: p.logIndex, reason: p.reason })),
    late_joiner: false,
  };
  if (ctx.scope !== "public" && collected.sawGrants && !collected.grantedBy[ROSTER_KEY].size) {
    if (collected.grantedBy[LATE_KEY].size) roster.late_joiner = true;
    else if (!opts.relay) {
      throw new DecryptionError("no keeper has granted this key the roster yet: the keepers are still releasing, or this key's pledge is not live; try again in a few blocks");
    }
  }
  /** @type {Map<number, number>} */
  const liars = new Map();
  /** @type {{index: number, parsed: import("./format.js").ParsedEnvelope, memberKey: Uint8Array, pledger: string, role: number}[]} */
  const sealed = [];
  const byIndex = new Map(ordered.map((p) => [p.index, p]));
  if (!roster.late_joiner) {
    for (const p of ordered) {
      if (!p.live) continue;
      try {
        const parsed = parse(p.envelope);
        checkMatches(parsed, ctx);
        sealed.push({ index: p.index, parsed, memberKey: p.memberKey, pledger: p.pledger, role: ROLE_PLEDGE });
      } catch (e) {
        if (!(e instanceof EnvelopeError)) throw e;
        roster.skipped.push({ index: p.index, keeper_index: null, reason: `malformed envelope: ${e.message}` });
      }
    }
  }
  const creatorPledge = ordered.find((p) => p.live && typeof p.pledger === "string" && p.pledger.toLowerCase() === creator.toLowerCase());
  let instructionsItem = null;
  if (opts.instructions && opts.instructions.length && creatorPledge) {
    try {
      const parsed = parse(opts.instructions);
      checkMatches(parsed, ctx);
      instructionsItem = { index: -1, parsed, memberKey: creatorPledge.memberKey, pledger: creator, role: ROLE_INSTRUCTIONS };
    } catch (e) {
      if (!(e instanceof EnvelopeError)) throw e;
      roster.skipped.push({ index: null, keeper_index: null, reason: `the sealed instructions are malformed: ${e.message}` });
    }
  }
  const items = instructionsItem ? [...sealed, instructionsItem] : sealed;
  /** @type {Map<number, Uint8Array>} */
  const records = new Map();
  /** @type {Map<number, string>} */
  const reasons = new Map();
  for (const item of items) {
    const h = sha256(binding(ctx, item.role, item.memberKey, item.pledger));
    const candidates = item.role === ROLE_INSTRUCTIONS ? collected.instructions : collected.shares.get(item.index) || new Map();
    const valid = [];
    for (const k of [...candidates.keys()].sort((a, b) => a - b)) {
      if (k >= item.parsed.n) continue;
      const x = item.parsed.xs[k];
      const match = (candidates.get(k) || []).find((y) => equalBytes(commitment(h, k, x, y), item.parsed.commitments[k]));
      if (!match) liars.set(k, (liars.get(k) || 0) + 1);
      else valid.push(Uint8Array.of(...match, x));
    }
    if (valid.length < ctx.t) {
      reasons.set(item.index, `need ${ctx.t} keeper shares, got ${valid.length}: not (yet) released to this key`);
      continue;
    }
    const open = async (/** @type {Uint8Array[]} */ subset) =>
      openBody(item.parsed, await combine(subset), ctx, item.memberKey, { pledger: item.pledger, role: item.role });
    try {
      records.set(item.index, await open(valid.slice(0, ctx.t)));
    } catch (e) {
      if (!(e instanceof EnvelopeError || e instanceof DecryptionError)) throw e;
      // A wrong share can match an 8-byte commitment (at about 2^64 hashes): other t-subsets of
      // the matching shares are tried, at most MAX_RETRIES, as spartacus.roster does.
      let opened = null;
      for (const subset of subsets(valid, ctx.t, 1, MAX_RETRIES)) {
        try {
          opened = await open(subset);
          break;
        } catch (err) {
          if (!(err instanceof EnvelopeError || err instanceof DecryptionError)) throw err;
        }
      }
      if (opened) records.set(item.index, opened);
      else reasons.set(item.index, `the shares match their commitments but the record does not decrypt: ${e.message}`);
    }
  }
  for (const item of sealed) {
    const reason = reasons.get(item.index);
    if (reason) {
      roster.skipped.push({ index: item.index, keeper_index: null, reason });
      continue;
    }
    try {
      const content = decodeContent(/** @type {Uint8Array} */ (records.get(item.index)));
      roster.members.push({ index: item.index, name: content.name, contact: content.contact, message: content.message, late: Boolean(byIndex.get(item.index)?.late) });
    } catch (e) {
      if (!(e instanceof EnvelopeError)) throw e;
      roster.skipped.push({ index: item.index, keeper_index: null, reason: e.message });
    }
  }
  if (instructionsItem) {
    const plain = records.get(-1);
    if (plain) {
      try {
        roster.instructions = decodeInstructions(plain);
      } catch (e) {
        if (!(e instanceof EnvelopeError)) throw e;
        roster.skipped.push({ index: null, keeper_index: null, reason: e.message });
      }
    } else roster.skipped.push({ index: null, keeper_index: null, reason: `instructions: ${reasons.get(-1) || "not released"}` });
  }
  for (const [k, count] of [...liars.entries()].sort((a, b) => a[0] - b[0])) {
    roster.skipped.push({ index: null, keeper_index: k, reason: `keeper #${k} published ${count} share(s) that do not match the envelopes' commitments: set aside` });
  }
  // Keepers whose releases do not parse or decrypt are named too: a liar is named whatever form its lie takes.
  const named = new Set(roster.skipped.map((s) => s.keeper_index).filter((k) => k !== null));
  const troubled = [...new Set(roster.release_problems.map((p) => p.keeper_index))]
    .filter((k) => Number.isInteger(k) && k >= 0 && k < ctx.keepers.length && !named.has(k)).sort((a, b) => a - b);
  for (const k of troubled) {
    const count = roster.release_problems.filter((p) => p.keeper_index === k).length;
    roster.skipped.push({ index: null, keeper_index: k, reason: `keeper #${k} published ${count} release record(s) that do not parse or do not decrypt with its grant: set aside (see release_problems)` });
  }
  return roster;
}
