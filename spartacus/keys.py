"""secp256k1 keys: key files, public-key formats, addresses and ECIES wrapping.

Two kinds of long-term key live in key files:

* a **member key** (``spartacus-member-key``): the fresh key ``M`` a pledger
  (or the organizer) creates for one pledge; its compressed public key travels
  in clear beside the sealed envelope, and keepers wrap their release keys to it;
* a **keeper key** (``spartacus-keeper-key``): a keeper's long-term key; its
  64-byte public key is named in the campaign's keeper set;
* a **relay key** (``spartacus-relay-key``): a relay service's long-term key; campaigns that
  name its public key are e-mailed by it, and keepers grant it the roster after the reveal.

Key file format (UTF-8, one line, created with mode ``0600``)::

    {"version":1,"kind":"spartacus-keeper-key","private_key":"0x<64 hex digits>"}\\n
    {"version":2,"kind":"spartacus-member-key","chain_id":31337,"campaign":"0x<40 hex>","private_key":"0x…"}\\n

A member key belongs to one campaign on one chain (version 2 names them): a member key used
twice would link the two pledges on-chain, so :func:`load_key_file` refuses it for any other
campaign (``campaign=`` / ``chain_id=``). The browser writes the same file.

Public keys are handled in three encodings:

* ``pub64``: uncompressed point without the ``0x04`` prefix (64 bytes, X||Y);
  what Ethereum tooling calls "the public key" and what the keeper set holds;
* ``pub65``: ``0x04 || X || Y`` (SEC1 uncompressed);
* ``pub33``: ``0x02|0x03 || X`` (SEC1 compressed); member keys on-chain.

ECIES (:func:`wrap` / :func:`unwrap`) is eciespy's secp256k1 scheme with a
configuration pinned here (never the mutable global ``ecies.ECIES_CONFIG``):
uncompressed 65-byte ephemeral key, HKDF-SHA256 over uncompressed points,
AES-256-GCM with a 16-byte nonce. A ciphertext is therefore always::

    ephemeral pub65 (65) | nonce (16) | tag (16) | ciphertext (len(plaintext))

i.e. exactly ``len(plaintext) + ECIES_OVERHEAD`` (97) bytes.

Secrets never appear in a ``repr``, a ``str`` or an exception message.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, Protocol, runtime_checkable

import coincurve
import ecies
from coincurve.utils import GROUP_ORDER_INT
from ecies.config import Config as _EciesConfig
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from spartacus._exceptions import DecryptionError, InputError, KeyFileError

__all__ = [
    "KIND_MEMBER",
    "KIND_KEEPER",
    "KIND_RELAY",
    "key_file_bytes",
    "KeyKind",
    "CREATE_HINTS",
    "KeyPair",
    "PrivateKeyLike",
    "SupportsToBytes",
    "ECIES_OVERHEAD",
    "MemberKey",
    "generate_key_file",
    "load_key_file",
    "parse_key_file",
    "secret_of",
    "public_key_64",
    "compressed_public_key",
    "address_of_public_key",
    "parse_public_key",
    "compress_public_key",
    "wrap",
    "unwrap",
    "wrapped_size",
]

KeyKind = Literal["spartacus-member-key", "spartacus-keeper-key", "spartacus-relay-key"]
KIND_MEMBER: Final = "spartacus-member-key"
KIND_KEEPER: Final = "spartacus-keeper-key"
KIND_RELAY: Final = "spartacus-relay-key"
_KINDS: Final[tuple[str, ...]] = (KIND_MEMBER, KIND_KEEPER, KIND_RELAY)

#: How to create a missing key file, per kind (shown in the "missing" error).
CREATE_HINTS: dict[str, str] = {
    KIND_KEEPER: "create one with: spartacus keeper init --key-file {path}",
    KIND_RELAY: "create one with: spartacus relay init --key-file {path}",
    KIND_MEMBER: (
        "create one by passing --member-key-file {path} to `spartacus create` or "
        "`spartacus pledge` (it is generated on first use)"
    ),
}

_KEY_FILE_MAX_BYTES: Final = 4096
_PRIVATE_HEX_RE: Final = re.compile(r"0x[0-9a-fA-F]{64}")

# eciespy, pinned. The global ecies.ECIES_CONFIG is mutable process-wide state;
# we never rely on it.
_ECIES_CONFIG: Final = _EciesConfig(
    elliptic_curve="secp256k1",
    is_ephemeral_key_compressed=False,
    is_hkdf_key_compressed=False,
    symmetric_algorithm="aes-256-gcm",
    symmetric_nonce_length=16,
)
#: Bytes ECIES adds to any plaintext: ephemeral pub65 (65) + nonce (16) + tag (16).
ECIES_OVERHEAD: Final = 65 + 16 + 16


# --------------------------------------------------------------------------- KeyPair


@dataclass(frozen=True, repr=False)
class KeyPair:
    """A secp256k1 key pair whose private half stays out of sight.

    ``public_key`` is the 64-byte uncompressed key (no ``0x04``),
    ``compressed`` the 33-byte SEC1 form, ``address`` the EIP-55 address.
    The private key is reachable only through :meth:`secret_bytes`; it is not
    part of ``repr``/``str``, nor of equality (two pairs are equal when their
    public keys are).
    """

    public_key: bytes
    compressed: bytes
    address: str
    _secret: bytes = field(compare=False, hash=False)

    @classmethod
    def from_secret(cls, secret: bytes) -> KeyPair:
        """Build a pair from a 32-byte private key (InputError if out of range)."""
        if not isinstance(secret, bytes | bytearray) or len(secret) != 32:
            raise InputError("a secp256k1 private key is exactly 32 bytes")
        scalar = int.from_bytes(secret, "big")
        if not 0 < scalar < GROUP_ORDER_INT:
            raise InputError("a secp256k1 private key must be in [1, n-1] (n = curve order)")
        pub = coincurve.PrivateKey(bytes(secret)).public_key
        pub64 = pub.format(compressed=False)[1:]
        return cls(
            public_key=pub64,
            compressed=pub.format(compressed=True),
            address=address_of_public_key(pub64),
            _secret=bytes(secret),
        )

    @classmethod
    def generate(cls) -> KeyPair:
        """A fresh random key pair (libsecp256k1's key generation, OS randomness)."""
        return cls.from_secret(coincurve.PrivateKey().secret)

    def secret_bytes(self) -> bytes:
        """The 32-byte private key. Handle with care: never log it."""
        return self._secret

    def __repr__(self) -> str:
        return f"KeyPair(address={self.address}, public_key=0x{self.public_key.hex()}, private_key=<hidden>)"

    __str__ = __repr__


@runtime_checkable
class SupportsToBytes(Protocol):
    """Private keys of other libraries, e.g. ``eth_keys.keys.PrivateKey``."""

    def to_bytes(self) -> bytes: ...


PrivateKeyLike = KeyPair | bytes | coincurve.PrivateKey | SupportsToBytes
"""Anything holding a secp256k1 private key: our pair, 32 raw bytes, coincurve's or eth_keys' key."""


def secret_of(priv: PrivateKeyLike) -> bytes:
    """The 32-byte secret of any :data:`PrivateKeyLike` (InputError for anything else)."""
    return _secret_of(priv)


def _secret_of(priv: PrivateKeyLike) -> bytes:
    if isinstance(priv, KeyPair):
        return priv.secret_bytes()
    if isinstance(priv, coincurve.PrivateKey):
        return bytes(priv.secret)
    if isinstance(priv, bytes | bytearray):
        if len(priv) != 32:
            raise InputError("a secp256k1 private key is exactly 32 bytes")
        return bytes(priv)
    # eth_keys.keys.PrivateKey and friends expose to_bytes(); accept them by duck typing.
    if isinstance(priv, SupportsToBytes):
        raw = priv.to_bytes()
        if isinstance(raw, bytes) and len(raw) == 32:
            return raw
    raise InputError(f"unsupported private key type {type(priv).__name__}")


# --------------------------------------------------------------------------- key files


def key_file_bytes(pair: KeyPair, kind: KeyKind, *, campaign: str | None = None, chain_id: int | None = None) -> bytes:
    """The exact bytes of a key file (see the module docstring); member keys name their campaign."""
    if kind not in _KINDS:
        raise InputError(f"unknown key kind {kind!r}; expected one of {', '.join(_KINDS)}")
    doc: dict[str, object]
    if kind == KIND_MEMBER:
        if campaign is None or chain_id is None:
            raise InputError("a member key file names its campaign and chain: pass campaign= and chain_id=")
        doc = {
            "version": 2,
            "kind": kind,
            "chain_id": int(chain_id),
            "campaign": to_checksum_address(campaign),
            "private_key": "0x" + pair.secret_bytes().hex(),
        }
    else:
        doc = {"version": 1, "kind": kind, "private_key": "0x" + pair.secret_bytes().hex()}
    return (json.dumps(doc, separators=(",", ":")) + "\n").encode("ascii")


def generate_key_file(
    path: str | os.PathLike[str],
    kind: KeyKind = KIND_MEMBER,
    *,
    campaign: str | None = None,
    chain_id: int | None = None,
    pair: KeyPair | None = None,
) -> KeyPair:
    """Create a new key file at ``path`` (mode ``0600``) and return its key pair.

    A member key file names ``campaign`` and ``chain_id``. The file is created with
    ``O_CREAT | O_EXCL``: an existing file (or a symlink) at ``path`` is never overwritten
    (:class:`KeyFileError`). ``pair`` writes a given key (for a key made elsewhere).
    """
    p = Path(path)
    pair = pair or KeyPair.generate()
    content = key_file_bytes(pair, kind, campaign=campaign, chain_id=chain_id)
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(p, flags, 0o600)
    except FileExistsError:
        raise KeyFileError(
            f"refusing to overwrite the existing file {p}: it may hold a key you need; "
            "move it away or choose another path",
            path=str(p),
        ) from None
    except FileNotFoundError:
        raise KeyFileError(
            f"cannot create key file {p}: the folder {p.parent} does not exist; create it first",
            path=str(p),
        ) from None
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {p}: {exc.strerror}", path=str(p)) from None
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # exact mode, whatever the umask
        view = memoryview(content)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        p.unlink(missing_ok=True)
        raise KeyFileError(f"cannot write key file {p}: {exc.strerror}", path=str(p)) from None
    os.close(fd)
    return pair


@dataclass(frozen=True, repr=False)
class MemberKey(KeyPair):
    """A member key pair with the campaign and chain its file names (equal to another ``MemberKey``
    of the same key, campaign and chain; compare ``public_key`` to compare with a plain pair)."""

    campaign: str = ""
    chain_id: int = 0


def load_key_file(
    path: str | os.PathLike[str],
    kind: KeyKind,
    *,
    campaign: str | None = None,
    chain_id: int | None = None,
) -> KeyPair:
    """Read a key file of the given ``kind``.

    Refuses (:class:`KeyFileError`, with the fix in the message) a missing file, a file any
    group/other permission bit is set on, a file that is not a regular file, a malformed file,
    a key of another kind, and a member key of another campaign or chain than ``campaign`` /
    ``chain_id`` (when given). A member key comes back as a :class:`MemberKey`.
    """
    p = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(p, flags)
    except FileNotFoundError:
        hint = CREATE_HINTS.get(kind, "create one first").format(path=p)
        raise KeyFileError(f"no key file at {p}; {hint}", path=str(p)) from None
    except OSError as exc:
        raise KeyFileError(f"cannot open key file {p}: {exc.strerror}", path=str(p)) from None
    try:
        st = os.fstat(fd)  # checked on the opened file: no race with a chmod/rename
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"{p} is not a regular file; point to the key file itself", path=str(p))
        mode = stat.S_IMODE(st.st_mode)
        if os.name == "posix" and mode & 0o077:
            raise KeyFileError(
                f"key file {p} is accessible by other users (mode {mode:04o}); run: chmod 600 {p}",
                path=str(p),
            )
        raw = os.read(fd, _KEY_FILE_MAX_BYTES + 1)
    finally:
        os.close(fd)
    return parse_key_file(raw, kind, campaign=campaign, chain_id=chain_id, name=str(p))


