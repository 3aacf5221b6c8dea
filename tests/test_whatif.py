"""``irene whatif`` and :mod:`irene_core.whatif`: variants traced on meta and predicted, energy per module
type, the Pareto front, budget / min-accuracy answers, accuracy files, JSON/CSV output, one-line refusals."""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from irene_core.errors import IreneError
from irene_core.predictor.novelty import product_values
from irene_core.tracing.framework import Framework
from irene_core.tracing.trace import phase_options
from irene_core.tree.table import TreeTable
from irene_core.whatif import WhatIfQuery, WhatIfResult, expand_models, read_accuracy, whatif
from irene_core.whatif.analysis import pareto_front

SMALL = ["bert-L2-H128", "bert-L4-H128", "bert-L2-H256", "bert-L4-H256"]


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """torch on one thread (the root conftest's fixture)."""


@pytest.fixture(scope="module")
def predictor():
    from irene_core.predictor.predictor import load_predictor

    return load_predictor("model")


@pytest.fixture(scope="module")
def cache():
    return {}


@pytest.fixture(scope="module")
def ask(predictor, cache):
    """``ask(**query)``: the what-if with the module's predictor and meta-trace cache."""

    def run(**fields) -> WhatIfResult:
        return whatif(WhatIfQuery(**fields), predictor=predictor, trace_cache=cache)

    return run


@pytest.fixture(scope="module")
def small(ask):
    return {p.model: p for p in ask(models=SMALL).points}


def test_variants_change_the_tree(ask, cache, small):
    result = ask(base="bert-L2-H128", vary={"layers": [2, 4], "hidden": [128, 256]})
    names = [p.model for p in result.points]
    assert names == ["bert-L2-H128[layers=2,hidden=128]", "bert-L2-H128[layers=2,hidden=256]",
                     "bert-L2-H128[layers=4,hidden=128]", "bert-L2-H128[layers=4,hidden=256]"]
    traced = {r.model_name: r for r in cache.values()}
    for point in result.points:
        layers = [n for n in traced[point.model].root.walk() if n.type == "BertLayer"]
        assert len(layers) == point.settings["layers"]
        assert next(t.count for t in point.per_type if t.type == "BertIntermediate") == point.settings["layers"]
        # a variant is the miniature of the same shape: same parameters, same predicted energy
        same = small[f"bert-L{point.settings['layers']}-H{point.settings['hidden']}"]
        assert point.parameters == same.parameters and point.energy == pytest.approx(same.energy)
        assert point.settings and not same.settings
    assert result.points[3].energy > result.points[2].energy > result.points[0].energy


def test_per_type_partitions_each_points_energy(small):
    for point in small.values():
        assert sum(t.energy for t in point.per_type) == pytest.approx(point.energy, rel=1e-9)
        assert sum(t.low or 0 for t in point.per_type) <= point.energy <= sum(t.high or 0 for t in point.per_type)
        assert [t.energy for t in point.per_type] == sorted((t.energy for t in point.per_type), reverse=True)
        assert {"BertSelfAttention", "BertEmbeddings"} <= {t.type for t in point.per_type}
        container = [t.energy for t in point.per_type if t.type == "BertEncoder"]  # owns a sliver, if anything
        assert sum(container) < 0.02 * point.energy, (point.model, container, point.energy)
        assert point.low < point.energy < point.high and point.flops > 0


def test_pareto_front_handles_ties_and_domination():
    # equal points both stay; equal energy with less accuracy, or equal accuracy with more energy, drop out
    front = pareto_front([1.0, 1.0, 2.0, 3.0, 2.0, 4.0, 1.0], [0.5, 0.5, 0.4, 0.6, 0.6, 0.6, 0.45])
    assert front.tolist() == [True, True, False, False, True, False, False]


@pytest.fixture
def accuracy_file(tmp_path):
    path = tmp_path / "accuracy.csv"
    # bert-L4-H128 costs more than bert-L2-H128 and scores less: off the front; bert-L4-H256 has no score
    path.write_text("model,score\nbert-L2-H128,0.70\nbert-L4-H128,0.65\nbert-L2-H256,0.80\nnot-a-point,0.9\n")
    return path


