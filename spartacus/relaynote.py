"""The relay note: the organizer's address for progress e-mails, sealed so that only the relay reads it.

A campaign that names a relay service (``config.relay``, a 33-byte compressed key) may carry a
note sealed to that key (``config.relayNote``). The relay service opens it after the
campaign's creation and writes to the organizer at 50 %, 90 % and 100 % of N and at the
deadline. Nothing about the organizer travels in clear: on-chain there are only the note's
ciphertext bytes.

Format (version 1)::

    note      = ECIES(relay key, plaintext)        eciespy with the pinned configuration of
                                                   spartacus.keys.wrap/unwrap (65-byte ephemeral
                                                   key, HKDF-SHA256, AES-256-GCM, 16-byte nonce),
                                                   equal to eciesjs's defaults: a browser writes it
    plaintext = UTF-8 JSON, keys sorted, no spaces:
                {"campaign":"0x<checksummed address>","contact":{"email":"a@b.example"},"name":null|"…","v":1}

``campaign`` binds the note to one campaign: a note copied into another campaign's creation
(to make the relay write to someone else's address under that campaign's name) is refused.
A note is at most 1,024 bytes (the contract's ``MAX_RELAY_NOTE``). A note that does not open,
does not parse or names another campaign is reported by the relay, never fatal: the members
are e-mailed all the same, only the organizer's notices are not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from eth_utils.address import is_address, to_checksum_address

from ._exceptions import DecryptionError, EnvelopeError, InputError
from ._relay_render import valid_address
from .keys import ECIES_OVERHEAD, PrivateKeyLike, compress_public_key, unwrap, wrap

__all__ = ["MAX_NOTE_BYTES", "NOTE_VERSION", "RelayNote", "note_plaintext", "open_note", "seal_note"]

NOTE_VERSION: Final = 1
#: The contract's cap (``Campaign.MAX_RELAY_NOTE``).
MAX_NOTE_BYTES: Final = 1024
_MAX_NAME: Final = 200


@dataclass(frozen=True)
class RelayNote:
    """What a relay note says: its campaign, the organizer's e-mail and (optionally) a name."""

    campaign: str
    email: str
    name: str | None = None


def note_plaintext(campaign: str, email: str, name: str | None = None) -> bytes:
    """The canonical plaintext of a note (sorted keys, no spaces, UTF-8)."""
    if not is_address(campaign):
        raise InputError(f"{campaign!r} is not a campaign address")
    if not valid_address(email):
        raise InputError(f"{email!r} is not an e-mail address the relay can write to (a plain local@domain)")
    if name is not None and (not name.strip() or len(name) > _MAX_NAME or not name.isprintable()):
        raise InputError(f"the name in a relay note is 1 to {_MAX_NAME} printable characters")
    doc = {"campaign": to_checksum_address(campaign), "contact": {"email": email}, "name": name, "v": NOTE_VERSION}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def seal_note(relay_key: bytes | str, campaign: str, *, email: str, name: str | None = None) -> bytes:
    """A note for ``campaign`` that only the holder of ``relay_key`` (33, 64 or 65 bytes, or hex) opens."""
    plaintext = note_plaintext(campaign, email, name)
    if len(plaintext) + ECIES_OVERHEAD > MAX_NOTE_BYTES:
        raise InputError(f"the relay note would be over {MAX_NOTE_BYTES} bytes: shorten the name or the address")
    return wrap(compress_public_key(relay_key), plaintext)


def open_note(key: PrivateKeyLike, note: bytes, campaign: str) -> RelayNote:
    """Opens a note with the relay's key and checks it is ``campaign``'s.

    :class:`DecryptionError` if it does not open with this key (sealed to another relay, or
    altered); :class:`EnvelopeError` if it is too long, malformed, of another version, or names
    another campaign. Callers report these; none is a reason to stop serving the campaign."""
    if len(note) > MAX_NOTE_BYTES:
        raise EnvelopeError(f"the relay note is {len(note)} bytes, over the {MAX_NOTE_BYTES}-byte limit")
    try:
        plaintext = unwrap(key, note)
    except DecryptionError:
        raise DecryptionError(
            "the relay note does not open with this relay's key (sealed to another key, or altered)"
        ) from None
    try:
        doc: Any = json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise EnvelopeError("the relay note is not UTF-8 JSON") from None
    if not isinstance(doc, dict) or doc.get("v") != NOTE_VERSION:
        raise EnvelopeError(f"the relay note is not a version {NOTE_VERSION} note")
    named = doc.get("campaign")
    if not isinstance(named, str) or not is_address(named) or named.lower() != campaign.lower():
        raise EnvelopeError(
            f"the relay note names campaign {named!r}, not {campaign}: it was copied from another campaign; ignored"
        )
    contact = doc.get("contact")
    email = contact.get("email") if isinstance(contact, dict) else None
    if not isinstance(email, str) or not valid_address(email):
        raise EnvelopeError("the relay note holds no e-mail address the relay can write to")
    name = doc.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > _MAX_NAME or not name.isprintable()):
        raise EnvelopeError("the relay note's name is not a short printable text")
    return RelayNote(to_checksum_address(named), email, name or None)
