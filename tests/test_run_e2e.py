"""`irene run` end to end: the real tracer, sampler and RAPL meter (on a simulated powercap tree whose
counters a thread advances at a known power), then train → predict on a held-out input size (in process)."""

from __future__ import annotations

import itertools
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from irene_core.tree.jsonl import load_records
from irene_meter_rapl.testing import PowercapTree

POWER_W = 40.0
MODEL = "bert-L2-H128"
# One intra-op thread, so the powercap simulator's process keeps a core to advance the counters on time.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def irene_cmd(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("irene")), *args]


def _holds_a_tree(data: Path) -> bool:
    return data.exists() and data.read_text().count("\n") >= 1


def wait_for_first_tree(proc: subprocess.Popen, data: Path) -> None:
    """Block until the running ``irene run`` has appended its first tree."""
    deadline = time.monotonic() + 300
    while not _holds_a_tree(data):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_train_once_predict_anywhere(tmp_path, cli_run, cli_main):
    data = tmp_path / "runs.jsonl"
    started = time.time_ns()
    wall_minus_monotonic_ns = time.time_ns() - time.monotonic_ns()
    # Keep every counter update of the run (ticks of ≥ 0.5 ms for up to ~8 min) to bound what a window read.
    with PowercapTree(tmp_path / "powercap", {"package-0": POWER_W}, tick_s=0.0005, history=1 << 20) as tree:
        done = cli_run(
            "run", "--model", MODEL, "--batch-sizes", "1,2", "--seq-lens", "8,16", "--meter", "rapl",
            "--option", f"root={tree.root}", "--window-seconds", "0.2", "--rounds", "2", "--idle-seconds", "0.3",
            "--interval-ms", "20", "-o", str(data), "--html", str(tmp_path / "report.html"), env=ENV,
        )
        records = load_records(data)
        # the least and most energy the simulated counter showed over each window (monotonic s), its edges
        # ± 10 ms: a preempted meter may stamp a read some ms from it (6 ms once, two test workers on 2 cores)
        counted = {
            w.begin_ns: tree.counted_energy_j("package-0", *((t - wall_minus_monotonic_ns) * 1e-9
                                                             for t in (w.begin_ns, w.end_ns)), slack=0.01)
            for r in records for n in r.nodes() for w in n.windows
        }
    finished = time.time_ns()
    out = done.stdout
    assert "measured vs predicted" in out and "Energy bottlenecks" in out
    assert [line for line in done.stderr.splitlines() if line.startswith("flags: ")], done.stderr
    # piped, each message is one line however long (the predictor line is ~150 characters) and no
    # progress bar leaves a line behind
    prefixes = ("predictor: ", "notice: ", "flags: ", "warning: ")
    assert all(line.startswith(prefixes) for line in done.stderr.splitlines()), done.stderr
    assert sorted(r.key[:3] for r in records) == [(MODEL, b, s) for b in (1, 2) for s in (8, 16)]
    deviations, in_window = {}, {}
    for record in records:
        # one 0.3 s window: the simulator some ms behind at its edge moves it by a few % (as a window, below)
        assert record.meta["idle_power_w"] == pytest.approx(POWER_W, rel=0.05)
        assert record.meta["meter"] == "rapl" and record.meta["rounds"] == 2
        assert record.host == socket.gethostname() and record.meta["threads"] >= 1
        assert record.meta["hardware"]["cpu"]["count"] == os.cpu_count() and record.meta["hardware"]["gpus"] == []
        assert "ground_truth_spread_pct" not in record.meta and len(record.meta["load_average"]) == 3
        edges = sorted((w.begin_ns, w.end_ns) for n in record.nodes() for w in n.windows)
        measured = [n for n in record.nodes() if n.measured_as is None]  # one node per class of identical ones
        assert len(edges) == 2 * len(measured) < 2 * sum(1 for _ in record.nodes())  # rounds × measured nodes
        assert started < edges[0][0] and edges[-1][1] < finished
        assert all(e - b >= 0.2e9 for b, e in edges)  # a window is at least --window-seconds
        assert all(e <= b2 for (_, e), (b2, _) in itertools.pairwise(edges))  # one window at a time
        for node in record.nodes():
            assert {"cpu", "mem", "times_mean", "flops"} <= set(node.features)
            assert node.spread_pct is not None and node.energy_above_idle is not None
            assert ("spread" in node.flags) == (node.spread_pct > 5)
            expected = POWER_W * node.features["times_mean"]  # energy per call = power × latency
            deviations[(record.key, node.id)] = abs(node.ground_truth_energy / expected - 1)
            if node.windows:  # energy per call = the mean over rounds of window energy / calls
                per_call = [w.energy_j / w.calls for w in node.windows]
                assert node.ground_truth_energy == pytest.approx(statistics.fmean(per_call), rel=1e-9)
                for w in node.windows:
                    in_window[(record.key, node.id, w.begin_ns)] = abs(
                        w.energy_j / (POWER_W * (w.end_ns - w.begin_ns) * 1e-9) - 1
                    )
                    low, high = counted[w.begin_ns]
                    assert low <= w.energy_j <= high, (record.key, node.id, w, low, high)
    # Every window holds exactly what the counter showed over it (above), and that is the power × its time
    # within 5 %: the simulator is a user-space process, which on a loaded machine can fall some ms behind
    # at a window's edge (the kernel's RAPL counters do not), so allow a rare straggler.
    within = [d <= 0.05 for d in in_window.values()]
    assert sum(within) >= 0.97 * len(within), sorted(in_window.items(), key=lambda kv: -kv[1])[:5]
    # Latency is the calls' own time; a window also holds the replay's gaps between calls, which a loaded
    # machine stretches.
    within = [d <= 0.05 for d in deviations.values()]
    assert sum(within) >= 0.9 * len(within), sorted(deviations.items(), key=lambda kv: -kv[1])[:5]
    assert "<html" in (tmp_path / "report.html").read_text().lower()

    predictor = tmp_path / "predictor"
    cli_main("train", str(data), "-o", str(predictor), "--features", "model")
    held_out = tmp_path / "held_out.jsonl"
    cli_main("trace", MODEL, "--batch-size", "2", "--seq-len", "32", "--json", "-o", str(held_out))
    predicted = tmp_path / "predicted.jsonl"
    cli_main("predict", str(held_out), "--predictor", str(predictor), "-o", str(predicted))
    (record,) = load_records(predicted)
    for node in record.root.walk():
        assert node.predicted_energy is not None and math.isfinite(node.predicted_energy), node.id
    for node in record.root.walk():
        if node.children:
            assert sum(c.predicted_energy for c in node.children) == pytest.approx(node.predicted_energy, rel=1e-6)


