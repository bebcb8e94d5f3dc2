"""The soak of bench/bench_soak.py, scaled down to run in `make test` (about two minutes):
three keepers, each behind its own lying, capped or flaky node, SIGKILLed 24 times in all at
random moments (half of them right after a mined release) while campaigns are made, revealed,
withdrawn from and cancelled, and fees spike. Nothing is published twice, nothing for a
campaign below its threshold, a withdrawn or a forged pledge; no pledge is lost; every
journal ends empty. The full run (100 kills and more) is ``python -m bench.bench_soak``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_soak import keeper_soak  # noqa: E402 - the repository root is on the path from here

pytestmark = [pytest.mark.anvil, pytest.mark.slow]


def test_keepers_killed_24_times_behind_lying_capped_and_flaky_nodes(tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    figures = keeper_soak(tmp_path, kills=24, seed=seed, say=lambda s: print(f"soak (seed {seed}): {s}"))
    assert figures["kills"] >= 24
    assert figures["exited_by_itself"] == [], figures["exited_by_itself"]
    assert figures["refusals_behind_the_liar"] > 0, "the liar never lied to its keeper: the run proves little"
    assert figures["campaigns"]["revealed"] + figures["campaigns"]["withdrawn"] >= 2
    print(figures)
