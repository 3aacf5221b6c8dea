"""Overhead of the resource sampler: CPU % of one core and RSS it adds, at 170 ms and at 20 ms.

Each configuration runs in a fresh process.  The sampler's cost is the CPU clock of its own thread
(``pthread_getcpuclockid``) over the window, in two settings: the main thread asleep (every tick
wakes an idle CPU: the worst case) and every core busy with matrix products (as during a run).
Apart from it: the one-time start-up (importing the plugin and NVML, the first readings) and the
RSS added, imports included.  The paper's figure at 170 ms: < 0.5 % CPU and < 15 MB.

    python benchmarks/bench_sampler.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from results import Section, update

INTERVALS_MS = (170.0, 20.0)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


def child(interval_ms: float, seconds: float, busy: bool) -> dict[str, float | int | str]:
    """Run in the measuring process: sample for ``seconds``, report the sampler thread's CPU time and RSS added."""
    import threading

    import numpy as np

    import irene_core.tree.features  # noqa: F401 - the core is loaded before the baseline

    matrix = np.random.default_rng(0).random((256, 256))
    matrix @ matrix  # BLAS threads and buffers exist before the baseline
    rss_before = rss_mb()
    cpu_before = time.process_time()
    from irene_features_resource.sampler import ProcResourceSampler

    sampler = ProcResourceSampler(interval_ms / 1000.0)
    sampler.start()
    cpu_started = time.process_time()
    thread = next(t for t in threading.enumerate() if t.name == "irene-resource-sampler")
    clock = time.pthread_getcpuclockid(thread.ident)
    thread_before = time.clock_gettime(clock)
    begin = time.monotonic()
    if busy:
        while time.monotonic() - begin < seconds:
            matrix @ matrix
    else:
        time.sleep(seconds)
    end = time.monotonic()
    cpu = time.clock_gettime(clock) - thread_before
    rss_after = rss_mb()
    samples = sampler.sample_count(begin, end)
    sampler.stop()
    return {
        "interval_ms": interval_ms,
        "seconds": end - begin,
        "samples": samples,
        "startup_cpu_ms": 1000.0 * (cpu_started - cpu_before),
        "cpu_pct_of_one_core": 100.0 * cpu / (end - begin),
        "us_per_sample": 1e6 * cpu / max(samples, 1),
        "rss_added_mb": rss_after - rss_before,
        "gpu": "; ".join(sorted(set(sampler.missing_features().values()))) or "sampled",
    }


def section(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="window per interval (default 60 s, as the issue)")
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--busy", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.child, args.seconds, args.busy)))
        return ""
    out = Section(
        "Resource sampler",
        "The sampler thread's own CPU clock, with the rest of the machine idle and with every core busy.",
    )
    out.print(f"resource sampler overhead over {args.seconds:g} s windows (CPU clock of the sampler thread)")
    out.print(f"{'interval':>9} {'machine':>13} {'samples':>8} {'CPU % of a core':>16} {'µs/sample':>10} "
          f"{'RSS added':>10} {'start-up CPU':>13}")
    gpu = ""
    for interval in INTERVALS_MS:
        for busy in (False, True):
            stdout = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(interval),
                    "--seconds",
                    str(args.seconds),
                    *(["--busy"] if busy else []),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            r = json.loads(stdout)
            gpu = r["gpu"]
            out.print(f"{r['interval_ms']:>7g}ms {'cores busy' if busy else 'idle':>13} {r['samples']:>8} "
                  f"{r['cpu_pct_of_one_core']:>15.3f}% {r['us_per_sample']:>10.0f} {r['rss_added_mb']:>8.2f}MB "
                  f"{r['startup_cpu_ms']:>11.0f}ms")
    out.print(f"GPU features: {gpu}")
    out.print("paper at 170 ms: < 0.5 % CPU, < 15 MB; target at 20 ms: < 0.5 % CPU")
    return out.markdown()


if __name__ == "__main__":
    text = section(sys.argv[1:])
    if text:
        update({"bench_sampler": text})
