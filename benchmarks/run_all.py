"""`make bench`: every benchmark in turn (accuracy tables, timings as ratios, overheads).

Each `bench_*.py` has a `main()` that prints its figures; `bench_predictor` also regenerates
docs/results.md.  `--only NAME,…` runs a subset.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ("bench_predictor", "bench_tracer", "bench_run", "bench_sampler", "bench_viz")


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(ORDER))
    names = [n.strip() for n in parser.parse_args().only.split(",") if n.strip()]
    failed = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        try:
            main_fn = load(name).main
            main_fn([]) if main_fn.__code__.co_argcount else main_fn()
        except Exception as exc:  # noqa: BLE001 - report and go on with the other benchmarks
            failed.append(name)
            print(f"{name} failed: {type(exc).__name__}: {exc}", flush=True)
        print(f"({name}: {time.perf_counter() - start:.0f} s)", flush=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
