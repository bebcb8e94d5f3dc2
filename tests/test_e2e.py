"""End to end on a real anvil, through the console command: create, pledge, reveal,
keeper releases, rosters; and the adversarial cases of P1-P4.

Each test deploys its own factory, so keepers only ever see that test's campaigns.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from spartacus_cli import create, keeper_run, pledge

from spartacus import _shamir
from spartacus._exceptions import DecryptionError
from spartacus.anvil import dev_key
from spartacus.chain import CampaignClient, KeySigner
from spartacus.envelope import open_body, open_share, parse
from spartacus.keys import KIND_KEEPER, KIND_MEMBER, generate_key_file, load_key_file
from spartacus.release import collect
from spartacus.types import Scope

pytestmark = pytest.mark.anvil


def test_full_campaign_reveals_to_members_only(stack: Any) -> None:
    cli, keepers, client = stack
    campaign = create(cli, keepers, threshold=4)
    status = cli.json("status", campaign)
    assert (status["state"], status["count"], status["threshold"]) == ("open", 1, 4)

    first = pledge(cli, campaign, 2, "Ana")
    assert (first["index"], first["count"]) == (1, 2)
    pledge(cli, campaign, 3, "Ben")

    # Below N: the roster is refused with a clear reason, and keepers publish nothing.
    refused = cli("roster", campaign, "--member-key-file", "member2.key", "--json", ok=False)
    assert refused.returncode != 0 and "only after the reveal" in refused.stderr
    assert refused.stderr.count("\n") == 1  # one line
    assert keeper_run(cli, 0)["transactions"] == []
    assert CampaignClient(client, campaign).releases() == []

    last = pledge(cli, campaign, 4, "Cleo")
    assert last["count"] == 4 and last["revealed"] is True
    assert cli.json("status", campaign)["state"] == "revealed"

    # One keeper's release is not enough for anyone (t = 2).
    assert keeper_run(cli, 0)["released"] == {campaign: 4}
    partial = cli.json("roster", campaign, "--member-key-file", "member2.key")
    assert partial["members"] == [] and partial["instructions"] is None
    assert sorted(s["index"] for s in partial["skipped"] if s["index"] is not None) == [0, 1, 2, 3]

    assert keeper_run(cli, 2)["released"] == {campaign: 4}
    expected = {"Olga Organizer", "Ana", "Ben", "Cleo"}
    for key_file in ["organizer.key", "member2.key", "member3.key", "member4.key"]:
        roster = cli.json("roster", campaign, "--member-key-file", key_file)
        assert {m["name"] for m in roster["members"]} == expected
        assert roster["instructions"] == "Meet at the north gate, Monday 6:00. Bring the cards.\n"
        assert roster["skipped"] == []
        ana = next(m for m in roster["members"] if m["name"] == "Ana")
        assert ana["contact"] == {"email": "ana@example.org", "signal": "+41002"}
        assert ana["index"] == 1

    # A key that is no member's reads nothing.
    generate_key_file(cli.cwd / "stranger.key", KIND_MEMBER, campaign=campaign, chain_id=client.chain_id)
    stranger = cli("roster", campaign, "--member-key-file", "stranger.key", "--json", ok=False)
    assert stranger.returncode != 0 and "not a member" in stranger.stderr
    assert stranger.stdout == ""
    # A member key belongs to its one campaign: used for another, it is refused (it would link both).
    other = create(cli, keepers, threshold=3)
    reused = cli("pledge", other, "--name", "Ana", "--member-key-file", "member2.key", "--account", "TEST::6", ok=False)
    assert "serves one campaign only" in reused.stderr and campaign in reused.stderr
    assert len(reused.stderr.strip().splitlines()) == 1

    # A second pass publishes nothing new: never the same thing twice.
    assert keeper_run(cli, 0)["transactions"] == []
    assert len(CampaignClient(client, campaign).releases()) == 2


def test_one_keeper_alone_cannot_open_any_pledge(stack: Any) -> None:
    """P1 end to end, by decryption attempts: each keeper's own share of every real pledge, and a
    member's one-keeper view after a release, rebuild a key that fails authentication."""
    cli, keepers, client = stack
    campaign = create(cli, keepers, threshold=2)
    pledge(cli, campaign, 2, "Ana")
    c = CampaignClient(client, campaign)
    ctx = c.context()
    pledges = c.pledges()
    # Even the keeper itself, holding its own share of every pledge, opens nothing.
    for i in range(3):
        key = load_key_file(cli.cwd / f"keeper{i}.key", KIND_KEEPER)
        index = ctx.keepers.index(key.public_key)
        for p in pledges:
            parsed = parse(p.envelope)
            y = open_share(parsed, index, key, ctx, member_key33=p.member_key, pledger=p.pledger)
            alone = _shamir.combine([y + bytes((parsed.xs[index],))])  # what t = 1 would give
            with pytest.raises(DecryptionError, match="authentication failed"):
                open_body(parsed, alone, ctx, p.member_key, pledger=p.pledger)
    # After one keeper's release, a member holds one share per pledge: not enough, even when the
    # reader's own count check is bypassed.
    keeper_run(cli, 1)
    member = load_key_file(cli.cwd / "member2.key", KIND_MEMBER, campaign=campaign)
    collected = collect(c.releases(), ctx, member, member_index=1)
    assert {p.index for p in pledges} == set(collected.shares)
    for p in pledges:
        parsed = parse(p.envelope)
        [(k, [y])] = collected.shares[p.index].items()
        with pytest.raises(DecryptionError, match="authentication failed"):
            open_body(parsed, _shamir.combine([y + bytes((parsed.xs[k],))]), ctx, p.member_key, pledger=p.pledger)