def parse_key_file(
    raw: bytes, kind: KeyKind, *, campaign: str | None = None, chain_id: int | None = None, name: str = "the file"
) -> KeyPair:
    """Parse key-file bytes (from disk or an upload), with the checks of :func:`load_key_file`."""
    pair = _parse_key_file(raw, Path(name), kind)
    if isinstance(pair, MemberKey):
        if campaign is not None and pair.campaign.lower() != campaign.lower():
            raise KeyFileError(
                f"{name} is the member key of campaign {pair.campaign}, not of {to_checksum_address(campaign)}: "
                "a member key serves one campaign only (reusing it would link your two pledges on-chain); "
                "use this campaign's key file, or a new file to make a new key",
                path=name,
            )
        if chain_id is not None and pair.chain_id != chain_id:
            raise KeyFileError(
                f"{name} is a member key for chain {pair.chain_id}, not chain {chain_id}: use the key file of "
                "this network's campaign",
                path=name,
            )
    return pair


def _parse_key_file(raw: bytes, p: Path, kind: KeyKind) -> KeyPair:
    bad = f"{p} is not a Spartacus key file"
    if len(raw) > _KEY_FILE_MAX_BYTES:
        raise KeyFileError(f"{bad} (too large)", path=str(p))
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise KeyFileError(f"{bad} (not JSON); was it edited by hand?", path=str(p)) from None
    if not isinstance(data, dict) or "version" not in data:
        raise KeyFileError(f"{bad} (expected the keys version, kind, private_key)", path=str(p))
    version = data["version"]
    if type(version) is not int or version not in (1, 2):
        raise KeyFileError(f"{bad} (unsupported version; this program reads versions 1 and 2)", path=str(p))
    expected = {"version", "kind", "private_key"} | ({"campaign", "chain_id"} if version == 2 else set())
    if set(data) != expected:
        raise KeyFileError(f"{bad} (expected the keys {', '.join(sorted(expected))})", path=str(p))
    found = data["kind"]
    if found not in _KINDS:
        raise KeyFileError(f"{bad} (unknown kind)", path=str(p))
    if found != kind:
        raise KeyFileError(
            f"{p} holds a {found}, but a {kind} is needed here; pass the right file",
            path=str(p),
        )
    if (found == KIND_MEMBER) != (version == 2):
        raise KeyFileError(
            f"{bad} (a member key file is version 2 and names its campaign; other keys are version 1)", path=str(p)
        )
    text = data["private_key"]
    if not isinstance(text, str) or not _PRIVATE_HEX_RE.fullmatch(text):
        raise KeyFileError(f"{bad} (private_key must be 0x and 64 hex digits)", path=str(p))
    try:
        pair = KeyPair.from_secret(bytes.fromhex(text[2:]))
    except InputError:
        raise KeyFileError(f"{bad} (private_key is not a valid secp256k1 key)", path=str(p)) from None
    if version == 1:
        return pair
    campaign, chain_id = data["campaign"], data["chain_id"]
    if not isinstance(campaign, str) or not re.fullmatch(r"0x[0-9a-fA-F]{40}", campaign):
        raise KeyFileError(f"{bad} (campaign must be 0x and 40 hex digits)", path=str(p))
    if type(chain_id) is not int or chain_id < 0:
        raise KeyFileError(f"{bad} (chain_id must be a non-negative integer)", path=str(p))
    return MemberKey(
        public_key=pair.public_key,
        compressed=pair.compressed,
        address=pair.address,
        _secret=pair.secret_bytes(),
        campaign=to_checksum_address(campaign),
        chain_id=chain_id,
    )


