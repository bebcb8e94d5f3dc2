"""The dApp's pages, run headless with Streamlit's AppTest against a real anvil.

Every page is run from ``dapp/app.py`` (its ``st.navigation``), with the environment and
the query parameters a browser would give it; campaigns and pledges that a test only needs
as a backdrop are made with the core package directly. The pure helpers of
``dapp/_state.py`` (formats, exports, key files, validation) are tested at the bottom.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from spartacus.anvil import dev_key
from spartacus.chain import CampaignClient, CampaignConfig, ChainClient, FactoryClient, KeySigner, sort_keepers
from spartacus.envelope import PledgeContent, seal
from spartacus.keeper import Keeper
from spartacus.keys import KIND_MEMBER, KeyPair, load_key_file
from spartacus.roster import Roster, RosterEntry
from spartacus.types import CampaignContext, Scope

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dapp" / "app.py"
sys.path.insert(0, str(ROOT / "dapp"))

import _state as S  # noqa: E402  (the dApp's own folder, as Streamlit puts it on sys.path)

pytestmark = pytest.mark.anvil

ETH = 10**18


# ─── Fixtures: a factory, keepers, campaigns ─────────────────────────────────────────


@dataclass
class Stack:
    client: ChainClient
    factory: str
    keepers: list[KeyPair]
    url: str
    tmp: Path

    def create(
        self,
        threshold: int = 3,
        *,
        deposit: int = 0,
        duration: int = 7 * 86400,
        title: str = "Night shift",
        scope: Scope = Scope.MEMBERS,
        description: str = "We meet when enough of us are in.",
        plan: str = "Sign the cards together.",
    ) -> tuple[str, KeyPair]:
        """A campaign created by TEST::1 (Olga), whose sealed record carries instructions."""
        keepers = sort_keepers([k.public_key for k in self.keepers])
        config = CampaignConfig(
            title=title,
            purpose="A fair rota",
            description=description,
            plan=plan,
            threshold=threshold,
            deadline=S.chain_now(self.client) + duration,
            keepers=keepers,
            keeper_threshold=2,
            scope=scope,
            deposit=deposit,
        )
        member = KeyPair.generate()
        signer = KeySigner(dev_key(1))
        f = FactoryClient(self.client, self.factory)
        salt = secrets.token_bytes(32)
        ctx = CampaignContext(self.client.chain_id, f.predict(signer.address, salt), keepers, 2, scope)
        content = PledgeContent(name="Olga", contact={"email": "olga@example.org"}, instructions="Gate 3, 6:00.")
        envelope = seal(content, ctx, member.compressed, pledger=signer.address)
        address, _ = f.create(signer, config, salt, envelope, member.compressed)
        return address, member

    def pledge(self, campaign: str, account: int, name: str) -> KeyPair:
        c = CampaignClient(self.client, campaign)
        member = KeyPair.generate()
        content = PledgeContent(
            name=name, contact={"email": f"{name.lower()}@example.org", "signal": f"+4100{account}"}
        )
        deposit = c.status().deposit
        signer = KeySigner(dev_key(account))
        envelope = seal(content, c.context(), member.compressed, pledger=signer.address)
        c.pledge(signer, envelope, member.compressed, deposit)
        return member

    def run_keepers(self, *indexes: int) -> None:
        for i in indexes:
            k = Keeper(self.client, self.keepers[i], self.factory, self.tmp / f"keeper{i}.sqlite")
            try:
                k.run_once()
            finally:
                k.close()


@pytest.fixture(scope="module")
def stack(anvil_node: Any, anvil_client: ChainClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    factory, _ = FactoryClient.deploy(anvil_client, KeySigner(dev_key(0)))
    keepers = [KeyPair.generate() for _ in range(3)]
    w3 = anvil_client.w3
    for k in keepers:  # keepers pay for their releases
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": k.address, "value": ETH})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPARTACUS_NETWORK", anvil_node.url)
        mp.setenv("SPARTACUS_FACTORY", factory.address)
        mp.setenv("SPARTACUS_KEEPERS", ",".join("0x" + k.public_key.hex() for k in keepers))
        mp.delenv("SPARTACUS_ACCOUNT", raising=False)
        yield Stack(anvil_client, factory.address, keepers, anvil_node.url, tmp_path_factory.mktemp("dapp"))


def run(page: str | None = None, campaign: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    if page:
        at.switch_page(page)
    if campaign:
        at.query_params["campaign"] = campaign
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def text(at: AppTest) -> str:
    """Everything a reader sees as text on the page (markdown, alerts, metrics, titles), with
    Markdown's backslash escapes removed (on-chain and user text is escaped)."""
    return re.sub(r"\\(.)", r"\1", raw(at))


