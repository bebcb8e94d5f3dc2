"""The ``spartacus`` console command.

Every chain command takes ``--network`` (an Ape network choice such as
``ethereum:sepolia:node``, or an RPC URL; default ``$SPARTACUS_NETWORK``, else the
local stack's anvil) and, when it sends a transaction, ``--account`` (an Ape account
alias, or ``TEST::N`` on local chains; default ``$SPARTACUS_ACCOUNT``).

Exit status 0 on success; otherwise non-zero with one line on stderr that says what
went wrong and what to do.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ._exceptions import InputError, KeyFileError, NotRevealedError, SpartacusError
from .inputs import LATE_JOINER_CHOICES, parse_contacts, parse_deadline

if TYPE_CHECKING:
    from ._fees import FeePolicy

F = TypeVar("F", bound=Callable[..., Any])

MAX_INSTRUCTIONS_BYTES = 48_000
MIN_RELEASE_BYTES = 313  # spartacus.release.MIN_RELEASE_BYTES, restated to keep this module's imports light

# ─── Shared options and helpers ──────────────────────────────────────────────────────


def network_option(f: F) -> F:
    return click.option(
        "--network",
        envvar="SPARTACUS_NETWORK",
        default=None,
        help="Ape network choice (e.g. ethereum:sepolia:node) or RPC URL. Default: $SPARTACUS_NETWORK, "
        "else the local anvil (ethereum:local:foundry).",
    )(f)


def account_option(f: F) -> F:
    return click.option(
        "--account",
        envvar="SPARTACUS_ACCOUNT",
        default=None,
        help="Ape account alias, or TEST::N on a local chain. Default: $SPARTACUS_ACCOUNT.",
    )(f)


def relayer_option(f: F) -> F:
    return click.option(
        "--relayer",
        "relayer_url",
        envvar="SPARTACUS_RELAYER",
        default=None,
        help="A relayer's URL, instead of --account: your member key signs the call and the relayer sends it "
        "(you need no funds, and no address of yours appears on-chain). Default: $SPARTACUS_RELAYER.",
    )(f)


def fee_options(what: str) -> Callable[[F], F]:
    """``--max-fee-gwei`` and ``--stuck-blocks`` for a command that sends ``what`` ("a release")."""

    def decorate(f: F) -> F:
        f = click.option(
            "--stuck-blocks",
            type=click.IntRange(1, 10_000),
            default=3,
            show_default=True,
            help=f"Blocks {what} may stay unmined before it is replaced with a higher fee.",
        )(f)
        return click.option(
            "--max-fee-gwei",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help=f"Most {what} may offer per gas, in gwei, replacements included (default: no cap). "
            f"{what[0].upper()}{what[1:]} stuck behind a fee spike is replaced with a higher fee up to this cap, "
            "then waits for fees to fall.",
        )(f)

    return decorate


def _fee_policy(max_fee_gwei: float | None, stuck_blocks: int) -> FeePolicy:
    """The :class:`FeePolicy` of ``--max-fee-gwei`` and ``--stuck-blocks``."""
    from ._fees import GWEI, FeePolicy

    return FeePolicy(max_fee=None if max_fee_gwei is None else int(max_fee_gwei * GWEI), stuck_blocks=stuck_blocks)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")(f)


def _emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(data, sort_keys=True) if as_json else text)


def _signer(account: str | None, client: Any) -> Any:
    if not account:
        raise InputError(
            "this command sends a transaction: pass --account ALIAS (or TEST::N on a local chain),"
            " or --relayer URL where the call can be relayed"
        )
    from ._ape import signer_for

    return signer_for(account, client.chain_id)


def _relayed(account: str | None, relayer_url: str | None) -> bool:
    """True to send through the relayer: ``--relayer`` or ``--account``, whichever was given on the
    command line (the environment's value counts only when the command line gives neither)."""
    if not (account and relayer_url):
        return bool(relayer_url)
    from click.core import ParameterSource

    ctx = click.get_current_context()
    explicit = {n: ctx.get_parameter_source(n) == ParameterSource.COMMANDLINE for n in ("account", "relayer_url")}
    if explicit["account"] == explicit["relayer_url"]:
        raise InputError(
            "both an account and a relayer are given: pass --account (you send and pay) or --relayer"
            " (your member key signs, the relayer sends), not both"
        )
    return explicit["relayer_url"]


def _send_relayed(
    client: Any, relayer_url: str, target: str, member: Any, member_key_file: str, action: str, build: Any
) -> Any:
    """Has the relayer carry the call ``build`` makes, signed by ``member`` (see spartacus.forwarding)."""
    from eth_utils.address import to_checksum_address

    from .forwarding import RelayerClient, journal_path, send_relayed

    (forwarder,) = client.call("Campaign", target, "trustedForwarder")  # the factory has the same view
    return send_relayed(
        client,
        RelayerClient(relayer_url),
        to_checksum_address(forwarder),
        member.secret_bytes(),
        journal_path(member_key_file),
        action,
        build,
        say=lambda text: logging.getLogger("spartacus.cli").info("%s", text),
    )


def _connected(fn: F) -> F:
    """Runs the command inside a network connection, passing a ChainClient as ``client``; a node
    that is down fails the command at once, with a one-line reason."""
    return _connecting(fn, wait=False)


def _connected_waiting(fn: F) -> F:
    """:func:`_connected` for the long-running commands: a node that is down is waited for with
    the listeners' backoff (from the command's ``--interval``, doubling up to 30 s) instead of
    failing at once; SIGTERM while waiting ends the command quietly. ``--once`` never waits."""
    return _connecting(fn, wait=True)


def _connecting(fn: F, *, wait: bool) -> F:
    @wraps(fn)
    def wrapper(*args: Any, network: str | None, **kwargs: Any) -> Any:
        from ._ape import connect
        from ._exceptions import RPCUnavailable
        from .chain import ChainClient

        waiting = wait and not kwargs.get("once", False)
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if waiting else None
        try:
            context = connect(network, wait=waiting, interval=float(kwargs.get("interval") or 5.0), stop=stop)
            w3 = context.__enter__()
        except RPCUnavailable:
            if stop.is_set():
                return None  # stopped while waiting for the node
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        try:
            return fn(*args, client=ChainClient(w3), **kwargs)
        finally:
            context.__exit__(None, None, None)

    return wrapper  # type: ignore[return-value]


def _read_text_file(path: str, what: str, limit: int) -> str:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot read it ({exc.strerror})") from exc
    if len(raw) > limit:
        raise InputError(f"{what} {path} is {len(raw):,} bytes: the limit is {limit:,}; shorten it")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {path} is not UTF-8 text: save it as UTF-8") from exc


def _member_key(path: str, *, create: bool, campaign: str, chain_id: int) -> Any:
    """Loads the member key file of ``campaign``, or creates it (mode 0600) when it does not exist
    yet; a key file of another campaign is refused (a reused key links two pledges on-chain)."""
    from .keys import KIND_MEMBER, generate_key_file, load_key_file

    if create and not os.path.lexists(path):
        return generate_key_file(path, KIND_MEMBER, campaign=campaign, chain_id=chain_id)
    return load_key_file(path, KIND_MEMBER, campaign=campaign, chain_id=chain_id)


def _factory_address(factory: str | None) -> str:
    if not factory:
        raise InputError("no factory: pass --factory 0x… or set SPARTACUS_FACTORY (see `spartacus deploy`)")
    return factory


def _earlier_create(member_key_file: str) -> Any:
    """The journaled creation of an earlier relayed run with this member key file, if any."""
    from .forwarding import journal_path, load_journal

    earlier = load_journal(journal_path(member_key_file))
    return earlier if earlier is not None and earlier.action == "create" else None


# ─── The command group ───────────────────────────────────────────────────────────────


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Spartacus: sealed pledges that reveal everyone at once, at the threshold."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # -v and -vv speak for Spartacus only; the libraries stay at warnings.
    logging.getLogger("spartacus").setLevel(logging.WARNING - 10 * min(verbose, 2))


@cli.command()
@network_option
@account_option
@json_option
@_connected
def deploy(client: Any, account: str | None, as_json: bool) -> None:
    """Deploy the campaign factory and its ERC-2771 forwarder (once per network)."""
    from .chain import FactoryClient

    factory, result = FactoryClient.deploy(client, _signer(account, client))
    _emit(
        as_json,
        {
            "factory": factory.address,
            "forwarder": factory.forwarder,
            "block": result.block_number,
            "tx": result.tx,
            "gas_used": result.gas_used,
        },
        f"factory deployed at {factory.address} in block {result.block_number} (tx {result.tx}, "
        f"{result.gas_used:,} gas); forwarder {factory.forwarder}\n"
        f"export SPARTACUS_FACTORY={factory.address}",
    )


@cli.command()
@click.option("--factory", envvar="SPARTACUS_FACTORY", help="Factory address. Default: $SPARTACUS_FACTORY.")
@click.option("--title", required=True, help="Short public name of the campaign.")
@click.option("--purpose", required=True, help="One public sentence: what it is for.")
@click.option("--description", default="", help="The longer public text.")
@click.option("--plan", default="", help="The public plan of action.")
@click.option("--threshold", type=int, required=True, help="N: live pledges (yours included) that trigger the reveal.")
@click.option("--deadline", required=True, help="ISO 8601 time, or +7d / +12h / +30m from now.")
@click.option("--keeper", "keepers", multiple=True, required=True, help="A keeper's public key (repeat).")
@click.option("--keeper-threshold", type=int, required=True, help="t: keepers needed to open a pledge.")
@click.option("--deposit", type=int, default=0, show_default=True, help="Wei locked per pledge (price of a fake).")
@click.option(
    "--beneficiary", default=None, help="Where live deposits go after the reveal (default: back to pledgers)."
)
@click.option("--scope", type=click.Choice(["members", "public"]), default="members", show_default=True)
@click.option(
    "--late-joiners",
    type=click.Choice(LATE_JOINER_CHOICES),
    default="known",
    show_default=True,
    help="What a pledge after the reveal gets: known (revealed to the members, gets the instructions, not the "
    "roster), roster (gets the roster too; its deposit stays locked until the deadline), closed (no late pledges).",
)
@click.option(
    "--relay",
    "relay_key",
    default=None,
    help="Public key of the relay service that e-mails the members (`spartacus relay init`); it reads the roster "
    "after the reveal. Default: no relay service (run your own `relay run` with your member key, or no e-mail).",
)
@click.option(
    "--progress-email",
    default=None,
    help="With --relay: your address for the relay's progress e-mails (50%, 90%, 100% of N, the deadline), sealed "
    "so that only the relay service reads it (spartacus.relaynote). Default: no progress e-mails.",
)
@click.option("--name", required=True, help="The name the members will know you by.")
@click.option("--contact", "contacts", multiple=True, help="KEY=VALUE you share with the members (repeat).")
@click.option("--instructions-file", required=True, type=click.Path(), help="The sealed instructions (UTF-8 text).")
@click.option("--member-key-file", required=True, type=click.Path(), help="Your member key (created if missing).")
@network_option
@account_option
@relayer_option
@json_option
@_connected
def create(client: Any, account: str | None, relayer_url: str | None, as_json: bool, **o: Any) -> None:
    """Create a campaign; your sealed record (with the instructions) is pledge #1.

    With --relayer, your new member key's address is the creator: it signs, the relayer sends.
    """
    from .chain import MAX_KEEPERS, MAX_THRESHOLD, CampaignConfig, FactoryClient, sort_keepers
    from .envelope import PledgeContent, seal, seal_instructions
    from .keys import compress_public_key, parse_public_key
    from .relaynote import seal_note
    from .types import CampaignContext, LateJoiners, Scope

    now = client.timestamp()
    threshold, t = o["threshold"], o["keeper_threshold"]
    if not 1 <= threshold <= MAX_THRESHOLD:
        raise InputError(f"--threshold {threshold}: it must be 1 to {MAX_THRESHOLD:,}")
    deadline = parse_deadline(o["deadline"], now)
    if deadline <= now:
        raise InputError(f"--deadline {o['deadline']!r} is in the past (chain time {now}): pick a later time")
    if deadline > now + 366 * 86400:
        raise InputError(f"--deadline {o['deadline']!r} is more than 366 days away: pick an earlier time")
    keepers = sort_keepers([parse_public_key(k) for k in o["keepers"]])
    if len(set(keepers)) != len(keepers):
        raise InputError("the same --keeper is given twice: each keeper counts once")
    if len(keepers) > MAX_KEEPERS:
        raise InputError(f"{len(keepers)} keepers: the limit is {MAX_KEEPERS}")
    if not 1 <= t <= len(keepers):
        raise InputError(f"--keeper-threshold {t}: it must be between 1 and the number of keepers ({len(keepers)})")
    if o["deposit"] < 0:
        raise InputError("--deposit must be 0 or more wei")
    content = PledgeContent(name=o["name"], contact=parse_contacts(o["contacts"]))
    instructions = _read_text_file(o["instructions_file"], "--instructions-file", MAX_INSTRUCTIONS_BYTES)
    relay = compress_public_key(o["relay_key"]) if o["relay_key"] else b""
    if o["progress_email"] and not relay:
        raise InputError("--progress-email is for the relay service: pass its --relay PUBKEY too")
    relayed = _relayed(account, relayer_url)
    factory = FactoryClient(client, _factory_address(o["factory"]))
    earlier = _earlier_create(o["member_key_file"]) if relayed else None
    if earlier is not None:  # a creation signed by an earlier run: finish that one (same key, same address)
        salt, address = bytes.fromhex(earlier.extra["salt"]), earlier.extra["campaign"]
        member = _member_key(o["member_key_file"], create=False, campaign=address, chain_id=client.chain_id)
        creator = member.address
    elif relayed:  # the member key is the creator: made first, then the address it will create
        from .keys import KIND_MEMBER, KeyPair, generate_key_file

        pair, salt = KeyPair.generate(), secrets.token_bytes(32)
        address = factory.predict(pair.address, salt)
        member = generate_key_file(
            o["member_key_file"], KIND_MEMBER, campaign=address, chain_id=client.chain_id, pair=pair
        )
        creator = member.address
    else:
        signer = _signer(account, client)
        creator = signer.address
        salt = secrets.token_bytes(32)
        address = factory.predict(creator, salt)  # sealed to the address before it exists
        member = _member_key(o["member_key_file"], create=True, campaign=address, chain_id=client.chain_id)
    scope, late = Scope(o["scope"]), LateJoiners(o["late_joiners"])
    ctx = CampaignContext(client.chain_id, address, keepers, t, scope, late, relay or None)
    config = CampaignConfig(
        title=o["title"],
        purpose=o["purpose"],
        description=o["description"],
        plan=o["plan"],
        threshold=threshold,
        deadline=deadline,
        keepers=keepers,
        keeper_threshold=t,
        scope=scope,
        late_joiners=late,
        deposit=o["deposit"],
        beneficiary=o["beneficiary"] or "0x" + "00" * 20,
        relay=relay,
        relay_note=seal_note(relay, address, email=o["progress_email"]) if o["progress_email"] else b"",
        instructions=seal_instructions(instructions, ctx, member, creator=creator),
    )
    envelope = seal(content, ctx, member, pledger=creator)
    if relayed:
        from eth_utils.address import to_checksum_address

        from .forwarding import RelayedCall

        def build(prev: Any) -> RelayedCall:
            if prev is not None and not prev.refused:  # the bytes an earlier run may have sent
                click.echo(
                    f"finishing the creation signed earlier for {address}: this run's options are unused", err=True
                )
                return RelayedCall(factory.address, prev.request.data, prev.request.value, prev.extra)
            data = client.contracts.encode_call(
                "CampaignFactory", "createCampaign", [config.as_tuple(), salt, envelope, member.compressed]
            )
            return RelayedCall(factory.address, data, config.deposit, {"salt": salt.hex(), "campaign": address})

        assert relayer_url is not None
        result = _send_relayed(client, relayer_url, factory.address, member, o["member_key_file"], "create", build)
        [created] = result.events("CampaignCreated")
        campaign = str(to_checksum_address(created.args["campaign"]))
    else:
        campaign, result = factory.create(signer, config, salt, envelope, member.compressed)
    _emit(
        as_json,
        {"campaign": campaign, "tx": result.tx, "gas_used": result.gas_used},
        f"campaign created at {campaign} (tx {result.tx}, {result.gas_used:,} gas)\n"
        f"share it: supporters pledge with `spartacus pledge {campaign} ...`",
    )


@cli.command()
@click.argument("campaign")
@click.option("--name", required=True, help="The name the other members will know you by.")
@click.option("--contact", "contacts", multiple=True, help="KEY=VALUE you share with the members (repeat).")
@click.option("--message", default=None, help="An optional note to the other members.")
@click.option("--member-key-file", required=True, type=click.Path(), help="Your member key (created if missing).")
@click.option(
    "--factory",
    envvar="SPARTACUS_FACTORY",
    default=None,
    help="Refuse the campaign unless this factory created it. Default: $SPARTACUS_FACTORY.",
)
@network_option
@account_option
@relayer_option
@json_option
@_connected
def pledge(
    client: Any,
    account: str | None,
    relayer_url: str | None,
    as_json: bool,
    campaign: str,
    name: str,
    contacts: Sequence[str],
    message: str | None,
    member_key_file: str,
    factory: str | None,
) -> None:
    """Pledge to join CAMPAIGN: sealed here, revealed to the members only at the threshold.

    With --relayer, the member key's address is the pledger: it signs, the relayer sends (and
    pays the deposit, if it sponsors it); you need no funds at all.
    """
    from .chain import CampaignClient
    from .envelope import PledgeContent, seal

    content = PledgeContent(name=name, contact=parse_contacts(contacts), message=message)
    relayed = _relayed(account, relayer_url)
    signer = None if relayed else _signer(account, client)
    c = CampaignClient(client, campaign)
    status = c.status()
    if factory:  # before any deposit: a campaign of another factory may be a look-alike trap
        c.check_factory(factory)
    if status.state in ("expired", "cancelled"):
        raise InputError(f"campaign {c.address} is {status.state}: it takes no more pledges")
    existed = os.path.lexists(member_key_file)
    if signer is not None:
        _index, live_status, held = c.pledge_of(signer.address)
        if live_status == "live":
            raise InputError(f"{signer.address} already has a live pledge in {c.address}: one per address")
    member = _member_key(member_key_file, create=True, campaign=c.address, chain_id=client.chain_id)
    pledger = member.address if signer is None else signer.address
    if signer is not None and existed and any(p.live and p.member_key == member.compressed for p in c.pledges()):
        raise InputError(
            f"member key {member_key_file} is already in a live pledge of this campaign: use a new --member-key-file"
        )
    if signer is not None:
        envelope = seal(content, c.context(), member, pledger=pledger)
        result = c.pledge(signer, envelope, member.compressed, 0 if held else status.deposit)
    else:
        from .forwarding import RelayedCall

        def build(prev: Any) -> RelayedCall:
            _index, live_status, held = c.pledge_of(pledger)
            if live_status == "live":
                raise InputError(
                    f"member key {member_key_file} already has a live pledge (#{_index + 1}) in {c.address}"
                )
            value = 0 if held else status.deposit
            if prev is not None and not prev.refused and prev.request.to == c.address:
                data = prev.request.data  # the bytes an earlier run may have sent, sent again
            else:
                envelope = seal(content, c.context(), member, pledger=pledger)
                data = client.contracts.encode_call("Campaign", "pledge", [envelope, member.compressed])
            return RelayedCall(c.address, data, value)

        assert relayer_url is not None
        result = _send_relayed(client, relayer_url, c.address, member, member_key_file, "pledge", build)
    [event] = result.events("Pledged")
    count = int(event.args["count"])
    revealed = bool(result.events("ThresholdReached"))
    _emit(
        as_json,
        {
            "index": int(event.args["index"]),
            "count": count,
            "tx": result.tx,
            "gas_used": result.gas_used,
            "revealed": revealed,
            "pledger": pledger,
            "relayed": signer is None,
        },
        f"pledged: #{event.args['index']} in {c.address}, live count {count}/{status.threshold}"
        + (" - THRESHOLD REACHED: the campaign is revealed" if revealed else "")
        + (f"\nrelayed: the pledger is your member key's address {pledger}" if signer is None else "")
        + f"\nkeep {member_key_file} safe: it is how you read the roster",
    )


def _simple(name: str, doc: str, method: str, function: str, done: str) -> None:
    @cli.command(name=name, help=doc)
    @click.argument("campaign")
    @click.option(
        "--member-key-file",
        type=click.Path(),
        help="With --relayer: the member key that signs (the pledge's, or the creator's for cancel).",
    )
    @network_option
    @account_option
    @relayer_option
    @json_option
    @_connected
    def command(
        client: Any,
        account: str | None,
        relayer_url: str | None,
        member_key_file: str | None,
        as_json: bool,
        campaign: str,
    ) -> None:
        from .chain import CampaignClient
        from .forwarding import RelayedCall

        c = CampaignClient(client, campaign)
        c.status()  # a campaign at all? (never send a transaction to another contract or an empty address)
        caller = None
        if _relayed(account, relayer_url):
            if not member_key_file:
                raise InputError(f"--relayer needs --member-key-file: the member key signs the {name}")
            member = _member_key(member_key_file, create=False, campaign=c.address, chain_id=client.chain_id)
            caller = member.address
            data = client.contracts.encode_call("Campaign", function, [])
            assert relayer_url is not None
            result = _send_relayed(
                client,
                relayer_url,
                c.address,
                member,
                member_key_file,
                name,
                lambda _prev: RelayedCall(c.address, data),
            )
        else:
            result = getattr(c, method)(_signer(account, client))
        paid = sum(int(e.args["amount"]) for e in result.events("Refunded") + result.events("DepositsClaimed"))
        note = f"; {paid} wei went to your member key's address {caller}" if caller and paid else ""
        _emit(
            as_json,
            {"tx": result.tx, "gas_used": result.gas_used} | ({"caller": caller} if caller else {}),
            f"{done} (tx {result.tx}, {result.gas_used:,} gas){note}",
        )


_simple(
    "withdraw",
    "Withdraw your pledge before the reveal (it will never be revealed).",
    "withdraw",
    "withdraw",
    "withdrawn",
)
_simple("refund", "Take back your deposit when it is refundable.", "refund", "refund", "refunded")
_simple("cancel", "Cancel your campaign before the reveal (creator only).", "cancel", "cancel", "cancelled")
_simple(
    "claim",
    "Take the live pledges' deposits after the reveal (beneficiary only).",
    "claim_deposits",
    "claimDeposits",
    "claimed",
)


@cli.command()
@click.argument("campaign")
@network_option
@json_option
@_connected
def status(client: Any, as_json: bool, campaign: str) -> None:
    """The live count and state of CAMPAIGN, read from the contract."""
    from .chain import CampaignClient

    c = CampaignClient(client, campaign)
    st = c.status()
    config = c.created.config
    data = st.as_json() | {
        "title": config.title,
        "purpose": config.purpose,
        "keepers": ["0x" + k.hex() for k in config.keepers],
        "beneficiary": config.beneficiary,
    }
    when = datetime.fromtimestamp(st.deadline, UTC).isoformat()
    _emit(
        as_json,
        data,
        f"{config.title} ({c.address})\n"
        f"  state: {st.state}   live pledges: {st.count}/{st.threshold}   deadline: {when}\n"
        f"  deposit: {st.deposit} wei   keepers: {st.keeper_threshold} of {st.keeper_count}   scope: {st.scope}",
    )


@cli.command()
@click.argument("campaign")
@click.option("--member-key-file", type=click.Path(), help="Your member key (not needed for public campaigns).")
@network_option
@json_option
@_connected
def roster(client: Any, as_json: bool, campaign: str, member_key_file: str | None) -> None:
    """The roster and instructions of a revealed CAMPAIGN, rebuilt from the chain."""
    from .chain import CampaignClient
    from .roster import read_roster

    c = CampaignClient(client, campaign)
    c.status()  # a campaign at all? said before anything about the key file
    key = (
        _member_key(member_key_file, create=False, campaign=c.address, chain_id=client.chain_id)
        if member_key_file
        else None
    )
    result = read_roster(c, key)
    data = result.to_json()
    lines = [f"{len(result.members)} members of {c.address}"]
    lines += [
        f"  #{m.index + 1} {m.name}  " + "  ".join(f"{k}={v}" for k, v in m.contact.items()) for m in result.members
    ]
    if result.late_joiner:
        lines = [
            f"You joined {c.address} after its reveal: its members can read your record, and you receive "
            "the organizer's instructions, not the earlier roster (the campaign's late-joiner policy)."
        ]
    lines += ["", "Instructions:", result.instructions or "(none could be read yet)"]
    if result.skipped:
        lines += ["", "Skipped:"] + [
            f"  {'#' + str(s.index + 1) if s.index is not None else 'keeper #' + str(s.keeper_index)}: {s.reason}"
            if s.index is not None or s.keeper_index is not None
            else f"  {s.reason}"
            for s in result.skipped
        ]
    _emit(as_json, data, "\n".join(lines))


@cli.command()
@click.option("--factory", envvar="SPARTACUS_FACTORY", help="Factory address. Default: $SPARTACUS_FACTORY.")
@network_option
@json_option
@_connected
def campaigns(client: Any, as_json: bool, factory: str | None) -> None:
    """Every campaign of a factory, with its live count."""
    from .chain import CampaignClient, FactoryClient

    rows = []
    for created in FactoryClient(client, _factory_address(factory)).campaigns():
        st = CampaignClient(client, created.campaign).status()
        rows.append({"title": created.config.title} | st.as_json())
    _emit(
        as_json,
        {"campaigns": rows},
        "\n".join(f"{r['address']}  {r['state']:<9} {r['count']}/{r['threshold']}  {r['title']}" for r in rows)
        or "no campaigns yet",
    )


# ─── Keeper ──────────────────────────────────────────────────────────────────────────


@cli.group()
def keeper() -> None:
    """Run a keeper: hold a key, release shares only after a reveal."""


@keeper.command("init")
@click.option("--key-file", required=True, type=click.Path(), help="Where to create the keeper key (mode 0600).")
@json_option
def keeper_init(key_file: str, as_json: bool) -> None:
    """Create a keeper key; prints its public key (give it to organizers) and address (fund it)."""
    from .keys import KIND_KEEPER, generate_key_file

    pair = generate_key_file(key_file, KIND_KEEPER)
    public = "0x" + pair.public_key.hex()
    _emit(
        as_json,
        {"public_key": public, "address": pair.address},
        f"keeper key written to {key_file} (mode 0600)\npublic key: {public}\naddress: {pair.address}"
        " (fund it: it pays for its releases)",
    )


@keeper.command("run")
@click.option("--key-file", required=True, type=click.Path(), help="The keeper key file.")
@click.option("--factory", envvar="SPARTACUS_FACTORY", help="Factory to watch. Default: $SPARTACUS_FACTORY.")
@click.option("--confirmations", type=int, default=None, help="Blocks to wait after a reveal (default: 0 local, 12).")
@click.option("--state", "state_path", type=click.Path(), help="SQLite state (default: KEY_FILE.state.sqlite).")
@click.option("--interval", type=float, default=5.0, show_default=True, help="Seconds between passes.")
@click.option("--once", is_flag=True, help="Process what is there, then exit (5: its node was not believed).")
@click.option(
    "--max-release-bytes",
    type=click.IntRange(MIN_RELEASE_BYTES, 32_768),
    default=20_000,
    show_default=True,
    help="Largest release per transaction.",
)
@fee_options("a release")
@click.option(
    "--also-network",
    "also_networks",
    multiple=True,
    help="Another node (RPC URL) to ask every read pinned to a block: the keeper acts only on what all its nodes "
    "agree on, and refuses, loudly, when they differ (repeat for more).",
)
@network_option
@json_option
@_connected_waiting
def keeper_run(
    client: Any,
    as_json: bool,
    key_file: str,
    factory: str | None,
    confirmations: int | None,
    state_path: str | None,
    interval: float,
    once: bool,
    max_release_bytes: int,
    max_fee_gwei: float | None,
    stuck_blocks: int,
    also_networks: Sequence[str],
) -> None:
    """Watch the factory's campaigns that name this key; release after their reveal.

    Starts while the node is down and waits for it; keeps running through outages, fee spikes
    and an empty wallet (it says which address to fund, and how much), and resumes by itself.
    """
    from .keeper import Keeper
    from .keys import KIND_KEEPER, load_key_file

    key = load_key_file(key_file, KIND_KEEPER)
    if confirmations is not None and confirmations < 0:
        raise InputError("--confirmations must be 0 or more")
    if interval <= 0:
        raise InputError("--interval must be positive")
    client.fee_policy = _fee_policy(max_fee_gwei, stuck_blocks)
    if also_networks:
        _add_quorum(client, also_networks)
    k = Keeper(
        client,
        key,
        _factory_address(factory),
        state_path or f"{key_file}.state.sqlite",
        confirmations=confirmations,
        max_release_bytes=max_release_bytes,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        report = k.run(once=once, interval=interval, stop=stop)
    except KeyboardInterrupt:
        return
    finally:
        k.close()
    if once:
        _emit(
            as_json,
            {
                "discovered": report.discovered,
                "released": report.released,
                "granted": report.granted,
                "transactions": report.transactions,
                "closed": report.closed,
                "skipped": {c: [list(s) for s in v] for c, v in report.skipped.items()},
                "refused": report.refused,
            },
            f"keeper {key.address}: {len(report.transactions)} release transaction(s)",
        )
        if report.refused:
            raise NodeMismatchExit(
                f"refused to release for {len(report.refused)} campaign(s): the node's logs disagree with the"
                " contract's storage (see the log above); check --network or use another provider"
            )


def _add_quorum(client: Any, urls: Sequence[str]) -> None:
    """Puts ``client`` behind its own node and every URL of ``urls`` (:mod:`spartacus._quorum`)."""
    from web3 import Web3

    from ._ape import pin_chain_id
    from ._quorum import QuorumProvider

    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"--also-network {url!r}: give an http:// or https:// RPC URL")
    extra = [Web3.HTTPProvider(url, request_kwargs={"timeout": 30}) for url in urls]
    names = ["--network", *(f"--also-network {url}" for url in urls)]
    chain_id = client.chain_id  # the primary's, before the quorum compares it
    client.w3 = Web3(QuorumProvider([client.w3.provider, *extra], names))
    pin_chain_id(client.w3)  # every node's is compared once, below
    for provider, url in zip(extra, urls, strict=True):
        try:
            other = int(Web3(provider).eth.chain_id)
        except Exception as exc:  # noqa: BLE001 - requests raises many kinds
            raise InputError(f"--also-network {url}: cannot reach it ({exc.__class__.__name__})") from exc
        if other != chain_id:
            raise InputError(f"--also-network {url} is chain {other}, --network is chain {chain_id}")


class NodeMismatchExit(SpartacusError):
    """``keeper run --once`` refused to act on what its node said (exit status 5)."""


# ─── Relayer ─────────────────────────────────────────────────────────────────────────


@cli.group()
def relayer() -> None:
    """Run a relayer: carry member-key-signed requests to the chain, pay their gas (P8)."""


@relayer.command("run")
@click.option("--factory", envvar="SPARTACUS_FACTORY", help="The deployment it serves. Default: $SPARTACUS_FACTORY.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8550, show_default=True, help="Port to listen on.")
@click.option("--state", "state_path", type=click.Path(), help="SQLite journal (default: relayer-ADDRESS.sqlite).")
@click.option(
    "--client-limit", type=click.IntRange(1), default=30, show_default=True, help="Requests per client per window."
)
@click.option(
    "--campaign-limit",
    type=click.IntRange(1),
    default=300,
    show_default=True,
    help="Relayed transactions per campaign (creations, for the factory) per window.",
)
@click.option("--window", type=click.FloatRange(1), default=3600, show_default=True, help="Rate-limit window, s.")
@click.option(
    "--sponsor-max-wei",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="The largest deposit it pays for a pledger or creator (0: it sponsors none).",
)
@click.option(
    "--max-gas", type=click.IntRange(21_000), default=3_000_000, show_default=True, help="Largest request gas."
)
@click.option(
    "--min-balance-wei",
    type=click.IntRange(0),
    default=None,
    help="Below this balance /health says it cannot send (default: 300,000 gas at the current fee).",
)
@click.option(
    "--forwarded-header",
    default=None,
    help="Behind a reverse proxy: the header naming the client's address (e.g. X-Forwarded-For; its last"
    " hop counts). Only with a proxy that sets it, or clients could pick their own identity.",
)
@click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds between journal passes.")
@fee_options("a transaction")
@network_option
@account_option
@_connected
def relayer_run(
    client: Any,
    account: str | None,
    factory: str | None,
    host: str,
    port: int,
    state_path: str | None,
    client_limit: int,
    campaign_limit: int,
    window: float,
    sponsor_max_wei: int,
    max_gas: int,
    min_balance_wei: int | None,
    forwarded_header: str | None,
    interval: float,
    max_fee_gwei: float | None,
    stuck_blocks: int,
) -> None:
    """Serve the relayer API over HTTP until stopped (SIGTERM or Ctrl-C)."""
    from .relayer import Limits, Relayer, serve

    client.fee_policy = _fee_policy(max_fee_gwei, stuck_blocks)

    signer = _signer(account, client)
    if hasattr(signer, "_account") and hasattr(signer._account, "set_autosign"):
        # A keyfile account signs every transaction: unlock it once (Ape asks for the passphrase,
        # or reads APE_ACCOUNTS_<alias>_PASSPHRASE).
        signer._account.set_autosign(True)
    limits = Limits(
        client=client_limit,
        campaign=campaign_limit,
        window=window,
        sponsor_max_wei=sponsor_max_wei,
        max_gas=max_gas,
    )
    r = Relayer(
        client,
        signer,
        _factory_address(factory),
        state_path or f"relayer-{signer.address}.sqlite",
        limits,
        min_balance=min_balance_wei,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def ready(server: Any) -> None:
        bound = server.server_address
        click.echo(
            f"relayer {r.address} serving http://{bound[0]}:{bound[1]}/ for factory {r.factory.address}"
            f" (forwarder {r.forwarder}); sponsors deposits up to {limits.sponsor_max_wei} wei",
            err=True,
        )

    try:
        serve(r, host, port, stop=stop, interval=interval, forwarded_header=forwarded_header, on_ready=ready)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise InputError(f"cannot serve on {host}:{port} ({exc.strerror}): pick another --port or --host") from exc
    finally:
        r.close()


# ─── Entry point ─────────────────────────────────────────────────────────────────────


from ._cli_relay import relay as _relay  # noqa: E402

cli.add_command(_relay)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command; turns our errors into one line on stderr and a non-zero status."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="spartacus", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("spartacus: aborted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"spartacus: {exc.format_message()}", err=True)
        return exc.exit_code
    except KeyFileError as exc:
        click.echo(f"spartacus: {exc.message}", err=True)
        return 3
    except NotRevealedError as exc:
        click.echo(f"spartacus: {exc.message}", err=True)
        return 4
    except NodeMismatchExit as exc:
        click.echo(f"spartacus: {exc.message}", err=True)
        return 5
    except SpartacusError as exc:
        click.echo(f"spartacus: {exc.message}", err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