# --------------------------------------------------------------------------- public keys


def public_key_64(priv: PrivateKeyLike) -> bytes:
    """The 64-byte uncompressed public key (X||Y, no ``0x04``) of a private key."""
    if isinstance(priv, KeyPair):
        return priv.public_key
    return coincurve.PrivateKey(_secret_of(priv)).public_key.format(compressed=False)[1:]


def compressed_public_key(priv: PrivateKeyLike) -> bytes:
    """The 33-byte SEC1 compressed public key of a private key."""
    if isinstance(priv, KeyPair):
        return priv.compressed
    return coincurve.PrivateKey(_secret_of(priv)).public_key.format(compressed=True)


def address_of_public_key(pub64: bytes) -> str:
    """EIP-55 address of a 64-byte public key: last 20 bytes of ``keccak256(pub64)``."""
    if not isinstance(pub64, bytes | bytearray) or len(pub64) != 64:
        raise InputError("an address is derived from a 64-byte uncompressed public key")
    return str(to_checksum_address(keccak(bytes(pub64))[-20:]))


def _point(text_or_bytes: str | bytes) -> coincurve.PublicKey:
    if isinstance(text_or_bytes, str):
        text = text_or_bytes.strip()
        if text[:2] in ("0x", "0X"):
            text = text[2:]
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise InputError(
                "a public key must be hex: 64 bytes (X||Y), 65 bytes (04||X||Y) or 33 bytes (compressed)"
            ) from None
    elif isinstance(text_or_bytes, bytes | bytearray):
        raw = bytes(text_or_bytes)
    else:
        raise InputError(f"a public key must be hex text or bytes, not {type(text_or_bytes).__name__}")
    if len(raw) == 64:
        raw = b"\x04" + raw
    if not ((len(raw) == 65 and raw[0] == 4) or (len(raw) == 33 and raw[0] in (2, 3))):
        raise InputError(
            f"a public key is 64 bytes (X||Y), 65 bytes (04||X||Y) or 33 bytes (02/03||X); got {len(raw)} "
            "bytes with that prefix"
        )
    try:
        return coincurve.PublicKey(raw)
    except ValueError:
        raise InputError("the public key is not a point on the secp256k1 curve; check it was copied whole") from None


