"""Writes ``format-v2.json``: known-answer vectors of the v2 envelope, release and key-file bytes.

Every input is fixed: keys, content keys, Shamir shares (polynomials with fixed coefficients,
evaluated with ``pyshamir``'s own field arithmetic), ephemeral keys and nonces. The Python core
(``tests/test_vectors.py``) and the browser module (``dapp/js/test/vectors.test.mjs``, under
Node and in Chromium) must reproduce every byte, and read every roster back the same.

Run ``.venv/bin/python tests/vectors/make_vectors.py`` only when the format changes on purpose:
the file is the contract between the two languages.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pyshamir import _utils as gf

from spartacus.chain import sort_keepers
from spartacus.envelope import (
    ROLE_INSTRUCTIONS,
    ROLE_PLEDGE,
    PledgeContent,
    Randomness,
    binding,
    encode_content,
    encode_instructions,
    seal,
    seal_instructions,
)
from spartacus.keys import KIND_MEMBER, KeyPair, key_file_bytes
from spartacus.release import LATE_KEY, ROSTER_KEY, Entry, build_release, encode_index_set, release_keys
from spartacus.roster import build_roster
from spartacus.types import CampaignContext, LateJoiners, PledgeRecord, ReleaseRecord, Scope

OUT = Path(__file__).with_name("format-v2.json")
CHAIN_ID = 31337
CAMPAIGN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def det(label: str, size: int) -> bytes:
    """Deterministic bytes for a label (the vectors' only source of 'randomness')."""
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"spartacus vectors|{label}|{counter}".encode()).digest()
        counter += 1
    return out[:size]


def det_key(label: str) -> KeyPair:
    return KeyPair.from_secret(det("key " + label, 32))


def shamir_shares(secret: bytes, n: int, t: int, label: str) -> list[bytes]:
    """``y ‖ x`` shares of ``secret`` from fixed polynomials; x = 7, 19, 31, ... (t = 1: y = secret)."""
    xs = [(7 + 12 * i) % 255 + 1 for i in range(n)]
    if t == 1:
        return [secret + bytes((i + 1,)) for i in range(n)]
    coeffs = det("coefficients " + label, len(secret) * (t - 1))
    shares = []
    for x in xs:
        ys = bytearray()
        for b, byte in enumerate(secret):
            poly = gf.Polynomial(t - 1)
            poly.coefficients[0] = byte
            poly.coefficients[1:] = coeffs[b * (t - 1) : (b + 1) * (t - 1)]
            ys.append(poly.evaluate(x))
        shares.append(bytes(ys) + bytes((x,)))
    return shares


def keepers_for(n: int, label: str) -> list[KeyPair]:
    pairs = [det_key(f"{label} keeper {i}") for i in range(n)]
    order = sort_keepers([p.public_key for p in pairs])
    return sorted(pairs, key=lambda p: order.index(p.public_key))


def ctx_for(keepers: list[KeyPair], t: int, scope: Scope = Scope.MEMBERS, **kw: Any) -> CampaignContext:
    return CampaignContext(CHAIN_ID, CAMPAIGN, tuple(k.public_key for k in keepers), t, scope, **kw)


def hx(b: bytes) -> str:
    return "0x" + b.hex()


def ctx_json(ctx: CampaignContext) -> dict[str, Any]:
    return {
        "chain_id": ctx.chain_id,
        "campaign": ctx.campaign,
        "keepers": [hx(k) for k in ctx.keepers],
        "t": ctx.keeper_threshold,
        "scope": ctx.scope.value,
        "late_joiners": ctx.late_joiners.value,
        "relay": hx(ctx.relay) if ctx.relay else None,
    }


def envelope_case(name: str, n: int, t: int, role: int, record: dict[str, Any] | str) -> dict[str, Any]:
    keepers = keepers_for(n, name)
    ctx = ctx_for(keepers, t)
    member = det_key(name + " member")
    pledger = member.address
    key = det("content key " + name, 16)
    shares = shamir_shares(key, n, t, name)
    rnd = Randomness(key, tuple(shares))
    if role == ROLE_PLEDGE:
        assert isinstance(record, dict)
        content = PledgeContent(**record)
        payload = encode_content(content)
        envelope = seal(content, ctx, member, pledger=pledger, randomness=rnd)
    else:
        assert isinstance(record, str)
        payload = encode_instructions(record)
        envelope = seal_instructions(record, ctx, member, creator=pledger, randomness=rnd)
    return {
        "name": name,
        "context": ctx_json(ctx),
        "keeper_secrets": [hx(k.secret_bytes()) for k in keepers],
        "role": role,
        "record": record,
        "member_secret": hx(member.secret_bytes()),
        "member_key": hx(member.compressed),
        "pledger": pledger,
        "content_key": hx(key),
        "shares": [hx(s) for s in shares],
        "payload": hx(payload),
        "aad": hx(binding(ctx, role, member.compressed, pledger)),
        "envelope": hx(envelope),
    }


