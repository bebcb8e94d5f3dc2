"""Spartacus: sealed, anonymous pledges revealed to the members at once when a threshold is reached.

The package is the core every front end uses (the console command, the Ape scripts,
the listeners and the dApp):

* :mod:`spartacus.envelope`: the sealed-pledge format (AEAD body, Shamir shares wrapped
  to the keepers with ECIES);
* :mod:`spartacus.release` and :mod:`spartacus.roster`: what keepers publish after the
  reveal, and how a member rebuilds the roster from it;
* :mod:`spartacus.keys`: key files the user owns (mode 0600);
* :mod:`spartacus.chain`: the contracts, over web3.py;
* :mod:`spartacus.keeper`: the keeper listener;
* :mod:`spartacus.relay`: the relay that emails every member once.

Importing the package is cheap: Ape is loaded only when a chain is used.
"""

from ._exceptions import (
    ChainError,
    ContractRevert,
    DecryptionError,
    EnvelopeError,
    InputError,
    KeyFileError,
    MailError,
    NotRevealedError,
    RPCUnavailable,
    SpartacusError,
)
from .types import CampaignContext, PledgeRecord, ReleaseRecord, Scope

__version__ = "0.1.0"

__all__ = [
    "CampaignContext",
    "ChainError",
    "ContractRevert",
    "DecryptionError",
    "EnvelopeError",
    "InputError",
    "KeyFileError",
    "MailError",
    "NotRevealedError",
    "PledgeRecord",
    "RPCUnavailable",
    "ReleaseRecord",
    "Scope",
    "SpartacusError",
    "__version__",
]
