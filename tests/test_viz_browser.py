"""The page in a real browser: Debian's chromium driven by Playwright against `irene serve`'s app on loopback.

Chromium is installed by `make test` (apt), never downloaded by Playwright.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from irene_core.tree.jsonl import write_records
from irene_core.viz.app import create_app
from irene_core.viz.config import ServeConfig
from irene_core.viz.report import render_html
from irene_core.viz.server import serve_in_thread

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MODEL = "bert-L2-H128"
DATASET = "runs/device_1.jsonl"


def mj(text: str) -> float:
    """'1,234.5 mJ' → 1234.5"""
    return float(re.search(r"(-?[\d,]+(?:\.\d+)?) mJ", text).group(1).replace(",", ""))


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory, device1_records):
    root = tmp_path_factory.mktemp("browser-data")
    write_records(root / DATASET, [r for r in device1_records if r.key[:3] == ("bert-base-uncased", 8, 32)])
    config = ServeConfig(data_dir=root, cache_path=root / "cache.sqlite")
    with serve_in_thread(create_app(config)) as url:
        yield url


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield pg
    context.close()
    assert not errors, errors


def option(kind: str, model: str, dataset: str | None = None) -> str:
    value = {"kind": kind, "model": model}
    if dataset:
        value["dataset"] = dataset
    return json.dumps(value, separators=(",", ":"))


def show(page, url: str, value: str, batch: int, seq: int) -> None:
    page.goto(url)
    page.wait_for_selector("#query-a select[name=model] option", state="attached")
    page.select_option("#query-a select[name=model]", value=value)
    page.fill("#query-a input[name=batch_size]", str(batch))
    page.fill("#query-a input[name=seq_len]", str(seq))
    page.click("#query-a button[type=submit]")
    page.wait_for_selector("#pane-0[aria-busy=false] .tree [role=treeitem]", timeout=120_000)


def test_pick_a_model_explore_its_tree_tooltip_and_sorted_table(page, site, tmp_path):
    show(page, site, option("preset", MODEL), 8, 32)
    api = httpx.get(f"{site}api/energy", params={"model": MODEL, "batch_size": 8, "seq_len": 32}, timeout=60).json()
    assert api["source"] == "preset" and api["hardware"]

    root_row = page.locator("#pane-0 .tree > li > .row")
    assert MODEL in root_row.inner_text() and "100.0 %" in root_row.inner_text()
    assert mj(page.locator("#pane-0 .totals .total-main dd").inner_text()) == pytest.approx(
        1000 * api["root"]["predicted_energy"], rel=1e-3)
    assert api["hardware"] in page.locator("#pane-0 .pane-sub").inner_text()

    # Expand a collapsed node with the keyboard.
    layer = page.locator('#pane-0 [role=treeitem][data-id="encoder.layer.0:BertLayer"]')
    assert layer.get_attribute("aria-expanded") == "false"
    layer.focus()
    page.keyboard.press("ArrowRight")
    assert layer.get_attribute("aria-expanded") == "true"
    children = layer.locator(":scope > ul > li")
    assert children.count() >= 3 and children.first.is_visible()

    # Keyboard focus shows the focused node's features.
    page.keyboard.press("ArrowDown")
    focused = page.evaluate("document.activeElement.dataset.id")
    assert focused == children.first.get_attribute("data-id")
    assert page.locator("#tooltip").is_visible()

    # Clicking rows opens the attention block; hovering a Linear leaf shows its features, as the API has them.
    for node_id in ("encoder.layer.0.attention:BertAttention", "encoder.layer.0.attention.self:BertSelfAttention"):
        page.click(f'#pane-0 li[data-id="{node_id}"] > .row')
        assert page.locator(f'#pane-0 li[data-id="{node_id}"]').get_attribute("aria-expanded") == "true"
    query = page.locator('#pane-0 li[data-id="encoder.layer.0.attention.self.query:Linear"] > .row')
    query.hover()
    tip = page.locator("#tooltip")
    tip.wait_for(state="visible")
    text = tip.inner_text()
    node = _find(api["root"], "encoder.layer.0.attention.self.query:Linear")
    assert "Linear" in text and "encoder.layer.0.attention.self.query" in text
    flops = re.search(r"FLOPs\s+([\d,.]+) MFLOPs", text).group(1)
    assert float(flops.replace(",", "")) == pytest.approx(node["features"]["flops"], abs=0.05)
    params = re.search(r"Parameters\s+([\d,]+)", text).group(1)
    assert int(params.replace(",", "")) == int(node["features"]["num_parameters"])
    assert mj(re.search(r"Energy \(predicted\)\s+(.+)", text).group(1)) == pytest.approx(
        1000 * node["predicted_energy"], rel=2e-3
    )
    assert re.search(r"Share of parent\s+[\d.]+ %", text) and re.search(r"Share of model\s+[\d.]+ %", text)

    # The side table lists every node by predicted energy, largest first.
    rows = page.locator("#pane-0 table.nodes tbody tr")
    assert rows.count() == api["node_count"]
    energies = [mj(t) for t in page.locator("#pane-0 table.nodes tbody tr td:nth-child(3)").all_inner_texts()]
    assert energies == sorted(energies, reverse=True)
    assert rows.first.locator("td").first.inner_text().startswith("BertModel")
    assert energies[0] == pytest.approx(1000 * api["root"]["predicted_energy"], rel=1e-3)

    # The table is one tab stop; arrows move in it and Enter finds the row's node in the tree.
    rows.first.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    third = rows.nth(2).get_attribute("data-id")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.getAttribute('role')") == "treeitem"
    assert page.evaluate("document.activeElement.dataset.id") == third

    # The bottleneck chart shows module types' shares.
    bars = page.locator("#pane-0 .bars li")
    assert bars.count() >= 4 and "BertSelfAttention" in page.locator("#pane-0 .bars").inner_text()

    shot = tmp_path / "irene-viz.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_compare_two_input_sizes_side_by_side(page, site):
    show(page, site, option("preset", MODEL), 8, 32)
    page.check("#compare")
    page.fill("#query-b input[name=seq_len]", "128")
    page.click("#query-b button[type=submit]")
    page.wait_for_selector("#pane-1[aria-busy=false] .tree [role=treeitem]", timeout=120_000)
    summary = page.locator("#compare-summary").inner_text()
    a = mj(page.locator("#pane-0 .totals .total-main dd").inner_text())
    b = mj(page.locator("#pane-1 .totals .total-main dd").inner_text())
    assert b > a
    assert f"{b / a:.2f}×" in summary and "BertSelfAttention" in summary


def test_measured_vs_predicted_from_a_dataset_of_the_data_dir(page, site):
    show(page, site, option("dataset", "bert-base-uncased", DATASET), 8, 32)
    totals = page.locator("#pane-0 .totals").text_content()
    assert "Measured" in totals and "Predicted" in totals and "Error ml · module · model" in totals
    assert mj(page.locator("#pane-0 .totals dd").nth(1).inner_text()) == pytest.approx(4038.1, abs=0.1)
    header = page.locator("#pane-0 table.nodes thead").inner_text()
    assert "Measured" in header and "Error" in header
    assert page.locator("#pane-0 .tree .meas").count() > 0


@pytest.mark.parametrize("schema", [2, 1])
def test_a_run_file_is_parsed_in_the_browser(page, site, device1_records, tmp_path, schema):
    from irene_core.predictor.predictor import load_reference_predictor
    from irene_core.tree.irene_format import node_to_v1

    measured = next(r for r in device1_records if r.key[:3] == ("distilgpt2", 16, 64))
    run = tmp_path / "my-run.jsonl"
    (predicted,) = load_reference_predictor("model").predict([measured])
    write_records(run, [predicted])
    if schema == 1:  # as IrEne 0.1 wrote it
        keys = {"model_name", "batch_size", "seq_len", "device", "meta"}
        v1 = {"schema_version": 1, **predicted.model_dump(include=keys), "frontend_tree": node_to_v1(predicted.root)}
        run.write_text(json.dumps(v1) + "\n")
    with open(run, "a", encoding="utf-8") as handle:
        handle.write("{broken\n")
    page.goto(site)
    page.wait_for_selector("#query-a select[name=model] option", state="attached")
    page.set_input_files("#run-file", str(run))
    page.wait_for_selector("#pane-0 .tree [role=treeitem]")
    assert "my-run.jsonl:2: invalid JSON" in page.locator("#message").inner_text()
    assert "distilgpt2" in page.locator("#pane-0 .pane-title").inner_text()
    assert mj(page.locator("#pane-0 .totals dd").nth(1).inner_text()) == pytest.approx(
        1000 * measured.root.ground_truth_energy, rel=1e-3)
    assert "Error ml · module · model" in page.locator("#pane-0 .totals").text_content()


def test_the_report_works_offline_from_a_file(browser, device1_records, tmp_path):
    records = [r for r in device1_records if r.key[:3] in {("bert-base-uncased", 8, 32), ("gpt2", 8, 64)}]
    report = tmp_path / "report.html"
    report.write_text(render_html(records, title="Offline report"), encoding="utf-8")
    context = browser.new_context(offline=True)
    pg = context.new_page()
    requests: list[str] = []
    pg.on("request", lambda r: requests.append(r.url))
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.goto(report.as_uri())
    pg.wait_for_selector("#pane-0 .tree [role=treeitem]")
    assert pg.title() == "Offline report" and not errors
    assert "bert-base-uncased" in pg.locator("#pane-0 .pane-title").inner_text()
    pg.select_option("#query-a select[name=model]", index=1)
    pg.click("#query-a button[type=submit]")
    pg.wait_for_function("document.querySelector('#pane-0 .pane-title').textContent === 'gpt2'")
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
    context.close()


def _find(node: dict, node_id: str) -> dict:
    if node["id"] == node_id:
        return node
    for child in node["children"]:
        found = _find(child, node_id)
        if found:
            return found
    return {}


def test_an_extrapolated_node_shows_its_mark_interval_and_notice(page, site, device1_records, tmp_path):
    from irene_core.predictor.predictor import Predictor

    bert = [r for r in device1_records if r.model_name == "bert-base-uncased"]
    train = [r for r in bert if r.batch_size <= 16 and r.seq_len <= 128]
    larger = next(r for r in device1_records if r.key[:3] == ("bert-base-uncased", 24, 256))
    (predicted,) = Predictor(features="model").fit(train).predict([larger])
    root = predicted.root
    assert root.extrapolated and predicted.notices
    run = tmp_path / "extrapolated.jsonl"
    write_records(run, [predicted])
    page.goto(site)
    page.wait_for_selector("#query-a select[name=model] option", state="attached")
    page.set_input_files("#run-file", str(run))
    page.wait_for_selector("#pane-0 .tree [role=treeitem]")

    row = page.locator("#pane-0 .tree > li > .row")
    assert row.locator(".extrap").inner_text() == "extrapolated"
    low, high = re.search(r"90 % ([\d,.]+)–([\d,.]+) mJ", row.locator(".interval").inner_text()).groups()
    assert float(low.replace(",", "")) == pytest.approx(1000 * root.predicted_low, rel=2e-3)
    assert float(high.replace(",", "")) == pytest.approx(1000 * root.predicted_high, rel=2e-3)
    assert "outside the training range" in page.locator("#pane-0 .pane-note").inner_text()

    assert "90 % interval" in page.locator("#pane-0 table.nodes thead").inner_text()
    first = page.locator("#pane-0 table.nodes tbody tr").first
    assert first.locator(".extrap").count() == 1 and re.search(r"[\d,.]+–[\d,.]+ mJ", first.inner_text())

    row.hover()
    tip = page.locator("#tooltip")
    tip.wait_for(state="visible")
    assert re.search(r"90 % interval\s+[\d,.]+–[\d,.]+ mJ", tip.inner_text()) and "Extrapolated" in tip.inner_text()


def test_skipped_files_of_the_data_dir_are_listed_near_the_model_picker(page, tmp_path, device1_records):
    write_records(tmp_path / DATASET, [r for r in device1_records if r.key[:3] == ("bert-base-uncased", 8, 32)])
    (tmp_path / "runs" / "broken.jsonl").write_text("{broken\n")
    config = ServeConfig(data_dir=tmp_path, cache_path=tmp_path / "cache.sqlite")
    with serve_in_thread(create_app(config)) as url:
        problems = httpx.get(f"{url}api/problems", timeout=60).json()["problems"]
        page.goto(url)
        box = page.locator("#problems")
        box.wait_for(state="visible")
    assert problems and box.locator("summary").inner_text() == "1 file in the data dir is skipped"
    box.locator("summary").click()
    rows = box.locator("li").all_inner_texts()
    where = [p["file"] if p["line"] is None else f"{p['file']}:{p['line']}" for p in problems]
    assert rows == [f"{w} — {p['message']}" for w, p in zip(where, problems, strict=True)]
