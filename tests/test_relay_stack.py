"""The relay service of `make run`, as a user meets it: a campaign created through the command
with the stack's relay key reaches its threshold and every member's mailbox in the sink gets
exactly one e-mail with the roster and the instructions; a late joiner then gets what the
policy gives (`known`: the instructions only) and the members one update; a campaign that
names no relay sends nothing. `make run` runs in its own process group, as a terminal's
Ctrl-C reaches it, and is stopped that way.

The same journey through the stack's dApp, in Debian's headless Chromium (Playwright): the
Create page shows the relay service's public key (the one of ``.run/stack.json``) before the
organizer signs; a walletless creation (the member key signs, the stack's relayer sends) names
it, with the `roster` late-joiner policy; a walletless pledge on the pledge page and one with
the command reach the threshold; every member, the organizer typed on the Create page
included, gets exactly one e-mail with the roster and the instructions, and the organizer the
notice sealed to the relay; a late joiner gets the roster, the members one update; a campaign
created with "No e-mail" is released (its members read the roster) and the sink gets nothing
of it. Without chromium or playwright that test skips (fails in CI).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import app_idle, chromium_path, component, fill, goto, launched, save_key, see, type_record
from spartacus_cli import mail, stack_banner

from spartacus.anvil import free_port
from spartacus.stack import RELAY_NAME

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


def wait(what: str, ok: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = ok()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def spartacus(env: dict[str, str], cwd: Path, *args: str, ok: bool = True) -> Any:
    """``spartacus ARGS --json`` in ``cwd``: its JSON; with ``ok=False``, None when it fails."""
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "spartacus"), *args, "--json"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if not ok and proc.returncode != 0:
        return None
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def cli_pledge(env: dict[str, str], cwd: Path, campaign: str, name: str, account: int) -> dict[str, Any]:
    """A pledge with the CLI from ``TEST::account``: ``NAME.key``, contact ``name@example.org``."""
    return dict(
        spartacus(env, cwd, "pledge", campaign, "--name", name, "--contact", f"email={name.lower()}@example.org",
                  "--member-key-file", f"{name.lower()}.key", "--account", f"TEST::{account}")
    )  # fmt: skip


def served(info: dict[str, Any], env: dict[str, str]) -> set[str]:
    """The campaigns the stack's relay service serves (``relay status``)."""
    status = spartacus(env, ROOT, "relay", "status", "--state", info["relay_state"])
    return {c["address"] for c in status["campaigns"]}


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    ports = {name: free_port() for name in ("ANVIL", "SMTP", "MAIL", "DAPP")}
    env = os.environ | {f"SPARTACUS_{k}_PORT": str(v) for k, v in ports.items()}
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        stack_banner(proc)
        info = json.loads((ROOT / ".run" / "stack.json").read_text())
        yield (
            info,
            env | {"SPARTACUS_NETWORK": info["rpc"], "SPARTACUS_FACTORY": info["factory"], "MAIL": str(ports["MAIL"])},
        )
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise


def test_every_campaign_that_names_the_stacks_relay_emails_its_members(
    stack: tuple[dict[str, Any], dict[str, str]], tmp_path: Path
) -> None:
    info, env = stack
    port = int(env["MAIL"])
    assert re.fullmatch(r"0x0[23][0-9a-f]{64}", info["relay"])

    def cli(*args: str, ok: bool = True) -> Any:
        return spartacus(env, tmp_path, *args, ok=ok)

    def create(title: str, organizer: str, *extra: str, account: int) -> str:
        return str(
            cli("create", "--title", title, "--purpose", f"{title} for all", "--threshold", "2", "--deadline", "+1d",
                "--keeper-threshold", "2", *[a for k in info["keepers"] for a in ("--keeper", k)],
                "--name", organizer, "--contact", f"email={organizer.lower()}@example.org",
                "--instructions-file", "plan.txt", "--member-key-file", f"{organizer.lower()}.key",
                "--account", f"TEST::{account}", *extra)["campaign"]
        )  # fmt: skip

    def pledge(campaign: str, name: str, account: int) -> dict[str, Any]:
        return cli_pledge(env, tmp_path, campaign, name, account)

    def at_least(count: int, subject: str) -> list[dict[str, Any]] | None:
        found = [m for m in mail(port) if m["subject"].startswith(subject)]
        return found if len(found) >= count else None

    def inbox() -> Counter[tuple[str, str]]:
        return Counter((m["to"], m["subject"]) for m in mail(port))

    (tmp_path / "plan.txt").write_text("Bring the signed cards on Friday, 7:00, at the depot gate.\n")
    cards = create("Cards", "Rita", "--relay", info["relay"], account=4)
    assert pledge(cards, "Sam", 5)["revealed"] is True
    rosters = wait("the rosters of Cards", lambda: at_least(2, "[Spartacus] Cards: revealed"))
    assert sorted(m["to"] for m in rosters) == ["rita@example.org", "sam@example.org"]
    for m in rosters:
        assert "Rita" in m["text"] and "Sam" in m["text"] and "depot gate" in m["text"], m["text"]

    # A late joiner (the default `known` policy): the instructions only; the members one update.
    assert pledge(cards, "Lu", 6)["revealed"] is False
    welcome = wait("the late joiner's e-mail", lambda: [m for m in mail(port) if m["to"] == "lu@example.org"])
    [lu] = welcome
    assert "here are the instructions" in lu["subject"] and "depot gate" in lu["text"]
    assert not re.search(r"Rita|Sam|rita@|sam@", lu["text"]), lu["text"]
    wait("the members' updates", lambda: at_least(2, "[Spartacus] Cards: 1 new member"))

    # A campaign that names no relay: revealed and released, and nobody is e-mailed.
    quiet = create("Quiet", "Quinn", account=7)
    assert pledge(quiet, "Vic", 8)["revealed"] is True
    wait(
        "Quiet released",
        lambda: (
            len((cli("roster", quiet, "--member-key-file", "vic.key", ok=False) or {"members": []})["members"]) == 2
        ),
    )
    # Then one more campaign of the relay: once its e-mails are in, the service has read past Quiet.
    after = create("After", "Ada", "--relay", info["relay"], account=9)
    pledge(after, "Bob", 3)
    wait("the rosters of After", lambda: at_least(2, "[Spartacus] After: revealed"))

    got = inbox()
    assert got == Counter(
        {
            ("rita@example.org", "[Spartacus] Cards: revealed, 2 members"): 1,
            ("sam@example.org", "[Spartacus] Cards: revealed, 2 members"): 1,
            ("lu@example.org", "[Spartacus] Cards: you joined, here are the instructions"): 1,
            ("rita@example.org", "[Spartacus] Cards: 1 new member"): 1,
            ("sam@example.org", "[Spartacus] Cards: 1 new member"): 1,
            ("ada@example.org", "[Spartacus] After: revealed, 2 members"): 1,
            ("bob@example.org", "[Spartacus] After: revealed, 2 members"): 1,
        }
    ), got
    assert served(info, env) == {info["campaign"], cards, after} and quiet not in served(info, env)


# ─── The same journey through the stack's dApp, in a real browser ───────────────────


@pytest.fixture(scope="module")
def browser(stack: tuple[dict[str, Any], dict[str, str]]) -> Iterator[Any]:
    with launched(chromium_path(), dapp_of(stack[1])) as b:
        yield b


