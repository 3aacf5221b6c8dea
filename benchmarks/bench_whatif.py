"""`irene whatif` over the 24 BERT miniatures at batch 16, sequence 128 (the paper's §6 question):
- as a cold CLI: `irene whatif --models <24 miniatures> -b 16 -s 128 --json` in a fresh process, best and
  worst of a few runs (imports torch/transformers and the predictor, 24 meta traces; target ≤ 15 s);
- warm, in this process with the predictor loaded and the tracer imported (a warm server's stand-in): the 24
  points traced again and predicted (target ≤ 5 s), and once more with their meta traces kept;
- the 24 points: parameters, predicted energy and its 90 % interval (J per call for the whole batch).

    python benchmarks/bench_whatif.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results import Section, update

PATTERN = "bert-L{2,4,6,8,10,12}-H{128,256,512,768}"
BATCH, SEQ = 16, 128
COLD_RUNS = 3
WARM_RUNS = 3
#: The issue's targets (s).
COLD_TARGET_S, WARM_TARGET_S = 15.0, 5.0


def cold_cli() -> tuple[list[float], dict]:
    """Wall times of fresh `irene whatif` processes, and the last one's JSON answer."""
    irene = Path(sys.executable).with_name("irene")
    times, answer = [], {}
    for _ in range(COLD_RUNS):
        start = time.perf_counter()
        proc = subprocess.run([str(irene), "whatif", "--models", PATTERN, "-b", str(BATCH), "-s", str(SEQ), "--json"],
                              capture_output=True, text=True, timeout=300, check=True)
        times.append(time.perf_counter() - start)
        answer = json.loads(proc.stdout)
    return times, answer


def warm() -> tuple[list[float], float]:
    """In-process times of the 24 points with a loaded predictor: traced anew each run, then from kept traces."""
    from irene_core import load_predictor
    from irene_core.whatif import WhatIfQuery, whatif

    predictor = load_predictor("model")
    whatif(WhatIfQuery(models=["bert-L2-H128"], batch_size=1, seq_len=8), predictor=predictor)  # imports torch
    query = WhatIfQuery(models=[PATTERN], batch_size=BATCH, seq_len=SEQ)
    fresh, cache = [], {}
    for _ in range(WARM_RUNS):
        cache.clear()
        start = time.perf_counter()
        whatif(query, predictor=predictor, trace_cache=cache)
        fresh.append(time.perf_counter() - start)
    start = time.perf_counter()
    whatif(query, predictor=predictor, trace_cache=cache)
    return fresh, time.perf_counter() - start


def _verdict(value: float, target: float) -> str:
    return f"{'within' if value <= target else 'above'} the {target:g} s target"


def section(argv: list[str] | None = None) -> str:
    out = Section("irene whatif", f"`irene whatif --models {PATTERN} -b {BATCH} -s {SEQ}`: the 24 BERT miniatures, "
                  "meta traces predicted by the shipped reference predictor (model features, device_1).")
    load_before = os.getloadavg()[0]
    cold, answer = cold_cli()
    out.print(f"cold CLI (fresh process, --json), {COLD_RUNS} runs: best {min(cold):.1f} s, worst {max(cold):.1f} s "
              f"({_verdict(max(cold), COLD_TARGET_S)})")
    fresh, kept = warm()
    median = statistics.median(fresh)
    out.print(f"warm, predictor loaded (a warm server), 24 points traced and predicted: median {median:.2f} s over "
              f"{WARM_RUNS} runs ({_verdict(median, WARM_TARGET_S)}); with the traces kept: {kept:.2f} s")
    out.print(f"load average (1 min) before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} CPUs")
    out.print()
    out.print(f"predicted energy per call, whole batch of {BATCH} × {SEQ} tokens ({answer['device']}):")
    out.print(f"{'model':<14} {'parameters (M)':>14} {'energy (J)':>11} {'90 % interval (J)':>18}  extrapolated")
    for p in answer["points"]:
        interval = "—" if p["low"] is None else f"{p['low']:.3f}–{p['high']:.3f}"
        out.print(f"{p['model']:<14} {p['parameters'] / 1e6:>14.1f} {p['energy']:>11.3f} {interval:>18}  "
                  f"{'yes' if p['extrapolated'] else 'no'}")
    return out.markdown()


if __name__ == "__main__":
    update({"bench_whatif": section(sys.argv[1:])})
