"""The page in a real browser: Debian's chromium driven by Playwright against `irene serve`'s app on loopback.

Chromium is installed by `make test` (apt), never downloaded by Playwright.
"""

from __future__ import annotations

import csv
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
DEEP = "deep-48"
#: A 48-layer BERT shape (small layers: traced on the meta device in about a second).
DEEP_CONFIG = {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": 64, "num_hidden_layers": 48,
               "num_attention_heads": 2, "intermediate_size": 256, "vocab_size": 1000,
               "max_position_embeddings": 128, "type_vocab_size": 2}
LLAMA = "tiny-llama"
#: A two-layer Llama shape: decode traces on the meta device in well under a second.
LLAMA_CONFIG = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 512, "hidden_size": 64,
                "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                "max_position_embeddings": 2048}


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
    (root / DEEP).mkdir()
    (root / DEEP / "config.json").write_text(json.dumps(DEEP_CONFIG))
    (root / LLAMA).mkdir()
    (root / LLAMA / "config.json").write_text(json.dumps(LLAMA_CONFIG))
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

    # The two identical layers are one row; open it, then the first layer, with the keyboard.
    run = page.locator('#pane-0 [role=treeitem][data-id="run:encoder.layer.0:BertLayer"]')
    assert run.locator(":scope > .row .short").inner_text() == "layer.0–1 × 2"
    run.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    layer = page.locator('#pane-0 [role=treeitem][data-id="encoder.layer.0:BertLayer"]')
    assert page.evaluate("document.activeElement.dataset.id") == "encoder.layer.0:BertLayer"
    assert layer.get_attribute("aria-expanded") == "false"
    page.keyboard.press("ArrowRight")
    assert layer.get_attribute("aria-expanded") == "true"
    children = layer.locator(":scope > ul > li")
    assert children.count() >= 3 and children.first.is_visible()

    # Keyboard focus selects a node: its features are in the details panel.
    page.keyboard.press("ArrowDown")
    focused = page.evaluate("document.activeElement.dataset.id")
    assert focused == children.first.get_attribute("data-id")
    node = _find(api["root"], focused)
    assert node["scope"] in page.locator("#pane-0 .details").inner_text()

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
    assert "Measured" in header and "Error (in-sample)" in header  # device_1 trained the reference predictor
    assert "Error ml · module · model, in-sample" in totals
    assert page.locator("#pane-0 .tree .meas").count() > 0
    assert "in-sample" in page.locator("#pane-0 .tree .meas").first.get_attribute("title")
    assert "Prediction error (in-sample)" in page.locator("#pane-0 .details").inner_text()
    assert "Measured on\nrecord of device_1" in page.locator("#pane-0 .details").inner_text()
    form = page.locator("#pane-0 .sweep-form")  # the preset's predicted curve, the dataset's records on it
    form.locator("input[name=values]").fill("4,8")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#pane-0 .sweep svg polygon.band", timeout=60_000)
    (diamond,) = page.locator("#pane-0 .sweep svg rect.measured").all()  # only 8×32 is in the dataset
    assert mj(diamond.locator("title").text_content()) == pytest.approx(4038.1, abs=0.1)
    assert "diamonds: measured records of the dataset" in page.locator("#pane-0 .sweep-note").inner_text()


@pytest.mark.parametrize("schema", [2, 1])
def test_a_run_file_is_parsed_in_the_browser(page, site, device1_paper_records, tmp_path, schema):
    from irene_core.predictor.predictor import load_reference_predictor
    from irene_core.tree.irene_format import node_to_v1

    measured = next(r for r in device1_paper_records if r.key[:3] == ("distilgpt2", 16, 64))
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
    bert = records[0] if records[0].model_name == "bert-base-uncased" else records[1]
    assert "forward, float32" in pg.locator("#pane-0 .pane-sub").inner_text()
    assert f"record of {bert.device}" in pg.locator("#pane-0 .pane-sub").inner_text()
    per_token = pg.locator("#pane-0 .totals .per-token")
    assert "(measured)" in per_token.text_content()  # a measured record: J per token from its measured energy
    assert mj(per_token.locator("dd").inner_text()) == pytest.approx(1e3 * bert.root.ground_truth_energy / (8 * 32),
                                                                     rel=2e-3)
    assert f"Measured on\nrecord of {bert.device}" in pg.locator("#pane-0 .details").inner_text()
    assert pg.locator("#pane-0 .icicle g[data-id]").count() > 5 and not pg.locator("#pane-0 .sweep-card").is_visible()
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


