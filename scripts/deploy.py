"""Deploy the campaign factory with an Ape account: ``ape run deploy --network ... --account ...``.

The same as ``spartacus deploy``, for those who live in Ape.
"""

from __future__ import annotations

import click
from ape.cli import ConnectedProviderCommand, account_option

from spartacus._ape import ApeSigner
from spartacus.chain import ChainClient, FactoryClient


@click.command(cls=ConnectedProviderCommand)
@account_option()
def cli(provider, account):  # type: ignore[no-untyped-def]
    """Deploy CampaignFactory and print its address."""
    factory, result = FactoryClient.deploy(ChainClient(provider.web3), ApeSigner(account))
    click.echo(f"CampaignFactory deployed at {factory.address} (tx {result.tx}, {result.gas_used:,} gas)")
    click.echo(f"export SPARTACUS_FACTORY={factory.address}")