def test_pareto_marks_and_accuracy_notices(ask, accuracy_file):
    result = ask(models=SMALL, accuracy=read_accuracy(accuracy_file))
    marks = {p.model: (p.accuracy, p.pareto) for p in result.points}
    assert marks == {"bert-L2-H128": (0.70, True), "bert-L4-H128": (0.65, False), "bert-L2-H256": (0.80, True),
                     "bert-L4-H256": (None, False)}
    assert "--accuracy: 1 name(s) match no point: not-a-point" in result.notices
    assert any(n.startswith("--accuracy: no score for 1 point(s)") and "bert-L4-H256" in n for n in result.notices)
    assert any(n.startswith("4 of 4 points are extrapolated") for n in result.notices)


def test_budget_and_min_accuracy_answers(ask, accuracy_file, small):
    accuracy = read_accuracy(accuracy_file)
    cheap, wide = small["bert-L2-H128"], small["bert-L2-H256"]
    assert cheap.high < wide.low < wide.energy
    (within,) = ask(models=SMALL, accuracy=accuracy, budget_j=(wide.low + wide.energy) / 2).answers
    assert within.model == "bert-L2-H128" and within.accuracy == 0.70 and within.energy == cheap.energy
    assert "above the budget" not in within.note
    assert f"bert-L2-H256 (accuracy 0.8, {wide.energy:.4g} J) may fit too" in within.note
    tight, at_least = ask(models=SMALL, accuracy=accuracy, budget_j=wide.energy * 1.001, min_accuracy=0.75).answers
    assert tight.question == f"best accuracy within {wide.energy * 1.001:g} J" and tight.model == "bert-L2-H256"
    assert f"its 90 % interval reaches {wide.high:.4g} J, above the budget" in tight.note
    assert at_least.question == "least energy for accuracy >= 0.75" and at_least.model == "bert-L2-H256"
    assert "extrapolated" in at_least.note
    none_within, none_reach = ask(models=SMALL, accuracy=accuracy, budget_j=cheap.energy / 2,
                                  min_accuracy=0.95).answers
    assert none_within.model is None and none_within.energy is None
    assert none_within.note.startswith("no point with an accuracy is predicted within")
    assert "the least is bert-L2-H128" in none_within.note
    assert none_reach.model is None and none_reach.note == "no point reaches an accuracy of 0.95: the best is 0.8"


def test_brace_patterns_expand_in_order_without_repeats():
    assert expand_models("gpt2, bert-L{2,4}-H{128,256},gpt2") == [
        "gpt2", "bert-L2-H128", "bert-L2-H256", "bert-L4-H128", "bert-L4-H256"]
    assert len(expand_models("bert-L{2,4,6,8,10,12}-H{128,256,512,768}")) == 24


def test_read_accuracy_header_optional(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("bert-L2-H128, 0.7\n\n bert-L4-H128 ,0.65\n")
    assert read_accuracy(path) == {"bert-L2-H128": 0.7, "bert-L4-H128": 0.65}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model,score\nm,1,2\n", "a.csv:2: expected model,score, got 3 field(s)"),
        ("m,0.5\nn,high\n", "a.csv:2: score 'high' is not a number"),
        ("model,score\nm,0.5\n\nm,0.6\n", "a.csv:4: m is listed twice (first on line 2)"),
        ("m,nan\n", "a.csv:1: score nan is not finite"),
        (",0.5\n", "a.csv:1: empty model name"),
        ("model,score\n", "a.csv: no model,score rows"),
    ],
)
def test_read_accuracy_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "a.csv"
    path.write_text(text)
    with pytest.raises(IreneError) as caught:
        read_accuracy(path)
    assert str(caught.value) == f"{tmp_path}/{message}"


def test_cli_table(cli_main, accuracy_file):
    out = cli_main("whatif", "bert-L2-H128", "--vary", "layers=2,4", "--accuracy", str(accuracy_file),
                   "--budget-j", "100").stdout
    assert "bert-L2-H128[layers=4]" in out and "BertSelfAttention" in out and "90 % interval J" in out
    assert "best accuracy within 100 J: none qualifies" in out  # the variants' names are not in the file
    assert "figures are for: device_1" in out and "J per call, whole batch" in out


def test_cli_json(cli_main, accuracy_file):
    proc = cli_main("whatif", "--models", "bert-L{2,4}-H128", "--accuracy", str(accuracy_file), "--min-accuracy",
                    "0.6", "--json")
    result = WhatIfResult.model_validate(json.loads(proc.stdout))
    assert [p.model for p in result.points] == ["bert-L2-H128", "bert-L4-H128"]
    assert result.answers[0].model == "bert-L2-H128" and result.batch_size == 16 and result.seq_len == 128
    assert "notice: --accuracy: 2 name(s) match no point" in proc.stderr