def _rows(page) -> list:
    """The tree rows on screen (not inside a closed node): their ids."""
    return page.evaluate("[...document.querySelectorAll('#pane-0 .tree [role=treeitem]')]"
                         ".filter((li) => li.offsetParent !== null).map((li) => li.dataset.id)")


def _rgb(css: str) -> tuple[int, ...]:
    return tuple(int(float(x)) for x in re.findall(r"[\d.]+", css)[:3])


def test_a_48_layer_model_at_1280_fits_one_screen_with_breadcrumb_and_details(browser, site):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{site}#m={DEEP}&b=1&s=16")  # a shared link without k=local
    page.wait_for_selector("#pane-0[aria-busy=false] .tree [role=treeitem]", timeout=120_000)
    api = httpx.get(f"{site}api/energy", params={"model": DEEP, "batch_size": 1, "seq_len": 16}, timeout=60).json()
    assert api["source"] == "local" and "local model" in page.locator("#pane-0 .pane-sub").inner_text()

    # First view: every top-level module on screen, the 48 identical layers as one row, no scrolling.
    rows = _rows(page)
    assert len(rows) <= 40 and {c["id"] for c in api["root"]["children"]} <= set(rows)
    tree = page.locator("#pane-0 .tree")
    assert tree.evaluate("t => t.scrollHeight <= t.clientHeight")
    layers = [c for c in _find(api["root"], "encoder:BertEncoder")["children"] if not c["synthetic"]]
    run = page.locator('#pane-0 li[data-id="run:encoder.layer.0:BertLayer"]')
    row = run.locator(":scope > .row")
    assert row.locator(".short").inner_text() == "layer.0–47 × 48" and len(layers) == 48
    total = sum(n["predicted_energy"] for n in layers)
    assert mj(row.locator(".energy").inner_text()) == pytest.approx(1000 * total, rel=1e-3)
    assert mj(row.locator(".per-layer").inner_text()) == pytest.approx(1000 * total / 48, rel=1e-3)

    # Open the run, then a layer's attention: the breadcrumb names its ancestors, the panel its figures.
    row.click()
    assert run.locator(":scope > ul > li").count() == 48
    page.click('#pane-0 li[data-id="encoder.layer.5:BertLayer"] > .row')
    page.click('#pane-0 li[data-id="encoder.layer.5.attention:BertAttention"] > .row')
    crumbs = page.locator("#pane-0 .crumbs li").all_inner_texts()
    assert crumbs == [DEEP, "encoder", "layer.0–47 × 48", "layer.5", "attention"]
    details = page.locator("#pane-0 .details")
    attention = _find(api["root"], "encoder.layer.5.attention:BertAttention")
    assert details.get_attribute("role") == "region" and details.get_attribute("aria-label")
    assert "encoder.layer.5.attention" in details.inner_text()
    assert mj(re.search(r"Energy \(predicted\)\s+(.+)", details.inner_text()).group(1)) == pytest.approx(
        1000 * attention["predicted_energy"], rel=2e-3)
    # Clicking rows never scrolled sideways; the rows fit the tree's width.
    assert page.evaluate("window.scrollX") == 0 and tree.evaluate("t => t.scrollLeft === 0")
    assert tree.evaluate("t => t.scrollWidth <= t.clientWidth")
    # The panel is reachable from the keyboard (i, or Tab) and Escape returns to the node.
    page.keyboard.press("i")
    assert page.evaluate("document.activeElement.classList.contains('details')")
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.dataset.id") == "encoder.layer.5.attention:BertAttention"
    # A breadcrumb step goes back up.
    page.click("#pane-0 .crumbs button:text-is('encoder')")
    assert page.evaluate("document.activeElement.dataset.id") == "encoder:BertEncoder"
    assert page.locator("#pane-0 .crumbs li").all_inner_texts() == [DEEP, "encoder"]

    # Deep rows differ in colour: the shares inside one layer span about two decades.
    page.click('#pane-0 li[data-id="encoder.layer.5.attention:BertAttention"] > .row')
    swatches = page.locator('#pane-0 li[data-id="encoder.layer.5:BertLayer"] .swatch')
    colours = {_rgb(c) for c in swatches.evaluate_all("ss => ss.map((s) => getComputedStyle(s).backgroundColor)")}
    spread = max(sum((a - b) ** 2 for a, b in zip(x, y, strict=True)) ** 0.5 for x in colours for y in colours)
    assert len(colours) >= 4 and spread > 100
    # The legend's labels sit under its colour stops.
    ramp = page.locator("#pane-0 .ramp")
    stops = [float(x) for x in re.findall(r"\)\s+([\d.]+)%", ramp.evaluate("r => getComputedStyle(r).backgroundImage"))]
    box = ramp.bounding_box()
    ticks = [(t["x"] + t["width"] / 2 - box["x"]) / box["width"] * 100
             for t in (page.locator("#pane-0 .ramp-labels span").nth(i).bounding_box() for i in range(len(stops)))]
    assert len(stops) == 5 and ticks == pytest.approx(stops, abs=1.0)

    # The table fits its columns at 1280 px.
    scroll = page.locator("#pane-0 .table-scroll")
    assert scroll.evaluate("s => s.scrollWidth <= s.clientWidth")
    assert page.locator("#pane-0 table.nodes thead th").count() >= 6
    context.close()
    assert not errors, errors


