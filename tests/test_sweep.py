"""`irene sweep` on Ray: bad input refused in one line before any task starts, and (slow) a local
multi-node cluster (`ray.cluster_utils.Cluster`) whose two worker nodes each offer `irene_meter_host`
and read their own simulated powercap tree, through the real CLI, tracer, sampler and RAPL meter."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from irene_core.errors import IreneError
from irene_core.sweep.actors import OPTIONS_ENV, node_meter_options
from irene_core.sweep.plan import SweepPlan, device_kind, load_plan
from irene_core.tree.jsonl import load_records
from irene_meter_rapl.testing import PowercapTree

MODEL = "bert-L2-H128"
#: Each worker node's simulated package power (W): the idle power each node measures tells them apart.
POWERS = (20.0, 60.0)
PLAN = {"models": [MODEL], "batch_sizes": [1, 2], "seq_lens": [8, 16, 24], "meter": "rapl", "window_seconds": 0.02,
        "rounds": 1, "idle_seconds": 0.3, "interval_ms": 50, "warmup_seconds": 0.05}


def irene(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    cmd = [str(Path(sys.executable).with_name("irene")), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert all(w in lines[0] for w in words), lines[0]


# Bad input: one line, exit 1, before any task starts (no cluster).


def test_unknown_plan_key_names_file_and_key(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"models: [{MODEL}]\nbatch_size: [1]\n")
    one_line_error(irene("sweep", "--plan", str(plan), "-o", str(tmp_path / "out.jsonl")), str(plan), "batch_size")
    assert not (tmp_path / "out.jsonl").exists()


def test_unknown_model_is_refused_before_any_cluster(tmp_path):
    done = irene("sweep", "--model", "no-such-model", "-o", str(tmp_path / "out.jsonl"))
    one_line_error(done, "no-such-model")
    assert not (tmp_path / "out.jsonl").exists()


def test_unreachable_address_fails_fast(tmp_path):
    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    start = time.monotonic()
    done = irene("sweep", "--model", MODEL, "--cluster", f"127.0.0.1:{port}", "-o", str(tmp_path / "out.jsonl"))
    one_line_error(done, f"--cluster 127.0.0.1:{port}", "no Ray cluster reachable")
    assert time.monotonic() - start < 30


def test_plan_only_lists_every_task_of_json_and_yaml_plans(tmp_path):
    (tmp_path / "plan.json").write_text(json.dumps({**PLAN, "phases": ["forward", "decode"], "context_lens": [32]}))
    done = irene("sweep", "--plan", str(tmp_path / "plan.json"), "--plan-only")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "8 tasks on cpu, meter rapl"
    assert sum("decode context 32" in line and " s1 " in line for line in lines) == 2  # one per batch size
    (tmp_path / "plan.yaml").write_text("models: [a, b]\nbatch_sizes: [1, 2, 2]\n")
    assert irene("sweep", "--plan", str(tmp_path / "plan.yaml"), "--plan-only").stdout.splitlines()[-1] == \
        "4 tasks on cpu"
    one_line_error(irene("sweep", "--plan", str(tmp_path / "plan.yaml"), "-b", "4"), "drop --batch-size")


def test_a_plans_predictor_is_a_shipped_ones_name_or_a_directory_beside_the_plan(tmp_path):
    for given, read in (("all", "all"), ("reference", "reference"), ("preds/mine", str(tmp_path / "preds" / "mine")),
                        ("/abs/mine", "/abs/mine")):
        (tmp_path / "plan.json").write_text(json.dumps({**PLAN, "predictor": given}))
        assert load_plan(tmp_path / "plan.json").predictor == read


def test_plan_rules():
    with pytest.raises(ValueError, match="context_lens"):
        SweepPlan(models=[MODEL], phases=["decode"])
    with pytest.raises(ValueError, match="kind of device"):
        SweepPlan(models=[MODEL], device="cuda:1")
    assert device_kind("node-7/x86_64/cuda:3") == "x86_64/cuda"
    assert device_kind("device_1") == "device_1"


def test_node_meter_options_from_environment_or_file(tmp_path, monkeypatch):
    monkeypatch.setenv(OPTIONS_ENV, json.dumps({"rapl": {"root": "/x", "max_power_w": 300}}))
    assert node_meter_options("rapl") == {"root": "/x", "max_power_w": "300"}
    assert node_meter_options("emonpi") == {}
    monkeypatch.setenv(OPTIONS_ENV, '{"rapl": ["root"]}')
    with pytest.raises(IreneError, match=OPTIONS_ENV):
        node_meter_options("rapl")
    monkeypatch.delenv(OPTIONS_ENV)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "irene").mkdir()
    (tmp_path / "irene" / "meter-options.json").write_text('{"rapl": {"root": "/y"}}')
    assert node_meter_options("rapl") == {"root": "/y"}


# A local cluster of a head and two measuring worker nodes.


@pytest.fixture(scope="module", autouse=True)
def own_signal_handlers():
    """Ray's in-process head and drivers install signal handlers of their own: the other tests of this
    worker process get theirs back."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from ray.cluster_utils import Cluster

    root = tmp_path_factory.mktemp("powercap")
    trees = [PowercapTree(root / f"node{i}", {"package-0": watts}, tick_s=0.005).start()
             for i, watts in enumerate(POWERS)]
    # the head offers no meter (and no CPU): only the two worker nodes measure
    head = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "_system_config": {
        "health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_failure_threshold": 4}})
    nodes = {}
    for tree, watts in zip(trees, POWERS, strict=True):
        options = json.dumps({"rapl": {"root": str(tree.root)}})
        node = head.add_node(num_cpus=1, resources={"irene_meter_host": 1}, env_vars={OPTIONS_ENV: options})
        nodes[node.node_id] = (node, watts)
    head.wait_for_nodes()
    try:
        yield head, nodes
    finally:
        head.shutdown()
        for tree in trees:
            tree.stop()