def campaign_case(
    name: str = "campaign", liar: int | None = 2, forged: int | None = None
) -> tuple[dict[str, Any], SimpleNamespace]:
    """A small campaign, end to end: 3 keepers (t = 2), the organizer's record and instructions,
    three pledges (one withdrawn, one late under `known`), a relay key; keeper 0 and 1 release
    honestly, keeper ``liar`` lies (wrong shares). Readers: a member, the late joiner, the relay.

    ``forged``: that pledge's envelope wraps to keeper 0 a wrong share *with a commitment that
    matches it* (a malicious sealer's, or a keeper's ground collision), so keeper 0's honest
    release of it passes the commitment check and the first t-subset fails the body."""
    keepers = keepers_for(3, name)
    relay = det_key(name + " relay")
    ctx = ctx_for(keepers, 2, late_joiners=LateJoiners.KNOWN, relay=relay.compressed)
    people = [
        ("Olga", {"email": "olga@example.org"}, None),
        ("Ana Müller", {"email": "ana@example.org", "signal": "+41 79 000 00 00"}, "Ready. ✊"),
        ("Bo", {"email": "bo@example.org"}, "I withdraw"),
        ("Late Lu", {"email": "lu@example.org"}, None),
    ]
    members = [det_key(f"{name} member {i}") for i in range(len(people))]
    pledges, sealed = [], []
    for i, ((who, contact, message), m) in enumerate(zip(people, members, strict=True)):
        key = det(f"{name} content key {i}", 16)
        shares = shamir_shares(key, 3, 2, f"{name} {i}")
        if i == forged:
            shares[0] = bytes(b ^ 0x33 for b in shares[0][:-1]) + shares[0][-1:]  # y changed, x kept
        rnd = Randomness(key, tuple(shares))
        env = seal(PledgeContent(who, contact, message), ctx, m, pledger=m.address, randomness=rnd)
        pledges.append(PledgeRecord(i, m.address, m.compressed, env, 10 + i, live=(i != 2), late=(i == 3)))
        sealed.append(env)
    creator = members[0]
    ikey = det(name + " instructions key", 16)
    instructions = seal_instructions(
        "Monday 9:00, the main entrance.\nBring the letter.",
        ctx,
        creator,
        creator=creator.address,
        randomness=Randomness(ikey, tuple(shamir_shares(ikey, 3, 2, name + " instructions"))),
    )
    from spartacus.envelope import open_share, parse

    releases = []
    payloads = []
    for k_index, keeper in enumerate(keepers):
        entries = []
        for p in pledges:
            if not p.live:
                continue
            y = open_share(parse(p.envelope), k_index, keeper, ctx, member_key33=p.member_key, pledger=p.pledger)
            if k_index == liar:
                y = bytes(b ^ 0x5A for b in y)  # the liar
            entries.append(Entry(p.index, y, p.member_key, LATE_KEY if p.late else ROSTER_KEY))
        yi = open_share(
            parse(instructions),
            k_index,
            keeper,
            ctx,
            member_key33=creator.compressed,
            pledger=creator.address,
            role=ROLE_INSTRUCTIONS,
        )
        rnd = [
            det(f"{name} r{k_index} nonce i", 12),
            det(f"{name} r{k_index} relay e", 32),
            det(f"{name} r{k_index} nonce s", 12),
            det(f"{name} r{k_index} grant e R", 32),
            det(f"{name} r{k_index} grant e L", 32),
            det(f"{name} r{k_index} nonce L", 12),
        ]
        build = build_release(
            ctx,
            keeper,
            k_index,
            entries,
            instructions=yi,
            late_instructions=yi,
            relay_key=relay.compressed,
            randomness=rnd,
        )
        assert len(build.payloads) == 1
        payloads.append(
            {
                "keeper_index": k_index,
                "randomness": [hx(r) for r in rnd],
                "entries": [
                    {"index": e.index, "y": hx(e.y), "member_key": hx(e.member_key), "grant": e.grant} for e in entries
                ],
                "instructions_y": hx(yi),
                "release_keys": [hx(k) for k in release_keys(keeper, ctx, k_index)],
                "payload": hx(build.payloads[0]),
            }
        )
        releases.append(ReleaseRecord(k_index, keeper.address, build.payloads[0], 20, k_index))

    def roster_of(reader: KeyPair, relay_reader: bool = False) -> dict[str, Any]:
        return build_roster(
            ctx, pledges, releases, reader, creator.address, instructions=instructions, relay=relay_reader
        ).to_json()

    doc = {
        "name": name,
        "context": ctx_json(ctx),
        "keeper_secrets": [hx(k.secret_bytes()) for k in keepers],
        "relay_secret": hx(relay.secret_bytes()),
        "creator": creator.address,
        "instructions": hx(instructions),
        "pledges": [
            {
                "index": p.index,
                "pledger": p.pledger,
                "member_secret": hx(m.secret_bytes()),
                "member_key": hx(p.member_key),
                "envelope": hx(p.envelope),
                "live": p.live,
                "late": p.late,
            }
            for p, m in zip(pledges, members, strict=True)
        ],
        "releases": payloads,
        "rosters": {
            "member 1": roster_of(members[1]),
            "late joiner 3": roster_of(members[3]),
            "relay": roster_of(relay, relay_reader=True),
        },
    }
    made = SimpleNamespace(ctx=ctx, keepers=keepers, pledges=pledges, members=members, instructions=instructions)
    return doc, made


