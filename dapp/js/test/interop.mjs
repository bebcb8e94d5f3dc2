// A small command for the cross-language tests (tests/test_js_vectors.py): one JSON job on
// stdin, one JSON answer on stdout, computed by the browser module's own sources.
//   {"op": "seal", ...} | {"op": "roster", ...} | {"op": "relaynote", ...} | {"op": "calldata", ...} | {"op": "sign", ...}
import * as lib from "../main.js";

const job = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (d) => (text += d));
  process.stdin.on("end", () => resolve(text));
}));
const h = lib.fromHex;
const ctxOf = (c) => ({ chainId: c.chain_id, campaign: c.campaign, keepers: c.keepers.map(h), t: c.t, scope: c.scope, lateJoiners: c.late_joiners, relay: c.relay ? h(c.relay) : null });
let out;
if (job.op === "seal") {
  const member = job.member_secret ? lib.keyPairFromSecret(h(job.member_secret)) : lib.generateKeyPair();
  const ctx = ctxOf(job.context);
  const envelope = job.instructions
    ? await lib.sealInstructions(job.instructions, ctx, member.secret, { creator: job.pledger })
    : await lib.seal(lib.pledgeContent(job.record), ctx, member.secret, { pledger: job.pledger });
  out = { envelope: lib.hex0x(envelope), member_key: lib.hex0x(member.compressed), member_secret: lib.hex0x(member.secret) };
} else if (job.op === "roster") {
  const pledges = job.pledges.map((p) => ({ index: p.index, pledger: p.pledger, memberKey: h(p.member_key), envelope: h(p.envelope), live: p.live, late: p.late }));
  const releases = job.releases.map((r) => ({ keeperIndex: r.keeper_index, keeper: r.keeper, data: h(r.data), blockNumber: r.block_number, logIndex: r.log_index }));
  out = await lib.buildRoster(ctxOf(job.context), pledges, releases, job.reader ? h(job.reader) : null, job.creator, { instructions: h(job.instructions || "0x"), relay: !!job.relay });
} else if (job.op === "relaynote") {
  out = { note: lib.hex0x(lib.sealRelayNote(h(job.relay_key), job.note)) };
} else if (job.op === "calldata") {
  const calls = {
    pledge: () => lib.pledgeCall(job.to, h(job.envelope), h(job.member_key), 0n),
    withdraw: () => lib.simpleCall("withdraw", job.to),
    create: () => lib.createCall(job.to, job.config, h(job.salt), h(job.envelope), h(job.member_key)),
  };
  out = { data: calls[job.action]().data };
  if (job.action === "create") out.predicted = lib.predictCampaign(job.to, job.implementation, job.creator, h(job.salt));
} else if (job.op === "sign") {
  out = await lib.signRequest(h(job.secret), lib.simpleCall("withdraw", job.to), { chainId: job.chain_id, forwarder: job.forwarder, nonce: job.nonce, deadline: job.deadline });
} else if (job.op === "vcards") {
  out = { vcf: lib.rosterVcards(job.roster, job.title || ""), csv: lib.rosterCsv(job.roster) };
} else throw new Error(`unknown op ${job.op}`);
process.stdout.write(JSON.stringify(out));