def raw(at: AppTest) -> str:
    """The same, as the Markdown source the page sent."""
    parts: list[str] = []
    for kind in ("title", "markdown", "caption", "success", "info", "warning", "error", "subheader"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [f"{m.label}: {m.value}" for m in at.metric]
    parts += [str(p.proto.text) for p in at.get("progress")]
    return "\n".join(parts)


def button(at: AppTest, label: str) -> Any:
    [b] = [b for b in at.button if b.label == label]
    return b


def use_account(at: AppTest, alias: str) -> None:
    at.radio(key="sign_mode").set_value("A local account")
    at.selectbox(key="sign_account").set_value(alias)
    at.run()


# ─── Campaigns list and campaign page ────────────────────────────────────────────────


def test_campaigns_list_shows_title_count_progress_and_state(stack: Stack) -> None:
    address, _ = stack.create(threshold=4, title="Listed drive")
    stack.pledge(address, 2, "Ana")
    at = run()
    page = text(at)
    assert "Listed drive" in page and "2 of 4 live pledges" in page
    assert "open · 6 d 23 h left" in page or "open · 7 d 0 h left" in page
    at.button(key=f"open:{address}").click().run()  # to the campaign's own page
    assert at.query_params["campaign"] == address
    assert "Live pledges: 2 of 4" in text(at) and "What happens when you pledge" in text(at)
    button(at, "All campaigns").click().run()  # and back to the list
    assert "campaign" not in at.query_params and at.title[0].value == "Campaigns"


def test_campaign_page_shows_the_facts_a_supporter_needs(stack: Stack) -> None:
    deposit = 10**16
    address, _ = stack.create(threshold=5, deposit=deposit, plan="Step one.\nStep two.")
    stack.pledge(address, 2, "Ana")
    at = run(campaign=address)
    page = text(at)
    assert "Night shift" in page and "A fair rota" in page
    assert "We meet when enough of us are in." in page
    assert "Step one.  \nStep two." in page
    assert "Live pledges: 2 of 5" in page and "2 of 5 live pledges" in page
    assert "6 d 23 h left" in page or "7 d 0 h left" in page
    # The price of faking the 3 missing pledges: 3 × 0.01 ETH.
    assert "**0.03 ETH** (3 missing pledges × 0.01 ETH deposit)" in page
    assert "Each pledge locks **0.01 ETH**" in page
    assert "**2 of 3 keepers**" in page
    for k in stack.keepers:
        assert k.address in page
    assert "What happens when you pledge" in page and "withdraw" in page
    assert f"campaign contract `{address}`" in page and "pledgeCount()" in page
    assert "Recomputed from 2 Pledged/Withdrawn events: 2, the same as the contract's count" in page
    [chart] = at.get("vega_lite_chart")
    assert '"rule"' in chart.proto.spec and "threshold N = 5" in str(chart.proto)  # N drawn on the chart
    links = {link.proto.label for link in at.get("page_link")}
    assert {"Pledge", "Withdraw / refund", "Member area"} <= links


def test_campaign_page_never_renders_on_chain_markdown(stack: Stack) -> None:
    sneaky = "Join ![x](http://tracker.example/p.png) [here](javascript:alert(1)) <b>now</b>"
    address, _ = stack.create(title=sneaky, description=sneaky)
    page = raw(run(campaign=address))
    assert "](http" not in page and "<b>" not in page
    assert "\\!\\[x\\]\\(http\\://tracker\\.example/p\\.png\\)" in page


def test_campaign_page_refuses_a_bad_or_unknown_address(stack: Stack) -> None:
    assert "is not an address" in text(run(campaign="0x1234"))
    stranger = KeySigner(dev_key(9)).address  # an account, not a contract
    assert "is not a campaign on this network" in text(run(campaign=stranger))


def test_an_unreachable_node_is_reported(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARTACUS_NETWORK", "http://127.0.0.1:9")
    page = text(run())
    assert "Cannot use the network http://127.0.0.1:9" in page and "make run" in page


def test_revealed_and_expired_states_are_shown(stack: Stack) -> None:
    revealed, _ = stack.create(threshold=2)
    stack.pledge(revealed, 2, "Ana")
    page = text(run(campaign=revealed))
    assert "REVEALED" in page and "Revealed at block" in page
    assert "The threshold is reached: nothing is left to fake." in page


# ─── Create ──────────────────────────────────────────────────────────────────────────


def fill_create(at: AppTest, stack: Stack, **values: Any) -> None:
    fields = {
        "c_title": "Night shift",
        "c_purpose": "A fair rota",
        "c_threshold": 3,
        "c_deadline": "+7d",
        "c_keepers": ["0x" + k.public_key.hex() for k in stack.keepers],
        "c_t": 2,
        "c_deposit": "0.01",
        "c_name": "Olga Organizer",
        "c_email": "olga@example.org",
        "c_contacts": "signal=+41 79 000 00 00",
        "c_instructions": "Meet at the north gate, Monday 6:00.",
    }
    fields.update(values)
    for key, value in fields.items():
        kind = {
            "c_threshold": "number_input",
            "c_t": "number_input",
            "c_keepers": "multiselect",
            "c_contacts": "text_area",
            "c_instructions": "text_area",
            "c_keepers_pasted": "text_area",
            "c_description": "text_area",
            "c_plan": "text_area",
        }.get(key, "text_input")
        getattr(at, kind)(key=key).set_value(value)


def test_create_validates_every_field_and_sends_nothing(stack: Stack) -> None:
    before = len(FactoryClient(stack.client, stack.factory).campaigns())
    at = run("pages/3_Create.py")
    use_account(at, "TEST::1")
    fill_create(
        at,
        stack,
        c_title="",
        c_threshold=None,
        c_deadline="2001-01-01",
        c_keepers=[],
        c_keepers_pasted="0x1234",
        c_t=None,
        c_deposit="-1",
        c_email="not-an-email",
        c_instructions="",
    )
    at.text_input(key="c_beneficiary").set_value("0xnope")
    at.checkbox[0].check()
    at.run()
    button(at, "Create the campaign").click().run()
    error = text(at)
    for message in [
        "Title is empty",
        "Threshold N is empty",
        "is in the past",
        "Keeper 1 (0x1234…): a public key is 64 bytes",
        "Keeper threshold t is empty",
        "Deposit must be 0 or more ETH",
        "Beneficiary '0xnope' is not an address",
        "Instructions are empty",
        "does not look like an e-mail address",
    ]:
        assert message in error, message
    assert len(FactoryClient(stack.client, stack.factory).campaigns()) == before

    fill_create(at, stack, c_t=5, c_deadline="+400d", c_keepers_pasted="")
    at.text_input(key="c_beneficiary").set_value("")
    at.run()
    button(at, "Create the campaign").click().run()
    error = text(at)
    assert "more than 366 days away" in error
    assert "Keeper threshold t: 5: it must be between 1 and the number of keepers (3)" in error
    assert len(FactoryClient(stack.client, stack.factory).campaigns()) == before


def test_create_needs_the_member_key_saved_first(stack: Stack) -> None:
    at = run("pages/3_Create.py")
    use_account(at, "TEST::1")
    fill_create(at, stack)
    at.run()
    assert button(at, "Create the campaign").disabled
    [download] = at.get("download_button")
    assert download.proto.label == "Save my member key file"
    at.checkbox[0].check().run()
    assert not button(at, "Create the campaign").disabled


def test_create_a_campaign_with_a_local_account(stack: Stack) -> None:
    at = run("pages/3_Create.py")
    use_account(at, "TEST::1")
    fill_create(at, stack, c_keepers=[], c_keepers_pasted="\n".join("0x" + k.public_key.hex() for k in stack.keepers))
    at.checkbox[0].check().run()
    member: KeyPair = at.session_state["create#0"]
    button(at, "Create the campaign").click().run()
    assert not at.error, [e.value for e in at.error]
    [success] = at.success
    assert "Campaign created at" in success.value
    address = at.session_state["outcomes"]["create"].facts["campaign"]

    c = CampaignClient(stack.client, address)
    st = c.status()
    assert (st.threshold, st.count, st.deposit, st.keeper_threshold, st.keeper_count) == (3, 1, 10**16, 2, 3)
    assert c.created.config.title == "Night shift" and c.created.creator == KeySigner(dev_key(1)).address
    [organizer] = c.pledges()
    assert organizer.member_key == member.compressed  # the key offered for download is the one on-chain
    assert b"Olga" not in organizer.envelope and b"north gate" not in organizer.envelope  # sealed
    # The member key is offered again after the creation, and never shown on screen.
    assert [d.proto.label for d in at.get("download_button")] == ["Save my member key file again"]
    assert member.secret_bytes().hex() not in text(at)
    links = [link for link in at.get("page_link") if address in link.proto.query_string]
    assert links and links[0].proto.label == "Open the campaign page"
    assert [c.value for c in at.code] == [f"/?campaign={address}"]  # the link to share


# ─── Pledge ──────────────────────────────────────────────────────────────────────────


def test_pledge_with_a_local_account(stack: Stack) -> None:
    address, _ = stack.create(threshold=4, deposit=10**15)
    at = run("pages/1_Pledge.py", campaign=address)
    page = text(at)
    assert "sealed by this app's server process" in page and "Run the dApp locally for P7" in page
    assert "deposit of **0.001 ETH**" in page
    use_account(at, "TEST::2")
    assert button(at, "Seal and pledge").disabled  # the key is not saved yet
    at.text_input(key="pledge_name").set_value("Ana")
    at.text_input(key="pledge_email").set_value("ana@example.org")
    at.text_area(key="pledge_contacts").set_value("signal=+41 79 111 11 11")
    at.checkbox[0].check().run()
    member: KeyPair = at.session_state[f"pledge:{address}#0"]
    button(at, "Seal and pledge").click().run()
    assert not at.error, [e.value for e in at.error]
    assert "Pledged: pledge #1, the live count is now 2 of 4." in at.success[0].value
    assert member.secret_bytes().hex() not in text(at)

    c = CampaignClient(stack.client, address)
    assert c.status().count == 2
    mine = c.pledges()[1]
    assert mine.pledger == KeySigner(dev_key(2)).address and mine.member_key == member.compressed
    assert b"Ana" not in mine.envelope and b"ana@example.org" not in mine.envelope

    # Again from the same account: refused with the reason, nothing sent.
    button(at, "Pledge from another account").click().run()
    at.text_input(key="pledge_name").set_value("Ana again")
    at.checkbox[0].check().run()
    assert at.session_state[f"pledge:{address}#1"] != member  # a fresh key for a new pledge
    button(at, "Seal and pledge").click().run()
    assert "already has a live pledge in this campaign" in text(at)
    assert c.status().count == 2


def test_pledge_form_errors_are_clear(stack: Stack) -> None:
    address, _ = stack.create()
    at = run("pages/1_Pledge.py", campaign=address)
    use_account(at, "TEST::3")
    at.text_area(key="pledge_contacts").set_value("signal")
    at.checkbox[0].check().run()
    button(at, "Seal and pledge").click().run()
    assert "Contact line 1 ('signal'): write it as key=value" in text(at)
    at.text_area(key="pledge_contacts").set_value("")
    at.run()
    button(at, "Seal and pledge").click().run()
    assert "Name is empty" in text(at)
    assert CampaignClient(stack.client, address).status().count == 1


def test_pledge_page_refuses_an_expired_campaign(stack: Stack) -> None:
    address, _ = stack.create(duration=600)
    stack.client.w3.provider.make_request("evm_increaseTime", [601])  # type: ignore[arg-type]
    stack.client.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    at = run("pages/1_Pledge.py", campaign=address)
    assert "This campaign is expired: it takes no more pledges" in text(at)
    assert not [b for b in at.button if b.label == "Seal and pledge"]


def test_the_wallet_option_explains_itself_before_a_wallet_answers(stack: Stack) -> None:
    address, _ = stack.create()
    at = run("pages/1_Pledge.py", campaign=address)
    at.radio(key="sign_mode").set_value("A browser wallet").run()
    assert button(at, "Connect browser wallet")
    assert button(at, "Seal and pledge").disabled  # no wallet address yet
    assert at.session_state["wallet_used"]
    # app.py draws the bridge first on every page, so it keeps its place across reruns.
    home = AppTest.from_file(str(APP), default_timeout=60)
    home.session_state["wallet_used"] = True
    home.run()
    assert home.main.children[0].key == "spartacus_wallet"


# ─── Withdraw, refund, cancel ────────────────────────────────────────────────────────


def test_withdraw_then_refund(stack: Stack) -> None:
    deposit = 10**15
    address, _ = stack.create(threshold=5, deposit=deposit)
    stack.pledge(address, 4, "Ben")
    c = CampaignClient(stack.client, address)
    at = run("pages/2_Withdraw.py", campaign=address)
    use_account(at, "TEST::4")
    page = text(at)
    assert "pledge **#1**, **live**" in page and "Refundable now: **0 ETH**" in page
    assert button(at, "Refund my deposit").disabled
    button(at, "Withdraw my pledge").click().run()
    assert "Withdrawn: your pledge will never be revealed." in text(at)
    assert c.status().count == 1 and c.pledge_of(KeySigner(dev_key(4)).address)[1] == "withdrawn"

    before = stack.client.balance(KeySigner(dev_key(4)).address)
    assert not button(at, "Refund my deposit").disabled
    button(at, "Refund my deposit").click().run()
    assert "Refunded: your deposit is back in your account." in text(at)
    assert c.refundable(KeySigner(dev_key(4)).address) == 0
    assert stack.client.balance(KeySigner(dev_key(4)).address) > before  # deposit back, minus gas


def test_withdraw_page_for_a_stranger_and_for_the_creator(stack: Stack) -> None:
    address, _ = stack.create()
    at = run("pages/2_Withdraw.py", campaign=address)
    use_account(at, "TEST::7")
    assert "has no pledge in this campaign" in text(at)
    assert button(at, "Withdraw my pledge").disabled and button(at, "Refund my deposit").disabled

    use_account(at, "TEST::1")
    assert "(you created this campaign)" in text(at)
    assert button(at, "Withdraw my pledge").disabled  # the creator cancels instead
    at.checkbox(key="cancel_sure").check().run()
    button(at, "Cancel the campaign").click().run()
    assert "Cancelled: nothing will ever be revealed" in text(at)
    assert CampaignClient(stack.client, address).status().state == "cancelled"


# ─── Member area ─────────────────────────────────────────────────────────────────────


def column(at: AppTest, name: str) -> list[str]:
    """A roster column as the reader sees it (the table's Markdown escapes removed)."""
    [table] = at.table
    return [re.sub(r"\\(.)", r"\1", str(v)) for v in table.value[name]]


def upload(at: AppTest, content: bytes, name: str = "spartacus-member.key") -> None:
    at.file_uploader(key="member_key_upload").set_value((name, content, "application/octet-stream"))
    at.run()


def test_member_area_before_and_after_the_reveal(stack: Stack) -> None:
    address, organizer = stack.create(threshold=3)
    ana = stack.pledge(address, 2, "Ana")
    at = run("pages/4_Member_area.py", campaign=address)
    upload(at, S.member_key_file(ana))
    page = text(at)
    assert "Your key belongs to pledge **#1** (live)" in page
    assert "Not revealed yet: 2 of 3 live pledges" in page and "Nothing can be read" in page
    assert not at.table

    stack.pledge(address, 3, "Ben")  # the reveal
    at.run()
    assert "need" in text(at) and "0 of the 2 keepers needed have released" in text(at)
    stack.run_keepers(0, 2)
    at.run()
    page = text(at)
    assert "The roster: 3 members" in page
    assert column(at, "name") == ["Olga", "Ana", "Ben"]
    assert column(at, "email") == ["olga@example.org", "ana@example.org", "ben@example.org"]
    assert [t.value for t in at.text] == ["Gate 3, 6:00."]
    assert [d.proto.label for d in at.get("download_button")] == ["Download CSV", "Download vCards"]

    # The organizer's key reads the same roster.
    upload(at, S.member_key_file(organizer), "organizer.key")
    assert column(at, "name") == ["Olga", "Ana", "Ben"]


def test_roster_never_renders_a_members_markdown(stack: Stack) -> None:
    address, organizer = stack.create(threshold=2)
    stack.pledge(address, 6, "![x](http://tracker.example/p.png)")
    stack.run_keepers(0, 1)
    at = run("pages/4_Member_area.py", campaign=address)
    upload(at, S.member_key_file(organizer))
    [table] = at.table
    cells = " ".join(str(v) for v in table.value["name"])
    assert "](http" not in cells and "\\!\\[x\\]" in cells  # literal text, not an image to fetch
    assert column(at, "name")[1] == "![x](http://tracker.example/p.png)"


def test_member_area_refuses_a_stranger_key_and_a_bad_file(stack: Stack) -> None:
    address, _ = stack.create(threshold=2)
    stack.pledge(address, 2, "Ana")
    stack.run_keepers(0, 1)
    at = run("pages/4_Member_area.py", campaign=address)
    assert "Upload your member key file to read the roster." in text(at)
    upload(at, S.member_key_file(KeyPair.generate()))
    page = text(at)
    assert "This key is in no pledge of this campaign" in page and "not a member" in page
    assert not at.table
    upload(at, b'{"version":1,"kind":"spartacus-keeper-key","private_key":"0x' + b"11" * 32 + b'"}', "k.key")
    assert "holds a 'spartacus-keeper-key', not a member key" in text(at)
    upload(at, b"hello", "notes.txt")
    assert "This file (notes.txt) is not a Spartacus member key file (not JSON)" in text(at)


def test_member_area_of_an_expired_campaign(stack: Stack) -> None:
    address, organizer = stack.create(duration=600)
    stack.client.w3.provider.make_request("evm_increaseTime", [601])  # type: ignore[arg-type]
    stack.client.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    at = run("pages/4_Member_area.py", campaign=address)
    upload(at, S.member_key_file(organizer))
    assert "nothing will ever be revealed, to anyone" in text(at)


def test_public_campaign_roster_needs_no_key(stack: Stack) -> None:
    address, _ = stack.create(threshold=2, scope=Scope.PUBLIC)
    stack.pledge(address, 5, "Cleo")
    stack.run_keepers(1, 2)
    at = run("pages/4_Member_area.py", campaign=address)
    assert column(at, "name") == ["Olga", "Cleo"]


# ─── Pure helpers ────────────────────────────────────────────────────────────────────


def test_member_key_file_is_the_core_format(tmp_path: Path) -> None:
    pair = KeyPair.generate()
    raw = S.member_key_file(pair)
    assert json.loads(raw) == {"version": 1, "kind": KIND_MEMBER, "private_key": "0x" + pair.secret_bytes().hex()}
    path = tmp_path / "m.key"
    path.write_bytes(raw)
    path.chmod(0o600)
    assert load_key_file(path, KIND_MEMBER) == pair  # the CLI reads what the dApp writes
    assert S.parse_member_key_file(raw) == pair
    assert S.parse_member_key_file(path.read_bytes()).secret_bytes() == pair.secret_bytes()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff", "not JSON"),
        (b"[]", "expected the fields"),
        (b'{"version":2,"kind":"spartacus-member-key","private_key":"0x' + b"1" * 64 + b'"}', "unsupported version"),
        (b'{"version":1,"kind":"spartacus-member-key","private_key":"0x12"}', "64 hex digits"),
        (b'{"version":1,"kind":"spartacus-member-key","private_key":"0x' + b"0" * 64 + b'"}', "not a valid"),
        (b"x" * 5000, "too large"),
    ],
)
def test_bad_member_key_files_are_refused(raw: bytes, message: str) -> None:
    with pytest.raises(S.KeyFileError, match=message):
        S.parse_member_key_file(raw, "f.key")


