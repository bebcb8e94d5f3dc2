// Unit tests of the browser module under Node: `node --test dapp/js/test/*.test.mjs`.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as lib from "../crypto.js";
import { ask, built, sendBuilt, ALLOWED } from "../wallet.js";
import { simpleCall } from "../calldata.js";

const roster = (message) => ({
  members: [{ index: 0, name: "Ana; Müller, A.", contact: { email: "ana@example.org", signal: "+41 79 000" }, message, late: false }],
  instructions: null, skipped: [], release_problems: [], late_joiner: false,
});

test("a bare carriage return in a message cannot start a second vCard", () => {
  const vcf = lib.rosterVcards(roster("hi\rEND:VCARD\rBEGIN:VCARD\rFN:The organizer\r\nTEL:+1"), "Drive");
  assert.equal(vcf.split("\r\n").filter((l) => l.startsWith("BEGIN:VCARD")).length, 1);
  assert.equal(vcf.match(/BEGIN:VCARD/g).length, 1 + 1); // the forged one is inside the escaped NOTE, not a line
  assert.ok(!/\r(?!\n)/.test(vcf), "a bare \\r survived");
  assert.ok(!/\n(?!\s)/.test(vcf.replace(/\r\n(?=[A-Z ]|$)/g, "")), "a bare \\n survived");
  for (const line of vcf.split("\r\n")) assert.ok(new TextEncoder().encode(line).length <= 75, line);
  assert.match(vcf, /FN:Ana\\; Müller\\, A\./);
});

test("CSV cells a spreadsheet would run are defused; phone numbers are left alone", () => {
  const csv = lib.rosterCsv({ ...roster('=HYPERLINK("http://x")'), members: [{ ...roster("").members[0], message: '=HYPERLINK("http://x")' }] });
  assert.match(csv, /"'=HYPERLINK\(""http:\/\/x""\)"/);
  assert.match(csv, /,\+41 79 000,/);
});

test("a member key file of another campaign or chain is refused with the reason", () => {
  const pair = lib.generateKeyPair();
  const campaign = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
  const bytes = lib.memberKeyFileBytes(pair, campaign, 31337);
  assert.equal(lib.parseMemberKeyFile(bytes, { campaign, chainId: 31337 }).address, pair.address);
  assert.throws(() => lib.parseMemberKeyFile(bytes, { campaign: "0x" + "11".repeat(20), chainId: 31337 }), /serves one campaign only/);
  assert.throws(() => lib.parseMemberKeyFile(bytes, { campaign, chainId: 1 }), /not chain 1/);
  assert.throws(() => lib.parseMemberKeyFile(new TextEncoder().encode('{"version":1,"kind":"spartacus-keeper-key","private_key":"0x' + "11".repeat(32) + '"}'), {}), /keeper-key/);
  assert.throws(() => lib.parseMemberKeyFile(new TextEncoder().encode("not json"), {}), /not JSON/);
});

test("the record is checked like the Python core's PledgeContent", () => {
  assert.deepEqual(lib.pledgeContent({ name: "  Ana  ", contact: { email: " ana@example.org " }, message: "" }), { name: "Ana", contact: { email: "ana@example.org" }, message: null });
  assert.throws(() => lib.pledgeContent({ name: " " }), /name is empty/);
  assert.throws(() => lib.pledgeContent({ name: "A\u0007" }), /control character U\+0007/);
  assert.throws(() => lib.pledgeContent({ name: "A", contact: { email: "nope" } }), /does not look like an e-mail/);
  assert.throws(() => lib.pledgeContent({ name: "A", contact: { Email: "a@b.co" } }), /field name/);
  assert.throws(() => lib.pledgeContent({ name: "A\uD800" }), /lone surrogate/);
});

test("the wallet bridge asks only for the methods the pages need, and sends only calls it built", async () => {
  const calls = [];
  const provider = { request: async ({ method, params }) => { calls.push(method); return method === "eth_chainId" ? "0x7a69" : "0x" + "ab".repeat(32); } };
  for (const method of ["eth_sign", "eth_signTypedData_v4", "eth_call", "wallet_watchAsset", "eth_signTransaction"]) {
    await assert.rejects(ask(provider, method), /never asks a wallet/);
  }
  assert.deepEqual([...ALLOWED].sort(), ["eth_accounts", "eth_chainId", "eth_estimateGas", "eth_gasPrice", "eth_requestAccounts",
    "eth_sendTransaction", "personal_sign", "wallet_addEthereumChain", "wallet_switchEthereumChain"]);
  const forged = { to: "0x5FbDB2315678afecb367f032d93F642f64180aa3", data: "0x3ccfd60b", value: 0n };
  await assert.rejects(sendBuilt(provider, forged, "0x" + "22".repeat(20), 31337), /not built by this page/);
  assert.deepEqual(calls, []);
  const hash = await sendBuilt(provider, built(simpleCall("withdraw", forged.to)), "0x" + "22".repeat(20), 31337);
  assert.equal(hash.length, 66);
  assert.deepEqual(calls, ["eth_chainId", "eth_sendTransaction"]);
});

