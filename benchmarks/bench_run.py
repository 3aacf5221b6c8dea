"""`irene run` figures: wall time of a full no-meter run of bert-base at batch 8, seq 128 (the issue's
target: under 2 minutes on 2 cores; IrEne-viz needed 15–25 minutes a model), and what metering costs
a window: the CPU time of one RAPL begin/end pair on a simulated powercap tree (target: at most
Zeus 0.16's 61 µs), as a share of the default 2 s window.

    python benchmarks/bench_run.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import Section, update

#: Zeus 0.16's CPU per RAPL begin/end pair on the same emulated counters (issue 14): the target.
ZEUS_PAIR_S = 61e-6


def run_wall_time(model: str = "bert-base-uncased", batch: int = 8, seq: int = 128) -> tuple[float, int]:
    """Seconds for a complete `irene run` (trace, replay every node, sample, predict, write)."""
    irene = Path(sys.executable).with_name("irene")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.jsonl"
        start = time.perf_counter()
        subprocess.run([str(irene), "run", "--model", model, "--batch-size", str(batch), "--seq-len", str(seq),
                        "-o", str(out)], check=True, capture_output=True)
        wall = time.perf_counter() - start
        from irene_core.tree.jsonl import load_records

        (record,) = load_records(out)
        return wall, sum(1 for _ in record.nodes())


def meter_window_cost(windows: int = 300, repeats: int = 5) -> float:
    """CPU seconds of one RAPL begin + end pair (reading the summed counters, package and DRAM, twice): the
    best of ``repeats`` batches, as timeit reports, since a shared machine only ever adds time."""
    from irene_meter_rapl.meter import RaplMeter
    from irene_meter_rapl.testing import PowercapTree

    with tempfile.TemporaryDirectory() as tmp, PowercapTree(Path(tmp), {"package-0": 30.0, "package-0/dram": 3.0}):
        meter = RaplMeter(root=tmp)
        meter.begin("warm")
        meter.end("warm")
        best = float("inf")
        for _ in range(repeats):
            start = time.process_time()
            for i in range(windows):
                meter.begin(str(i))
                meter.end(str(i))
            best = min(best, (time.process_time() - start) / windows)
        return best


def section(argv: list[str] | None = None) -> str:
    out = Section("irene run", "A full no-meter `irene run` of bert-base, and the CPU cost of a meter window.")
    cost = meter_window_cost()
    out.print(
        f"RAPL meter: {1e6 * cost:.0f} µs CPU per begin/end pair ({'within' if cost <= ZEUS_PAIR_S else 'above'} "
        f"Zeus 0.16's {1e6 * ZEUS_PAIR_S:.0f} µs) = {100 * cost / 2.0:.4f} % of a core over the default 2 s window"
    )
    wall, nodes = run_wall_time()
    out.print(
        f"bert-base-uncased b8 s128, no meter, defaults (0.25 s × 1 round per node): {wall:.1f} s for {nodes} nodes "
        f"({wall / 120:.2f}× the 2-minute target; IrEne-viz: 15–25 min)"
    )
    out.print("sampler overhead at 170 ms and 20 ms: see bench_sampler")
    return out.markdown()


if __name__ == "__main__":
    update({"bench_run": section(sys.argv[1:])})
