"""Start and stop a local anvil node (the local stack's chain and the integration tests').

The binary comes from the npm package ``@foundry-rs/anvil`` that ``make setup``
installs inside the repository; ``$SPARTACUS_ANVIL`` or ``anvil`` on PATH also work.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from ._exceptions import RPCUnavailable

__all__ = ["DEV_MNEMONIC", "Anvil", "anvil_binary", "detached_child", "dev_key", "free_port"]

ROOT = Path(__file__).resolve().parents[1]


def anvil_binary() -> str:
    candidates = [os.environ.get("SPARTACUS_ANVIL"), str(ROOT / ".venv" / "bin" / "anvil"), shutil.which("anvil")]
    candidates += [str(p) for p in sorted((ROOT / "node_modules" / "@foundry-rs").glob("anvil-*/bin/anvil"))]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError("anvil not found: run `make setup` (it installs anvil from npm into node_modules)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def detached_child() -> None:
    """``preexec_fn`` for a supervised child: its own process group, so that a Ctrl-C (a SIGINT
    to the terminal's group) reaches only the supervisor, which stops its children in order; and
    on Linux a SIGTERM when the supervisor dies, so that nothing outlives it."""
    os.setpgid(0, 0)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the supervisor's stop() is all there is
        pass


class Anvil:
    """An anvil process on loopback; a context manager that always stops it.

    ``extra`` adds anvil flags (e.g. ``["--block-time", "1"]`` or ``["--accounts", "50"]``);
    ``detached`` starts it as a supervised child (:func:`detached_child`).
    """

    def __init__(
        self,
        port: int | None = None,
        extra: list[str] | None = None,
        log: Path | None = None,
        *,
        detached: bool = False,
    ) -> None:
        self.port = port or free_port()
        self.extra = extra or []
        self.log = log
        self.detached = detached
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Anvil:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            [anvil_binary(), "--host", "127.0.0.1", "--port", str(self.port), *self.extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=detached_child if self.detached else None,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # readiness: the RPC port accepts a connection
            if self.process.poll() is not None:
                raise RPCUnavailable(f"anvil exited with status {self.process.returncode} (port {self.port} taken?)")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RPCUnavailable(f"anvil did not open port {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# The public test mnemonic anvil and Ape's test provider both fund by default. Its keys
# are known to everyone: for local chains only.
DEV_MNEMONIC = "test test test test test test test test test test test junk"


def dev_key(index: int) -> bytes:
    """The private key of the local chain's funded test account ``index``."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return bytes(account.key)
