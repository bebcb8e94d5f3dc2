"""Every error Spartacus raises on purpose.

One root, so callers can catch everything of ours in one place; leaves also
inherit the matching builtin, so ordinary ``except ValueError`` code keeps
working. Each error's message says what went wrong *and what to do*.

    SpartacusError
    ├── InputError (ValueError)              bad input from a user or a caller
    │   └── KeyFileError                     missing, malformed or too-open key file
    ├── EnvelopeError (ValueError)           sealed bytes that do not parse
    ├── DecryptionError (ValueError)         authentication failed / not enough shares
    ├── NotRevealedError                     roster asked for before the reveal
    ├── ChainError                           a transaction or read failed on-chain
    │   ├── ContractRevert                   the contract refused (custom error)
    │   ├── InsufficientFunds                the sender cannot pay for a transaction
    │   ├── TransactionPending               sent, not mined yet (kept, never dropped)
    │   └── RPCUnavailable (ConnectionError) the node cannot be reached
    └── MailError (ConnectionError)          the SMTP server cannot be reached
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "SpartacusError",
    "InputError",
    "KeyFileError",
    "EnvelopeError",
    "DecryptionError",
    "NotRevealedError",
    "ChainError",
    "ContractRevert",
    "InsufficientFunds",
    "TransactionPending",
    "RPCUnavailable",
    "MailError",
]


class SpartacusError(Exception):
    """Root of every error raised by Spartacus on purpose."""

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context


class InputError(SpartacusError, ValueError):
    """Bad input: the message says which value and what would be accepted."""


class KeyFileError(InputError):
    """A key file is missing, malformed, or readable by other users."""


class EnvelopeError(SpartacusError, ValueError):
    """Sealed bytes (a pledge envelope or a keeper release) that do not parse."""


class DecryptionError(SpartacusError, ValueError):
    """Authentication failed, the key is wrong, or too few shares were given."""


class NotRevealedError(SpartacusError):
    """The roster was asked for before the campaign reached its threshold."""


class ChainError(SpartacusError):
    """A chain read or transaction failed."""


class ContractRevert(ChainError):
    """The contract refused a call; ``error`` names its custom error."""


class InsufficientFunds(ChainError):
    """The sender's balance does not cover a transaction; ``address``, ``needed`` and ``balance``
    (wei) say who to fund and by how much."""


class TransactionPending(ChainError):
    """A transaction was sent and is not mined yet (``hashes``: every version of it, same nonce);
    whoever journaled it waits for it again rather than sending another."""


class RPCUnavailable(ChainError, ConnectionError):
    """The node (RPC endpoint) cannot be reached."""


class MailError(SpartacusError, ConnectionError):
    """The SMTP server cannot be reached or refused us."""
