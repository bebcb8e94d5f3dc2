// @ts-check
/**
 * The known-answer vectors of format v2 (tests/vectors/format-v2.json), checked against a
 * module `lib` (the sources under Node, the bundle in Chromium): every envelope and release byte
 * from the same fixed randomness, and the three rosters exactly as the Python core reads them.
 * Returns one line per check: `{name, ok, detail}`.
 */

/** @param {any} lib @param {any} vectors */
export async function checkVectors(lib, vectors) {
  const results = [];
  const h = (/** @type {string} */ s) => lib.fromHex(s);
  const hx = (/** @type {Uint8Array} */ b) => "0x" + lib.toHex(b);
  const ctxOf = (/** @type {any} */ c) => ({
    chainId: c.chain_id, campaign: c.campaign, keepers: c.keepers.map(h), t: c.t, scope: c.scope,
    lateJoiners: c.late_joiners, relay: c.relay ? h(c.relay) : null,
  });
  const check = (/** @type {string} */ name, /** @type {unknown} */ got, /** @type {unknown} */ want) => {
    const a = JSON.stringify(got), b = JSON.stringify(want);
    results.push({ name, ok: a === b, detail: a === b ? "" : `got ${a.slice(0, 300)} want ${b.slice(0, 300)}` });
  };

  for (const v of vectors.envelopes) {
    const ctx = ctxOf(v.context);
    const member = lib.keyPairFromSecret(h(v.member_secret));
    check(`${v.name}: member key`, hx(member.compressed), v.member_key);
    check(`${v.name}: pledger`, member.address, v.pledger);
    check(`${v.name}: binding`, hx(lib.binding(ctx, v.role, member.compressed, v.pledger)), v.aad);
    const randomness = { contentKey: h(v.content_key), shares: v.shares.map(h) };
    let envelope, payload;
    if (v.role === 1) {
      const content = lib.pledgeContent(v.record);
      payload = lib.encodeContent(content);
      envelope = await lib.seal(content, ctx, member.secret, { pledger: v.pledger, randomness });
    } else {
      payload = lib.encodeInstructions(v.record);
      envelope = await lib.sealInstructions(v.record, ctx, member.secret, { creator: v.pledger, randomness });
    }
    check(`${v.name}: payload`, hx(payload), v.payload);
    check(`${v.name}: envelope`, hx(envelope), v.envelope);
    // Open it back: each keeper's share, any t of them, the record.
    const parsed = lib.parse(h(v.envelope));
    const ys = v.keeper_secrets.map((/** @type {string} */ s, /** @type {number} */ i) =>
      lib.openShare(parsed, i, h(s), ctx, { memberKey: member.compressed, pledger: v.pledger, role: v.role }));
    check(`${v.name}: shares open`, ys.map(hx), v.shares.map((/** @type {string} */ s) => s.slice(0, 34)));
    const key = await lib.combine(ys.slice(0, ctx.t).map((/** @type {Uint8Array} */ y, /** @type {number} */ i) => Uint8Array.of(...y, parsed.xs[i])));
    check(`${v.name}: content key`, hx(key), v.content_key);
    const plain = lib.openBody(parsed, key, ctx, member.compressed, { pledger: v.pledger, role: v.role });
    check(`${v.name}: record`, v.role === 1 ? lib.decodeContent(plain) : lib.decodeInstructions(plain),
      v.role === 1 ? { name: v.record.name, contact: v.record.contact, message: v.record.message ?? null } : v.record);
  }

  for (const s of vectors.index_sets) {
    check(`index set ${s.indices}`, hx(lib.encodeIndexSet(s.indices)), s.bytes);
    check(`index set ${s.indices} decodes`, lib.decodeIndexSet(h(s.bytes), 0)[0], s.indices);
  }

  const c = vectors.campaign;
  const ctx = ctxOf(c.context);
  const pledges = c.pledges.map((/** @type {any} */ p) => ({
    index: p.index, pledger: p.pledger, memberKey: h(p.member_key), envelope: h(p.envelope), live: p.live, late: p.late, blockNumber: 10 + p.index,
  }));
  const releases = [];
  for (const r of c.releases) {
    const secret = h(c.keeper_secrets[r.keeper_index]);
    check(`campaign: release keys of keeper ${r.keeper_index}`, lib.releaseKeys(secret, ctx, r.keeper_index).map(hx), r.release_keys);
    const entries = r.entries.map((/** @type {any} */ e) => ({ index: e.index, y: h(e.y), memberKey: h(e.member_key), grant: e.grant }));
    const iy = h(r.instructions_y);
    const [payload] = lib.buildRelease(ctx, secret, r.keeper_index, entries, {
      instructions: iy, lateInstructions: iy, relayKey: ctx.relay, randomness: r.randomness.map(h),
    });
    check(`campaign: release of keeper ${r.keeper_index}`, hx(payload), r.payload);
    releases.push({ keeperIndex: r.keeper_index, keeper: "0x" + "00".repeat(20), data: h(r.payload), blockNumber: 20, logIndex: r.keeper_index });
  }
  const readers = { "member 1": [h(c.pledges[1].member_secret), false], "late joiner 3": [h(c.pledges[3].member_secret), false], relay: [h(c.relay_secret), true] };
  for (const [name, [secret, relay]] of Object.entries(readers)) {
    const roster = await lib.buildRoster(ctx, pledges, releases, secret, c.creator, { instructions: h(c.instructions), relay });
    check(`campaign: roster of ${name}`, roster, c.rosters[name]);
  }

  const a = vectors.adversarial;
  const actx = ctxOf(a.context);
  const apledges = a.pledges.map((/** @type {any} */ p) => ({
    index: p.index, pledger: p.pledger, memberKey: h(p.member_key), envelope: h(p.envelope), live: p.live, late: p.late, blockNumber: 10 + p.index,
  }));
  for (const reading of a.readings) {
    const areleases = reading.releases.map((/** @type {any} */ r) => ({
      keeperIndex: r.keeper_index, keeper: "0x" + "00".repeat(20), data: h(r.payload), blockNumber: 20, logIndex: r.keeper_index,
    }));
    const roster = await lib.buildRoster(actx, apledges, areleases, h(a.pledges[reading.reader].member_secret), a.creator, { instructions: h(a.instructions) });
    check(`adversarial: ${reading.name}`, roster, reading.roster);
  }

  const p = vectors.public;
  const pctx = ctxOf(p.context);
  const pentries = p.entries.map((/** @type {any} */ e) => ({ index: e.index, y: h(e.y), memberKey: h(e.member_key), grant: e.grant }));
  const [ppayload] = lib.buildRelease(pctx, h(p.keeper_secret), p.keeper_index, pentries, { instructions: h(p.instructions_y), randomness: [] });
  check("public: release", hx(ppayload), p.payload);

  const f = vectors.member_key_file;
  const pair = lib.keyPairFromSecret(h(f.secret));
  check("member key file: bytes", new TextDecoder().decode(lib.memberKeyFileBytes(pair, f.campaign, f.chain_id)), f.bytes);
  const back = lib.parseMemberKeyFile(new TextEncoder().encode(f.bytes), { campaign: f.campaign, chainId: f.chain_id });
  check("member key file: parses", [hx(back.secret), back.campaign, back.chainId], [f.secret, f.campaign, f.chain_id]);
  return results;
}