def test_error_states_clear_the_view_say_it_once_and_compare_equal_totals(browser, site):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []  # the console's own line for the 422 below is expected: script errors are not
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{site}#m={MODEL}&b=8&s=32")  # a shared link without k=preset
    page.wait_for_selector("#pane-0[aria-busy=false] .tree [role=treeitem]", timeout=120_000)
    assert "traced by name" in page.locator("#pane-0 .pane-sub").inner_text()

    page.fill("#query-a input[name=seq_len]", "4000")  # within the server's bound, beyond the model's positions
    page.click("#query-a button[type=submit]")
    note = page.locator("#pane-0 .pane-note.error")
    note.wait_for(timeout=120_000)
    error = note.inner_text()
    assert error and note.get_attribute("role") == "alert"
    assert page.locator("#pane-0 .tree [role=treeitem]").count() == 0  # the previous tree is gone
    assert page.locator("#pane-0 table.nodes tbody tr").count() == 0
    assert page.locator("#pane-0 .totals").inner_text() == ""
    assert page.locator("body").inner_text().count(error) == 1

    page.fill("#query-a input[name=seq_len]", "32")
    page.click("#query-a button[type=submit]")
    page.wait_for_selector("#pane-0[aria-busy=false] .tree [role=treeitem]")
    assert page.locator("#pane-0 .pane-note.error").count() == 0
    page.check("#compare")  # B starts as A: the same query
    page.click("#query-b button[type=submit]")
    page.wait_for_selector("#pane-1[aria-busy=false] .tree [role=treeitem]")
    summary = page.locator("#compare-summary").inner_text()
    assert "Same energy" in summary and "more" not in summary and "1.00×" not in summary
    context.close()
    assert not errors, errors


