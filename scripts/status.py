"""Print a campaign's on-chain state: ``ape run status CAMPAIGN --network ...``."""

from __future__ import annotations

import click
from ape.cli import ConnectedProviderCommand

from spartacus.chain import CampaignClient, ChainClient


@click.command(cls=ConnectedProviderCommand)
@click.argument("campaign")
def cli(provider, campaign):  # type: ignore[no-untyped-def]
    """State, live count, threshold and deadline of CAMPAIGN, from the contract."""
    status = CampaignClient(ChainClient(provider.web3), campaign).status()
    for key, value in status.as_json().items():
        click.echo(f"{key:>16}: {value}")
