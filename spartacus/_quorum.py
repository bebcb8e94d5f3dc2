"""Reads that every one of several nodes must agree on (``keeper run --also-network URL``).

A keeper checks its node's logs against the contract's storage before it releases anything
(:func:`spartacus.keeper.check_against_storage`); a node that lies about the storage too is
caught only by asking another. :class:`QuorumProvider` is a web3 provider over several nodes:

* every read pinned to a block (``eth_call`` and ``eth_getLogs`` at explicit block numbers,
  ``eth_getCode``, ``eth_chainId``) goes to every node, and answers that differ raise
  :class:`NodesDisagree`: the keeper acts only on what they all say;
* ``eth_blockNumber`` is the lowest head (every node has that block);
* signed transactions go to every node (the same bytes: at most one lands);
* a refusal by any node (an ``eth_getLogs`` cap) is passed on, so reads shrink to the
  strictest node's limits;
* the rest (gas estimates, fees, receipts, reads at ``latest``) is the first node's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from web3.providers.base import BaseProvider
from web3.types import RPCEndpoint, RPCResponse

from ._exceptions import ChainError

__all__ = ["NodesDisagree", "QuorumProvider"]

_NUMBERED = {"eth_call": 1, "eth_getCode": 1, "eth_getStorageAt": 2}


class NodesDisagree(ChainError):
    """Two nodes answered the same pinned read differently: one of them lies (or is broken)."""


def _pinned(tag: Any) -> bool:
    return isinstance(tag, str) and tag.startswith("0x") or isinstance(tag, int)


def _normal_log(log: dict[str, Any]) -> tuple[Any, ...]:
    """What identifies a log (providers add or drop fields such as ``blockTimestamp``)."""
    return (
        str(log.get("address", "")).lower(),
        tuple(str(t).lower() for t in log.get("topics", [])),
        str(log.get("data", "")).lower(),
        int(str(log.get("blockNumber", "0x0")), 16),
        int(str(log.get("logIndex", "0x0")), 16),
        str(log.get("transactionHash", "")).lower(),
    )


def _normal(method: str, result: Any) -> Any:
    if method == "eth_getLogs" and isinstance(result, list):
        return sorted(_normal_log(lg) for lg in result)
    if isinstance(result, str):
        return result.lower()
    return result


class QuorumProvider(BaseProvider):
    """A web3 provider over ``providers`` (the first is the primary), named by ``names`` in errors."""

    def __init__(self, providers: Sequence[BaseProvider], names: Sequence[str]) -> None:
        super().__init__()
        if len(providers) < 2 or len(providers) != len(names):
            raise ValueError("a quorum needs two or more providers, each with a name")
        self.providers = list(providers)
        self.names = list(names)

    def _compared(self, method: str, params: Any) -> bool:
        params = list(params or [])
        if method == "eth_chainId":
            return True
        if method == "eth_getLogs":
            query = params[0] if params else {}
            return isinstance(query, dict) and (
                "blockHash" in query or (_pinned(query.get("fromBlock")) and _pinned(query.get("toBlock")))
            )
        position = _NUMBERED.get(method)
        return position is not None and len(params) > position and _pinned(params[position])

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        if method == "eth_blockNumber":
            answers = [p.make_request(method, params) for p in self.providers]
            for answer in answers:
                if "error" in answer:
                    return answer
            return min(answers, key=lambda a: int(str(a["result"]), 16))
        if method == "eth_sendRawTransaction":
            answers = [p.make_request(method, params) for p in self.providers]
            return next((a for a in answers if "result" in a), answers[0])
        if not self._compared(method, params):
            return self.providers[0].make_request(method, params)
        answers = [p.make_request(method, params) for p in self.providers]
        for answer in answers:
            if "error" in answer:
                return answer  # a refusal (a cap): the client adapts to the strictest node
        first = _normal(method, answers[0].get("result"))
        for name, answer in zip(self.names[1:], answers[1:], strict=True):
            if _normal(method, answer.get("result")) != first:
                raise NodesDisagree(
                    f"the nodes disagree on {method} ({self.names[0]} and {name} answer differently): one of them "
                    "lies or is broken; nothing is acted on until they agree (check both, or use another provider)",
                    method=method,
                )
        return answers[0]

    def is_connected(self, show_traceback: bool = False) -> bool:
        return all(p.is_connected(show_traceback) for p in self.providers)