def test_the_api_page_works_offline(browser, site):
    context = browser.new_context()
    outside: list[str] = []

    def only_the_server(route):
        if route.request.url.startswith(site):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_server)
    page = context.new_page()
    page.goto(f"{site}api")
    page.wait_for_selector("#api[aria-busy=false] #op--api-energy")
    text = page.locator("#api").inner_text()
    assert "/api/energy" in text and "batch_size" in text and "flops: MFLOPs" in text
    assert not outside, outside
    context.close()


def test_a_decode_what_if_shows_per_token_figures_provenance_and_marks(page, site):
    params = {"model": LLAMA, "batch_size": 4, "seq_len": 1, "phase": "decode", "context_len": 256}
    api = httpx.get(f"{site}api/energy", params=params, timeout=120).json()
    page.goto(site)
    page.wait_for_selector("#query-a select[name=model] option", state="attached")
    page.select_option("#query-a select[name=model]", value=option("local", LLAMA))
    page.fill("#query-a input[name=batch_size]", "4")
    assert page.locator("#query-a input[name=context_len]").is_disabled()
    page.select_option("#query-a select[name=phase]", value="decode")  # sets sequence length 1
    assert page.input_value("#query-a input[name=seq_len]") == "1"
    page.fill("#query-a input[name=context_len]", "256")
    page.click("#query-a button[type=submit]")
    page.wait_for_selector("#pane-0[aria-busy=false] .tree [role=treeitem]", timeout=120_000)

    sub = page.locator("#pane-0 .pane-sub").inner_text()
    assert "decode, context 256, float32" in sub and "meta device" in sub and api["hardware"] in sub
    totals = page.locator("#pane-0 .totals").text_content()
    assert "Predicted, per call (whole batch)" in totals and "KV cache" in totals
    per_token = page.locator("#pane-0 .totals .per-token dd").inner_text()
    assert per_token.endswith("/token")
    assert mj(per_token) == pytest.approx(1e3 * api["per_token"]["energy_j_per_token"], rel=2e-3)
    assert "ph%3Ddecode%26c%3D256" in page.evaluate("location.hash")

    assert api["root"]["extrapolated"]  # float32 decode: outside the shipped predictor's training data
    assert page.locator("#pane-0 .tree > li > .row .extrap").inner_text() == "extrapolated"
    assert page.locator("#pane-0 .icicle g.extrap-box .extrap-line").count() >= 1
    details = page.locator("#pane-0 .details").inner_text()
    assert "Per token" in details and "J per call for the whole batch (4 × 1), decode, context 256" in details
    assert "trained on float32 forward trees only" in page.locator("#pane-0 .pane-note").inner_text()
    form = page.locator("#pane-0 .sweep-form")
    assert form.locator("input[name=per_token]").is_checked()  # decode: the curve is J per token
    form.locator("select[name=vary]").select_option("context")
    form.locator("input[name=values]").fill("128,256")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#pane-0 .sweep svg polygon.band", timeout=60_000)
    assert "mJ per token" in page.locator("#pane-0 .sweep svg .axis-title").all_text_contents()
    cell = page.locator("#pane-0 .sweep-table tbody tr").nth(1).locator("td").nth(3)  # context 256, per token
    assert float(cell.text_content()) == pytest.approx(1e3 * api["per_token"]["energy_j_per_token"], rel=1e-3)