def adversarial_case() -> dict[str, Any]:
    """Three keepers who release honestly over a campaign whose pledge 0 carries a forged share
    for keeper 0 (see :func:`campaign_case`), read by member 1 from three sets of releases: all
    three (the reader's retry of the other t-subsets opens pledge 0); keepers 0 and 1 and a
    keeper 2 that publishes garbage (named with its release problems; pledge 0, with one good
    share left, is skipped); keeper 1 alone (below t: nothing opens, nothing is revealed)."""
    case, made = campaign_case("adversarial", liar=None, forged=0)
    ctx, keepers, pledges = made.ctx, made.keepers, made.pledges
    reader = made.members[1]
    honest = {r["keeper_index"]: bytes.fromhex(r["payload"][2:]) for r in case["releases"]}
    garbage = det("adversarial garbage", 96)
    sets = {
        "all three": [(0, honest[0]), (1, honest[1]), (2, honest[2])],
        "keeper 2 publishes garbage": [(0, honest[0]), (1, honest[1]), (2, garbage)],
        "keeper 1 alone": [(1, honest[1])],
    }
    readings = []
    for label, payloads in sets.items():
        releases = [ReleaseRecord(k, keepers[k].address, data, 20, k) for k, data in payloads]
        roster = build_roster(ctx, pledges, releases, reader, case["creator"], instructions=made.instructions)
        readings.append(
            {"name": label, "releases": [{"keeper_index": k, "payload": hx(d)} for k, d in payloads],
             "reader": 1, "roster": roster.to_json()}
        )  # fmt: skip
    return {key: case[key] for key in ("name", "context", "keeper_secrets", "creator", "instructions", "pledges")} | {
        "readings": readings
    }


def public_case() -> dict[str, Any]:
    keepers = keepers_for(2, "public")
    ctx = ctx_for(keepers, 2, Scope.PUBLIC)
    entries = [Entry(i, det(f"public y {i}", 16), det_key(f"public m {i}").compressed) for i in (0, 1, 5, 9)]
    build = build_release(ctx, keepers[1], 1, entries, instructions=det("public iy", 16), randomness=[])
    return {
        "name": "public",
        "context": ctx_json(ctx),
        "keeper_secret": hx(keepers[1].secret_bytes()),
        "keeper_index": 1,
        "entries": [
            {"index": e.index, "y": hx(e.y), "member_key": hx(e.member_key), "grant": e.grant} for e in entries
        ],
        "instructions_y": hx(det("public iy", 16)),
        "payload": hx(build.payloads[0]),
    }


def main() -> None:
    member = det_key("key file")
    doc = {
        "format": "spartacus format v2 known-answer vectors (see spartacus/envelope.py and spartacus/release.py)",
        "envelopes": [
            envelope_case(
                "typical",
                3,
                2,
                ROLE_PLEDGE,
                {"name": "Ana", "contact": {"email": "ana@example.org"}, "message": "x" * 100},
            ),
            envelope_case(
                "unicode 5 of 3",
                5,
                3,
                ROLE_PLEDGE,
                {
                    "name": "Zoë Łukasz 山田",
                    "contact": {"email": "zoe@example.org", "phone": "+48 600 000 000", "signal": "@zoe.01"},
                    "message": "Line one\nline two\t✊",
                },
            ),
            envelope_case("one keeper", 1, 1, ROLE_PLEDGE, {"name": "Solo", "contact": {}}),
            envelope_case("instructions", 3, 2, ROLE_INSTRUCTIONS, "Meet at the north gate, 09:00.\nBring water."),
        ],
        "index_sets": [
            {"indices": ix, "bytes": hx(encode_index_set(ix))} for ix in ([0], [0, 1, 2], [3, 5, 17], [70000, 70008])
        ],
        "campaign": campaign_case()[0],
        "adversarial": adversarial_case(),
        "public": public_case(),
        "member_key_file": {
            "secret": hx(member.secret_bytes()),
            "campaign": CAMPAIGN,
            "chain_id": CHAIN_ID,
            "bytes": key_file_bytes(member, KIND_MEMBER, campaign=CAMPAIGN, chain_id=CHAIN_ID).decode(),
        },
    }
    OUT.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
