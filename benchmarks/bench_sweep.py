"""`irene sweep` figures: what a sweep adds per task to what `irene run` does for the same tree, with a
warm actor (target: at most 1 s). The actor traces, measures and predicts a tree with `irene run`'s own
code and times it; the overhead is the driver's wall time from submitting the task to having appended
the tree, less that. Local Ray cluster, no meter, bert-L2-H128 at batch 1 and small sequences.

    python benchmarks/bench_sweep.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from results import Section, update

#: The issue's target for the per-task overhead (s).
TARGET_S = 1.0
MODEL = "bert-L2-H128"


def sweep_overheads(seq_lens: tuple[int, ...] = (8, 9, 10, 11, 12, 13)) -> tuple[list[float], float, float]:
    """Per-task overheads (s) after the first task, the sweep's wall time and Ray's start-up time."""
    from rich.console import Console

    from irene_core.sweep.cluster import connect
    from irene_core.sweep.driver import SweepDriver, checked
    from irene_core.sweep.plan import SweepPlan

    plan = SweepPlan(models=[MODEL], batch_sizes=[1], seq_lens=list(seq_lens), window_seconds=0.02,
                     warmup_seconds=0.1, interval_ms=50)
    with tempfile.TemporaryDirectory() as tmp, checked(plan, Path(tmp) / "sweep.jsonl") as tasks:
        start = time.perf_counter()
        ray = connect("local")
        started = time.perf_counter() - start
        try:
            start = time.perf_counter()
            driver = SweepDriver(ray, plan, Path(tmp) / "sweep.jsonl", resume=False, retries=0,
                                 err=Console(quiet=True))
            result = driver.run(tasks)
            wall = time.perf_counter() - start
        finally:
            ray.shutdown()
    assert not result.failed, result.failed
    return result.overheads_s[1:], wall, started


def section(argv: list[str] | None = None) -> str:
    out = Section("irene sweep", "Per-task overhead of `irene sweep` over `irene run` of the same tree, warm actor.")
    overheads, wall, started = sweep_overheads()
    median = statistics.median(overheads)
    out.print(f"local Ray start: {started:.1f} s; {len(overheads) + 1} trees of {MODEL} b1 (no meter) in {wall:.1f} s")
    out.print(f"per-task overhead with a warm actor: median {1000 * median:.0f} ms, max {1000 * max(overheads):.0f} ms "
              f"over {len(overheads)} tasks ({'within' if median <= TARGET_S else 'above'} the {TARGET_S:g} s target)")
    return out.markdown()


if __name__ == "__main__":
    update({"bench_sweep": section(sys.argv[1:])})