def test_withdrawn_pledges_never_appear(stack: Any) -> None:
    cli, keepers, client = stack
    campaign = create(cli, keepers, threshold=3)
    pledge(cli, campaign, 2, "Ana")
    cli("withdraw", campaign, "--account", "TEST::2")
    pledge(cli, campaign, 3, "Ben")
    assert cli.json("status", campaign)["count"] == 2
    pledge(cli, campaign, 4, "Cleo")  # the reveal: Olga, Ben, Cleo

    for i in (0, 1):
        report = keeper_run(cli, i)
        assert report["released"] == {campaign: 3} and report["granted"] == {campaign: 3}
    roster = cli.json("roster", campaign, "--member-key-file", "member3.key")
    assert {m["name"] for m in roster["members"]} == {"Olga Organizer", "Ben", "Cleo"}
    assert all(m["index"] != 1 for m in roster["members"]) and roster["skipped"] == []
    # The withdrawn pledger is no member: its key was never granted anything.
    out = cli("roster", campaign, "--member-key-file", "member2.key", "--json", ok=False)
    assert out.returncode != 0 and "withdrawn" in out.stderr and out.stdout == ""


def test_expired_or_cancelled_campaign_is_never_released(stack: Any) -> None:
    cli, keepers, client = stack
    expiring = create(cli, keepers, threshold=3, deadline="+1h")
    pledge(cli, expiring, 2, "Ana")
    cancelled = create(cli, keepers, threshold=3)
    cli("cancel", cancelled, "--account", "TEST::1")
    with pytest.raises(AssertionError, match="cancelled"):
        pledge(cli, cancelled, 3, "Ben")

    client.w3.provider.make_request("evm_increaseTime", [3601])
    client.w3.provider.make_request("evm_mine", [])
    assert cli.json("status", expiring)["state"] == "expired"

    for i in range(3):
        report = keeper_run(cli, i)
        assert report["transactions"] == [] and set(report["closed"]) == {expiring, cancelled}
    assert CampaignClient(client, expiring).releases() == []
    assert CampaignClient(client, cancelled).releases() == []
    refused = cli("roster", expiring, "--member-key-file", "member2.key", ok=False)
    assert "never reached its threshold" in refused.stderr
    # A refund is all that is left.
    cli("refund", expiring, "--account", "TEST::2", ok=False)  # deposit 0: nothing to refund
    assert "nothing to refund" in cli("refund", expiring, "--account", "TEST::2", ok=False).stderr


def test_garbage_pledges_are_skipped_and_listed(stack: Any) -> None:
    cli, keepers, client = stack
    campaign = create(cli, keepers, threshold=5)
    pledge(cli, campaign, 2, "Ana")
    c = CampaignClient(client, campaign)
    # Anyone can send bytes straight to the contract.
    junk = c.pledge(KeySigner(dev_key(5)), secrets.token_bytes(700), bytes([2]) + secrets.token_bytes(32), 0)
    not_a_point = bytes([2]) + b"\xff" * 32  # x beyond the field: no such point
    bad_key = c.pledge(KeySigner(dev_key(6)), b"SPX\x02" + b"\x00" * 40, not_a_point, 0)
    last = pledge(cli, campaign, 3, "Ben")
    assert last["revealed"] is True
    junk_index = junk.events("Pledged")[0].args["index"]
    bad_index = bad_key.events("Pledged")[0].args["index"]

    for i in (0, 2):
        report = keeper_run(cli, i)
        skipped = {index for index, _reason in report["skipped"][campaign]}
        assert {junk_index, bad_index} <= skipped
        assert report["released"] == {campaign: 3}
    roster = cli.json("roster", campaign, "--member-key-file", "member3.key")
    assert {m["name"] for m in roster["members"]} == {"Olga Organizer", "Ana", "Ben"}
    assert {s["index"] for s in roster["skipped"]} == {junk_index, bad_index}
    assert all(s["reason"] for s in roster["skipped"])


