"""`make bench`: every benchmark in turn (accuracy tables, timings as ratios, overheads), then
docs/results.md with one section per benchmark (:mod:`results`).

Each `bench_*.py` has a `section(argv)` that prints its figures and returns its Markdown section.
`--only NAME,…` runs a subset and keeps the other sections of docs/results.md as they are.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

from results import ORDER, update

HERE = Path(__file__).resolve().parent


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # worker processes find its functions by module name
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(ORDER))
    names = [n.strip() for n in parser.parse_args().only.split(",") if n.strip()]
    failed, done = [], {}
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        try:
            done[name] = load(name).section([])
        except Exception as exc:
            failed.append(name)
            print(f"{name} failed: {type(exc).__name__}: {exc}", flush=True)
        print(f"({name}: {time.perf_counter() - start:.0f} s)", flush=True)
    print(f"\n{update(done)}: {len(done)} section(s) regenerated")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
