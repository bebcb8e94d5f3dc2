"""Anvil's fee and mining controls for the fee-spike tests of the keeper
(``test_fees_replace.py``) and the relayer (``test_relayer_fees.py``): on a module's own anvil,
mined by hand, with a base fee set block by block."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rpcproxy import Deployment

from spartacus._fees import GWEI


def rpc(d: Deployment, method: str, *params: Any) -> Any:
    return d.client.w3.provider.make_request(method, list(params)).get("result")


def low_base_fee(d: Deployment) -> None:
    """The next block's base fee down to 1 gwei (a spike then stands out)."""
    rpc(d, "anvil_setNextBlockBaseFeePerGas", hex(GWEI))
    rpc(d, "evm_mine")


def pool_has(d: Deployment, address: str) -> bool:
    """Whether a transaction of ``address`` waits in the node's pool."""
    pending = rpc(d, "txpool_content")["pending"]
    return any(a.lower() == address.lower() for a in pending)


def spike(height: int, blocks: int) -> Callable[[int], int | None]:
    """A base fee of ``height`` for ``blocks`` blocks, then EIP-1559's own rule."""
    return lambda n: height if n < blocks else None


class Miner:
    """Mines by hand (automine off), one block per ``every`` seconds. From the moment ``trigger``
    holds (the transaction under test waits in the pool), the n-th next block's base fee is
    ``fee(n)`` (None: EIP-1559's own rule) until ``calm`` is set."""

    def __init__(self, d: Deployment, fee: Callable[[int], int | None], trigger: Any, every: float = 0.3) -> None:
        self.d, self.fee, self.trigger, self.every = d, fee, trigger, every
        self.spiking, self.blocks = False, 0
        self.calm, self.stop = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Miner:
        rpc(self.d, "evm_setAutomine", False)
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.thread.join()
        rpc(self.d, "evm_setAutomine", True)
        rpc(self.d, "evm_mine")

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            if not self.spiking and self.trigger():
                self.spiking = True
            if self.spiking and not self.calm.is_set():
                fee = self.fee(self.blocks)
                self.blocks += 1
                if fee is not None:
                    rpc(self.d, "anvil_setNextBlockBaseFeePerGas", hex(fee))
            rpc(self.d, "evm_mine")