def test_public_scope_is_readable_without_a_key(stack: Any) -> None:
    cli, keepers, client = stack
    campaign = create(cli, keepers, threshold=2, scope="public")
    pledge(cli, campaign, 2, "Ana")
    assert CampaignClient(client, campaign).context().scope is Scope.PUBLIC
    keeper_run(cli, 0)
    keeper_run(cli, 1)
    roster = cli.json("roster", campaign)
    assert {m["name"] for m in roster["members"]} == {"Olga Organizer", "Ana"}


@pytest.mark.parametrize("policy", ["known", "roster"])
def test_pledges_after_the_reveal_are_released_as_the_policy_says(stack: Any, policy: str) -> None:
    """A late joiner is revealed to the members either way; under `known` it reads the
    instructions only (not the earlier roster, not the organizer); under `roster`, everything."""
    cli, keepers, client = stack
    campaign = create(cli, keepers, threshold=2, **{"late-joiners": policy})
    pledge(cli, campaign, 2, "Ana")
    keeper_run(cli, 0)
    keeper_run(cli, 1)
    late = pledge(cli, campaign, 3, "Late Lou")
    assert late["count"] == 3 and late["revealed"] is False
    for i in (0, 1):
        report = keeper_run(cli, i)
        assert report["released"] == {campaign: 1} and report["granted"] == {campaign: 1}
    everyone = {"Olga Organizer", "Ana", "Late Lou"}
    roster = cli.json("roster", campaign, "--member-key-file", "member2.key")
    assert {m["name"] for m in roster["members"]} == everyone
    assert next(m for m in roster["members"] if m["name"] == "Late Lou")["late"] is True
    lou = cli.json("roster", campaign, "--member-key-file", "member3.key")
    assert lou["instructions"] == "Meet at the north gate, Monday 6:00. Bring the cards.\n"
    if policy == "known":
        assert lou["late_joiner"] is True and lou["members"] == []
        text = cli("roster", campaign, "--member-key-file", "member3.key").stdout
        assert "Olga" not in text and "Ana" not in text and "after its reveal" in text
    else:
        assert lou["late_joiner"] is False and {m["name"] for m in lou["members"]} == everyone


def test_closed_campaign_takes_no_late_pledge(stack: Any) -> None:
    cli, keepers, client = stack
    campaign = create(cli, keepers, threshold=2, **{"late-joiners": "closed"})
    pledge(cli, campaign, 2, "Ana")
    refused = cli("pledge", campaign, "--name", "Late", "--member-key-file", "late.key", "--account", "TEST::3",
                  ok=False)  # fmt: skip
    assert "takes no more pledges" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert cli.json("status", campaign)["late_joiners"] == "closed"