def parse_public_key(text_or_bytes: str | bytes) -> bytes:
    """Parse a public key in any usual form and return it as 64 bytes (X||Y).

    Accepts hex (with or without ``0x``) or bytes of 64, 65 (``04``...) or 33
    (``02``/``03``...) bytes; the point must lie on secp256k1 (InputError
    otherwise).
    """
    return _point(text_or_bytes).format(compressed=False)[1:]


def compress_public_key(text_or_bytes: str | bytes) -> bytes:
    """Parse a public key like :func:`parse_public_key`; return its 33-byte compressed form."""
    return _point(text_or_bytes).format(compressed=True)


# --------------------------------------------------------------------------- ECIES


def wrapped_size(plaintext_len: int) -> int:
    """Length of :func:`wrap`'s output for a plaintext of ``plaintext_len`` bytes."""
    return plaintext_len + ECIES_OVERHEAD


def wrap(public_key: bytes, plaintext: bytes) -> bytes:
    """ECIES-encrypt ``plaintext`` to a public key (64, 65 or 33 bytes).

    Raises InputError if the key is not a valid point. The output is always
    :func:`wrapped_size` bytes (asserted).
    """
    if not isinstance(public_key, bytes | bytearray) or len(public_key) not in (33, 64, 65):
        raise InputError("ECIES needs a 33-, 64- or 65-byte secp256k1 public key")
    try:
        out = ecies.encrypt(bytes(public_key), plaintext, _ECIES_CONFIG)
    except ValueError:
        raise InputError("the public key is not a point on the secp256k1 curve") from None
    if len(out) != wrapped_size(len(plaintext)):  # pragma: no cover - guards the pinned config
        raise AssertionError("eciespy produced an unexpected ciphertext length")
    return out


def unwrap(priv: PrivateKeyLike, ciphertext: bytes) -> bytes:
    """ECIES-decrypt; any failure (bad point, wrong key, tampering) is a DecryptionError."""
    secret = _secret_of(priv)
    if len(ciphertext) < ECIES_OVERHEAD:
        raise DecryptionError("ECIES ciphertext too short")
    try:
        return ecies.decrypt(secret, bytes(ciphertext), _ECIES_CONFIG)
    except Exception:  # coincurve/pycryptodome raise ValueError, TypeError, ...
        raise DecryptionError("ECIES decryption failed: wrong key or altered bytes") from None
