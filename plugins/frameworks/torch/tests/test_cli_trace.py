"""``irene trace``: the printed tree, the JSONL record, presets and errors (in process, through main)."""

from __future__ import annotations

import json

from irene_core.cli.app import main
from irene_core.tree.jsonl import load_records, record_from_dict


def test_prints_the_tree_and_writes_the_record(capsys, tmp_path):
    out_file = tmp_path / "trace.jsonl"
    assert main(["trace", "bert-L2-H128", "-b", "2", "-s", "8", "--depth", "3", "-o", str(out_file)]) == 0
    printed = capsys.readouterr().out
    assert "bert-L2-H128 · batch 2 · seq 8 · cpu · 51 nodes" in printed
    assert ":BertModel" in printed and "layer.1:BertLayer" in printed
    assert "attention:BertAttention (+11 below)" in printed  # depth 3 folds what is below the attention
    assert "query:Linear" not in printed
    assert "15 module nodes, 35 ml leaves" in printed
    [record] = load_records(out_file)
    assert record.model_name == "bert-L2-H128" and (record.batch_size, record.seq_len) == (2, 8)
    assert record.root.find("encoder.layer.0.attention.self", "MatMul") is not None


def test_json_line_on_the_meta_device(capsys):
    assert main(["trace", "distilgpt2", "-b", "1", "-s", "8", "--meta", "--json", "--attention", "sdpa"]) == 0
    record = record_from_dict(json.loads(capsys.readouterr().out))
    assert record.meta["traced_on"] == "meta" and record.attention == "sdpa"
    assert record.root.find("h.5.attn", "ScaledDotProductAttention") is not None


def test_presets_and_one_line_errors(capsys, tmp_path):
    assert main(["trace", "--presets"]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == ["bert-base-uncased", "distilbert-base-uncased"]
    out_file = tmp_path / "never.jsonl"
    assert main(["trace", "bert-L2-H128", "-s", "4096", "-o", str(out_file)]) == 1
    err = capsys.readouterr().err
    assert err == "error: --seq-len 4096 exceeds the model's 512 positions\n" and not out_file.exists()
    assert main(["trace", "bert-L2-H128", "--framework", "jax"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no framework named 'jax' is installed (installed: ") and "torch" in err
    assert main(["trace"]) == 2