def test_amounts_durations_and_the_cost_of_a_fake() -> None:
    assert S.format_wei(0) == "0 ETH" and S.format_wei(10**16) == "0.01 ETH" and S.format_wei(1234) == "1,234 wei"
    assert S.parse_eth("0.01") == 10**16 and S.parse_eth("") == 0 and S.parse_eth("1 ETH") == ETH
    for bad, message in [("abc", "not an amount"), ("-1", "0 or more"), ("0.0000000000000000001", "18 decimals")]:
        with pytest.raises(S.InputError, match=message):
            S.parse_eth(bad)
    assert S.format_duration(3 * 86400 + 4 * 3600 + 5) == "3 d 4 h" and S.format_duration(61) == "1 min 1 s"
    assert S.fake_cost(10**16, 2, 5) == (3, 3 * 10**16) and S.fake_cost(10**16, 7, 5) == (0, 0)
    assert "Nothing but gas" in S.fake_cost_text(0, 1, 3, S.ZERO_ADDRESS)
    assert "forfeit" in S.fake_cost_text(1, 1, 3, "0x" + "11" * 20)


def test_wallet_errors_in_words() -> None:
    assert S.wallet_error_text({"code": 4001, "message": "User rejected"}) == (
        "You rejected the transaction in your wallet: nothing was sent."
    )
    assert "rejected the connection" in S.wallet_error_text({"code": 4001}, "eth_requestAccounts")
    assert "another network" in S.wallet_error_text({"code": 4901, "message": "chain 1"})
    assert "No browser wallet" in S.wallet_error_text({"code": "no-wallet"})
    assert "(code -32603)" in S.wallet_error_text({"code": -32603, "message": "boom"})