def test_the_icicle_zooms_and_the_energy_vs_batch_chart_draws_its_band(page, site):
    show(page, site, option("preset", MODEL), 2, 32)
    icicle = page.locator("#pane-0 .icicle")
    assert "Zoomed into bert-L2-H128" in page.locator("#pane-0 .icicle-path").inner_text()
    assert page.locator("#pane-0 [data-act=zoom-out]").is_disabled()
    encoder = icicle.locator("g[data-id]", has=page.locator("title", has_text=re.compile(r"^encoder:")))
    encoder.first.click()
    assert "bert-L2-H128 \u203a encoder (" in page.locator("#pane-0 .icicle-path").inner_text()
    top = icicle.locator("g[data-id]").first
    assert re.match(r"encoder: [\d,.]+ mJ, 100\.0 % of encoder", top.get_attribute("aria-label"))
    rows = page.locator("#pane-0 .icicle-table tbody tr")
    assert rows.count() >= 2 and "layer" in rows.first.text_content()  # the encoder's layers, not the model's parts
    page.click("#pane-0 [data-act=zoom-out]")
    assert "Zoomed into bert-L2-H128 (" in page.locator("#pane-0 .icicle-path").inner_text()
    with page.expect_download() as got:
        page.click("#pane-0 [data-act=icicle-csv]")
    share = list(csv.reader(Path(got.value.path()).read_text().splitlines()))
    assert share[0] == ["node", "type", "energy (mJ per call, whole batch)", "share of zoomed node (%)"]
    assert share[1][0] == "encoder" and sum(float(row[3]) for row in share[1:]) == pytest.approx(100, abs=0.01)

    api = httpx.get(f"{site}api/sweep", params={"model": MODEL, "vary": "batch", "values": "1,2,4,8", "seq_len": 32},
                    timeout=120).json()
    form = page.locator("#pane-0 .sweep-form")
    form.locator("select[name=vary]").select_option("batch")
    form.locator("input[name=values]").fill("1,2,4,8")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#pane-0 .sweep svg polygon.band", timeout=60_000)
    chart = page.locator("#pane-0 .sweep svg")
    assert chart.locator("circle").count() == 4
    band = [tuple(map(float, p.split(","))) for p in chart.locator("polygon.band").get_attribute("points").split()]
    curve = [tuple(map(float, p.split(","))) for p in chart.locator("polyline.curve").get_attribute("points").split()]
    assert len(band) == 8 and len(curve) == 4
    for (x, y), high, low in zip(curve, band[:4], band[:3:-1], strict=True):
        assert x == high[0] == low[0] and high[1] <= y <= low[1]  # SVG y grows downwards: high above, low below
    table = page.locator("#pane-0 .sweep-table")
    assert "predicted (mJ per call, whole batch)" in table.locator("thead").text_content()
    cells = table.locator("tbody tr").nth(2).locator("td")
    assert table.locator("tbody tr").count() == 4
    point = api["points"][2]
    figures = [float(cells.nth(i).text_content().replace(",", "")) for i in (0, 1)]
    assert figures == pytest.approx([1e3 * point["predicted_energy"], 1e3 * point["predicted_low"]], rel=1e-3)
    with page.expect_download() as got:
        page.click("#pane-0 [data-act=sweep-csv]")
    rows = list(csv.reader(Path(got.value.path()).read_text().splitlines()))
    assert rows[0][:4] == ["batch size (sequences)", "predicted (mJ per call, whole batch)", "90 % low (mJ)",
                           "90 % high (mJ)"]
    assert [int(r[0]) for r in rows[1:]] == [1, 2, 4, 8]
    assert float(rows[3][1]) == pytest.approx(1e3 * point["predicted_energy"], rel=1e-9)


