"""Formatting for the pages, and the one rule for text that strangers wrote.

Anything read from the chain or a node (a campaign's title, a revert string, a node's error) is
shown as text, never as Markdown: a Markdown image in a fake campaign's revert string would make
the visitor's browser load it, linking their IP address to their account. :func:`escape_md`
makes such text literal for the few places that render Markdown; errors go through
:func:`error_text` and are always escaped by the page helpers.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from spartacus._exceptions import ContractRevert, InputError, SpartacusError

__all__ = [
    "error_text",
    "escape_md",
    "format_duration",
    "format_time",
    "format_wei",
    "parse_eth",
    "short",
    "state_text",
    "time_left_text",
]


def format_wei(wei: int, symbol: str = "ETH") -> str:
    """``10**16`` → ``0.01 ETH``; amounts under a gwei stay in wei."""
    if wei == 0:
        return f"0 {symbol}"
    if wei < 10**9:
        return f"{wei:,} wei"
    text = format(Decimal(wei) / Decimal(10**18), "f").rstrip("0").rstrip(".")
    return f"{text} {symbol}"


def parse_eth(text: str, what: str = "Deposit") -> int:
    """A decimal amount of ether (``0.01``) → wei; blank is 0."""
    text = (text or "").strip().replace(",", "").replace("_", "")
    if text.lower().endswith("eth"):
        text = text[:-3].strip()
    if not text:
        return 0
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise InputError(f"{what}: {text!r} is not an amount; write it in ETH, e.g. 0.01") from None
    if not amount.is_finite() or amount < 0:
        raise InputError(f"{what} must be 0 or more ETH")
    wei = amount * Decimal(10**18)
    if wei != wei.to_integral_value():
        raise InputError(f"{what}: {text} ETH has more than 18 decimals")
    return int(wei)


def format_duration(seconds: int) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def format_time(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def short(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}"


def time_left_text(state: str, deadline: int, now: int) -> str:
    if state in ("revealed", "cancelled"):
        return state
    if state == "expired" or deadline <= now:
        return "deadline passed"
    return f"{format_duration(deadline - now)} left"


def state_text(state: str, deadline: int, now: int) -> str:
    """``open · 6 d 23 h left``, ``expired · deadline passed``, ``revealed`` (said once)."""
    left = time_left_text(state, deadline, now)
    return state if left == state else f"{state} · {left}"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=^&@])")


def escape_md(text: str, *, multiline: bool = False) -> str:
    """Text as literal Markdown: no links, images, HTML, LaTeX or Streamlit directives."""
    escaped = _MD_SPECIAL.sub(r"\\\1", str(text))
    if not multiline:
        return " ".join(escaped.split())
    return "  \n".join(line.rstrip() for line in escaped.splitlines())


def error_text(exc: BaseException) -> str:
    """Our errors carry a sentence; a refusal by the contract reads ``The contract refused: …``.
    Anything else (a node's or a library's error) is named with its message. Not escaped: the
    page helpers escape it."""
    if isinstance(exc, SpartacusError):
        text = exc.message
        if isinstance(exc, ContractRevert) and text.startswith("refused: "):
            text = "The contract refused: " + text.removeprefix("refused: ")
        return text[0].upper() + text[1:] if text else str(exc)
    return f"{exc.__class__.__name__}: {exc}"
