"""Load: a campaign with 10,000 pledges on a real anvil, from fill to a member's roster (issue 7).

The scenario is ``bench.bench_load.run`` (``python -m bench.bench_load`` prints the same
figures as a table): real sealed envelopes from fresh member keys, 10,000 pledgers plus the
creator, a withdrawn handful, threshold N = 10,000; two of three keepers release with the
library's ``Keeper``; one member rebuilds the roster from the chain alone.

``SPARTACUS_LOAD_N`` shrinks it for a quick run (default 10,000). About two minutes on a
2-core machine; the figures are printed (``-s``) and recorded as JUnit properties.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `bench` is a top-level package of the repository, not installed

from bench.bench_load import run, table, verify  # noqa: E402

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

N = int(os.environ.get("SPARTACUS_LOAD_N", "10000"))
WITHDRAWN = 5


def test_ten_thousand_pledges_count_reveal_release_and_roster(record_property):
    # One process: a process pool spawned under the test runner re-runs its entry point.
    result = run(N, keepers=3, t=2, withdrawn=WITHDRAWN, workers=1)
    print(f"\n{table(result)}")
    for key, value in result.as_json().items():
        if key != "keeper":
            record_property(key, value)
    for k in result.keeper:
        for key, value in vars(k).items():
            record_property(f"keeper{k.index}_{key}", value)

    live = N + 1
    # The count: the contract's, the events', the roster's.
    assert result.count_before_crossing == N - 1 and result.state_before_crossing == "open"
    assert result.crossing_fired and result.crossing_count == N
    assert not result.after_reveal_fired and result.threshold_events == 1
    assert result.final_count == result.live_from_events == result.roster_members == live
    assert result.total_pledges == live + WITHDRAWN
    assert result.balance == result.deposits_owed
    # No loop over pledges: the reveal costs the same at N = 10,000 as at N = 2.
    assert result.crossing_gas == result.crossing_gas_n2 > 0
    # Both keepers released every live pledge, in transactions that landed.
    assert [(k.shares, k.grants) for k in result.keeper] == [(live, live)] * 2
    assert all(k.txs > 0 and k.failed_or_foreign_txs == 0 and k.gas > 0 and k.bytes > 0 for k in result.keeper)
    # The roster: every live member, the instructions, and never a withdrawn pledge.
    assert result.roster_skipped == 0 and result.roster_names_ok and result.roster_instructions_ok
    assert result.withdrawn_in_roster == [] and result.withdrawn_with_shares == []
    assert result.withdrawn_reader_refused
    assert verify(result) == []