def test_roster_exports_csv_and_vcards() -> None:
    roster = Roster(
        members=[
            RosterEntry(0, "Olga, the organizer", {"email": "olga@example.org", "signal": "+41 79 000 00 00"}),
            RosterEntry(2, "Eve", {"email": "eve@example.org", "web": '=HYPERLINK("http://x")'}, "hi;\nall"),
        ]
    )
    csv_text = S.roster_csv(roster)
    lines = csv_text.splitlines()
    assert lines[0] == "pledge,name,email,signal,web,message"
    assert lines[1] == '0,"Olga, the organizer",olga@example.org,+41 79 000 00 00,,'
    assert "'=HYPERLINK" in csv_text  # a stranger's formula stays text in a spreadsheet
    cards = S.roster_vcards(roster, "Night shift")
    assert cards.count("BEGIN:VCARD") == 2 and cards.endswith("END:VCARD\r\n")
    assert "FN:Olga\\, the organizer" in cards and "EMAIL;TYPE=INTERNET:olga@example.org" in cards
    assert "TEL;TYPE=SIGNAL:+41 79 000 00 00" in cards and "NOTE:web: =HYPERLINK" in cards
    assert "message: hi\\;\\nall" in cards
    assert all(len(line.encode()) <= 75 for line in cards.split("\r\n"))


