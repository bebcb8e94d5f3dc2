"""Gas per call of the Spartacus contracts, measured on a real anvil.

    make bench-gas                # prints a table
    make bench-gas ARGS=--json    # prints the figures as one JSON object

Every figure is the ``gasUsed`` of a mined transaction's receipt. Sealed bytes are
random (ciphertext is), so calldata costs what it would in real use.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import sys
from typing import Any

from eth_keys import keys as eth_keys
from web3 import Web3

from spartacus.anvil import Anvil, dev_key
from spartacus.chain import CampaignClient, CampaignConfig, ChainClient, FactoryClient, KeySigner, sort_keepers

TARGETS = {
    "pledge": "<= 90,000",
    "pledge_threshold_n10": "<= pledge + 10,000",
    "pledge_threshold_n1000": "= pledge_threshold_n10",
    "create_campaign": "<= 250,000 + metadata calldata",
    "withdraw": "<= 50,000",
}


def _bytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))


def _member_key(rng: random.Random) -> bytes:
    return bytes([2]) + _bytes(rng, 32)


def _calldata_gas(data: bytes) -> int:
    return sum(4 if b == 0 else 16 for b in data)


def measure(threshold_big: int = 1000) -> dict[str, Any]:
    rng = random.Random(7)
    # Keeper keys are dev accounts 7..9, so they can pay for their releases.
    keeper_privs = {eth_keys.PrivateKey(dev_key(i)).public_key.to_bytes(): dev_key(i) for i in (7, 8, 9)}
    keepers = sort_keepers(list(keeper_privs))
    metadata = {  # 1 KB of metadata in all
        "title": "Night shift organising drive",
        "purpose": "Win a fair night-shift rota together",
        "description": ("x" * 600),
        "plan": "",
    }
    metadata["plan"] = "y" * (1024 - sum(len(v) for k, v in metadata.items() if k != "plan"))
    meta_bytes = sum(len(v.encode()) for v in metadata.values())
    creator_envelope = _bytes(rng, 1_000)
    pledge_envelope = _bytes(rng, 1_000)
    release_data = _bytes(rng, 10 * 1024)
    deposit = 10**15

    out: dict[str, Any] = {}
    with Anvil(extra=["--accounts", "10", "--silent", "--auto-impersonate"]) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        client = ChainClient(w3)
        deployer, organizer = KeySigner(dev_key(0)), KeySigner(dev_key(1))
        factory, deployed = FactoryClient.deploy(client, deployer)
        out["deploy_factory"] = deployed.gas_used

        def campaign(threshold: int, **kw: Any) -> CampaignClient:
            config = CampaignConfig(
                **metadata,
                threshold=threshold,
                deadline=client.timestamp() + 7 * 86400,
                keepers=keepers,
                keeper_threshold=2,
                deposit=kw.get("deposit", deposit),
            )
            address, result = factory.create(
                organizer, config, secrets.token_bytes(32), creator_envelope, _member_key(rng)
            )
            out.setdefault("create_campaign", result.gas_used)
            return CampaignClient(client, address)

        def fill(c: CampaignClient, count: int) -> None:
            """``count`` pledges from fresh impersonated addresses (anvil), unsigned."""
            for _ in range(count):
                who = Web3.to_checksum_address(secrets.token_bytes(20))
                w3.provider.make_request("anvil_setBalance", [who, hex(10**18)])  # type: ignore[arg-type]
                data = client.contracts.encode_call("Campaign", "pledge", [pledge_envelope, _member_key(rng)])
                tx = w3.eth.send_transaction({"from": who, "to": c.address, "data": data, "value": deposit})
                assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1

        # A plain pledge, a withdrawal and a refund on one campaign.
        c = campaign(threshold=100)
        alice = KeySigner(dev_key(2))
        out["pledge"] = c.pledge(alice, pledge_envelope, _member_key(rng), deposit).gas_used
        out["withdraw"] = c.withdraw(alice).gas_used
        out["refund"] = c.refund(alice).gas_used

        # The threshold-crossing pledge at N = 10 and N = big.
        for n, key in ((10, "pledge_threshold_n10"), (threshold_big, f"pledge_threshold_n{threshold_big}")):
            c = campaign(threshold=n)
            fill(c, n - 2)  # the creator's pledge is #1
            result = c.pledge(KeySigner(dev_key(3)), pledge_envelope, _member_key(rng), deposit)
            assert result.events("ThresholdReached"), "the reveal did not fire"
            out[key] = result.gas_used

        # A 10 KB keeper release on the last (revealed) campaign.
        index = 0
        release = c.release(KeySigner(keeper_privs[keepers[index]]), index, release_data)
        out["keeper_release"] = release.gas_used

    out["_inputs"] = {
        "metadata_bytes": meta_bytes,
        "metadata_calldata_gas": _calldata_gas("".join(metadata.values()).encode()),
        "creator_envelope_bytes": len(creator_envelope),
        "pledge_envelope_bytes": len(pledge_envelope),
        "release_bytes": len(release_data),
        "keepers": len(keepers),
    }
    return out


def table(figures: dict[str, Any]) -> str:
    rows = [("call", "gas", "target")]
    for key, value in figures.items():
        if not key.startswith("_"):
            rows.append((key, f"{value:,}", TARGETS.get(key, "")))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    inputs = figures["_inputs"]
    lines.append("")
    lines.append(
        f"inputs: {inputs['metadata_bytes']} B metadata, {inputs['creator_envelope_bytes']} B creator record, "
        f"{inputs['pledge_envelope_bytes']} B sealed pledges, {inputs['release_bytes']} B release, "
        f"{inputs['keepers']} keepers"
    )
    return "\n".join(lines)


def check(figures: dict[str, Any], big: int) -> list[str]:
    failures = []
    if figures["pledge"] > 90_000:
        failures.append("pledge > 90,000")
    if figures["pledge_threshold_n10"] > figures["pledge"] + 10_000:
        failures.append("threshold pledge > pledge + 10,000")
    if figures["pledge_threshold_n10"] != figures[f"pledge_threshold_n{big}"]:
        failures.append(f"threshold pledge differs between N=10 and N={big}")
    if figures["create_campaign"] > 250_000 + figures["_inputs"]["metadata_calldata_gas"]:
        failures.append("create_campaign > 250,000 + metadata calldata")
    if figures["withdraw"] > 50_000:
        failures.append("withdraw > 50,000")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--big", type=int, default=1000, help="N of the large threshold campaign (default 1000)")
    args = parser.parse_args(argv)
    figures = measure(args.big)
    failures = check(figures, args.big)
    print(json.dumps(figures, indent=2) if args.json else table(figures))
    for failure in failures:
        print(f"TARGET MISSED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