test("fees read in the currency with 4 significant digits, never in exponent notation", async () => {
  const { formatAmount } = await import("../pages.js");
  assert.equal(formatAmount(87_412n * 1_875_000_000n), "0.0001639"); // 87,412 gas × 1.875 gwei
  assert.equal(formatAmount(1_875_000_000n, 9), "1.875");
  assert.equal(formatAmount(50_000_000n, 9), "0.05");
  assert.equal(formatAmount(123_456_789n * 10n ** 18n), "123500000");
  assert.equal(formatAmount(10n ** 18n), "1");
  assert.equal(formatAmount(99_996n * 10n ** 13n), "1"); // 0.99996 rounds up to 1
  assert.equal(formatAmount(0n), "0");
});

test("a refusal the estimate meets is said in words, from wherever the wallet put the revert data", async () => {
  const { revertText } = await import("../calldata.js");
  const { encodeErrorResult } = await import("viem");
  const { ERRORS } = await import("../calldata.js");
  const data = encodeErrorResult({ abi: ERRORS, errorName: "CampaignAlreadyPledged", args: ["0x" + "22".repeat(20), 3n] });
  for (const e of [{ data }, { data: { data } }, { data: { originalError: { data } } }]) {
    assert.match(revertText(e), /CampaignAlreadyPledged.*already has a pledge here \(pledge #4\).*Nothing was signed or sent/);
  }
  assert.equal(revertText({ message: "execution reverted" }), null);
  assert.equal(revertText({ data: "0xdeadbeef" }), null);
});

test("a wallet that does not know the chain is told apart from other refusals", async () => {
  const { unknownChain } = await import("../wallet.js");
  assert.ok(unknownChain({ code: 4902 }));
  assert.ok(unknownChain({ code: -32603, data: { originalError: { code: 4902 } } }));
  assert.ok(unknownChain({ code: -32603, message: 'Unrecognized chain ID "0x7a69". Try adding the chain first.' }));
  assert.ok(!unknownChain({ code: 4001, message: "User rejected the request." }));
});

test("roster rows number pledges from one, as the pages do", () => {
  assert.deepEqual(lib.rosterRows(roster("hi")).map((r) => r.pledge), [1]);
  assert.match(lib.rosterCsv(roster("hi")), /\r\n1,/);
});

test("a member key made from a wallet's signature is the same for the same signature, and names its campaign", async () => {
  const { deriveMessage, keyFromSignature, sameSignature } = await import("../derive.js");
  const { privateKeyToAccount } = await import("viem/accounts");
  const campaign = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
  const message = deriveMessage(campaign.toLowerCase(), 31337);
  assert.match(message, /Campaign: 0x5FbDB2315678afecb367f032d93F642f64180aa3\nChain: 31337/);
  const wallet = privateKeyToAccount("0x" + "42".repeat(32)); // viem signs with RFC 6979: deterministic
  const first = await wallet.signMessage({ message });
  const second = await wallet.signMessage({ message });
  assert.ok(sameSignature(first, second));
  const key = keyFromSignature(first, campaign, 31337);
  assert.equal(keyFromSignature(second, campaign, 31337).address, key.address);
  const v0 = first.slice(0, -2) + (parseInt(first.slice(-2), 16) - 27).toString(16).padStart(2, "0"); // v as 0/1
  assert.equal(keyFromSignature(v0, campaign, 31337).address, key.address);
  assert.notEqual(keyFromSignature(first, campaign, 1).address, key.address); // another chain, another key
  assert.notEqual(keyFromSignature(first, "0x" + "11".repeat(20), 31337).address, key.address);
  assert.notEqual(keyFromSignature(await wallet.signMessage({ message: deriveMessage(campaign, 1) }), campaign, 31337).address, key.address);
  const random = "0x" + "ab".repeat(64) + "1b"; // a wallet that signs differently each time
  assert.ok(!sameSignature(first, random));
  assert.throws(() => keyFromSignature("0x1234", campaign, 31337), /too short/);
});