def test_the_whatif_view_draws_the_pareto_front_answers_and_marks_extrapolated_points(page, site):
    scores = {"bert-L2-H128": 0.62, "bert-L2-H256": 0.6, "bert-L4-H256": 0.7, "bert-L4-H512": 0.73,
              "bert-L6-H512": 0.72, "bert-L12-H768": 0.79}
    page.goto(site)
    page.click("#tab-whatif")
    assert page.locator("#tab-whatif").get_attribute("aria-selected") == "true"
    assert page.locator("#view-tree").is_hidden()
    page.click("#whatif [data-act=miniatures]")
    assert len(page.input_value("#whatif textarea[name=models]").split()) == 24
    assert page.locator("#wi-count").inner_text() == "24 points"
    accuracy = page.locator("#whatif textarea[name=accuracy]")
    accuracy.fill("model,score\nbert-L2-H128,0.62\nbert-L2-H256,high")  # a bad line is named, and refused
    assert "pasted:3: score 'high' of 'bert-L2-H256' is not a number" in page.locator("#wi-acc-note").inner_text()
    page.click("#whatif button[type=submit]")
    assert "Accuracy: pasted:3" in page.locator("#whatif .message").inner_text()
    assert accuracy.get_attribute("aria-invalid") is not None
    accuracy.fill("model,score\n" + "\n".join(f"{m},{s}" for m, s in scores.items()))
    page.fill("#whatif input[name=budget_j]", "5")
    page.fill("#whatif input[name=min_accuracy]", "0.71")
    page.click("#whatif button[type=submit]")
    page.wait_for_selector("#whatif .wi-scatter", timeout=120_000)
    api = httpx.post(f"{site}api/whatif", timeout=120, json={
        "models": [f"bert-L{n}-H{h}" for n in (2, 4, 6, 8, 10, 12) for h in (128, 256, 512, 768)],
        "accuracy": scores, "budget_j": 5, "min_accuracy": 0.71}).json()
    front = sorted(p["model"] for p in api["points"] if p["pareto"])
    assert 1 < len(front) < len(scores)

    # The scatter: one point per scored model, the front's points marked and joined by its step line.
    scatter = page.locator("#whatif .wi-scatter")
    assert scatter.locator("g.wi-pt").count() == len(scores)
    marked = sorted(t.split(":")[0] for t in scatter.locator("g.wi-pt.pareto > title").all_text_contents())
    assert marked == front
    assert len(scatter.locator("polyline.front").get_attribute("points").split()) == 2 * len(front) - 1
    assert "on the Pareto front: " in scatter.get_attribute("aria-label")
    # The answers in words, as the API gives them.
    answers = page.locator("#whatif .wi-answers li").all_inner_texts()
    budget, floor = api["answers"]
    assert answers[0].startswith(f"Best accuracy within 5 J: {budget['model']} — accuracy {budget['accuracy']:g}")
    assert answers[1].startswith(f"Least energy for accuracy >= 0.71: {floor['model']}")
    assert "J per call, whole batch" in page.locator("#whatif .wi-provenance").inner_text()
    # An extrapolated point: its mark in the table carries its notices, and its dot is hollow.
    extrapolated = next(p for p in api["points"] if p["extrapolated"] and p["model"] in scores)
    row = page.locator("#whatif .wi-table tbody tr", has=page.locator(f'th:text-is("{extrapolated["model"]}")'))
    mark = row.locator(".wi-extrap")
    assert mark.locator("[aria-hidden=true]").inner_text() == "⚠"
    assert extrapolated["notices"][0] in mark.get_attribute("title")
    assert mark.locator(".sr-only").text_content() == f" extrapolated: {'; '.join(extrapolated['notices'])}"  # aloud
    assert scatter.locator("g.wi-pt.extrap-point").count() == sum(p["extrapolated"] for p in api["points"]
                                                                 if p["model"] in scores)
    # The accessible data table holds each scored point, its figures and its mark.
    card = page.locator("#whatif .wi-card", has=page.locator("svg.wi-scatter"))
    card.locator("details.data-table summary").click()
    rows = card.locator("table tbody tr")
    assert rows.count() == len(scores)
    cells = {r.locator("th").inner_text(): r.locator("td").all_inner_texts() for r in rows.all()}
    assert sorted(m for m, c in cells.items() if c[5] == "yes") == front
    assert "view=whatif" in page.evaluate("location.hash")
    with page.expect_download() as got:
        card.locator("[data-act=csv]").click()
    saved = list(csv.reader(Path(got.value.path()).read_text().splitlines()))
    assert saved[0][2] == "energy (J per call, whole batch)" and len(saved) == len(scores) + 1