def dapp_of(env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{env['SPARTACUS_DAPP_PORT']}"


def create_in_the_dapp(
    browser: Any, url: str, keepers: list[str], tmp: Path, title: str, organizer: str, *, threshold: int,
    late: str, relay: str, instructions: str,
) -> tuple[str, str]:  # fmt: skip
    """A walletless creation on the Create page (the member key signs, the stack's relayer sends):
    the campaign's address and the text of the relay choice that was checked when it was signed."""
    from playwright.sync_api import expect

    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    try:
        page = context.new_page()
        goto(page, f"{url}/create")
        fill(page, "Title", title)
        fill(page, "Purpose: one sentence", f"{title} for all")
        fill(page, "Threshold N: live pledges (yours included) that trigger the reveal", str(threshold))
        fill(page, "Keeper public keys to add, one per line", "\n".join(keepers))
        fill(page, "Keeper threshold t: keepers needed to open a pledge", "2")
        for label in (LATE[late], RELAY[relay]):
            choice = page.get_by_role("radio", name=label)
            choice.check(force=True)  # Streamlit hides the input under its own dot
            app_idle(page)
            expect(choice).to_be_checked()
        chosen = page.get_by_role("radiogroup", name=re.compile("^At the reveal, every member gets")).get_by_role(
            "radio", checked=True
        )
        relay_text = str(chosen.locator("xpath=ancestor::label").inner_text())
        frame = component(page)
        expect(frame.get_by_label("No wallet: send through the relayer", exact=True)).to_be_checked()  # no wallet
        save_key(page, frame, tmp / f"{organizer.lower()}.key")
        type_record(frame, organizer, f"{organizer.lower()}@example.org")
        frame.locator('textarea[name="instructions"]').fill(instructions)
        frame.get_by_role("button", name="Create the campaign").click()
        see(page, "Campaign created at")
        created = page.get_by_text("Campaign created at").first.inner_text()
        campaign = re.search(r"0x[0-9a-fA-F]{40}", created)
        assert campaign, created
        return campaign.group(0), relay_text
    finally:
        context.close()


LATE = {"roster": re.compile("^roster: they get the roster too")}
RELAY = {"service": re.compile("^the relay service "), "none": re.compile("^nobody: no e-mail")}


@pytest.mark.browser
def test_a_campaign_created_in_the_stacks_dapp_emails_its_members_through_the_relay_service(
    stack: tuple[dict[str, Any], dict[str, str]], browser: Any, tmp_path: Path
) -> None:
    from web3 import Web3

    from spartacus.chain import CampaignClient, ChainClient
    from spartacus.keys import KIND_MEMBER, load_key_file
    from spartacus.types import LateJoiners

    info, env = stack
    url, port = dapp_of(env), int(env["MAIL"])
    client = ChainClient(Web3(Web3.HTTPProvider(info["rpc"])))
    plan = "Walk out together at the depot gate D15, Thursday 5:30."

    def of(title: str) -> list[dict[str, Any]]:
        return [m for m in mail(port) if m["subject"].startswith(f"[Spartacus] {title}:")]

    def got(title: str, subject: str, count: int) -> list[dict[str, Any]] | None:
        found = [m for m in of(title) if m["subject"] == f"[Spartacus] {title}: {subject}"]
        return found if len(found) >= count else None

    # The Create page shows the relay service's identity, checked by default, before the organizer signs.
    depot, relay_choice = create_in_the_dapp(
        browser, url, info["keepers"], tmp_path, "Depot D15", "Dora", threshold=3, late="roster",
        relay="service", instructions=plan,
    )  # fmt: skip
    shown = re.search(r"public key (0x[0-9a-f]+)", relay_choice)
    assert shown and shown.group(1) == info["relay"] and RELAY_NAME in relay_choice, relay_choice
    config = CampaignClient(client, depot).created.config
    assert "0x" + config.relay.hex() == info["relay"] and config.late_joiners is LateJoiners.ROSTER

    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    goto(page, f"{url}/?campaign={depot}")
    see(page, f"E-mail: the relay service {RELAY_NAME} ({info['relay']}) sends every member")

    # A walletless pledge on the pledge page, then one with the CLI: the threshold.
    goto(page, f"{url}/pledge?campaign={depot}")
    frame = component(page)
    type_record(frame, "Pia", "pia@example.org")
    save_key(page, frame, tmp_path / "pia.key")
    frame.get_by_role("button", name="Seal and pledge").click()
    see(page, "the live count is now 2 of 3")
    load_key_file(tmp_path / "pia.key", KIND_MEMBER, campaign=depot, chain_id=info["chain_id"])
    assert cli_pledge(env, tmp_path, depot, "Tom", 2)["revealed"] is True

    members = ["dora@example.org", "pia@example.org", "tom@example.org"]
    rosters = wait("the rosters of Depot D15", lambda: got("Depot D15", "revealed, 3 members", 3))
    assert sorted(m["to"] for m in rosters) == members  # the organizer's contact typed on the Create page too
    for m in rosters:
        assert all(name in m["text"] for name in ("Dora", "Pia", "Tom")) and plan in m["text"], m["text"]
    # The organizer's contact, sealed to the relay on the Create page: the notice at the threshold.
    [notice] = wait("the organizer's notice", lambda: got("Depot D15", "threshold reached, revealed", 1))
    assert notice["to"] == "dora@example.org"

    # "No e-mail": revealed and released, the members read the roster (the organizer with the key
    # file saved in the browser), and the sink gets nothing.
    quiet, relay_choice = create_in_the_dapp(
        browser, url, info["keepers"], tmp_path, "Silent vote", "Nina", threshold=2, late="roster",
        relay="none", instructions="Vote no on Friday.",
    )  # fmt: skip
    assert relay_choice.startswith("nobody: no e-mail"), relay_choice
    assert CampaignClient(client, quiet).created.config.relay == b""
    goto(page, f"{url}/?campaign={quiet}")
    see(page, "This campaign names no relay service: nobody is committed to e-mail the members")
    assert cli_pledge(env, tmp_path, quiet, "Otto", 3)["revealed"] is True

    def roster_of(key: str) -> list[str]:
        out = spartacus(env, tmp_path, "roster", quiet, "--member-key-file", key, ok=False) or {"members": []}
        return sorted(m["name"] for m in out["members"])

    wait("Silent vote released", lambda: roster_of("otto.key") == ["Nina", "Otto"])
    assert roster_of("nina.key") == ["Nina", "Otto"]

    # A late joiner of Depot D15 (the `roster` policy chosen on the Create page): the whole roster
    # and the instructions; the members one update. Once these are in, the service has read past
    # Silent vote's release.
    assert cli_pledge(env, tmp_path, depot, "Lena", 8)["revealed"] is False
    [lena] = wait("the late joiner's e-mail", lambda: [m for m in of("Depot D15") if m["to"] == "lena@example.org"])
    assert lena["subject"] == "[Spartacus] Depot D15: revealed, 4 members"
    assert all(name in lena["text"] for name in ("Dora", "Pia", "Tom", "Lena")) and plan in lena["text"]
    updates = wait("the members' updates", lambda: got("Depot D15", "1 new member", 3))
    assert sorted(m["to"] for m in updates) == members and all("Lena" in m["text"] for m in updates)

    inbox = Counter((m["to"], m["subject"]) for m in mail(port) if "Depot D15" in m["subject"])
    progress = {k: n for k, n in inbox.items() if k[1].endswith("of the threshold")}
    assert set(progress) <= {("dora@example.org", "[Spartacus] Depot D15: 50% of the threshold")}, progress
    assert {k: n for k, n in inbox.items() if k not in progress} == {
        **{(to, "[Spartacus] Depot D15: revealed, 3 members"): 1 for to in members},
        **{(to, "[Spartacus] Depot D15: 1 new member"): 1 for to in members},
        ("lena@example.org", "[Spartacus] Depot D15: revealed, 4 members"): 1,
        ("dora@example.org", "[Spartacus] Depot D15: threshold reached, revealed"): 1,
    }, inbox
    silent = [m for m in mail(port) if "Silent vote" in m["subject"] or re.search(r"nina@|otto@|Vote no", m["text"])]
    assert silent == []
    assert depot in served(info, env) and quiet not in served(info, env)
    context.close()
