"""Helpers that run the real `spartacus` command against a real anvil (integration tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Cli:
    """Runs the real `spartacus` command against one anvil and factory."""

    url: str
    factory: str
    cwd: Path

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        env = os.environ | {"SPARTACUS_NETWORK": self.url, "SPARTACUS_FACTORY": self.factory}
        proc = subprocess.run(
            [sys.executable, "-m", "spartacus.cli", *args],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if ok:
            assert proc.returncode == 0, f"{args[0]} failed: {proc.stderr}"
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)


def create(cli: Cli, keepers: list[dict[str, str]], threshold: int = 4, deadline: str = "+7d", **extra: str) -> str:
    """Creates a campaign as TEST::1; the organizer's member key file is ``organizer.key`` for the
    first campaign in ``cli.cwd``, then ``organizer2.key``, ... (a member key serves one campaign)."""
    key_file, n = "organizer.key", 1
    while (cli.cwd / key_file).exists():
        n += 1
        key_file = f"organizer{n}.key"
    args = [
        "create",
        "--title", "Night shift",
        "--purpose", "A fair rota",
        "--threshold", str(threshold),
        "--deadline", deadline,
        "--keeper-threshold", "2",
        "--name", "Olga Organizer",
        "--contact", "email=olga@example.org",
        "--instructions-file", "instructions.txt",
        "--member-key-file", key_file,
        "--account", "TEST::1",
    ]  # fmt: skip
    for k in keepers:
        args += ["--keeper", k["public_key"]]
    for key, value in extra.items():
        args += [f"--{key}", value]
    out = cli.json(*args)
    assert out["gas_used"] > 0 and out["tx"].startswith("0x")
    return str(out["campaign"])


def pledge(cli: Cli, campaign: str, who: int, name: str) -> dict[str, Any]:
    return dict(
        cli.json(
            "pledge", campaign,
            "--name", name,
            "--contact", f"email={name.split()[0].lower()}@example.org",
            "--contact", f"signal=+4100{who}",
            "--member-key-file", f"member{who}.key",
            "--account", f"TEST::{who}",
        )
    )  # fmt: skip


def keeper_run(cli: Cli, i: int) -> dict[str, Any]:
    return dict(cli.json("keeper", "run", "--key-file", f"keeper{i}.key", "--once"))


def fund(client: Any, address: str, wei: int = 10**18) -> None:
    """Gives an address ether on anvil."""
    client.w3.provider.make_request("anvil_setBalance", [address, hex(wei)])


def quick_pledge(client: Any, campaign: str, name: str) -> tuple[Any, int]:
    """A real sealed pledge from a fresh funded account, through the library (faster than the
    command for tests that need many members). Returns the member key pair and the index."""
    from spartacus.chain import CampaignClient, KeySigner
    from spartacus.envelope import PledgeContent, seal
    from spartacus.keys import KeyPair

    c = CampaignClient(client, campaign)
    account, member = KeyPair.generate(), KeyPair.generate()
    fund(client, account.address)
    content = PledgeContent(name=name, contact={"email": f"{name.lower().replace(' ', '.')}@example.org"})
    envelope = seal(content, c.context(), member, pledger=account.address)
    result = c.pledge(KeySigner(account.secret_bytes()), envelope, member.compressed, c.status().deposit)
    return member, int(result.events("Pledged")[0].args["index"])


def published(client: Any, campaign: str, keeper_index: int) -> tuple[list[int], list[int]]:
    """Every pledge index keeper ``keeper_index`` granted and shared, repeats included (the index
    sets of its releases are in clear). A crash-safe keeper publishes each once."""
    from spartacus.chain import CampaignClient
    from spartacus.release import GrantsRecord, PublicSharesRecord, SharesRecord, parse_release

    c = CampaignClient(client, campaign)
    records = [r for rel in c.releases() if rel.keeper_index == keeper_index for r in parse_release(rel.data)]
    granted = [i for r in records if isinstance(r, GrantsRecord) for i in r.indices]
    shared = [i for r in records if isinstance(r, SharesRecord | PublicSharesRecord) for i in r.indices]
    return granted, shared


def deploy_with_keepers(url: str, client: Any, cwd: Path, keepers: int = 3) -> tuple[Cli, list[dict[str, str]]]:
    """A fresh factory, ``keepers`` keeper keys made through the real command (mode 0600, in
    ``cwd``) and funded, and a CLI bound to that factory."""
    from spartacus.anvil import dev_key
    from spartacus.chain import FactoryClient, KeySigner

    factory, _ = FactoryClient.deploy(client, KeySigner(dev_key(0)))
    cli = Cli(url, factory.address, cwd)
    made = []
    for i in range(keepers):
        out = cli.json("keeper", "init", "--key-file", f"keeper{i}.key")
        fund(client, out["address"])
        made.append(out)
    return cli, made


def stack_banner(proc: subprocess.Popen[str]) -> list[str]:
    """The lines ``make run`` prints up to ``==> ready`` (it is up), or a failure with all it said."""
    assert proc.stdout is not None
    output: list[str] = []
    for line in proc.stdout:
        output.append(line)
        if "==> ready" in line or proc.poll() is not None:
            break
    assert any("==> ready" in line for line in output), "".join(output)
    return output


def mail(port: int) -> list[dict[str, Any]]:
    """Every message the stack's mail sink has received (its ``/messages.json``)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/messages.json", timeout=5) as response:
        return list(json.load(response))
