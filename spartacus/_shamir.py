"""Shamir secret sharing over GF(2^8): HashiCorp Vault's scheme, as PyPI ``pyshamir`` and Privy's
audited npm ``shamir-secret-sharing`` implement it (they interoperate byte for byte).

A share of an ``L``-byte secret is ``L + 1`` bytes: ``y`` (one GF(2^8) point per secret byte,
the polynomial of that byte evaluated at ``x``) then ``x`` (1..255, random and distinct per
split). Any ``t`` shares rebuild the secret by Lagrange interpolation at 0; fewer give a value
that is independent of it.

* :func:`split` is ``pyshamir.split`` (randomness from :mod:`secrets`). Both libraries refuse
  ``t = 1``; a 1-of-n split is the degree-0 polynomial, ``y = secret`` for every keeper, with
  ``x = i + 1`` for share ``i``.
* :func:`combine_many` rebuilds many secrets at once (a roster of 10,000 pledges), vectorised
  with NumPy over the field's log/exp tables, which are computed here from ``pyshamir``'s own
  multiplication (so they are that library's field, the AES polynomial ``x^8+x^4+x^3+x+1``).
  The tests check it against ``pyshamir.combine`` (and the JS library through the vectors).
  Lookups depend on the shares, so it is not constant-time: it only ever combines shares that
  keepers published to every member.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Final

import numpy as np
import pyshamir
from pyshamir import _utils as _gf

from ._exceptions import DecryptionError, InputError

__all__ = ["split", "combine", "combine_many"]

_GENERATOR: Final = 3  # generates GF(2^8)* under the AES polynomial


def split(secret: bytes, n: int, t: int) -> list[bytes]:
    """``n`` shares of ``secret`` (each ``y ‖ x``), any ``t`` of which rebuild it."""
    if not isinstance(secret, bytes) or not secret:
        raise InputError("a secret to split is at least one byte")
    if type(n) is not int or type(t) is not int or not 1 <= t <= n <= 255:
        raise InputError(f"cannot split {t}-of-{n}: need 1 <= t <= n <= 255")
    if t == 1:
        return [secret + bytes((i + 1,)) for i in range(n)]
    if n == 1:  # pragma: no cover - t == 1 above
        raise AssertionError
    return [bytes(part) for part in pyshamir.split(secret, n, t)]


@lru_cache(maxsize=1)
def _tables() -> tuple[Any, Any]:
    """``exp`` (510 entries, so sums of two logs need no modulo) and ``log`` (log[0] unused)."""
    exp = [1]
    for _ in range(254):
        exp.append(_gf.mul(exp[-1], _GENERATOR))
    if len(set(exp)) != 255:  # pragma: no cover - 3 generates the group
        raise AssertionError("3 does not generate GF(2^8)*")
    log = [0] * 256
    for i, v in enumerate(exp):
        log[v] = i
    return np.array(exp + exp, dtype=np.int32), np.array(log, dtype=np.int32)


def combine(shares: Sequence[bytes]) -> bytes:
    """The secret from ``t`` shares of equal length with distinct ``x`` (one share: t = 1)."""
    return bytes(combine_many([list(shares)])[0])


def combine_many(groups: Sequence[Sequence[bytes]]) -> list[bytes]:
    """Rebuild one secret per group; every group holds the same number ``t`` of shares of the
    same length. :class:`DecryptionError` on duplicate or zero ``x`` or ragged shares."""
    if not groups:
        return []
    t = len(groups[0])
    if t == 0:
        raise DecryptionError("no share to combine")
    width = len(groups[0][0])
    if width < 2 or any(len(g) != t or any(len(s) != width for s in g) for g in groups):
        raise DecryptionError("shares to combine differ in count or length")
    raw = np.frombuffer(b"".join(b"".join(g) for g in groups), dtype=np.uint8).reshape(len(groups), t, width)
    xs = raw[:, :, -1].astype(np.int32)  # (N, t)
    ys = raw[:, :, :-1].astype(np.int32)  # (N, t, L)
    if t == 1:
        return [bytes(row) for row in ys[:, 0, :].astype(np.uint8)]
    if (xs == 0).any():
        raise DecryptionError("a share carries x = 0")
    exp, log = _tables()
    # Lagrange basis at 0: L_j = prod_{m != j} x_m / (x_m + x_j)  (addition is XOR).
    diff = xs[:, :, None] ^ xs[:, None, :]  # (N, t, t): x_j + x_m
    off = ~np.eye(t, dtype=bool)
    if (diff[:, off] == 0).any():
        raise DecryptionError("duplicate share x")
    log_x = log[xs]  # (N, t)
    log_num = np.where(off[None], log_x[:, None, :], 0).sum(axis=2)  # sum over m != j of log x_m
    log_den = np.where(off[None], log[diff], 0).sum(axis=2)
    log_basis = (log_num - log_den) % 255  # (N, t)
    # secret byte = XOR_j y_j * L_j; a zero y contributes nothing.
    terms = exp[(log[ys] + log_basis[:, :, None]) % 255]
    terms = np.where(ys == 0, 0, terms)
    out = np.bitwise_xor.reduce(terms, axis=1).astype(np.uint8)  # (N, L)
    return [bytes(row) for row in out]
