"""The dApp's pages, run headless with Streamlit's AppTest against a real anvil, and its pure
helpers.

AppTest runs no JavaScript: the browser component (where every secret is typed, sealed and
read) is tested in Chromium by ``test_dapp_browser.py``. Here: what the server renders from
public chain data (the campaign page's facts, the late-joiner policy, who relays, relayed
pledges, the warning for a campaign of another factory), that every text from the chain or a
node is rendered as text, never Markdown, and the server's own checks of what a component
sends.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from web3 import Web3

from spartacus.anvil import Anvil, dev_key
from spartacus.chain import CampaignClient, CampaignConfig, ChainClient, FactoryClient, KeySigner, sort_keepers
from spartacus.envelope import PledgeContent, seal, seal_instructions
from spartacus.keys import KeyPair
from spartacus.types import CampaignContext, LateJoiners, Scope

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dapp" / "app.py"
sys.path.insert(0, str(ROOT / "dapp"))

import _campaign as C  # noqa: E402  (the dApp's own folder, as Streamlit puts it on sys.path)
import _forms as F  # noqa: E402
import _send  # noqa: E402
import _settings as K  # noqa: E402
import _text as T  # noqa: E402

pytestmark = pytest.mark.anvil

ETH = 10**18
PIXEL = "![pixel](http://127.0.0.1:9/track.png)"


@dataclass
class Stack:
    client: ChainClient
    factory: FactoryClient
    keepers: list[KeyPair]
    url: str

    def create(
        self,
        *,
        title: str = "Night shift",
        threshold: int = 3,
        late: LateJoiners = LateJoiners.KNOWN,
        relay: bytes = b"",
        factory: FactoryClient | None = None,
        duration: int = 7 * 86400,
    ) -> str:
        """A campaign created by TEST::1 with the Python core: its record, and instructions apart."""
        f = factory or self.factory
        keepers = sort_keepers([k.public_key for k in self.keepers])
        signer = KeySigner(dev_key(1))
        salt = secrets.token_bytes(32)
        address = f.predict(signer.address, salt)
        member = KeyPair.generate()
        ctx = CampaignContext(self.client.chain_id, address, keepers, 2, Scope.MEMBERS, late, relay or None)
        config = CampaignConfig(
            title=title,
            purpose="A fair rota",
            description="We meet when enough of us are in.",
            plan="Sign the cards together.",
            threshold=threshold,
            deadline=K.chain_now(self.client) + duration,
            keepers=keepers,
            keeper_threshold=2,
            late_joiners=late,
            relay=relay,
            instructions=seal_instructions("Gate 3, 6:00.", ctx, member, creator=signer.address),
        )
        envelope = seal(PledgeContent("Olga", {"email": "olga@example.org"}), ctx, member, pledger=signer.address)
        campaign, _ = f.create(signer, config, salt, envelope, member.compressed)
        return campaign

    def relayed_pledge(self, campaign: str) -> KeyPair:
        """A pledge signed by a fresh member key and carried through the forwarder by TEST::9."""
        from eth_account import Account
        from eth_account.messages import encode_typed_data

        c = CampaignClient(self.client, campaign)
        member = KeyPair.generate()
        envelope = seal(PledgeContent("Relayed Ray"), c.context(), member, pledger=member.address)
        data = self.client.contracts.encode_call("Campaign", "pledge", [envelope, member.compressed])
        forwarder = self.factory.forwarder
        deadline = K.chain_now(self.client) + 3600
        message = {"from": member.address, "to": campaign, "value": 0, "gas": 500_000, "nonce": 0,
                   "deadline": deadline, "data": data}  # fmt: skip
        typed = {
            "types": {
                "EIP712Domain": [{"name": n, "type": t} for n, t in (("name", "string"), ("version", "string"),
                                 ("chainId", "uint256"), ("verifyingContract", "address"))],
                "ForwardRequest": [{"name": n, "type": t} for n, t in (("from", "address"), ("to", "address"),
                                   ("value", "uint256"), ("gas", "uint256"), ("nonce", "uint256"),
                                   ("deadline", "uint48"), ("data", "bytes"))],
            },
            "primaryType": "ForwardRequest",
            "domain": {"name": "Spartacus", "version": "1", "chainId": self.client.chain_id,
                       "verifyingContract": forwarder},
            "message": message,
        }  # fmt: skip
        signature = Account.sign_message(encode_typed_data(full_message=typed), member.secret_bytes()).signature
        request = (member.address, campaign, 0, 500_000, deadline, data, bytes(signature))
        call = self.client.contracts.encode_call("Forwarder", "execute", [request])
        self.client.send(KeySigner(dev_key(9)), forwarder, call)
        return member


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Anvil(extra=["--accounts", "10"], log=tmp_path_factory.mktemp("anvil") / "anvil.log") as node:
        client = ChainClient(Web3(Web3.HTTPProvider(node.url)))
        factory, _ = FactoryClient.deploy(client, KeySigner(dev_key(0)))
        keepers = [KeyPair.generate() for _ in range(3)]
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SPARTACUS_NETWORK", node.url)
            mp.setenv("SPARTACUS_FACTORY", factory.address)
            mp.setenv("SPARTACUS_KEEPERS", ",".join("0x" + k.public_key.hex() for k in keepers))
            for name in ("SPARTACUS_ACCOUNT", "SPARTACUS_RELAYER", "SPARTACUS_RELAY_SERVICE", "SPARTACUS_RELAY_NAME"):
                mp.delenv(name, raising=False)
            yield Stack(client, factory, keepers, node.url)


def run(page: str | None = None, campaign: str | None = None) -> AppTest:
    """The page as a visitor opens it right after the test changed the chain: the latest block the
    server shares between sessions for one refresh interval is read again (a visitor sees it at
    most ``SPARTACUS_REFRESH`` seconds later)."""
    import _ui

    _ui.fresh_head()
    at = AppTest.from_file(str(APP), default_timeout=60)
    if page:
        at.switch_page(page)
    if campaign:
        at.query_params["campaign"] = campaign
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def raw(at: AppTest) -> str:
    """Every Markdown source the page would render (markdown, alerts, captions, titles)."""
    parts: list[str] = []
    for kind in ("markdown", "caption", "title", "header", "subheader", "error", "warning", "info", "success"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def text(at: AppTest) -> str:
    """What a reader sees: Markdown's backslash escapes removed."""
    return re.sub(r"\\(.)", r"\1", raw(at))