def test_interrupted_run_resumes_without_loss_or_duplicates(tmp_path):
    data = tmp_path / "runs.jsonl"
    args = irene_cmd("run", "--model", MODEL, "--batch-size", "1", "--seq-lens", "8,16,24", "--window-seconds", "0.02",
                     "--interval-ms", "20", "-o", str(data))
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    wait_for_first_tree(proc, data)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err
    kept = load_records(data)
    assert 1 <= len(kept) < 3

    refused = subprocess.run(args, capture_output=True, text=True, env=ENV)
    assert refused.returncode == 1 and "pass --resume" in refused.stderr

    done = subprocess.run([*args, "--resume"], capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    keys = [r.key[:3] for r in load_records(data)]
    assert sorted(keys) == [(MODEL, 1, s) for s in (8, 16, 24)]
    assert [r.key for r in load_records(data)][: len(kept)] == [r.key for r in kept]


def test_meter_failure_keeps_finished_trees(tmp_path):
    data = tmp_path / "runs.jsonl"
    with PowercapTree(tmp_path / "powercap", {"package-0": POWER_W}) as tree:
        args = irene_cmd("run", "--model", MODEL, "--batch-size", "1", "--seq-lens", "8,16,24", "--meter", "rapl",
                         "--option", f"root={tree.root}", "--window-seconds", "0.02", "--rounds", "1",
                         "--idle-seconds", "0.1", "--interval-ms", "20", "-o", str(data))
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        wait_for_first_tree(proc, data)
        # the meter's zone goes away mid-run (one rename: the simulator may be writing into it right now)
        (tree.root / "intel-rapl:0").rename(tmp_path / "zone-gone")
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: ") and "finished trees kept in" in line and "--resume" in line
    assert "2 retries failed too" in line and "that tree was discarded" in line
    kept = load_records(data)
    assert 1 <= len(kept) < 3 and all(n.ground_truth_energy is not None for r in kept for n in r.nodes())


def test_sigterm_keeps_finished_trees_and_resume_repairs_a_truncated_tail(tmp_path):
    data = tmp_path / "runs.jsonl"
    args = irene_cmd("run", "--model", MODEL, "--batch-size", "1", "--seq-lens", "8,16", "--window-seconds", "0.02",
                     "--interval-ms", "20", "-o", str(data))
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    wait_for_first_tree(proc, data)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in err and "--resume" in err
    (kept,) = load_records(data)
    whole = data.read_bytes()
    with data.open("ab") as handle:  # a crash in the middle of the next append
        handle.write(whole[: len(whole) // 2])

    done = subprocess.run([*args, "--resume"], capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    assert f"removed a truncated last line ({len(whole) // 2} bytes)" in done.stderr
    records = load_records(data)
    assert [r.key[:3] for r in records] == [(MODEL, 1, 8), (MODEL, 1, 16)] and records[0] == kept


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_at_a_seeded_moment_then_resume_loses_and_repeats_nothing(tmp_path, seed):
    """A SIGKILL (no handler runs: the lock file stays, a line may be cut) at a seeded moment of a real run."""
    import random

    data = tmp_path / "runs.jsonl"
    args = irene_cmd("run", "--model", MODEL, "--batch-size", "1", "--seq-lens", "8,16,24", "--window-seconds", "0.02",
                     "--interval-ms", "20", "-o", str(data))
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    wait_for_first_tree(proc, data)
    time.sleep(random.Random(seed).uniform(0.0, 1.5))
    proc.kill()
    proc.wait(timeout=60)
    done = subprocess.run([*args, "--resume"], capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    keys = [r.key[:3] for r in load_records(data)]
    assert sorted(keys) == [(MODEL, 1, s) for s in (8, 16, 24)]  # each tree exactly once


class _InterruptInsideNoInitWeights:
    """``PreTrainedModel.init_weights`` read at class level (what transformers' ``no_init_weights`` saves
    before patching) sends a SIGINT once ``data`` holds a tree: the stop lands inside a ``try`` whose
    ``finally`` then raises UnboundLocalError, as a Ctrl-C there does."""

    def __init__(self, original, data: Path):
        self.original, self.data, self.fired = original, data, False

    def __get__(self, obj, owner):
        if obj is not None:
            return self.original.__get__(obj, owner)
        if not self.fired and _holds_a_tree(self.data):
            self.fired = True
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler raises here
        return self  # what no_init_weights restores, so the next build finds it again

    def __call__(self, *args, **kwargs):
        return self.original(*args, **kwargs)


def test_a_stop_inside_third_party_cleanup_still_keeps_the_trees_and_says_resume(tmp_path, cli_main, capsys,
                                                                                 monkeypatch):
    from transformers import PreTrainedModel

    data = tmp_path / "runs.jsonl"
    interrupt = _InterruptInsideNoInitWeights(PreTrainedModel.__dict__["init_weights"], data)
    monkeypatch.setattr(PreTrainedModel, "init_weights", interrupt)
    with pytest.raises(SystemExit) as stop:
        cli_main("run", "--model", MODEL, "--batch-size", "1", "--seq-lens", "8,16", "--window-seconds", "0.02",
                 "--interval-ms", "20", "-o", str(data))
    assert interrupt.fired and stop.value.code == 130
    assert "stopped by SIGINT while profiling" in capsys.readouterr().err
    assert [r.key[:3] for r in load_records(data)] == [(MODEL, 1, 8)]
