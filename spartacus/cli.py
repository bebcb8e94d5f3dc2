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
from typing import Any, TypeVar

import click

from ._exceptions import InputError, KeyFileError, NotRevealedError, SpartacusError
from .inputs import LATE_JOINER_CHOICES, parse_contacts, parse_deadline

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


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")(f)


def _emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(data, sort_keys=True) if as_json else text)


def _signer(account: str | None, client: Any) -> Any:
    if not account:
        raise InputError("this command sends a transaction: pass --account ALIAS (or TEST::N on a local chain)")
    from ._ape import signer_for

    return signer_for(account, client.chain_id)


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
@click.option("--name", required=True, help="The name the members will know you by.")
@click.option("--contact", "contacts", multiple=True, help="KEY=VALUE you share with the members (repeat).")
@click.option("--instructions-file", required=True, type=click.Path(), help="The sealed instructions (UTF-8 text).")
@click.option("--member-key-file", required=True, type=click.Path(), help="Your member key (created if missing).")
@network_option
@account_option
@json_option
@_connected
def create(client: Any, account: str | None, as_json: bool, **o: Any) -> None:
    """Create a campaign; your sealed record (with the instructions) is pledge #1."""
    from .chain import MAX_KEEPERS, MAX_THRESHOLD, CampaignConfig, FactoryClient, sort_keepers
    from .envelope import PledgeContent, seal, seal_instructions
    from .keys import compress_public_key, parse_public_key
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
    signer = _signer(account, client)
    factory = FactoryClient(client, _factory_address(o["factory"]))

    salt = secrets.token_bytes(32)
    address = factory.predict(signer.address, salt)  # sealed to the address before it exists
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
        instructions=seal_instructions(instructions, ctx, member, creator=signer.address),
    )
    envelope = seal(content, ctx, member, pledger=signer.address)
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
@json_option
@_connected
def pledge(
    client: Any,
    account: str | None,
    as_json: bool,
    campaign: str,
    name: str,
    contacts: Sequence[str],
    message: str | None,
    member_key_file: str,
    factory: str | None,
) -> None:
    """Pledge to join CAMPAIGN: sealed here, revealed to the members only at the threshold."""
    from .chain import CampaignClient
    from .envelope import PledgeContent, seal

    content = PledgeContent(name=name, contact=parse_contacts(contacts), message=message)
    signer = _signer(account, client)
    c = CampaignClient(client, campaign)
    status = c.status()
    if factory:  # before any deposit: a campaign of another factory may be a look-alike trap
        c.check_factory(factory)
    if status.state in ("expired", "cancelled"):
        raise InputError(f"campaign {c.address} is {status.state}: it takes no more pledges")
    _index, live_status, held = c.pledge_of(signer.address)
    if live_status == "live":
        raise InputError(f"{signer.address} already has a live pledge in {c.address}: one per address")
    existed = os.path.lexists(member_key_file)
    member = _member_key(member_key_file, create=True, campaign=c.address, chain_id=client.chain_id)
    if existed and any(p.live and p.member_key == member.compressed for p in c.pledges()):
        raise InputError(
            f"member key {member_key_file} is already in a live pledge of this campaign: use a new --member-key-file"
        )
    value = 0 if held else status.deposit
    envelope = seal(content, c.context(), member, pledger=signer.address)
    result = c.pledge(signer, envelope, member.compressed, value)
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
        },
        f"pledged: #{event.args['index']} in {c.address}, live count {count}/{status.threshold}"
        + (" - THRESHOLD REACHED: the campaign is revealed" if revealed else "")
        + f"\nkeep {member_key_file} safe: it is how you read the roster",
    )


def _simple(name: str, doc: str, method: str, done: str) -> None:
    @cli.command(name=name, help=doc)
    @click.argument("campaign")
    @network_option
    @account_option
    @json_option
    @_connected
    def command(client: Any, account: str | None, as_json: bool, campaign: str) -> None:
        from .chain import CampaignClient

        c = CampaignClient(client, campaign)
        c.status()  # a campaign at all? (never send a transaction to another contract or an empty address)
        result = getattr(c, method)(_signer(account, client))
        _emit(
            as_json,
            {"tx": result.tx, "gas_used": result.gas_used},
            f"{done} (tx {result.tx}, {result.gas_used:,} gas)",
        )


_simple("withdraw", "Withdraw your pledge before the reveal (it will never be revealed).", "withdraw", "withdrawn")
_simple("refund", "Take back your deposit when it is refundable.", "refund", "refunded")
_simple("cancel", "Cancel your campaign before the reveal (creator only).", "cancel", "cancelled")
_simple("claim", "Take the live pledges' deposits after the reveal (beneficiary only).", "claim_deposits", "claimed")


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
@click.option(
    "--max-fee-gwei",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Most a release may offer per gas, in gwei, replacements included (default: no cap). A release "
    "stuck behind a fee spike is replaced with a higher fee up to this cap, then waits for fees to fall.",
)
@click.option(
    "--also-network",
    "also_networks",
    multiple=True,
    help="Another node (RPC URL) to ask every read pinned to a block: the keeper acts only on what all its nodes "
    "agree on, and refuses, loudly, when they differ (repeat for more).",
)
@click.option(
    "--stuck-blocks",
    type=click.IntRange(1, 10_000),
    default=3,
    show_default=True,
    help="Blocks a release may stay unmined before it is replaced with a higher fee.",
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
    from ._fees import GWEI, FeePolicy
    from .keeper import Keeper
    from .keys import KIND_KEEPER, load_key_file

    key = load_key_file(key_file, KIND_KEEPER)
    if confirmations is not None and confirmations < 0:
        raise InputError("--confirmations must be 0 or more")
    if interval <= 0:
        raise InputError("--interval must be positive")
    max_fee = None if max_fee_gwei is None else int(max_fee_gwei * GWEI)
    client.fee_policy = FeePolicy(max_fee=max_fee, stuck_blocks=stuck_blocks)
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

    from ._quorum import QuorumProvider

    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"--also-network {url!r}: give an http:// or https:// RPC URL")
    extra = [Web3.HTTPProvider(url, request_kwargs={"timeout": 30}) for url in urls]
    names = ["--network", *(f"--also-network {url}" for url in urls)]
    chain_id = client.chain_id  # the primary's, before the quorum compares it
    client.w3 = Web3(QuorumProvider([client.w3.provider, *extra], names))
    for provider, url in zip(extra, urls, strict=True):
        try:
            other = int(Web3(provider).eth.chain_id)
        except Exception as exc:  # noqa: BLE001 - requests raises many kinds
            raise InputError(f"--also-network {url}: cannot reach it ({exc.__class__.__name__})") from exc
        if other != chain_id:
            raise InputError(f"--also-network {url} is chain {other}, --network is chain {chain_id}")


class NodeMismatchExit(SpartacusError):
    """``keeper run --once`` refused to act on what its node said (exit status 5)."""


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
