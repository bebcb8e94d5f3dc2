"""Parsing what people type: contact fields and deadlines (shared by the CLI and the dApp)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from ._exceptions import InputError

__all__ = ["parse_contacts", "parse_deadline", "LATE_JOINER_CHOICES"]

#: ``--late-joiners`` choices, in the contract's order (``ICampaign.LateJoiners``).
LATE_JOINER_CHOICES: Final = ("known", "roster", "closed")

_RELATIVE: Final = re.compile(r"^\+(\d+)([smhdw])$")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_contacts(values: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` items into a dict (keys lower-cased, each at most once)."""
    contacts: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--contact {item!r}: write it as KEY=VALUE, e.g. --contact email=me@example.org")
        key = key.strip().lower()
        if key in contacts:
            raise InputError(f"--contact {key} given twice: give each field once")
        contacts[key] = value.strip()
    return contacts


def parse_deadline(text: str, now: int) -> int:
    """``+7d`` / ``+12h`` / ``+30m`` (from the chain's time ``now``) or ISO 8601; unix seconds."""
    text = text.strip()
    match = _RELATIVE.match(text)
    if match:
        return now + int(match.group(1)) * _UNITS[match.group(2)]
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(
            f"deadline {text!r}: use ISO 8601 (2026-12-31T18:00:00Z) or a duration like +7d, +12h, +30m"
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())
