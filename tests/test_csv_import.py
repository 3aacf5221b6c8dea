import csv
from collections import Counter

import pytest

from irene_core.errors import IreneError
from irene_core.tree.paper_csv import LEVEL_FILES, import_csv_dir


def _csv_counts(directory):
    """Rows per (model, batch, seq) and CSV level."""
    counts: Counter = Counter()
    for level, name in LEVEL_FILES.items():
        with open(directory / name, newline="") as handle:
            for row in csv.DictReader(handle):
                counts[(row["model_name"], int(float(row["batch_size"])), int(float(row["seq_len"])), level)] += 1
    return counts


def test_one_tree_per_csv_key_with_csv_node_counts(device1_dir, device1_records):
    counts = _csv_counts(device1_dir)
    keys = {k[:3] for k in counts if k[3] == "model"}
    assert {r.key[:3] for r in device1_records} == keys and len(device1_records) == len(keys) == 193
    for rec in device1_records:
        key = rec.key[:3]
        levels = Counter(n.level for n in rec.nodes())
        # a module row with nothing below it is a leaf: only tiny-ctrl's two ReLUs, none in the paper's models
        leaf_modules = 2 if rec.model_name == "sshleifer/tiny-ctrl" else 0
        assert levels["model"] == counts[(*key, "model")] == 1
        assert levels["module"] == counts[(*key, "module")] - leaf_modules
        assert levels["ml"] == counts[(*key, "ml1")] + counts[(*key, "ml2")] + leaf_modules
        assert {n.level for n in rec.root.leaves()} == {"ml"}
    ctrl = next(r for r in device1_records if r.model_name == "sshleifer/tiny-ctrl")
    assert [(n.scope, n.level) for n in ctrl.nodes() if n.type == "ReLU"] == [("h.0.ffn.1", "ml"), ("h.1.ffn.1", "ml")]


def test_no_parameter_counts_are_invented(device1_records):
    """The release has none: ``num_parameters`` stays absent (the export fills it for the original code)."""
    assert not any("num_parameters" in n.features for r in device1_records for n in r.nodes())


def test_paper_tree_shapes(device1_records):
    sizes = {r.model_name: sum(1 for _ in r.nodes()) for r in device1_records}
    assert sizes["bert-base-uncased"] == sizes["roberta-base"] == 214
    others = ("distilbert-base-uncased", "gpt2", "openai-gpt", "distilgpt2")
    assert tuple(sizes[m] for m in others) == (90, 148, 147, 76)
    bert = next(r for r in device1_records if r.key[:3] == ("bert-base-uncased", 8, 32))
    leaf_types = Counter(n.type for n in bert.root.leaves())
    assert leaf_types == {"Linear": 73, "LayerNorm": 25, "MatMul": 24, "Softmax": 12, "Embedding": 3, "Tanh": 1}
    assert bert.root.type == "BertModel" and bert.root.ground_truth_energy == pytest.approx(4.038110785714286)


def test_parents_follow_longest_scope_prefix(device1_records):
    bert = next(r for r in device1_records if r.key[:3] == ("bert-base-uncased", 8, 32))
    encoder = bert.root.find("encoder")
    # encoder.layer (a ModuleList) has no row: its layers hang under the encoder
    assert [c.scope for c in encoder.children] == [f"encoder.layer.{i}" for i in range(12)]
    self_attn = bert.root.find("encoder.layer.3.attention.self")
    assert [(c.type, c.id) for c in self_attn.children if c.type == "MatMul"] == [
        ("MatMul", "encoder.layer.3.attention.self:MatMul"), ("MatMul", "encoder.layer.3.attention.self:MatMul#2")]
    inside = "encoder.layer.3.attention.self"
    assert {c.scope for c in self_attn.children} == {inside, *(f"{inside}.{k}" for k in ("query", "key", "value"))}
    gpt2 = next(r for r in device1_records if r.model_name == "gpt2")
    assert {c.scope for c in gpt2.root.find("h.0").children} == {"h.0.ln_1", "h.0.attn", "h.0.ln_2", "h.0.mlp"}
    assert {c.scope for c in gpt2.root.children} >= {"wte", "wpe", "ln_f", "h.0", "h.11"}


def test_missing_columns_name_file_and_columns(tmp_path, device1_dir):
    for name in LEVEL_FILES.values():
        (tmp_path / name).write_text((device1_dir / name).read_text())
    broken = tmp_path / LEVEL_FILES["ml1"]
    lines = broken.read_text().splitlines()
    header = lines[0].split(",")
    drop = [header.index("flops"), header.index("energy_mean")]
    kept = (",".join(v for i, v in enumerate(line.split(",")) if i not in drop) for line in lines[:5])
    broken.write_text("\n".join(kept))
    with pytest.raises(IreneError, match=rf"{broken}: missing columns: flops, energy_mean"):
        import_csv_dir(tmp_path)


def test_bad_number_names_file_and_line(tmp_path, device1_dir):
    for name in LEVEL_FILES.values():
        lines = (device1_dir / name).read_text().splitlines()[:4]
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    model = tmp_path / LEVEL_FILES["model"]
    lines = model.read_text().splitlines()
    lines[2] = lines[2].replace(lines[2].split(",")[12], "-3.0", 1)
    model.write_text("\n".join(lines) + "\n")
    with pytest.raises(IreneError, match=rf"{model}:3: non-finite or negative"):
        import_csv_dir(tmp_path)


def test_cached_copies_say_whose_measurement_they_carry(device1_records):
    """The release's measuring code cached by (type, flops, mem_bytes): every later node with an
    earlier one's key and energy carries that node's measurement, and says whose."""
    bert = next(r for r in device1_records if r.key[:3] == ("bert-base-uncased", 8, 32))
    first = "encoder.layer.0.attention.self:MatMul"
    assert _measured_as(bert, first) is None
    assert _measured_as(bert, "encoder.layer.0.attention.self:MatMul#2") == first
    assert _measured_as(bert, "encoder.layer.3.attention.self:MatMul#2") == first
    # identical layers: one measurement
    assert _measured_as(bert, "encoder.layer.3:BertLayer") == "encoder.layer.0:BertLayer"
    assert _measured_as(bert, "pooler.dense:Linear") is None  # a 768 × 768 product on one token: its own
    by_id = {n.id: n for n in bert.nodes()}
    copies = [n for n in bert.nodes() if n.measured_as]
    assert len(copies) == 194 and all(
        by_id[n.measured_as].measured_as is None and by_id[n.measured_as].type == n.type
        and by_id[n.measured_as].ground_truth_energy == n.ground_truth_energy
        for n in copies
    )


def _measured_as(record, node_id):
    return next(n.measured_as for n in record.nodes() if n.id == node_id)
