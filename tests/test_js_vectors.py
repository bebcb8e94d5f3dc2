"""The browser module (``dapp/js``) against the Python core.

* the known-answer vectors of format v2 (``tests/vectors/format-v2.json``) and the module's unit
  tests under Node (``node --test``, fast), and the same vectors in Chromium, through the very
  bundle the dApp serves;
* across languages: envelopes sealed by the JS module open in Python (a Python keeper opens its
  share, ``spartacus.roster.build_roster`` reads the record), a campaign sealed and released in
  Python reads the same in JS; the relay note opens with ``spartacus.keys.unwrap``; calldata
  equals the compiled ABI's; a forwarder request signed in JS recovers to the member key.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from spartacus.chain import CampaignConfig, Contracts, sort_keepers
from spartacus.envelope import PledgeContent, open_share, parse, seal, seal_instructions
from spartacus.keys import KeyPair, unwrap
from spartacus.release import Entry, build_release
from spartacus.roster import build_roster
from spartacus.types import CampaignContext, LateJoiners, PledgeRecord, ReleaseRecord, Scope

ROOT = Path(__file__).resolve().parents[1]
JS = ROOT / "dapp" / "js"
BUNDLE = ROOT / "dapp" / "component" / "build" / "spartacus.js"
VECTORS = ROOT / "tests" / "vectors" / "format-v2.json"
CAMPAIGN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def _need(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if not path:
        _need("Node.js is not installed (tools/setup.sh needs it)")
    if not (ROOT / "node_modules" / "@noble" / "curves").exists():
        _need("the npm packages are not installed: run make setup")
    assert path is not None
    return path


def js(node: str, job: dict[str, Any]) -> Any:
    """One job for ``dapp/js/test/interop.mjs`` (the module's own sources, under Node)."""
    proc = subprocess.run(
        [node, str(JS / "test" / "interop.mjs")], input=json.dumps(job), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def ctx_json(ctx: CampaignContext) -> dict[str, Any]:
    return {
        "chain_id": ctx.chain_id,
        "campaign": ctx.campaign,
        "keepers": ["0x" + k.hex() for k in ctx.keepers],
        "t": ctx.keeper_threshold,
        "scope": ctx.scope.value,
        "late_joiners": ctx.late_joiners.value,
        "relay": "0x" + ctx.relay.hex() if ctx.relay else None,
    }


def keepers_and_ctx(n: int = 3, t: int = 2) -> tuple[list[KeyPair], CampaignContext]:
    pairs = [KeyPair.generate() for _ in range(n)]
    order = sort_keepers([p.public_key for p in pairs])
    pairs.sort(key=lambda p: order.index(p.public_key))
    return pairs, CampaignContext(31337, CAMPAIGN, order, t, Scope.MEMBERS, LateJoiners.KNOWN)


# ─── The vectors and the unit tests, under Node and in Chromium ──────────────────────


def test_the_vectors_and_the_unit_tests_pass_under_node(node: str) -> None:
    tests = sorted(str(p) for p in (JS / "test").glob("*.test.mjs"))
    proc = subprocess.run([node, "--test", *tests], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout and "# pass 0" not in proc.stdout


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def test_the_browser_module_type_checks(node: str) -> None:
    """``// @ts-check`` JSDoc types, checked by the pinned TypeScript (``tsc --noEmit``)."""
    tsc = ROOT / "node_modules" / "typescript" / "bin" / "tsc"
    if not tsc.exists():
        _need("TypeScript is not installed: run make setup")
    proc = subprocess.run(
        [node, str(tsc), "-p", str(JS / "tsconfig.json")], capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stdout[-4000:]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The served bundle, the vector checks and the vectors, on a loopback HTTP server."""
    if not BUNDLE.exists():
        _need("the dApp's browser module is not built: run make setup")
    folder = tmp_path_factory.mktemp("js-served")
    shutil.copy(BUNDLE, folder / "spartacus.js")
    shutil.copy(JS / "test" / "vectors.js", folder / "vectors.js")
    shutil.copy(VECTORS, folder / "format-v2.json")
    (folder / "index.html").write_text("<!doctype html><meta charset=utf-8><title>vectors</title>")
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def chromium_page(served: str) -> Iterator[Any]:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        _need("Debian's chromium is not installed: run tools/setup.sh --browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("the playwright package is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto(served + "/index.html")
        yield page
        browser.close()


CHECK_IN_BROWSER = """async () => {
  const lib = await import("./spartacus.js");
  const { checkVectors } = await import("./vectors.js");
  const vectors = await (await fetch("./format-v2.json")).json();
  return await checkVectors(lib, vectors);
}"""


@pytest.mark.browser
def test_the_served_bundle_passes_the_vectors_in_chromium(chromium_page: Any) -> None:
    results = chromium_page.evaluate(CHECK_IN_BROWSER)
    assert len(results) > 40
    assert [r for r in results if not r["ok"]] == []


# ─── Across languages ────────────────────────────────────────────────────────────────


def _release_all(
    ctx: CampaignContext,
    keepers: list[KeyPair],
    pledges: list[PledgeRecord],
    _unused: None,
    creator: Any,
    instructions: bytes,
) -> list[ReleaseRecord]:
    """Every keeper opens its share of every live pledge (the keeper's own check) and releases."""
    releases = []
    for k, keeper in enumerate(keepers):
        entries = [
            Entry(p.index, open_share(parse(p.envelope), k, keeper, ctx, member_key33=p.member_key, pledger=p.pledger),
                  p.member_key)
            for p in pledges if p.live
        ]  # fmt: skip
        yi = None
        if instructions and creator is not None:
            yi = open_share(parse(instructions), k, keeper, ctx, member_key33=creator.compressed,
                            pledger=creator.address, role=2)  # fmt: skip
        build = build_release(ctx, keeper, k, entries, instructions=yi)
        releases += [ReleaseRecord(k, keeper.address, data, 20 + k, i) for i, data in enumerate(build.payloads)]
    return releases


def test_envelopes_sealed_by_the_browser_module_open_in_python(node: str) -> None:
    keepers, ctx = keepers_and_ctx(3, 2)
    people = [
        ("Zoë Łukasz", {"email": "zoe@example.org", "signal": "+48 600"}, "Line one\nline two ✊"),
        ("Bo", {}, None),
    ]
    pledges, secrets_ = [], []
    for i, (name, contact, message) in enumerate(people):
        pledger = KeyPair.generate().address
        record = {"name": name, "contact": contact, "message": message}
        out = js(node, {"op": "seal", "context": ctx_json(ctx), "pledger": pledger, "record": record})
        member_key, envelope = bytes.fromhex(out["member_key"][2:]), bytes.fromhex(out["envelope"][2:])
        pledges.append(PledgeRecord(i, pledger, member_key, envelope, 10))
        secrets_.append(out["member_secret"])
    assert len(set(secrets_)) == 2  # a fresh member key per pledge
    creator = KeyPair.from_secret(bytes.fromhex(secrets_[0][2:]))
    job = {"op": "seal", "context": ctx_json(ctx), "pledger": pledges[0].pledger, "instructions": "Gate 3.\nAt 6."}
    instructions = bytes.fromhex(js(node, job | {"member_secret": secrets_[0]})["envelope"][2:])
    creator_pledge = PledgeRecord(0, pledges[0].pledger, creator.compressed, pledges[0].envelope, 10)
    pledges[0] = creator_pledge
    releases = _release_all(ctx, keepers, pledges, None, creator_as(creator, pledges[0].pledger), instructions)
    reader = bytes.fromhex(secrets_[1][2:])
    roster = build_roster(ctx, pledges, releases, reader, pledges[0].pledger, instructions=instructions)
    assert [(m.name, m.contact, m.message) for m in roster.members] == [(n, c, m) for n, c, m in people]
    assert roster.instructions == "Gate 3.\nAt 6."
    assert roster.skipped == []


class creator_as:  # noqa: N801 - a creator whose pledger address is not its member key's
    def __init__(self, pair: KeyPair, address: str) -> None:
        self.compressed, self.address = pair.compressed, address


def test_a_campaign_sealed_and_released_in_python_reads_the_same_in_the_browser_module(node: str) -> None:
    keepers, ctx = keepers_and_ctx(3, 2)
    members = [KeyPair.generate() for _ in range(3)]
    records = [PledgeContent("Olga", {"email": "olga@example.org"}), PledgeContent("Ana", {"phone": "+41"}, "Hi ✊"),
               PledgeContent("Withdrawn Wu", {})]  # fmt: skip
    pledges = [
        PledgeRecord(i, m.address, m.compressed, seal(r, ctx, m, pledger=m.address), 10 + i, live=(i != 2))
        for i, (m, r) in enumerate(zip(members, records, strict=True))
    ]
    instructions = seal_instructions("Meet at dawn.\nBring water.", ctx, members[0], creator=members[0].address)
    releases = _release_all(ctx, keepers, pledges, None, members[0], instructions)
    want = build_roster(ctx, pledges, releases, members[1], members[0].address, instructions=instructions).to_json()
    got = js(node, {
        "op": "roster", "context": ctx_json(ctx), "creator": members[0].address,
        "instructions": "0x" + instructions.hex(),
        "reader": "0x" + members[1].secret_bytes().hex(),
        "pledges": [{"index": p.index, "pledger": p.pledger, "member_key": "0x" + p.member_key.hex(),
                     "envelope": "0x" + p.envelope.hex(), "live": p.live, "late": p.late} for p in pledges],
        "releases": [{"keeper_index": r.keeper_index, "keeper": r.keeper, "data": "0x" + r.data.hex(),
                      "block_number": r.block_number, "log_index": r.log_index} for r in releases],
    })  # fmt: skip
    assert got == want
    assert [m["name"] for m in got["members"]] == ["Olga", "Ana"] and got[
        "instructions"
    ] == "Meet at dawn.\nBring water."


def test_the_relay_note_sealed_in_the_browser_opens_with_python_unwrap(node: str) -> None:
    relay = KeyPair.generate()
    note = {"campaign": CAMPAIGN.lower(), "contact": {"signal": "+41", "email": "olga@example.org"}, "name": "Olga"}
    out = js(node, {"op": "relaynote", "relay_key": "0x" + relay.compressed.hex(), "note": note})
    from spartacus.relaynote import open_note

    opened = open_note(relay, bytes.fromhex(out["note"][2:]), CAMPAIGN)  # the relay service's own reader
    assert (opened.email, opened.name) == ("olga@example.org", "Olga")
    plain = unwrap(relay, bytes.fromhex(out["note"][2:]))
    assert json.loads(plain) == {"campaign": CAMPAIGN, "contact": {"email": "olga@example.org"},
                                 "name": "Olga", "v": 1}  # fmt: skip
    assert plain.startswith(b'{"campaign":')  # keys sorted, compact


def test_calldata_built_in_the_browser_is_the_compiled_abis() -> None:
    contracts = Contracts.load()
    node_path = shutil.which("node")
    if not node_path:
        _need("Node.js is not installed")
    assert node_path is not None
    envelope, member = secrets.token_bytes(377), KeyPair.generate().compressed
    got = js(node_path, {"op": "calldata", "action": "pledge", "to": CAMPAIGN, "envelope": "0x" + envelope.hex(),
                         "member_key": "0x" + member.hex()})  # fmt: skip
    assert got["data"] == "0x" + contracts.encode_call("Campaign", "pledge", [envelope, member]).hex()
    got = js(node_path, {"op": "calldata", "action": "withdraw", "to": CAMPAIGN})
    assert got["data"] == "0x" + contracts.encode_call("Campaign", "withdraw", []).hex()
    keepers, _ = keepers_and_ctx(3, 2)
    config = CampaignConfig(
        title="T ✊", purpose="P", description="D", plan="", threshold=5, deadline=1_900_000_000,
        keepers=sort_keepers([k.public_key for k in keepers]), keeper_threshold=2, scope=Scope.PUBLIC,
        late_joiners=LateJoiners.ROSTER, deposit=10**16, beneficiary="0x" + "22" * 20, relay=member,
        relay_note=b"\x01\x02", instructions=envelope,
    )  # fmt: skip
    salt = secrets.token_bytes(32)
    js_config = {
        "title": config.title, "purpose": config.purpose, "description": config.description, "plan": config.plan,
        "threshold": config.threshold, "deadline": config.deadline, "keepers": ["0x" + k.hex() for k in config.keepers],
        "keeperThreshold": 2, "scope": 1, "lateJoiners": 1, "deposit": str(config.deposit),
        "beneficiary": config.beneficiary, "relay": "0x" + member.hex(), "relayNote": "0x0102",
        "instructions": "0x" + envelope.hex(),
    }  # fmt: skip
    got = js(node_path, {"op": "calldata", "action": "create", "to": CAMPAIGN, "config": js_config,
                         "salt": "0x" + salt.hex(), "envelope": "0x" + envelope.hex(),
                         "member_key": "0x" + member.hex(),
                         "implementation": "0x" + "33" * 20, "creator": "0x" + "44" * 20})  # fmt: skip
    want = contracts.encode_call("CampaignFactory", "createCampaign", [config.as_tuple(), salt, envelope, member])
    assert got["data"] == "0x" + want.hex()


def test_a_forwarder_request_signed_in_the_browser_recovers_to_the_member_key(node: str) -> None:
    member = KeyPair.generate()
    forwarder = "0x" + "55" * 20
    req = js(node, {"op": "sign", "secret": "0x" + member.secret_bytes().hex(), "to": CAMPAIGN, "chain_id": 31337,
                    "forwarder": forwarder, "nonce": 3, "deadline": 1_900_000_000})  # fmt: skip
    assert req["from"] == member.address and req["nonce"] == "3"
    typed = {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            "ForwardRequest": [{"name": "from", "type": "address"}, {"name": "to", "type": "address"},
                               {"name": "value", "type": "uint256"}, {"name": "gas", "type": "uint256"},
                               {"name": "nonce", "type": "uint256"}, {"name": "deadline", "type": "uint48"},
                               {"name": "data", "type": "bytes"}],
        },
        "primaryType": "ForwardRequest",
        "domain": {"name": "Spartacus", "version": "1", "chainId": 31337, "verifyingContract": forwarder},
        "message": {"from": req["from"], "to": req["to"], "value": int(req["value"]), "gas": int(req["gas"]),
                    "nonce": 3, "deadline": req["deadline"], "data": bytes.fromhex(req["data"][2:])},
    }  # fmt: skip
    signer = Account.recover_message(encode_typed_data(full_message=typed), signature=req["signature"])
    assert signer == member.address


def test_liars_of_every_form_read_the_same_in_both_languages(node: str) -> None:
    """A share that matches its commitment but is wrong (other subsets are tried), and a keeper
    whose release is garbage (named in ``skipped``): the JS reader agrees with the Python one."""
    from spartacus._shamir import split
    from spartacus.envelope import Randomness

    keepers, ctx = keepers_and_ctx(4, 2)
    members = [KeyPair.generate() for _ in range(2)]
    key = secrets.token_bytes(16)
    shares = split(key, 4, 2)
    bad = [secrets.token_bytes(16) + shares[0][16:], *shares[1:]]  # keeper 0's share is wrong, yet committed to
    pledges = [
        PledgeRecord(0, members[0].address, members[0].compressed,
                     seal(PledgeContent("Olga"), ctx, members[0], pledger=members[0].address), 10),
        PledgeRecord(1, members[1].address, members[1].compressed,
                     seal(PledgeContent("Ana"), ctx, members[1], pledger=members[1].address,
                          randomness=Randomness(key, tuple(bad))), 11),
    ]  # fmt: skip
    releases = [r for r in _release_all(ctx, keepers[:3], pledges, None, None, b"")]
    releases.append(ReleaseRecord(3, keepers[3].address, b"SPR\x02" + secrets.token_bytes(40), 30, 0))
    want = build_roster(ctx, pledges, releases, members[0], members[0].address).to_json()
    assert [m["name"] for m in want["members"]] == ["Olga", "Ana"]
    assert [s["keeper_index"] for s in want["skipped"]] == [3]
    got = js(node, {
        "op": "roster", "context": ctx_json(ctx), "creator": members[0].address, "instructions": "0x",
        "reader": "0x" + members[0].secret_bytes().hex(),
        "pledges": [{"index": p.index, "pledger": p.pledger, "member_key": "0x" + p.member_key.hex(),
                     "envelope": "0x" + p.envelope.hex(), "live": p.live, "late": p.late} for p in pledges],
        "releases": [{"keeper_index": r.keeper_index, "keeper": r.keeper, "data": "0x" + r.data.hex(),
                      "block_number": r.block_number, "log_index": r.log_index} for r in releases],
    })  # fmt: skip
    assert got == want