def test_the_fast_count_history_equals_the_cores(stack: Stack) -> None:
    address, _ = stack.create(threshold=10)
    for who, name in ((2, "Ana"), (3, "Ben"), (4, "Cleo")):
        stack.pledge(address, who, name)
    c = CampaignClient(stack.client, address)
    c.withdraw(KeySigner(dev_key(3)))
    stack.pledge(address, 5, "Dan")
    expected = c.count_history()
    assert [n for _, n in expected] == [1, 2, 3, 4, 3, 4]
    created = c.created.block_number
    decoded = [
        (log.block_number, int(log.args["count"]))
        for log in stack.client.logs(address, ["Pledged", "Withdrawn"], from_block=created)
    ]
    assert decoded == expected  # the fast read of the count word agrees with full decoding
    store = S.HistoryStore()
    assert store.points(stack.client, address, created) == expected
    stack.pledge(address, 6, "Eve")  # read again: only the last blocks are fetched
    assert [n for _, n in store.points(stack.client, address, created)] == [1, 2, 3, 4, 3, 4, 5]


def test_chart_reads_a_bounded_number_of_block_times() -> None:
    asked: list[int] = []

    def block_time(block: int) -> int:
        asked.append(block)
        return 1_000_000 + 12 * block

    points = [(b, b) for b in range(1, 1001)]
    rows = S.chart_series(points, block_time, now=2_000_000, samples=20)
    assert len(asked) <= 20 and len(rows) == 1001
    assert rows[500]["time"].timestamp() == pytest.approx(1_000_000 + 12 * 501)
    assert rows[-1]["live pledges"] == 1000 and rows[-1]["time"].timestamp() == 2_000_000


