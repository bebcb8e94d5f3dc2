"""The known-answer vectors of format v2 (``tests/vectors/format-v2.json``): the Python core
reproduces every byte from the inputs the file gives, and reads every roster back the same.

The browser module checks itself against the same file (``dapp/js/test/vectors.test.mjs``),
so a format change on either side breaks both. Each check starts from the file's inputs
(secrets, content keys, shares, randomness), never from the expected bytes.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path
from typing import Any

import pyshamir
import pytest

from spartacus import _shamir
from spartacus._primitives import sha256
from spartacus.envelope import (
    ROLE_INSTRUCTIONS,
    ROLE_PLEDGE,
    PledgeContent,
    Randomness,
    binding,
    commitment,
    encode_content,
    encode_instructions,
    open_body,
    open_share,
    parse,
    seal,
    seal_instructions,
)
from spartacus.keys import KIND_MEMBER, KeyPair, MemberKey, key_file_bytes, parse_key_file
from spartacus.release import Entry, build_release, decode_index_set, encode_index_set, release_keys
from spartacus.roster import build_roster
from spartacus.types import CampaignContext, LateJoiners, PledgeRecord, ReleaseRecord, Scope

HERE = Path(__file__).parent / "vectors"
FILE = HERE / "format-v2.json"
VECTORS: dict[str, Any] = json.loads(FILE.read_text())


def hb(text: str) -> bytes:
    assert text.startswith("0x")
    return bytes.fromhex(text[2:])


def context(doc: dict[str, Any]) -> CampaignContext:
    return CampaignContext(
        doc["chain_id"],
        doc["campaign"],
        tuple(hb(k) for k in doc["keepers"]),
        doc["t"],
        Scope(doc["scope"]),
        late_joiners=LateJoiners(doc["late_joiners"]),
        relay=hb(doc["relay"]) if doc["relay"] else None,
    )


def keepers_of(doc: dict[str, Any], ctx: CampaignContext) -> list[KeyPair]:
    keepers = [KeyPair.from_secret(hb(s)) for s in doc["keeper_secrets"]]
    assert tuple(k.public_key for k in keepers) == ctx.keepers
    return keepers


# ------------------------------------------------------------------------------------------ envelopes


@pytest.mark.parametrize("case", VECTORS["envelopes"], ids=lambda c: c["name"])
def test_envelope_bytes_from_fixed_content_key_and_shares(case: dict[str, Any]) -> None:
    ctx = context(case["context"])
    keepers = keepers_of(case, ctx)
    member = KeyPair.from_secret(hb(case["member_secret"]))
    assert member.compressed == hb(case["member_key"]) and member.address == case["pledger"]
    key, shares = hb(case["content_key"]), [hb(s) for s in case["shares"]]
    role, record, pledger = case["role"], case["record"], case["pledger"]
    n, t = len(ctx.keepers), ctx.keeper_threshold

    # the shares are a t-of-n sharing of the content key, in the one field both libraries use
    for subset in itertools.combinations(shares, t):
        assert _shamir.combine(list(subset)) == key
        if t > 1:
            assert bytes(pyshamir.combine([bytearray(s) for s in subset])) == key

    payload = encode_content(PledgeContent(**record)) if role == ROLE_PLEDGE else encode_instructions(record)
    assert payload == hb(case["payload"])
    assert binding(ctx, role, member.compressed, pledger) == hb(case["aad"])
    randomness = Randomness(key, tuple(shares))
    if role == ROLE_PLEDGE:
        envelope = seal(PledgeContent(**record), ctx, member, pledger=pledger, randomness=randomness)
    else:
        envelope = seal_instructions(record, ctx, member, creator=pledger, randomness=randomness)
    assert envelope.hex() == case["envelope"][2:]

    # and it reads back: each keeper unwraps its own y, which matches its commitment
    parsed = parse(envelope)
    h = sha256(hb(case["aad"]))
    for i, keeper in enumerate(keepers):
        y = open_share(parsed, i, keeper, ctx, member_key33=member.compressed, pledger=pledger, role=role)
        assert y + bytes((parsed.xs[i],)) == shares[i]
        assert commitment(h, i, parsed.xs[i], y) == parsed.commitments[i]
    body = open_body(parsed, key, ctx, member.compressed, pledger=pledger, role=role)
    assert body == payload and (parsed.n, parsed.t) == (n, t)


def test_the_typical_envelope_is_377_bytes() -> None:
    (typical,) = [c for c in VECTORS["envelopes"] if c["name"] == "typical"]
    assert len(hb(typical["envelope"])) == 377


@pytest.mark.parametrize("case", VECTORS["index_sets"], ids=lambda c: str(c["indices"]))
def test_index_set_bytes(case: dict[str, Any]) -> None:
    encoded = encode_index_set(case["indices"])
    assert encoded == hb(case["bytes"])
    assert decode_index_set(encoded) == (tuple(case["indices"]), len(encoded))


def test_member_key_file_bytes() -> None:
    doc = VECTORS["member_key_file"]
    pair = KeyPair.from_secret(hb(doc["secret"]))
    raw = key_file_bytes(pair, KIND_MEMBER, campaign=doc["campaign"], chain_id=doc["chain_id"])
    assert raw.decode() == doc["bytes"]
    loaded = parse_key_file(raw, KIND_MEMBER, campaign=doc["campaign"], chain_id=doc["chain_id"])
    assert isinstance(loaded, MemberKey) and loaded.secret_bytes() == pair.secret_bytes()
    assert (loaded.campaign, loaded.chain_id) == (doc["campaign"], doc["chain_id"])


# ------------------------------------------------------------------------------------------ the campaign


def pledges_of(doc: dict[str, Any]) -> list[PledgeRecord]:
    return [
        PledgeRecord(
            p["index"], p["pledger"], hb(p["member_key"]), hb(p["envelope"]), 10 + p["index"], p["live"], p["late"]
        )
        for p in doc["pledges"]
    ]


CAMPAIGN = VECTORS["campaign"]
CTX = context(CAMPAIGN["context"])
KEEPERS = keepers_of(CAMPAIGN, CTX)
RELAY = KeyPair.from_secret(hb(CAMPAIGN["relay_secret"]))
MEMBERS = [KeyPair.from_secret(hb(p["member_secret"])) for p in CAMPAIGN["pledges"]]
PLEDGES = pledges_of(CAMPAIGN)
INSTRUCTIONS = hb(CAMPAIGN["instructions"])
CREATOR = CAMPAIGN["creator"]
RELEASES = [
    ReleaseRecord(r["keeper_index"], KEEPERS[r["keeper_index"]].address, hb(r["payload"]), 20, r["keeper_index"])
    for r in CAMPAIGN["releases"]
]


def test_the_campaigns_keys_and_pledges_match_their_secrets() -> None:
    assert CTX.relay == RELAY.compressed
    for pledge, member in zip(PLEDGES, MEMBERS, strict=True):
        assert pledge.member_key == member.compressed and pledge.pledger == member.address
    assert MEMBERS[0].address == CREATOR


@pytest.mark.parametrize("release", CAMPAIGN["releases"], ids=lambda r: f"keeper {r['keeper_index']}")
def test_release_bytes_from_fixed_randomness(release: dict[str, Any]) -> None:
    k = release["keeper_index"]
    keeper = KEEPERS[k]
    assert [key.hex() for key in release_keys(keeper, CTX, k)] == [x[2:] for x in release["release_keys"]]
    # the entries are this keeper's shares of the live pledges (keeper 2 is the vectors' liar)
    entries = []
    for e in release["entries"]:
        pledge = PLEDGES[e["index"]]
        assert pledge.live and hb(e["member_key"]) == pledge.member_key
        truth = open_share(
            parse(pledge.envelope), k, keeper, CTX, member_key33=pledge.member_key, pledger=pledge.pledger
        )
        assert (hb(e["y"]) == truth) == (k != 2)
        assert e["grant"] == (1 if pledge.late else 0)
        entries.append(Entry(e["index"], hb(e["y"]), hb(e["member_key"]), e["grant"]))
    assert [e.index for e in entries] == [p.index for p in PLEDGES if p.live]
    y = open_share(
        parse(INSTRUCTIONS), k, keeper, CTX, member_key33=MEMBERS[0].compressed, pledger=CREATOR, role=ROLE_INSTRUCTIONS
    )
    assert y == hb(release["instructions_y"])
    build = build_release(
        CTX,
        keeper,
        k,
        entries,
        instructions=y,
        late_instructions=y,
        relay_key=RELAY.compressed,
        randomness=[hb(r) for r in release["randomness"]],
    )
    assert [p.hex() for p in build.payloads] == [release["payload"][2:]] and build.skipped == []


@pytest.mark.parametrize(
    "name, reader, relay",
    [("member 1", MEMBERS[1], False), ("late joiner 3", MEMBERS[3], False), ("relay", RELAY, True)],
)
def test_the_three_rosters_read_back_exactly(name: str, reader: KeyPair, relay: bool) -> None:
    roster = build_roster(CTX, PLEDGES, RELEASES, reader, CREATOR, instructions=INSTRUCTIONS, relay=relay)
    assert roster.to_json() == CAMPAIGN["rosters"][name]


def test_the_rosters_say_what_the_campaign_case_is_about() -> None:
    """Not just equal to the file: the file says the right things (a liar named, a withdrawn
    pledge absent, the late joiner given the instructions only)."""
    member, late, relay = (CAMPAIGN["rosters"][k] for k in ("member 1", "late joiner 3", "relay"))
    assert [m["index"] for m in member["members"]] == [0, 1, 3] == [m["index"] for m in relay["members"]]
    assert [m["late"] for m in member["members"]] == [False, False, True]
    assert [s["keeper_index"] for s in member["skipped"]] == [2]
    assert late["late_joiner"] and late["members"] == [] and late["instructions"] == member["instructions"]
    assert "Bo" not in json.dumps(member)


# ------------------------------------------------------------------------- the adversarial readings

ADVERSARIAL = VECTORS["adversarial"]


@pytest.mark.parametrize("reading", ADVERSARIAL["readings"], ids=lambda r: r["name"])
def test_the_adversarial_readings_read_back_exactly(reading: dict[str, Any]) -> None:
    ctx = context(ADVERSARIAL["context"])
    keepers = keepers_of(ADVERSARIAL, ctx)
    releases = [
        ReleaseRecord(r["keeper_index"], keepers[r["keeper_index"]].address, hb(r["payload"]), 20, r["keeper_index"])
        for r in reading["releases"]
    ]
    reader = KeyPair.from_secret(hb(ADVERSARIAL["pledges"][reading["reader"]]["member_secret"]))
    roster = build_roster(
        ctx,
        pledges_of(ADVERSARIAL),
        releases,
        reader,
        ADVERSARIAL["creator"],
        instructions=hb(ADVERSARIAL["instructions"]),
    )
    assert roster.to_json() == reading["roster"]


def test_the_adversarial_readings_say_what_they_are_about() -> None:
    """A share forged to match its commitment costs a retry, not the record; a garbage keeper is
    named and the others still read; one keeper below t opens nothing."""
    readings = {r["name"]: r["roster"] for r in ADVERSARIAL["readings"]}
    every, garbage, alone = readings["all three"], readings["keeper 2 publishes garbage"], readings["keeper 1 alone"]
    assert [m["index"] for m in every["members"]] == [0, 1, 3] and every["skipped"] == []
    assert every["instructions"] == garbage["instructions"] is not None
    assert [m["index"] for m in garbage["members"]] == [1, 3]
    assert [(s["index"], s["keeper_index"]) for s in garbage["skipped"]] == [(0, None), (None, 2)]
    assert [p["keeper_index"] for p in garbage["release_problems"]] == [2]
    assert alone["members"] == [] and alone["instructions"] is None
    assert {s["index"] for s in alone["skipped"]} == {0, 1, 3, None}
    assert "Olga" not in json.dumps(alone) and "Olga" not in json.dumps(garbage)


def test_public_release_bytes() -> None:
    doc = VECTORS["public"]
    ctx = context(doc["context"])
    keeper = KeyPair.from_secret(hb(doc["keeper_secret"]))
    assert keeper.public_key == ctx.keepers[doc["keeper_index"]]
    entries = [Entry(e["index"], hb(e["y"]), hb(e["member_key"]), e["grant"]) for e in doc["entries"]]
    build = build_release(
        ctx, keeper, doc["keeper_index"], entries, instructions=hb(doc["instructions_y"]), randomness=[]
    )
    assert [p.hex() for p in build.payloads] == [doc["payload"][2:]]


def test_the_committed_file_is_what_make_vectors_writes(tmp_path: Path) -> None:
    """The file is current: regenerating it from ``make_vectors.py`` gives the same bytes."""
    spec = importlib.util.spec_from_file_location("make_vectors", HERE / "make_vectors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.OUT = tmp_path / "format-v2.json"
    module.main()
    assert module.OUT.read_bytes() == FILE.read_bytes()