def test_bad_input_is_refused_with_a_clear_message(stack: Any) -> None:
    cli, keepers, client = stack
    keys = [arg for k in keepers for arg in ("--keeper", k["public_key"])]
    base = ["create", "--title", "T", "--purpose", "P", "--name", "N", "--instructions-file", "instructions.txt",
            "--member-key-file", "o.key", "--account", "TEST::1", *keys]  # fmt: skip
    cases = [
        (["--threshold", "0", "--deadline", "+1d", "--keeper-threshold", "2"], "--threshold 0"),
        (["--threshold", "3", "--deadline", "2001-01-01", "--keeper-threshold", "2"], "in the past"),
        (["--threshold", "3", "--deadline", "tomorrow", "--keeper-threshold", "2"], "ISO 8601"),
        (["--threshold", "3", "--deadline", "+1d", "--keeper-threshold", "4"], "--keeper-threshold 4"),
        (["--threshold", "3", "--deadline", "+1d", "--keeper-threshold", "2", "--contact", "email"], "KEY=VALUE"),
    ]
    for extra, message in cases:
        out = cli(*base, *extra, ok=False)
        assert out.returncode != 0 and message in out.stderr, (extra, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1
        assert not (cli.cwd / "o.key").exists() or extra[1] != "0"
    no_keeper = cli("create", "--title", "T", "--purpose", "P", "--threshold", "3", "--deadline", "+1d",
                    "--keeper", "0x1234", "--keeper-threshold", "1", "--name", "N",
                    "--instructions-file", "instructions.txt", "--member-key-file", "o.key",
                    "--account", "TEST::1", ok=False)  # fmt: skip
    assert no_keeper.returncode != 0 and "public key" in no_keeper.stderr

    campaign = create(cli, keepers, threshold=3)
    pledge(cli, campaign, 2, "Ana")
    again = cli("pledge", campaign, "--name", "Ana", "--member-key-file", "member2b.key", "--account", "TEST::2",
                ok=False)  # fmt: skip
    assert "already has a live pledge" in again.stderr
    reuse = cli("pledge", campaign, "--name", "Eve", "--member-key-file", "member2.key", "--account", "TEST::5",
                ok=False)  # fmt: skip
    assert "already in a live pledge" in reuse.stderr
    stranger = cli("withdraw", campaign, "--account", "TEST::7", ok=False)
    assert "has no live pledge" in stranger.stderr
    down = cli("status", campaign, "--network", "http://127.0.0.1:9", ok=False)
    assert "cannot reach the node" in down.stderr
    assert cli.json("status", campaign)["count"] == 2  # nothing was lost
    (cli.cwd / "open.key").write_text((cli.cwd / "member2.key").read_text())
    (cli.cwd / "open.key").chmod(0o644)
    loose = cli("roster", campaign, "--member-key-file", "open.key", ok=False)
    assert "chmod 600" in loose.stderr


def test_key_files_are_private(stack: Any) -> None:
    cli, keepers, _ = stack
    for i in range(3):
        path = cli.cwd / f"keeper{i}.key"
        assert path.stat().st_mode & 0o777 == 0o600
    out = cli("keeper", "init", "--key-file", "keeper0.key", ok=False)
    assert out.returncode != 0 and "existing file" in out.stderr
    secret = json.loads((cli.cwd / "keeper0.key").read_text())["private_key"]
    assert secret[2:] not in out.stdout + out.stderr


def test_addresses_that_are_not_campaigns_get_one_line(stack: Any) -> None:
    """The factory's address (printed in every footer), the forwarder, an empty address: each
    command answers in one line that says what the address is not, and sends nothing."""
    cli, keepers, client = stack
    forwarder = CampaignClient(client, cli.factory).client.call("CampaignFactory", cli.factory, "trustedForwarder")[0]
    empty = "0x000000000000000000000000000000000000dEaD"
    nonce = client.w3.eth.get_transaction_count(client.w3.eth.accounts[3])
    for address, says in ((cli.factory, "is not a Spartacus campaign"), (forwarder, "is not a Spartacus campaign"),
                          (empty, "there is no contract")):  # fmt: skip
        for args in (
            ["status", address],
            ["roster", address, "--member-key-file", "x.key"],
            ["pledge", address, "--name", "A", "--member-key-file", "y.key", "--account", "TEST::3"],
            ["withdraw", address, "--account", "TEST::3"],
        ):
            out = cli(*args, ok=False)
            assert out.returncode != 0 and says in out.stderr, (args, out.stderr)
            assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert client.w3.eth.get_transaction_count(client.w3.eth.accounts[3]) == nonce  # nothing was sent
    assert not (cli.cwd / "y.key").exists()


def test_pledge_refuses_a_campaign_of_another_factory(stack: Any, tmp_path: Any) -> None:
    """Before any deposit: a campaign not created by the configured factory may be a look-alike."""
    from spartacus_cli import Cli, deploy_with_keepers

    cli, keepers, client = stack
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other_cli, other_keepers = deploy_with_keepers(cli.url, client, elsewhere)
    (elsewhere / "instructions.txt").write_text("Elsewhere.\n")
    foreign = create(other_cli, other_keepers, threshold=3)
    out = Cli(cli.url, cli.factory, elsewhere)(
        "pledge", foreign, "--name", "A", "--member-key-file", "z.key", "--account", "TEST::4", ok=False
    )
    assert "not created by the configured factory" in out.stderr and other_cli.factory in out.stderr
    assert CampaignClient(client, foreign).status().count == 1
