"""The Create page's public fields, checked here with messages that say what to do.

Only what is public anyway goes through Streamlit widgets: the campaign's texts, threshold,
deadline, keepers, deposit, scope, late-joiner policy, beneficiary and relay choice. The
organizer's record and instructions are typed in the browser component and sealed there.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from _campaign import ZERO_ADDRESS
from _text import format_time, parse_eth
from eth_utils.address import is_address, to_checksum_address

from spartacus._exceptions import InputError
from spartacus.chain import MAX_DURATION, MAX_KEEPERS, MAX_THRESHOLD, sort_keepers
from spartacus.inputs import LATE_JOINER_CHOICES, parse_deadline
from spartacus.keys import parse_public_key
from spartacus.types import LateJoiners, Scope

__all__ = [
    "PURPOSE_MAX",
    "TEXT_MAX",
    "TITLE_MAX",
    "RELAY_CHOICES",
    "CreateForm",
    "parse_deadline_text",
    "parse_keepers",
    "validate_create",
]

TITLE_MAX = 120
PURPOSE_MAX = 280
TEXT_MAX = 20_000
#: Who sends the members' e-mail: a relay service, the organizer's own relay, or nobody.
RELAY_CHOICES = ("service", "own", "none")


def _single_line(what: str, text: str, limit: int, *, required: bool) -> str:
    text = (text or "").strip()
    if required and not text:
        raise InputError(f"{what} is empty: it is required")
    if len(text) > limit:
        raise InputError(f"{what} is {len(text)} characters: the limit is {limit}")
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise InputError(f"{what} contains a line break or control character: keep it on one line")
    return text


def _long_text(what: str, text: str, limit: int) -> str:
    text = (text or "").strip()
    if len(text) > limit:
        raise InputError(f"{what} is {len(text):,} characters: the limit is {limit:,}")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\r\t" for ch in text):
        raise InputError(f"{what} contains a control character: remove it")
    return text


def parse_keepers(picked: Iterable[str], pasted: str) -> tuple[bytes, ...]:
    """Keeper public keys from the list and the text box, in the contract's order."""
    texts = list(picked) + [k for k in re.split(r"[\s,;]+", pasted or "") if k]
    if not texts:
        raise InputError("Keepers: none given: pick at least one from the list or paste a keeper's public key")
    keys: list[bytes] = []
    for i, text in enumerate(texts, start=1):
        try:
            keys.append(parse_public_key(text))
        except InputError as exc:
            raise InputError(f"Keeper {i} ({text[:12]}…): {exc.message}") from None
    if len(set(keys)) != len(keys):
        raise InputError("Keepers: the same key is given twice: each keeper counts once")
    if len(keys) > MAX_KEEPERS:
        raise InputError(f"Keepers: {len(keys)} given: the limit is {MAX_KEEPERS}")
    return sort_keepers(keys)


def parse_deadline_text(text: str, now: int) -> int:
    text = (text or "").strip()
    try:
        deadline = parse_deadline(text, now)
    except InputError:
        raise InputError(
            f"Deadline {text!r}: write a date and time in ISO 8601 (2026-12-31T18:00Z) or a duration "
            "from now like +7d, +12h, +30m"
        ) from None
    if deadline <= now:
        raise InputError(f"Deadline {format_time(deadline)} is in the past: pick a later time")
    if deadline > now + MAX_DURATION:
        raise InputError(f"Deadline {format_time(deadline)} is more than 366 days away: pick an earlier time")
    return deadline


@dataclass
class CreateForm:
    """The create page's public fields, as typed."""

    title: str = ""
    purpose: str = ""
    description: str = ""
    plan: str = ""
    threshold: int | None = None
    deadline: str = "+14d"
    keepers_picked: Sequence[str] = ()
    keepers_pasted: str = ""
    keeper_threshold: int | None = None
    deposit: str = "0"
    scope: str = "members"
    late_joiners: str = "known"
    beneficiary: str = ""
    relay: str = "none"


def _collect(errors: list[str], fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except InputError as exc:
        errors.append(exc.message)
        return None


def validate_create(form: CreateForm, now: int, relay_service: bytes | None) -> tuple[dict[str, Any] | None, list[str]]:
    """The public part of ``ICampaign.Config`` as the browser component encodes it (bytes as hex,
    the deposit as a decimal string; ``relayNote`` and ``instructions`` are added in the browser),
    or every problem (one sentence each, with the fix)."""
    errors: list[str] = []
    title = _collect(errors, _single_line, "Title", form.title, TITLE_MAX, required=True)
    purpose = _collect(errors, _single_line, "Purpose", form.purpose, PURPOSE_MAX, required=True)
    description = _collect(errors, _long_text, "Description", form.description, TEXT_MAX)
    plan = _collect(errors, _long_text, "Plan", form.plan, TEXT_MAX)
    threshold = form.threshold
    if threshold is None:
        errors.append("Threshold N is empty: how many live pledges (yours included) trigger the reveal?")
    elif not 1 <= threshold <= MAX_THRESHOLD:
        errors.append(f"Threshold N: {threshold}: it must be 1 to {MAX_THRESHOLD:,} live pledges (yours included)")
    deadline = _collect(errors, parse_deadline_text, form.deadline, now)
    keepers = _collect(errors, parse_keepers, form.keepers_picked, form.keepers_pasted)
    t = form.keeper_threshold
    if t is None:
        errors.append("Keeper threshold t is empty: how many keepers are needed to open a pledge?")
    elif t < 1:
        errors.append(f"Keeper threshold t: {t}: it must be at least 1 (and at most the number of keepers)")
    elif keepers is not None and not 1 <= t <= len(keepers):
        errors.append(f"Keeper threshold t: {t}: it must be between 1 and the number of keepers ({len(keepers)})")
    deposit = _collect(errors, parse_eth, form.deposit)
    if form.scope not in ("members", "public"):
        errors.append("Reveal to: choose members or public")
    if form.late_joiners not in LATE_JOINER_CHOICES:
        errors.append("Late joiners: choose known, roster or closed")
    beneficiary = ZERO_ADDRESS
    if (form.beneficiary or "").strip():
        if not is_address(form.beneficiary.strip()):
            errors.append(f"Beneficiary {form.beneficiary.strip()!r} is not an address: leave it empty or paste 0x…")
        else:
            beneficiary = to_checksum_address(form.beneficiary.strip())
    relay = b""
    if form.relay == "service":
        if relay_service is None:
            errors.append(
                "No relay service is offered here (SPARTACUS_RELAY_SERVICE): choose your own relay, or no e-mail"
            )
        else:
            relay = relay_service
    elif form.relay not in RELAY_CHOICES:
        errors.append("E-mail: choose a relay service, your own relay, or no e-mail")
    if errors:
        return None, errors
    return {
        "title": title,
        "purpose": purpose,
        "description": description,
        "plan": plan,
        "threshold": int(threshold),  # type: ignore[arg-type]
        "deadline": int(deadline),
        "keepers": ["0x" + k.hex() for k in keepers],
        "keeperThreshold": int(t),  # type: ignore[arg-type]
        "scope": Scope(form.scope).code,
        "lateJoiners": LateJoiners(form.late_joiners).code,
        "deposit": str(deposit),
        "beneficiary": beneficiary,
        "relay": "0x" + relay.hex(),
        "relayNote": "0x",
        "instructions": "0x",
    }, []