def test_validate_create_accepts_a_good_form() -> None:
    keys = [KeyPair.generate() for _ in range(3)]
    form = S.CreateForm(
        title="T",
        purpose="P",
        threshold=10,
        deadline="+7d",
        keepers_pasted=" ".join(k.public_key.hex() for k in keys),
        keeper_threshold=2,
        deposit="0.5",
        name="N",
        email="n@example.org",
        contacts="Signal: +41",
        instructions="Go.",
    )
    config, content, errors = S.validate_create(form, now=1_000_000)
    assert errors == [] and config is not None and content is not None
    assert config.deadline == 1_000_000 + 7 * 86400 and config.deposit == ETH // 2
    assert list(config.keepers) == list(sort_keepers([k.public_key for k in keys]))
    assert content.contact == {"email": "n@example.org", "signal": "+41"} and content.instructions == "Go."


def test_an_ape_keyfile_account_is_opened_with_its_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ape's account store lives outside the repository, so an encrypted keyfile stands in for
    an ``ape accounts import``-ed alias: the dApp must decrypt it itself, never prompt."""
    from eth_account import Account

    import spartacus._ape

    key = dev_key(4)

    class KeyfileAccount:
        address = KeySigner(key).address
        keyfile = Account.encrypt(key, "correct horse", kdf="pbkdf2", iterations=1000)  # fast, same format

    monkeypatch.setattr(spartacus._ape, "load_account", lambda alias: KeyfileAccount())
    assert S.needs_passphrase("organizer") and not S.needs_passphrase("TEST::1")
    assert S.local_signer("organizer", 1, "correct horse").address == KeyfileAccount.address
    with pytest.raises(S.InputError, match="Wrong passphrase for the Ape account 'organizer'"):
        S.local_signer("organizer", 1, "wrong")
    with pytest.raises(S.InputError, match="test accounts exist only on local chains"):
        S.local_signer("TEST::1", 1)
    assert S.local_accounts(S.Settings(None, None, "organizer", (), 2), 1) == ["organizer"]
    assert S.local_accounts(S.Settings(None, None, None, (), 2), 31337)[:2] == ["TEST::0", "TEST::1"]


def test_escape_md_leaves_no_markup() -> None:
    assert S.escape_md("**a** [b](c) `d` $e$ :red[f]") == "\\*\\*a\\*\\* \\[b\\]\\(c\\) \\`d\\` \\$e\\$ \\:red\\[f\\]"
    assert S.escape_md("one\ntwo", multiline=True) == "one  \ntwo"
