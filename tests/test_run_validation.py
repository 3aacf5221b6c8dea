"""`irene run` checks every input before the first node: one line, exit 1, nothing profiled, output untouched."""

from __future__ import annotations

import subprocess
import sys

import pytest

from irene_core.cli.app import main
from irene_core.errors import IreneError
from irene_core.predictor.predictor import REFERENCE_DIR
from irene_core.profiling import session
from irene_core.profiling.profiler import RunSettings
from irene_core.profiling.run_checks import RUN_RULES, RunContext
from irene_core.profiling.session import RunPlan
from irene_core.profiling.validation import Validation, ValidationError, validation

MODEL = "bert-L2-H128"
SEED = "an existing dataset: never truncated, never read by a refused run\n"


@pytest.fixture
def refused(tmp_path, capsys, monkeypatch):
    """Run ``irene run`` with extra args against a seeded output; assert it was refused up front."""

    def never(*_args, **_kwargs):
        raise AssertionError("a node was profiled")

    monkeypatch.setattr(session, "trace", never)  # the session's trace starts profiling; validation's does not
    out = tmp_path / "out.jsonl"
    out.write_text(SEED)

    def run(*args: str) -> str:
        before = sorted(p.name for p in tmp_path.iterdir())
        code = main(["run", "--model", MODEL, "-b", "1", "-s", "8", "--window-seconds", "0.01", "-o", str(out),
                     *args])
        err = capsys.readouterr().err
        assert code == 1, err
        assert err.count("\n") == 1 and err.startswith("error: "), err
        assert out.read_text() == SEED and sorted(p.name for p in tmp_path.iterdir()) == before
        return err

    return run


CASES = {
    "meter options without a meter": (["--meter-option", "root=/x"], "--meter-option needs --meter"),
    "unknown model": (["--model", "no-such-model"], "unknown model 'no-such-model'"),
    "a grid point too long for the model": (["-s", "8,4096"], "4096 exceeds the model's 512 positions"),
    "unknown sampler": (["--sampler", "no-such-sampler"], "--sampler no-such-sampler"),
    "sampler interval": (["--interval-ms", "1"], "below the 10 ms minimum"),
    "unknown meter": (["--meter", "no-such-meter"], "no meter named 'no-such-meter'"),
    "bad meter option": (["--meter", "rapl", "--meter-option", "bogus=1"], "unknown option 'bogus'"),
    "meter not usable": (["--meter", "rapl", "--meter-option", "root=/nonexistent"], "meter 'rapl' is not usable"),
    "html in a directory nobody can write": (["--html", "/proc/report.html"], "--html /proc/report.html: cannot"),
    "missing predictor": (["--predictor", "/nonexistent"], "--predictor /nonexistent"),
    "predictor lacking features": (["--predictor", str(REFERENCE_DIR / "all")], "needs features this run cannot"),
}


@pytest.mark.parametrize("case", CASES)
def test_each_rule_refuses_before_profiling(refused, case):
    args, message = CASES[case]
    assert message in refused(*args)


def test_output_paths(refused, tmp_path):
    (tmp_path / "file").write_text("")
    assert "is a directory" in refused("-o", str(tmp_path))
    assert "is not a directory" in refused("-o", str(tmp_path / "file" / "out.jsonl"))
    assert "--html" in refused("--html", str(tmp_path))


def test_a_second_writer_is_refused(refused, tmp_path):
    """The lock is the last rule: everything else passes, then the lock held by another process refuses."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from irene_core.tree.atomic import DatasetLock\n"
         f"with DatasetLock({str(tmp_path / 'out.jsonl')!r}): print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert "another irene process is writing it" in refused()
    finally:
        holder.communicate("")


@pytest.mark.parametrize("args", [["-b", "0"], ["-s", "0"], ["-b", ""], ["-s", "8,-1"]])
def test_grid_values_below_one_are_usage_errors(args, capsys):
    assert main(["run", *args]) == 2
    assert "expected positive integers" in capsys.readouterr().err


def test_grid_rule_for_python_callers(tmp_path):
    plan = RunPlan(framework="torch", grid=[(MODEL, 0, 8)], meter=None, meter_options={}, predictor=None,
                   output=tmp_path / "o.jsonl", resume=False, interval_ms=20, device="cpu", attention="eager",
                   settings=RunSettings())
    with pytest.raises(ValidationError, match=r"--batch-size 0 \(bert-L2-H128\): must be an integer >= 1") as info, \
            RunContext(plan) as context:
        RUN_RULES.run(context)
    assert info.value.rule == "grid"


def test_the_layer_runs_rules_in_order_and_stops_at_the_first_error():
    seen: list[str] = []
    rules = Validation("demo")
    rules.add("a", lambda c: seen.append("a"))
    rules.add("c", lambda c: "c failed")
    rules.add("b", lambda c: seen.append("b"), before="c")
    rules.add("d", lambda c: seen.append("d"))
    with pytest.raises(ValidationError, match="c failed"):
        rules.run(None)
    assert seen == ["a", "b"] and rules.names == ["a", "b", "c", "d"]
    with pytest.raises(IreneError, match="already registered"):
        rules.add("a", lambda c: None)
    later = Validation("sweep")
    later.extend(validation("run"))
    assert later.names == validation("run").names and "lock" in later.names
