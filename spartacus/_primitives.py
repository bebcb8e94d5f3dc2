"""The primitives format v2 composes, each a call into a well-kept library, in one place.

Python (here) and the browser module (``dapp/js/primitives.js``) call the same primitives
with the same parameters; the known-answer vectors in ``tests/vectors/`` bind them:

=====================  ==============================================  =============================
primitive              Python                                          browser
=====================  ==============================================  =============================
secp256k1 ECDH         coincurve ``PublicKey.multiply`` (libsecp256k1)  @noble/curves ``getSharedSecret``
                       -> the shared point, SEC1 compressed (33 bytes)  (compressed: 33 bytes)
HKDF-SHA256            pycryptodome ``HKDF``                           @noble/hashes ``hkdf``
AES-128-GCM            pycryptodome ``AES.MODE_GCM`` (16-byte tag)      @noble/ciphers ``gcm``
AES-KW (RFC 3394)      pycryptodome ``AES.MODE_KW``                    @noble/ciphers ``aeskw``
SHA-256                :mod:`hashlib`                                  @noble/hashes ``sha256``
Shamir over GF(2^8)    ``pyshamir`` (see :mod:`spartacus._shamir`)      Privy ``shamir-secret-sharing``
=====================  ==============================================  =============================

HKDF is always called with an empty salt and a domain-separated ``info`` (every label starts
``b"spartacus/v2 "``), output 16 bytes: an AES-128 key. Every AES key here is used for one
message, except a keeper's release key, which always gets a fresh random 12-byte nonce.
"""

from __future__ import annotations

import hashlib
from typing import Final

import coincurve
from Crypto.Cipher import AES
from Crypto.Hash import SHA256
from Crypto.Protocol.KDF import HKDF

from ._exceptions import DecryptionError, InputError

__all__ = [
    "KEY_SIZE",
    "TAG_SIZE",
    "NONCE_SIZE",
    "WRAP_SIZE",
    "ZERO_NONCE",
    "sha256",
    "ecdh",
    "hkdf16",
    "gcm_seal",
    "gcm_open",
    "kw_wrap",
    "kw_unwrap",
]

KEY_SIZE: Final = 16
TAG_SIZE: Final = 16
NONCE_SIZE: Final = 12
#: AES-KW of a 16-byte key: 24 bytes (RFC 3394 adds one 8-byte block).
WRAP_SIZE: Final = 24
#: The nonce of an AES-GCM key that encrypts exactly one message.
ZERO_NONCE: Final = bytes(NONCE_SIZE)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def ecdh(secret: bytes, public_key: bytes) -> bytes:
    """``secret · P`` as a 33-byte compressed point (libsecp256k1, constant time in ``secret``).

    :class:`InputError` if ``public_key`` is not a point on secp256k1 or ``secret`` is not a key.
    """
    try:
        point = coincurve.PublicKey(bytes(public_key))
    except (ValueError, TypeError):
        raise InputError("the public key is not a point on the secp256k1 curve") from None
    try:
        return bytes(point.multiply(bytes(secret)).format(compressed=True))
    except (ValueError, TypeError):
        raise InputError("a secp256k1 private key must be 32 bytes in [1, n-1]") from None


def hkdf16(ikm: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869) of ``ikm``, empty salt, ``info``: a 16-byte key."""
    out = HKDF(ikm, KEY_SIZE, b"", SHA256, 1, context=info)
    assert isinstance(out, bytes)
    return out


def gcm_seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-GCM: ciphertext followed by the 16-byte tag."""
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=TAG_SIZE)
    cipher.update(aad)
    ciphertext, tag = cipher.encrypt_and_digest(plaintext)
    return bytes(ciphertext) + bytes(tag)


def gcm_open(key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Inverse of :func:`gcm_seal`; :class:`DecryptionError` if it does not authenticate."""
    if len(sealed) < TAG_SIZE:
        raise DecryptionError("AES-GCM ciphertext shorter than its tag")
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=TAG_SIZE)
    cipher.update(aad)
    try:
        return bytes(cipher.decrypt_and_verify(sealed[:-TAG_SIZE], sealed[-TAG_SIZE:]))
    except ValueError:
        raise DecryptionError("AES-GCM authentication failed: wrong key or altered bytes") from None


def kw_wrap(kek: bytes, key: bytes) -> bytes:
    """AES key wrap (RFC 3394) of a 16-byte key under a 16-byte key-encryption key: 24 bytes."""
    return bytes(AES.new(kek, AES.MODE_KW).seal(key))


def kw_unwrap(kek: bytes, wrapped: bytes) -> bytes:
    """Inverse of :func:`kw_wrap`; :class:`DecryptionError` when the integrity check fails."""
    if len(wrapped) != WRAP_SIZE:
        raise DecryptionError(f"a wrapped key is {WRAP_SIZE} bytes")
    try:
        return bytes(AES.new(kek, AES.MODE_KW).unseal(wrapped))
    except ValueError:
        raise DecryptionError("AES key unwrap failed: wrong key or altered bytes") from None
