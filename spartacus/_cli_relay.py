"""``spartacus relay``: email every member the roster and the instructions, once.

A thin layer over :mod:`spartacus.relay`. It imports nothing from :mod:`spartacus.cli`
(which registers this group), so ``python -m spartacus.cli`` has no import cycle; the
few shared options are restated here. Errors are ours (``SpartacusError``), turned into
one line on stderr by ``spartacus.cli.main``.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import click

from ._exceptions import InputError

__all__ = ["relay"]

_NETWORK_HELP = (
    "Ape network choice (e.g. ethereum:sepolia:node) or RPC URL. Default: $SPARTACUS_NETWORK, "
    "else the local anvil (ethereum:local:foundry)."
)


def _state_path(state: str | None, member_key_file: str | None) -> Path:
    from .relay import default_state_path

    if state:
        return Path(state)
    if member_key_file:
        return default_state_path(member_key_file)
    raise InputError("pass --state PATH (or --member-key-file F, whose state is F.relay.sqlite)")


def _password(password_file: str | None) -> str | None:
    if password_file:
        try:
            return Path(password_file).read_text("utf-8").rstrip("\r\n")
        except OSError as exc:
            raise InputError(f"--smtp-password-file {password_file}: cannot read it ({exc.strerror})") from exc
        except UnicodeDecodeError as exc:
            raise InputError(f"--smtp-password-file {password_file} is not UTF-8 text") from exc
    return os.environ.get("SPARTACUS_SMTP_PASSWORD") or None


def _summary(status: dict[str, Any]) -> str:
    counts = status["counts"]
    return "   ".join(f"{name} {counts[name]}" for name in ("delivered", "pending", "failed", "uncertain", "skipped"))


def _details(status: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for group in ("failed", "uncertain", "pending"):
        for row in status[group]:
            lines.append(
                f"  {group}: #{row['member']} {row['email']} ({row['kind']}, batch {row['batch']})"
                + (f": {row['error']}" if row["error"] else "")
            )
    lines += [f"  skipped: #{s['member']} {s['name']}: {s['reason']}" for s in status["skipped"]]
    return lines


@click.group()
def relay() -> None:
    """Email every member the roster and the instructions after the reveal, exactly once."""


@relay.command("run")
@click.argument("campaign")
@click.option("--member-key-file", required=True, type=click.Path(), help="Your member key (the relay is a member).")
@click.option("--smtp-host", required=True, help="SMTP server to send through.")
@click.option("--smtp-port", required=True, type=click.IntRange(1, 65535), help="Its port (25, 465 SSL, 587).")
@click.option("--smtp-user", default=None, help="Login, if the server wants one.")
@click.option(
    "--smtp-password-file",
    type=click.Path(),
    default=None,
    help="File holding the SMTP password (default: $SPARTACUS_SMTP_PASSWORD).",
)
@click.option("--smtp-starttls", is_flag=True, help="Upgrade the connection with STARTTLS (port 587).")
@click.option("--smtp-ssl", is_flag=True, help="Connect with TLS from the start (port 465).")
@click.option("--from", "sender", envvar="SPARTACUS_RELAY_FROM", default=None, help="From address.")
@click.option(
    "--dapp-url",
    envvar="SPARTACUS_DAPP_URL",
    default=None,
    help="The dApp's address; the campaign's page is URL?campaign=0x… ({campaign} in the URL is replaced). "
    "Default: $SPARTACUS_DAPP_URL, else http://localhost:8501/.",
)
@click.option("--state", "state_path", type=click.Path(), help="SQLite state (default: MEMBER_KEY_FILE.relay.sqlite).")
@click.option("--interval", type=float, default=15.0, show_default=True, help="Seconds between passes.")
@click.option(
    "--settle",
    type=float,
    default=120.0,
    show_default=True,
    help="While some pledge is not readable yet, wait this long after the keepers' last change before a batch.",
)
@click.option("--retry-base", type=float, default=5.0, show_default=True, help="First retry delay (doubles).")
@click.option("--retry-max", type=float, default=600.0, show_default=True, help="Longest retry delay.")
@click.option(
    "--resend-uncertain",
    is_flag=True,
    help="Send again the messages a crash left uncertain (check the server's log first).",
)
@click.option("--once", is_flag=True, help="One pass (send what can be sent now), then exit.")
@click.option("--network", envvar="SPARTACUS_NETWORK", default=None, help=_NETWORK_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end.")
def relay_run(
    campaign: str,
    member_key_file: str,
    smtp_host: str,
    smtp_port: int,
    smtp_user: str | None,
    smtp_password_file: str | None,
    smtp_starttls: bool,
    smtp_ssl: bool,
    sender: str | None,
    dapp_url: str | None,
    state_path: str | None,
    interval: float,
    settle: float,
    retry_base: float,
    retry_max: float,
    resend_uncertain: bool,
    once: bool,
    network: str | None,
    as_json: bool,
) -> None:
    """After CAMPAIGN's reveal, email each member the roster and the instructions (and late joiners theirs)."""
    from ._ape import connect
    from .chain import ChainClient
    from .keys import KIND_MEMBER, load_key_file
    from .relay import DEFAULT_DAPP_URL, DEFAULT_SENDER, Relay, SmtpSettings, relay_status

    if smtp_starttls and smtp_ssl:
        raise InputError("--smtp-starttls and --smtp-ssl exclude each other: pick one (587 STARTTLS, 465 SSL)")
    if smtp_password_file and not smtp_user:
        raise InputError("--smtp-password-file without --smtp-user: pass the login too")
    if interval <= 0 or settle < 0:
        raise InputError("--interval must be positive and --settle 0 or more")
    url = dapp_url or DEFAULT_DAPP_URL
    if not url.startswith(("http://", "https://")):
        raise InputError(f"--dapp-url {url!r}: give an http:// or https:// address")
    smtp = SmtpSettings(
        host=smtp_host,
        port=smtp_port,
        security="ssl" if smtp_ssl else "starttls" if smtp_starttls else "none",
        user=smtp_user or None,
        password=_password(smtp_password_file) if smtp_user else None,
        sender=sender or (smtp_user if smtp_user and "@" in smtp_user else DEFAULT_SENDER),
    )
    key = load_key_file(member_key_file, KIND_MEMBER, campaign=campaign)
    state = _state_path(state_path, member_key_file)

    def say(line: str) -> None:
        click.echo(line, err=as_json)  # progress; with --json stdout is kept for the one object

    stopping = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.update(now=True))
    with (
        connect(network) as w3,
        Relay(
            ChainClient(w3),
            campaign,
            key,
            smtp,
            state,
            dapp_url=url,
            settle=settle,
            retry_base=retry_base,
            retry_max=retry_max,
            notify=say,
        ) as r,
    ):
        if resend_uncertain:
            say(f"{r.resend_uncertain()} uncertain message(s) queued again")
        try:
            report = r.run(once=once, interval=interval, stop=lambda: stopping["now"])
        except KeyboardInterrupt:
            return
    status = relay_status(state)
    if as_json:
        click.echo(json.dumps(report.to_json() | {"counts": status["counts"]}, sort_keys=True))
    else:
        click.echo(f"relay {report.campaign}: sent {len(report.sent)} this run;   {_summary(status)}")


@relay.command("status")
@click.argument("campaign")
@click.option("--state", "state_path", type=click.Path(), help="The relay's SQLite state.")
@click.option(
    "--member-key-file", type=click.Path(), help="Or the member key file it runs with (its state is next to it)."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def relay_status_command(campaign: str, state_path: str | None, member_key_file: str | None, as_json: bool) -> None:
    """What the relay of CAMPAIGN delivered, has pending, and failed to deliver (from its state; no chain)."""
    from .relay import relay_status

    status = relay_status(_state_path(state_path, member_key_file), campaign)
    if as_json:
        click.echo(json.dumps(status, sort_keys=True))
        return
    lines = [
        f"relay of {status['campaign']} (chain {status['chain_id']}): {status['members']} member(s) in"
        f" {status['batches']} batch(es)",
        f"  {_summary(status)}",
        *_details(status),
    ]
    click.echo("\n".join(lines))
