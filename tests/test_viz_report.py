"""`irene report` and render_html: one self-contained, offline HTML file holding the trees."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest

from irene_core.cli.app import main
from irene_core.tree.jsonl import write_records
from irene_core.viz.report import render_html


@pytest.fixture(scope="module")
def records(device1_records):
    return [r for r in device1_records if r.key[:3] in {("bert-base-uncased", 8, 32), ("distilgpt2", 16, 64)}]


def _embedded(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="irene-data">(.*?)</script>', page, re.S)
    assert m, "no embedded data"
    return json.loads(m.group(1))


def test_render_html_embeds_the_trees_and_inlines_everything(records):
    page = render_html(records, title="Energy of <two> models & more")
    data = _embedded(page)
    assert data["title"] == "Energy of <two> models & more"
    assert [(r["model_name"], r["batch_size"], r["seq_len"]) for r in data["records"]] == [r.key[:3] for r in records]
    bert = data["records"][0]
    assert bert["root"]["ground_truth_energy"] == pytest.approx(records[0].root.ground_truth_energy)
    assert bert["node_count"] == 214
    assert "<title>Energy of &lt;two&gt; models &amp; more</title>" in page
    assert not re.search(r'(src|href)="(?!data:|#)', page), "the report must not load any file"
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page), "no URL but the SVG namespace"



def test_report_policy_allows_exactly_the_inlined_blocks(records):
    page = render_html(records[:1], title="t")
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    script = re.search(r"<script>(.*)</script>", page, re.S).group(1)
    style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)

    def digest(text: str) -> str:
        return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    assert f"script-src '{digest(script)}'" in csp and f"style-src '{digest(style)}'" in csp
    assert "connect-src 'none'" in csp and "default-src 'none'" in csp


def test_embedded_data_cannot_close_its_script_tag(records):
    hostile = records[0].model_copy(update={"model_name": "</script><script>alert(1)</script>"})
    page = render_html([hostile], title="x")
    assert page.count("</script>") == 2  # the data block and the app block, nothing injected
    assert _embedded(page)["records"][0]["model_name"] == "</script><script>alert(1)</script>"


def test_cli_report_writes_the_file(tmp_path, records, capsys):
    src = tmp_path / "run.jsonl"
    write_records(src, records)
    out = tmp_path / "out" / "report.html"
    assert main(["report", str(src), "--html", str(out)]) == 0
    assert "2 tree(s) of bert-base-uncased, distilgpt2" in capsys.readouterr().out
    assert len(_embedded(out.read_text(encoding="utf-8"))["records"]) == 2


def test_cli_report_bad_line_fails_with_file_and_line_and_writes_nothing(tmp_path, records, capsys):
    src = tmp_path / "run.jsonl"
    write_records(src, records[:1])
    with open(src, "a", encoding="utf-8") as handle:
        handle.write('{"model_name": "x", "batch_size": 1}\n')
    out = tmp_path / "report.html"
    assert main(["report", str(src), "--html", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{src}:2: missing field 'seq_len'" in err.replace("\n", "")
    assert not out.exists() and not list(tmp_path.glob(".report.html*"))


def test_cli_report_missing_file(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope.jsonl"), "--html", str(tmp_path / "r.html")]) == 1
    assert "nope.jsonl: no such file" in capsys.readouterr().err


def test_the_report_carries_intervals_extrapolation_and_notices(records):
    from irene_core.tree.schema import Notice

    record = records[0].model_copy(deep=True)
    record.root.predicted_energy, record.root.predicted_low, record.root.predicted_high = 2.0, 1.5, 3.0
    record.root.extrapolated = True
    record.notices = [Notice(source="predictor", message="1 leaf node(s) outside the <training> range")]
    (view,) = _embedded(render_html([record], title="t"))["records"]
    root = view["root"]
    assert (root["predicted_low"], root["predicted_high"], root["extrapolated"]) == (1.5, 3.0, True)
    assert view["notices"] == [{"source": "predictor", "message": "1 leaf node(s) outside the <training> range",
                                "nodes": []}]


def test_the_report_carries_phase_and_per_token_figures(records):
    decode = records[0].model_copy(update={"phase": "decode", "seq_len": 1, "context_len": 512, "dtype": "bfloat16",
                                           "meta": {"kv_cache_bytes": 3 * 2**20, "kv_cache_dtype": "bfloat16"}})
    forward, decoded = _embedded(render_html([records[0], decode], title="t"))["records"]
    assert (decoded["phase"], decoded["context_len"], decoded["dtype"]) == ("decode", 512, "bfloat16")
    energy = records[0].root.ground_truth_energy
    assert decoded["per_token"]["tokens_per_call"] == records[0].batch_size  # decode: one token per sequence
    assert decoded["per_token"]["energy_j_per_token"] == pytest.approx(energy / records[0].batch_size)
    assert decoded["per_token"]["kv_cache_mib"] == 3.0 and decoded["per_token"]["energy_source"] == "measured"
    tokens = records[0].batch_size * records[0].seq_len
    assert forward["per_token"]["energy_j_per_token"] == pytest.approx(energy / tokens)
    assert forward["device"] == records[0].device