def seen(at: AppTest) -> str:
    return " ".join(text(at).split())


# ─── The campaign page ───────────────────────────────────────────────────────────────


def test_campaigns_list_shows_title_count_progress_and_state(stack: Stack) -> None:
    stack.create(title="Listed drive")
    at = run()
    assert "Listed drive" in text(at)
    assert any("1 of 3 live pledges" in str(p.proto.text) for p in at.get("progress"))


@pytest.mark.parametrize(
    ("late", "expected"),
    [
        (LateJoiners.KNOWN, "receives the organizer's instructions, but not the earlier roster"),
        (LateJoiners.ROSTER, "Its deposit stays locked until the deadline"),
        (LateJoiners.CLOSED, "Closed to late joiners: no pledge is taken after the reveal."),
    ],
)
def test_campaign_page_states_the_late_joiner_policy(stack: Stack, late: LateJoiners, expected: str) -> None:
    at = run(campaign=stack.create(late=late))
    assert expected in seen(at)


def test_campaign_page_says_who_relays_or_that_members_read_in_the_member_area(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = run(campaign=stack.create())
    assert "names no relay service" in seen(at) and "member area" in seen(at)
    service = KeyPair.generate()
    monkeypatch.setenv("SPARTACUS_RELAY_SERVICE", "0x" + service.compressed.hex())
    monkeypatch.setenv("SPARTACUS_RELAY_NAME", "Union office")
    at = run(campaign=stack.create(relay=service.compressed))
    page = seen(at)
    assert f"the relay service Union office (0x{service.compressed.hex()})" in page
    assert "reads the roster, like a member, after the reveal and never before" in page


def test_campaign_page_counts_pledges_that_came_through_a_relayer(stack: Stack) -> None:
    campaign = stack.create(threshold=5)
    assert "The one pledge so far did not come through a relayer" in seen(run(campaign=campaign))
    member = stack.relayed_pledge(campaign)
    assert CampaignClient(stack.client, campaign).pledge_of(member.address)[1] == "live"
    page = seen(run(campaign=campaign))
    assert "1 of the 2 pledges so far came through a relayer" in page
    assert "set by the relayers' rate limits and sponsoring, not by the pledgers' money" in page


def test_campaign_page_never_renders_on_chain_markdown(stack: Stack) -> None:
    at = run(campaign=stack.create(title=f"Drive {PIXEL}"))
    assert f"Drive {PIXEL}" in text(at)  # shown, literally
    assert PIXEL not in raw(at)  # never as Markdown


def _reverting_contract(client: ChainClient, reason: str) -> str:
    """Raw EVM code that reverts every call with ``Error(reason)`` (a hostile "campaign")."""
    from eth_abi.abi import encode

    data = bytes.fromhex("08c379a0") + encode(["string"], [reason])
    runtime = bytes.fromhex(f"61{len(data):04x}61000f600039{'61'}{len(data):04x}6000fd") + data
    init = bytes.fromhex(f"61{len(runtime):04x}8061000d6000396000f3") + runtime
    w3 = client.w3
    tx = w3.eth.send_transaction({"from": w3.eth.accounts[0], "data": init})
    return str(w3.eth.wait_for_transaction_receipt(tx)["contractAddress"])


def _show_error(text: str, dapp: str) -> None:  # an AppTest script: the helper every page shows errors with
    import sys

    sys.path.insert(0, dapp)
    import _ui

    _ui.error(text)


def test_a_revert_string_is_shown_as_text_never_as_markdown(stack: Stack) -> None:
    fake = _reverting_contract(stack.client, f"nothing here {PIXEL}")
    assert stack.client.w3.eth.get_code(fake)
    # The contract's own words, as a page gets them when a local account's call is refused...
    withdraw = "0x" + stack.client.contracts.encode_call("Campaign", "withdraw", []).hex()
    value = {"id": "1", "kind": "sent", "action": "withdraw", "via": "local", "account": "TEST::2", "to": fake,
             "data": withdraw, "value": "0"}  # fmt: skip
    with pytest.raises(Exception) as refused:
        _send.send_value(stack.client, K.Settings.from_env(), value, "withdraw", fake)
    message = T.error_text(refused.value)
    assert PIXEL in message
    # ...reach the reader, as text.
    at = AppTest.from_function(_show_error, args=(message, str(ROOT / "dapp")), default_timeout=30)
    at.run()
    assert not at.exception
    assert PIXEL in text(at) and PIXEL not in raw(at)
    # And no page renders anything of that contract as Markdown.
    for page in (None, "pages/1_Pledge.py", "pages/2_Withdraw.py", "pages/4_Member_area.py"):
        at = run(page, campaign=fake)
        assert at.error, page
        assert PIXEL not in raw(at), page


def test_the_pledge_page_warns_plainly_about_a_campaign_of_another_factory(stack: Stack) -> None:
    other, _ = FactoryClient.deploy(stack.client, KeySigner(dev_key(0)))
    genuine = stack.create()
    foreign = stack.create(factory=other, title="Looks the same")
    assert not [w for w in run("pages/1_Pledge.py", campaign=genuine).warning if "NOT created" in str(w.value)]
    at = run("pages/1_Pledge.py", campaign=foreign)
    warning = " ".join(str(w.value) for w in at.warning)
    assert "NOT created by this dApp" in re.sub(r"\\(.)", r"\1", warning)
    assert "Do not pledge unless you trust" in re.sub(r"\\(.)", r"\1", warning)
    assert "NOT created by this dApp" in seen(run(campaign=foreign))  # and on its public page


def test_the_pledge_page_refuses_an_expired_campaign(stack: Stack) -> None:
    campaign = stack.create(duration=60)
    stack.client.w3.provider.make_request("evm_increaseTime", [120])  # type: ignore[arg-type]
    stack.client.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    at = run("pages/1_Pledge.py", campaign=campaign)
    assert "takes no more pledges" in seen(at)


# ─── Create, member area ─────────────────────────────────────────────────────────────


def test_create_shows_the_relay_choices_and_the_service_before_signing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = run("pages/3_Create.py")
    [relay] = [r for r in at.radio if r.label.startswith("At the reveal")]
    assert relay.options == ["my own relay: I run `spartacus relay run` later, with my member key and my SMTP server",
                             "nobody: no e-mail; members read the roster in the member area"]  # fmt: skip
    service = KeyPair.generate()
    monkeypatch.setenv("SPARTACUS_RELAY_SERVICE", "0x" + service.compressed.hex())
    monkeypatch.setenv("SPARTACUS_RELAY_NAME", "Union office")
    at = run("pages/3_Create.py")
    [relay] = [r for r in at.radio if r.label.startswith("At the reveal")]
    assert relay.value == "service"
    assert relay.options[0] == f"the relay service Union office (public key 0x{service.compressed.hex()})"
    assert "it reads the roster after the reveal (never before)" in seen(at)


def test_create_validates_the_public_fields_with_sentences(stack: Stack) -> None:
    at = run("pages/3_Create.py")
    at.text_input(key="c_title").input("A title")
    at.number_input(key="c_threshold").set_value(3)
    at.text_input(key="c_deadline").input("yesterday")
    at.text_area(key="c_keepers_pasted").input("0x1234")
    at.run()
    page = seen(at)
    assert "Purpose is empty" in page
    assert "Deadline 'yesterday'" in page
    assert "Keeper 1 (0x1234…)" in page


def test_member_area_before_the_reveal_says_nothing_can_be_read(stack: Stack) -> None:
    at = run("pages/4_Member_area.py", campaign=stack.create())
    assert "Not revealed yet: 1 of 3 live pledges" in seen(at)


def test_the_dapp_never_imports_the_command_line() -> None:
    code = "import sys; sys.path.insert(0, 'dapp'); import _ui, _forms, _send, _campaign; "
    code += "print('spartacus.cli' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert not [p for p in (ROOT / "dapp").rglob("*.py") if "spartacus.cli" in p.read_text()]


# ─── What the server does with what a component sends ────────────────────────────────


def test_the_server_sends_only_the_call_of_the_page_to_its_target(stack: Stack) -> None:
    campaign = stack.create()
    settings = K.Settings.from_env()
    withdraw = "0x" + stack.client.contracts.encode_call("Campaign", "withdraw", []).hex()
    base = {"id": "1", "kind": "sent", "via": "local", "account": "TEST::2", "value": "0"}
    with pytest.raises(Exception, match="not addressed to"):
        _send.send_value(stack.client, settings, base | {"action": "withdraw", "to": "0x" + "11" * 20,
                                                         "data": withdraw}, "withdraw", campaign)  # fmt: skip
    with pytest.raises(Exception, match="not a call of withdraw"):
        cancel = "0x" + stack.client.contracts.encode_call("Campaign", "cancel", []).hex()
        _send.send_value(stack.client, settings, base | {"action": "withdraw", "to": campaign, "data": cancel},
                         "withdraw", campaign)  # fmt: skip
    with pytest.raises(Exception, match="this page sends pledge only"):
        _send.send_value(stack.client, settings, base | {"action": "withdraw"}, "pledge", campaign)
    with pytest.raises(Exception, match="not a local account"):
        _send.send_value(stack.client, settings, base | {"action": "withdraw", "to": campaign, "data": withdraw,
                                                         "account": "TEST::99"}, "withdraw", campaign)  # fmt: skip
    with pytest.raises(Exception, match="no relayer is configured"):
        _send.send_value(stack.client, settings, {"action": "withdraw", "via": "relayer", "request": {}},
                         "withdraw", campaign)  # fmt: skip


def test_a_relayer_that_is_down_gets_a_sentence() -> None:
    with pytest.raises(Exception, match="cannot be reached .* nothing was sent"):
        _send.relay_request("http://127.0.0.1:9", {"from": "0x"}, timeout=2)


# ─── Pure helpers ────────────────────────────────────────────────────────────────────


def test_amounts_durations_and_the_cost_of_a_fake() -> None:
    assert T.format_wei(10**16) == "0.01 ETH" and T.format_wei(5) == "5 wei" and T.format_wei(0) == "0 ETH"
    assert T.parse_eth("0.01") == 10**16 and T.parse_eth("") == 0
    with pytest.raises(Exception, match="more than 18 decimals"):
        T.parse_eth("0.0000000000000000001")
    assert T.format_duration(90061) == "1 d 1 h"
    assert C.fake_cost(10**16, 1, 3) == (2, 2 * 10**16)
    assert "Nothing but gas" in C.fake_cost_text(0, 1, 3, C.ZERO_ADDRESS)


def test_escape_md_leaves_no_markup() -> None:
    for hostile in (PIXEL, "<img src=x onerror=alert(1)>", "$x^2$", "[link](http://x)", ":red[text]", "`code`"):
        escaped = T.escape_md(hostile)
        assert re.sub(r"\\(.)", r"\1", escaped) == hostile
        assert not re.search(r"(?<!\\)[\[\]()<>`$:!]", escaped), escaped


def test_validate_create_gives_the_config_the_browser_encodes() -> None:
    keys = [KeyPair.generate() for _ in range(3)]
    now = int(time.time())
    form = F.CreateForm(title="T", purpose="P", threshold=5, deadline="+7d",
                        keepers_pasted="\n".join("0x" + k.public_key.hex() for k in keys), keeper_threshold=2,
                        deposit="0.01", late_joiners="roster", relay="none")  # fmt: skip
    config, errors = F.validate_create(form, now, None)
    assert errors == [] and config is not None
    assert config["deadline"] == now + 7 * 86400 and config["deposit"] == str(10**16)
    assert config["keepers"] == ["0x" + k.hex() for k in sort_keepers([k.public_key for k in keys])]
    assert (config["lateJoiners"], config["relay"], config["relayNote"], config["instructions"]) == (
        1,
        "0x",
        "0x",
        "0x",
    )
    _, errors = F.validate_create(F.CreateForm(relay="service"), now, None)
    assert any("No relay service is offered here" in e for e in errors)


def test_settings_read_the_relayer_and_the_relay_service() -> None:
    key = KeyPair.generate().compressed
    s = K.Settings.from_env({"SPARTACUS_RELAYER": "http://r.example/ ", "SPARTACUS_RELAY_SERVICE": "0x" + key.hex(),
                             "SPARTACUS_RELAY_NAME": "Office"})  # fmt: skip
    assert (s.relayer, s.relay_service, s.relay_name) == ("http://r.example", key, "Office")
    bad = K.Settings.from_env({"SPARTACUS_RELAY_SERVICE": "0x1234"})
    assert bad.relay_service is None and bad.relay_service_error and "not a public key" in bad.relay_service_error


def test_the_history_store_reads_what_the_core_reads(stack: Stack) -> None:
    campaign = stack.create(threshold=9)
    c = CampaignClient(stack.client, campaign)
    stack.relayed_pledge(campaign)
    signer = KeySigner(dev_key(3))
    member = KeyPair.generate()
    c.pledge(signer, seal(PledgeContent("Wu"), c.context(), member, pledger=signer.address), member.compressed, 0)
    c.withdraw(signer)
    store, head = C.HistoryStore(), stack.client.head()
    created = c.created.block_number
    assert store.points(stack.client, campaign, created, head) == c.count_history(created, head)
    assert [n for _, n in store.points(stack.client, campaign, created, head)] == [1, 2, 3, 2]
    assert store.relayed(stack.client, campaign, stack.factory.forwarder, created, head) == (1, 3)