def test_cli_csv(cli_main):
    proc = cli_main("whatif", "--models", "bert-L2-H128,bert-L2-H256", "-b", "4", "-s", "64", "--csv")
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["model"] for r in rows] == ["bert-L2-H128", "bert-L2-H256"]
    header = next(csv.reader(io.StringIO(proc.stdout)))
    assert header[:10] == ["model", "settings", "parameters", "flops (MFLOPs)", "energy (J)", "low (J)", "high (J)",
                           "extrapolated", "accuracy", "pareto"]
    assert all(h.endswith(" (J)") for h in header[10:]) and "BertSelfAttention (J)" in header
    for row in rows:
        parts = sum(float(row[h]) for h in header[10:] if row[h])
        assert parts == pytest.approx(float(row["energy (J)"]), rel=1e-6)
        assert float(row["low (J)"]) < float(row["energy (J)"]) < float(row["high (J)"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bert-L2-H128", "--vary", "layers"], "--vary layers: expected KEY=N[,N…] such as layers=2,4,6"),
        (["bert-L2-H128", "--vary", "layers=2", "--vary", "layers=4"], "--vary layers: given twice"),
        (["bert-L2-H128", "--models", "gpt2"], "--models: give either a MODEL to vary or --models, not both"),
        ([], "MODEL: give a model to vary (with --vary), or --models"),
        (["--models", "gpt2", "--vary", "layers=2"], "--vary: varies one MODEL"),
        (["--models", "bert-L{2,4-H128"], "--models bert-L{2,4-H128: unbalanced braces"),
        (["bert-L2-H128", "--vary", "layers=" + ",".join(map(str, range(1, 66)))],
         "--vary: 65 points, more than the 64 one what-if traces"),
        (["bert-L2-H128", "--budget-j", "3"], "--budget-j: needs --accuracy"),
        (["bert-L2-H128", "--json", "--csv"], "--json, --csv: choose one"),
        (["bert-L2-H128", "--accuracy", "missing.csv"], "missing.csv: no such file or directory"),
        (["bert-L2-H128", "--vary", "depth=2"], "--vary depth: not an integer setting of bert-L2-H128's BertConfig"),
        (["bert-L2-H128", "--vary", "hidden=100"], "--vary hidden=100: not a multiple of the head size 64"),
        (["no-such-model"], "unknown model 'no-such-model'"),
        (["bert-L2-H128", "--predictor", "nope"], "--predictor nope: neither a shipped predictor"),
    ],
)
def test_bad_input_is_one_line_exit_1(cli_main, args, message):
    proc = cli_main("whatif", *args, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: {message}") and proc.stderr.count("\n") == 1


def test_a_framework_without_config_refuses_vary():
    class Old(Framework):
        name = "old"

        def presets(self):
            return []

        def trace(self, model, batch_size, seq_len, *, device="cpu", attention="eager", meta=False):
            raise AssertionError("not reached")

    assert phase_options(Old(), {"meta": True, "config": None}) == {"meta": True}
    with pytest.raises(IreneError, match=r"^--vary: framework 'old' does not take this option$"):
        phase_options(Old(), {"meta": True, "config": {"layers": 2}})


def test_a_narrower_models_linears_are_new_products_whose_shared_error_widens_the_nodes_above(predictor, ask, cache):
    """Every training model was 768 wide: bert-L2-H128's Linear leaves compute products no training leaf
    had (its LayerNorms too).  Such a product's leaves share one error, which no residual of a known
    product shows: each takes at least the width the kinds' held-out products needed, the nodes above
    them widen for it (against the same predictor without that width), and its record says so."""
    ask(models=["bert-L2-H128"])
    traced = next(r for r in cache.values() if r.model_name == "bert-L2-H128")
    width = predictor.intervals_.new_product["ml"]
    assert 0 < width < 0.5
    out = predictor.predict([copy.deepcopy(traced)])[0]
    linears = [n for n in out.nodes() if n.type == "Linear"]
    assert linears and all(min(math.log(n.predicted_high / n.predicted_energy),
                               math.log(n.predicted_energy / n.predicted_low)) >= width - 1e-9 for n in linears)
    assert any("of a product no training leaf had" in m.message and "Linear" in m.message for m in out.notices)
    plain = copy.deepcopy(predictor)
    plain.intervals_.new_product = {}  # the bounds as they were without the rule
    before = plain.predict([copy.deepcopy(traced)])[0]
    assert not any("of a product no training leaf had" in m.message for m in before.notices)
    assert out.root.predicted_energy == pytest.approx(before.root.predicted_energy)  # only the intervals move
    assert out.root.predicted_high > before.root.predicted_high * 1.005
    assert out.root.predicted_low < before.root.predicted_low / 1.005


def test_a_product_beyond_the_held_out_ones_widens_in_proportion_to_its_distance(predictor, ask, cache):
    """The held-out products whose error set the width lay at most its *reach* (log units) from the
    products their regressor was fitted on; further out a width grows in proportion to the distance, as an
    exponent off by as much would make it err.  bert-L2-H128's LayerNorms compute over 128 features where
    every training one did over 768 (log 6 away, beyond the reach): wider by that ratio, and its root
    wider than a save without reach (whose widths never grew) gives; bert-L2-H512's products all lie
    within the reach, and its root keeps its interval."""
    ask(models=["bert-L2-H128", "bert-L2-H512"])
    traced = {r.model_name: r for r in cache.values()}
    width, reach = predictor.intervals_.new_product["ml"], predictor.intervals_.product_reach["ml"]
    assert 0 < reach < math.log(6)
    older = copy.deepcopy(predictor)
    older.intervals_.product_reach = {}
    out, before = (p.predict([copy.deepcopy(traced["bert-L2-H128"])])[0] for p in (predictor, older))
    norms = [n for n in out.nodes() if n.type == "LayerNorm"]
    assert norms and all(min(math.log(n.predicted_high / n.predicted_energy),
                             math.log(n.predicted_energy / n.predicted_low)) >= width * math.log(6) / reach - 1e-9
                         for n in norms)
    assert out.root.predicted_energy == pytest.approx(before.root.predicted_energy)  # only the intervals move
    assert out.root.predicted_high > before.root.predicted_high * 1.002
    assert out.root.predicted_low < before.root.predicted_low / 1.002
    near, near_before = (p.predict([copy.deepcopy(traced["bert-L2-H512"])])[0].root for p in (predictor, older))
    assert (near.predicted_low, near.predicted_high) == pytest.approx(
        (near_before.predicted_low, near_before.predicted_high))


def test_each_leaf_of_a_new_product_shifts_the_nodes_above_by_its_own_width(predictor, ask, cache):
    """A kind's leaves of new products may all be off one way at once, each by its own product's width:
    bert-L2-H128's pooler computes a product far below every trained one (one token of a 128 × 128 over
    the sequence) and its width grows with that distance, which widens the pooler and the nodes above it
    but not an attention block, whose Linears are of products near the trained ones."""
    ask(models=["bert-L2-H128"])
    traced = next(r for r in cache.values() if r.model_name == "bert-L2-H128")
    table = TreeTable.from_records([traced])
    kinds = predictor._kinds(table)
    pooler = np.array([n.id == "pooler.dense:Linear" for n in table.nodes])
    values = product_values(table, kinds, predictor.intervals_.powers)
    near = copy.deepcopy(predictor)  # the same predictor, had it trained on the pooler's product
    near.intervals_.product_values["Linear"] = np.sort(np.append(near.intervals_.product_values["Linear"],
                                                                 values[pooler]))
    assert (near.intervals_.product_margins(table, kinds)[pooler]
            < predictor.intervals_.product_margins(table, kinds)[pooler])
    far_out, near_out = ({n.id: n for n in p.predict([copy.deepcopy(traced)])[0].nodes()} for p in (predictor, near))
    for node in ("pooler.dense:Linear", "pooler:BertPooler", ":BertModel"):
        assert far_out[node].predicted_high > near_out[node].predicted_high
    attention = next(i for i, n in far_out.items() if n.type == "BertSelfAttention")
    assert ((far_out[attention].predicted_low, far_out[attention].predicted_high)
            == pytest.approx((near_out[attention].predicted_low, near_out[attention].predicted_high), rel=1e-9))


def test_the_python_example_of_the_whatif_page_runs(capsys):
    page = Path(__file__).resolve().parent.parent / "docs" / "whatif.md"
    (block,) = re.findall(r"^```python\n(.*?)^```$", page.read_text(encoding="utf-8"), re.S | re.M)
    namespace: dict = {}
    exec(compile(block, page.name, "exec"), namespace)
    assert [p.model for p in namespace["result"].points] == [f"bert-L2-H128[layers={n}]" for n in (2, 4, 6)]
    assert capsys.readouterr().out.count(" J ") == 3