@pytest.mark.slow
def test_no_node_offers_the_plans_resources(cluster, tmp_path):
    head, _ = cluster
    done = irene("sweep", "--model", MODEL, "--meter", "nvml", "--cluster", head.address, "-o",
                 str(tmp_path / "out.jsonl"))
    one_line_error(done, "no node of the cluster offers GPU")
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.slow
def test_sweep_across_nodes_survives_a_lost_node_and_resumes(cluster, tmp_path):
    head, nodes = cluster
    plan, out = tmp_path / "plan.json", tmp_path / "sweep.jsonl"
    plan.write_text(json.dumps(PLAN))
    cmd = [str(Path(sys.executable).with_name("irene")), "sweep", "--plan", str(plan), "--cluster", head.address,
           "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (out.exists() and out.read_text().count("\n") >= 1):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no tree within 240 s"
        time.sleep(0.1)
    first = json.loads(out.read_text().splitlines()[0])["meta"]["sweep"]["node_id"]
    head.remove_node(nodes[first][0])  # the node that measured the first tree is lost mid-sweep
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, (stdout, stderr)

    records = load_records(out)
    keys = [r.key for r in records]
    assert sorted(k[:3] for k in keys) == sorted((MODEL, b, s) for b in (1, 2) for s in (8, 16, 24))  # once each
    by_node = defaultdict(set)
    for record in records:
        node = record.meta["sweep"]["node_id"]
        assert record.host == socket.gethostname() and record.device.endswith("/cpu")
        assert record.meta["threads"] == 1 and record.meta["meter"] == "rapl"
        # each node measured its own powercap tree (its options came from the node)
        assert record.meta["idle_power_w"] == pytest.approx(nodes[node][1], rel=0.25)
        for n in record.nodes():
            by_node[node].update((w.begin_ns, w.end_ns) for w in n.windows)
    survivor = next(n for n in nodes if n != first)
    assert sum(r.meta["sweep"]["node_id"] == survivor for r in records) >= 3
    for windows in by_node.values():  # the windows of one node never overlap in time
        ordered = sorted(windows)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(ordered)), "overlapping windows"
        assert all(begin < end for begin, end in ordered)

    before = out.read_bytes()
    again = irene("sweep", "--plan", str(plan), "--cluster", head.address, "-o", str(out), "--resume", timeout=180)
    assert again.returncode == 0, again.stderr
    assert "0 trees appended" in again.stdout and "6 already there" in again.stdout
    assert out.read_bytes() == before
