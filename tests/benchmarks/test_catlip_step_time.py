"""Benchmark: CatLIP vs CLIP time per training step (card 07, condition 1), both arms in this process after warm-up,
on the same batch of 256 scenes and the same ~98k-parameter scene encoder, the arms alternating in rounds
(trainers/catlip/speed.py). Printed as median ms per step and the CLIP / CatLIP ratio, never asserted on time; the
claim (`edgezoo reproduce catlip`) stores the same figure per seed with its verdict.

Run: `make bench` or `python -m tests.benchmarks.test_catlip_step_time`.
"""

from __future__ import annotations

import json
import statistics

import pytest

from trainers.catlip.recipe import CatLIPRecipe, scene_data
from trainers.catlip.speed import step_times, summary

pytestmark = pytest.mark.benchmark


def run(threads: int = 1, rounds: int = 10) -> dict[str, float]:
    recipe = CatLIPRecipe(n_train=512, n_test=64, threads=threads)
    times = step_times(recipe, scene_data(recipe), rounds=rounds)
    out = {**summary(times), "samples_per_arm": len(times["catlip"]), "threads": threads,
           **{f"{arm}_iqr_ms": 1000 * (statistics.quantiles(t, n=4)[2] - statistics.quantiles(t, n=4)[0])
              for arm, t in times.items()}}
    print(f"CatLIP {out['catlip_ms']:.1f} ms/step, CLIP {out['clip_ms']:.1f} ms/step (batch 256, {threads} thread(s), "
          f"{out['samples_per_arm']} steps each after warm-up): CLIP / CatLIP = {out['speedup']:.3f}")
    print(json.dumps(out, indent=2))
    return out


def test_catlip_vs_clip_step_time() -> None:
    out = run()
    assert out["samples_per_arm"] == 30 and out["catlip_ms"] > 0 and out["clip_ms"] > 0


if __name__ == "__main__":
    run()
