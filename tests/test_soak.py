"""The soak of bench/bench_soak.py, scaled down to run in `make test` (about two minutes): three
keepers, each behind its own lying, capped or flaky node, a relay service and a relayer behind
capped and flaky nodes, SIGKILLed 24 times in all at random moments (half of them right after a
mined release, a sent e-mail, a carried request or a replaced transaction) while campaigns are
made, revealed (some by pledges through the relayer), withdrawn from and cancelled, and fees
spike. Nothing is published twice, nothing for a campaign below its threshold, a withdrawn or a
forged pledge; no pledge is lost; every journal ends empty; every member of every revealed
campaign gets its roster e-mailed exactly once (a row left ``uncertain`` by a kill is counted and
checked against the server); every relayed pledge the relayer accepted runs exactly once, and the
relayer spends no nonce on anything else. The full run (100 kills and more) is
``python -m bench.bench_soak``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_soak import keeper_soak, services_soak  # noqa: E402 - the repository root is on the path from here

pytestmark = [pytest.mark.anvil, pytest.mark.slow]


def test_keepers_relay_and_relayer_killed_24_times_behind_lying_capped_and_flaky_nodes(tmp_path: Path) -> None:
    seed = int(os.environ.get("SPARTACUS_SOAK_SEED") or int.from_bytes(os.urandom(4), "big"))
    figures = keeper_soak(
        tmp_path, kills=24, seed=seed, say=lambda s: print(f"soak (seed {seed}): {s}"), extend=services_soak
    )
    print(figures)
    assert figures["kills"] >= 24
    assert figures["exited_by_itself"] == [], figures["exited_by_itself"]
    assert figures["refusals_behind_the_liar"] > 0, "the liar never lied to its keeper: the run proves little"
    assert figures["campaigns"]["revealed"] + figures["campaigns"]["withdrawn"] >= 2
    assert figures["campaigns"]["relayed"] >= 1 and figures["relayer"]["accepted"] >= 2
    checks = figures["checks"]
    assert checks["relay: every member e-mailed once, nothing twice, nothing lost"]["members"] >= 10
    assert sum(figures["kills_by_process"]["relay"].values()) + sum(figures["kills_by_process"]["relayer"].values())
