"""The viz JSON API on the paper's real trees: listing, answers, caching, sharing, bounds and safety."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from irene_core.errors import IreneError
from irene_core.tracing.bytes_moved import add_bytes_moved
from irene_core.tree.jsonl import write_records
from irene_core.tree.schema import MODEL_FEATURES
from irene_core.viz.app import create_app
from irene_core.viz.cache import ResultCache
from irene_core.viz.config import Limits, ServeConfig
from irene_core.viz.energy_service import EnergyService

SIZES = {(8, 32), (16, 128)}
LLAMA = "tiny-llama"
#: A two-layer Llama shape (head_dim 16, 2 KV heads): prefill and decode trace on the meta device in a second.
LLAMA_CONFIG = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 512, "hidden_size": 64,
                "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                "max_position_embeddings": 2048}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, device1_records) -> Path:
    """A data dir holding a slice of device_1 (bert-base and distilgpt2 at two sizes) and a stray file outside."""
    root = tmp_path_factory.mktemp("viz-data")
    keep = [
        r
        for r in device1_records
        if r.model_name in ("bert-base-uncased", "distilgpt2") and (r.batch_size, r.seq_len) in SIZES
    ]
    write_records(root / "runs" / "device_1.jsonl", keep)
    write_records(root.parent / "outside.jsonl", keep[:1])
    (root / "broken.jsonl").write_text('{"model_name": "x"\n', encoding="utf-8")
    (root / LLAMA).mkdir()
    (root / LLAMA / "config.json").write_text(json.dumps(LLAMA_CONFIG), encoding="utf-8")
    return root


@pytest.fixture()
def config(data_dir, tmp_path) -> ServeConfig:
    return ServeConfig(data_dir=data_dir, cache_path=tmp_path / "cache.sqlite", limits=Limits(max_tree_nodes=1000))


@pytest.fixture()
def client(config):
    with TestClient(create_app(config), base_url="http://127.0.0.1") as c:
        yield c


def tree_params(**over):
    return {"model": "bert-base-uncased", "batch_size": 8, "seq_len": 32, "dataset": "runs/device_1.jsonl", **over}


def test_models_lists_datasets_with_sizes_and_flags_a_broken_file(client):
    body = client.get("/api/models").json()
    by_name = {(m["name"], m["dataset"]): m for m in body["models"] if m["source"] == "dataset"}
    bert = by_name[("bert-base-uncased", "runs/device_1.jsonl")]
    assert {tuple(s) for s in bert["sizes"]} == SIZES and bert["measured"] is True
    datasets = {d["name"]: d for d in body["datasets"]}
    assert datasets["runs/device_1.jsonl"]["records"] == 4
    assert datasets["broken.jsonl"]["records"] == 0 and datasets["broken.jsonl"]["error"].startswith("broken.jsonl:1:")
    assert "outside.jsonl" not in json.dumps(body)
    assert body["limits"]["max_tree_nodes"] == 1000


def test_tree_has_structure_and_model_features_only(client, device1_records):
    r = client.get("/api/tree", params=tree_params())
    assert r.status_code == 200, r.text
    body = r.json()
    truth = next(t for t in device1_records if t.key[:3] == ("bert-base-uncased", 8, 32))
    assert body["node_count"] == sum(1 for _ in truth.nodes()) == 214
    assert body["source"] == "dataset" and body["dataset"] == "runs/device_1.jsonl"

    def walk(node):
        yield node
        for c in node["children"]:
            yield from walk(c)

    nodes = list(walk(body["root"]))
    assert all(set(n["features"]) <= set(MODEL_FEATURES) for n in nodes)
    assert all(n["ground_truth_energy"] is None and n["predicted_energy"] is None for n in nodes)
    assert body["root"]["features"]["flops"] == pytest.approx(truth.root.features["flops"])


def test_repeated_query_answers_from_the_sqlite_cache_across_restarts(config):
    with TestClient(create_app(config), base_url="http://127.0.0.1") as c:
        first = c.get("/api/tree", params=tree_params())
        second = c.get("/api/tree", params=tree_params())
        assert (first.headers["x-irene-cache"], second.headers["x-irene-cache"]) == ("miss", "hit")
        assert first.content == second.content
        assert c.get("/api/status").json()["computations"] == 1
        not_modified = c.get("/api/tree", params=tree_params(), headers={"If-None-Match": first.headers["etag"]})
        assert not_modified.status_code == 304
    with TestClient(create_app(config), base_url="http://127.0.0.1") as c:  # a new server, same cache file
        again = c.get("/api/tree", params=tree_params())
        assert again.headers["x-irene-cache"] == "hit" and again.content == first.content
        assert c.get("/api/status").json()["computations"] == 0


def test_a_changed_dataset_is_not_answered_from_a_stale_cache(config, data_dir, device1_records, monkeypatch):
    monkeypatch.setattr("irene_core.viz.catalog.RESCAN_SECONDS", 0.0)
    extra = data_dir / "changing.jsonl"
    rec = next(t for t in device1_records if t.key[:3] == ("distilgpt2", 8, 32))
    write_records(extra, [rec])
    params = tree_params(model="distilgpt2", dataset="changing.jsonl")
    with TestClient(create_app(config), base_url="http://127.0.0.1") as c:
        before = c.get("/api/tree", params=params).json()
        write_records(extra, [rec.model_copy(update={"device": "another-device"})])
        after = c.get("/api/tree", params=params)
        assert after.headers["x-irene-cache"] == "miss" and after.json()["device"] == "another-device"
        assert before["device"] == "device_1"
    extra.unlink()


def test_identical_concurrent_requests_share_one_computation(config):
    service = EnergyService(config)
    app = create_app(config, service)
    gate = threading.Event()
    service._executor.submit(gate.wait)  # occupy the worker so the requests below must queue

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            pending = [asyncio.ensure_future(client.get("/api/tree", params=tree_params())) for _ in range(8)]
            for _ in range(200):
                await asyncio.sleep(0.005)
                if service.status().inflight == 1 and service.cache.misses == 8:
                    break
            assert service.status().inflight == 1  # eight waiters, one computation in flight
            gate.set()
            return await asyncio.gather(*pending)

    responses = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [200] * 8
    assert len({r.content for r in responses}) == 1
    assert service.computations == 1 and service.status().inflight == 0
    service.close()


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        (tree_params(batch_size=0), "batch_size: Input should be greater than or equal to 1"),
        (tree_params(seq_len=100_000), "seq_len: Input should be less than or equal to 4096"),
        (tree_params(batch_size="eight"), "batch_size: Input should be a valid integer"),
        (tree_params(dataset="../outside.jsonl"), "dataset: String should match pattern"),
        (tree_params(dataset="/etc/passwd"), "dataset: String should match pattern"),
        (
            tree_params(dataset="runs/../../outside.jsonl"),
            "dataset 'runs/../../outside.jsonl' is not in the data directory",
        ),
        (
            tree_params(dataset="nope.jsonl"),
            "dataset 'nope.jsonl' is not in the data directory (datasets: broken.jsonl,",
        ),
        (
            tree_params(seq_len=33),
            "has no record of 'bert-base-uncased' at batch_size=8, seq_len=33 (sizes: 8x32, 16x128)",
        ),
        (tree_params(model="gpt9"), "dataset 'runs/device_1.jsonl' has no model 'gpt9'"),
        ({"model": "definitely-not-a-model", "batch_size": 1, "seq_len": 1}, "unknown model 'definitely-not-a-model'"),
        ({"model": "bert-base-uncased", "batch_size": 1}, "seq_len: Field required"),
    ],
)
def test_bad_input_gets_422_with_a_clear_message(client, params, fragment):
    r = client.get("/api/tree", params=params)
    assert r.status_code == 422, r.text
    assert fragment in r.json()["detail"]


def test_tree_size_bound(data_dir, tmp_path):
    small = ServeConfig(data_dir=data_dir, cache_path=tmp_path / "c.sqlite", limits=Limits(max_tree_nodes=100))
    with TestClient(create_app(small), base_url="http://127.0.0.1") as c:
        r = c.get("/api/tree", params=tree_params())
        assert r.status_code == 422
        assert (
            r.json()["detail"] == "the tree of 'bert-base-uncased' has 214 nodes, more than the server's limit of 100"
        )
        assert c.get("/api/tree", params=tree_params(model="distilgpt2")).status_code == 200  # 76 nodes


def test_the_api_is_read_only_and_answers_only_its_own_host(client):
    assert client.post("/api/tree", params=tree_params()).status_code == 405
    assert client.delete("/api/models").status_code == 405
    r = client.get("/api/models", headers={"Host": "attacker.example"})
    assert r.status_code == 400 and "Host" in r.json()["detail"]
    assert client.get("/api/models", headers={"Host": "localhost:8000"}).status_code == 200


def test_page_and_assets_are_served_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="pane-template"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/%2e%2e/app.py").status_code == 404


def test_openapi_documents_every_endpoint_and_its_errors(client):
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {"/api/models", "/api/energy", "/api/tree", "/api/sweep", "/api/status",
                                    "/api/problems", "/api/whatif"}
    energy = schema["paths"]["/api/energy"]["get"]
    assert set(energy["responses"]) == {"200", "422", "503"}
    params = {p["name"]: p["schema"] for p in energy["parameters"]}
    assert params["batch_size"]["maximum"] == 256 and params["seq_len"]["maximum"] == 4096
    assert all(list(ops) == ["post" if path == "/api/whatif" else "get"] for path, ops in schema["paths"].items())


def test_cache_refuses_a_foreign_sqlite_file(tmp_path):
    import sqlite3

    foreign = tmp_path / "someone-elses.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE precious (x)")
    with pytest.raises(IreneError, match="not an IrEne-viz cache"):
        ResultCache(foreign)
    with sqlite3.connect(foreign) as db:
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("precious",)]
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(IreneError, match=r"garbage\.sqlite"):
        ResultCache(garbage)


def test_cache_evicts_the_oldest_entries(tmp_path):
    cache = ResultCache(tmp_path / "c.sqlite", max_entries=3)
    for i in range(5):
        cache.put(f"k{i}", b"v%d" % i)
    assert len(cache) == 3 and cache.get("k0") is None and cache.get("k4").body == b"v4"
    cache.close()


@pytest.mark.parametrize("path", ["/", "/api", "/api/models", "/static/app.js", "/openapi.json", "/api/tree"])
def test_head_answers_like_get_without_a_body(client, path):
    params = tree_params() if path == "/api/tree" else None
    for _ in range(2):  # an answer route twice: computed, then from the cache
        get, head = client.get(path, params=params), client.head(path, params=params)
        assert head.status_code == get.status_code == 200
        assert head.content == b""
        for name in ("content-type", "content-length", "etag", "content-encoding"):
            assert head.headers.get(name) == get.headers.get(name), name


@pytest.mark.parametrize(
    ("header", "gzip"),
    [("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.5", True), ("gzip;q=0", False), ("identity", False),
     ("*", True), ("*;q=0.1, gzip;q=0", False), ("", False), ("gzip;q=nonsense", False)],
)
def test_accept_encoding_is_honoured(header, gzip):
    from irene_core.viz.app import accepts_gzip

    assert accepts_gzip(header) is gzip


def test_answers_are_gzip_compressed_once_when_cached(config, monkeypatch):
    import gzip

    calls: list[int] = []
    real = gzip.compress

    def counted(data: bytes, **kw):
        calls.append(len(data))
        return real(data, **kw)

    monkeypatch.setattr("irene_core.viz.cache.gzip.compress", counted)
    with TestClient(create_app(config), base_url="http://127.0.0.1") as c:
        plain = c.get("/api/tree", params=tree_params(), headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.headers["vary"] == "Accept-Encoding"
        for _ in range(3):
            with c.stream("GET", "/api/tree", params=tree_params(), headers={"Accept-Encoding": "gzip"}) as r:
                raw = b"".join(r.iter_raw())
            assert r.headers["content-encoding"] == "gzip" and r.headers["x-irene-cache"] == "hit"
            assert gzip.decompress(raw) == plain.content and len(raw) < len(plain.content) / 5
        assert calls == [len(plain.content)]  # compressed once, when the answer was cached
        assert r.headers["etag"] != plain.headers["etag"]  # one tag per encoding
        conditional = {"Accept-Encoding": "gzip", "If-None-Match": r.headers["etag"]}
        again = c.get("/api/tree", params=tree_params(), headers=conditional)
        assert again.status_code == 304 and again.headers["etag"] == r.headers["etag"]
        assert c.get("/static/app.js", headers={"Accept-Encoding": "gzip"}).headers["content-encoding"] == "gzip"


def test_new_plugin_or_schema_versions_never_get_a_stale_answer(config, monkeypatch):
    with TestClient(create_app(config), base_url="http://127.0.0.1") as c:
        assert c.get("/api/tree", params=tree_params()).headers["x-irene-cache"] == "miss"
        assert c.get("/api/tree", params=tree_params()).headers["x-irene-cache"] == "hit"
    versions = [*EnergyService(config).versions[3]]
    assert any(v.startswith("irene-framework-torch==") for v in versions)
    bumped = [v + ".post1" if v.startswith("irene-primitives-transformers==") else v for v in versions]
    monkeypatch.setattr("irene_core.viz.energy_service.plugin_versions", lambda: bumped)
    with TestClient(create_app(config), base_url="http://127.0.0.1") as c:  # same cache file, a newer plugin
        assert c.get("/api/tree", params=tree_params()).headers["x-irene-cache"] == "miss"
    monkeypatch.setattr("irene_core.viz.energy_service.SCHEMA_VERSION", 99)
    with TestClient(create_app(config), base_url="http://127.0.0.1") as c:
        assert c.get("/api/tree", params=tree_params()).headers["x-irene-cache"] == "miss"


def test_units_are_in_the_answers_and_the_schema_and_errors_say_what_they_are(
    client, data_dir, device1_records, monkeypatch
):
    monkeypatch.setattr("irene_core.viz.catalog.RESCAN_SECONDS", 0.0)
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    units = schema["TreeView"]["properties"]["units"]["description"]
    assert "flops: MFLOPs" in units and "mem_bytes: MiB" in units and "predicted_energy: J per call" in units
    assert "in-sample" in schema["EnergyView"]["properties"]["error_basis"]["description"]
    tree = client.get("/api/tree", params=tree_params()).json()
    assert tree["units"]["flops"] == "MFLOPs" and tree["units"]["times_mean"] == "s per call"
    measured = client.get("/api/energy", params=tree_params()).json()
    assert measured["error_basis"] == "in-sample"  # device_1 trained the reference predictor
    rec = next(t for t in device1_records if t.key[:3] == ("distilgpt2", 8, 32)).model_copy(deep=True)
    add_bytes_moved([rec])  # the predictor needs the tracer's bytes, which a renamed model cannot get later
    write_records(data_dir / "renamed.jsonl", [rec.model_copy(update={"model_name": "my-distilgpt2"})])
    try:
        other = client.get("/api/energy", params=tree_params(model="my-distilgpt2", dataset="renamed.jsonl"))
        assert other.status_code == 200, other.text
        assert other.json()["error_basis"] == "held-out"
    finally:
        (data_dir / "renamed.jsonl").unlink()


def test_the_api_page_is_served_with_the_pages_policy_and_no_external_url(client):
    page = client.get("/api")
    assert page.status_code == 200 and 'src="static/api.js"' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    script = client.get("/static/api.js").text
    assert "openapi.json" in script and not re.search(r"https?://(?!www\.w3\.org/2000/svg)", script + page.text)


def decode_params(**over):
    """A decode query of the tiny Llama; a None in ``over`` leaves that parameter out."""
    params = {"model": LLAMA, "batch_size": 4, "seq_len": 1, "phase": "decode", "context_len": 256, **over}
    return {k: v for k, v in params.items() if v is not None}


def test_a_decode_what_if_answer_carries_phase_and_per_token_figures(client):
    r = client.get("/api/energy", params=decode_params())
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["phase"], body["context_len"], body["dtype"], body["batch_size"]) == ("decode", 256, "float32", 4)
    assert any(n["id"].startswith("lm_head") for n in body["root"]["children"])  # a causal LM: the head is there
    tokens = body["per_token"]
    assert tokens["tokens_per_call"] == 4 and tokens["energy_source"] == "predicted"  # decode: one token a sequence
    assert tokens["energy_j_per_token"] == pytest.approx(body["root"]["predicted_energy"] / 4, rel=1e-12)
    # keys and values of 2 layers × 2 KV heads × 16 dims × 4 sequences × ~256 positions in float32: ~0.5 MiB
    assert tokens["kv_cache_mib"] == pytest.approx(0.5, rel=0.01)
    assert body["root"]["extrapolated"] and "decode" in " ".join(n["message"] for n in body["notices"])
    assert client.get("/api/energy", params=decode_params()).headers["x-irene-cache"] == "hit"
    longer = client.get("/api/energy", params=decode_params(context_len=512))
    assert longer.headers["x-irene-cache"] == "miss"  # the context is part of the cache key
    assert longer.json()["per_token"]["kv_cache_mib"] == pytest.approx(2 * tokens["kv_cache_mib"], rel=0.01)
    prefill = client.get("/api/energy", params={"model": LLAMA, "batch_size": 4, "seq_len": 16, "phase": "prefill"})
    assert prefill.json()["per_token"]["tokens_per_call"] == 64 and prefill.json()["context_len"] is None
    structure = client.get("/api/tree", params=decode_params()).json()
    assert structure["phase"] == "decode" and structure["per_token"]["energy_j_per_token"] is None


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        (decode_params(phase=None), "context_len: a context is the KV cache of phase=decode"),
        (decode_params(seq_len=4), "seq_len=4: phase=decode generates one token per sequence (use seq_len=1)"),
        (decode_params(logits="all"), "logits: only phase=prefill chooses"),
        (decode_params(phase="sideways"), "phase: Input should be 'forward', 'prefill' or 'decode'"),
        (decode_params(dtype="float64"), "dtype: Input should be 'float32', 'bfloat16' or 'float16'"),
        (decode_params(context_len=0), "context_len: Input should be greater than or equal to 1"),
        (decode_params(context_len=4096), "exceeds the model's 2048 positions"),
        (decode_params(model="bert-base-uncased"), "bert-base-uncased is not a decoder"),
        (tree_params(phase="decode", seq_len=1), "phase=decode"),
    ],
)
def test_bad_phase_options_get_one_line_422(client, params, fragment):
    r = client.get("/api/energy", params=params)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert fragment in detail and "\n" not in detail


def test_the_sweep_returns_predicted_energy_with_its_band_at_each_size(client):
    r = client.get("/api/sweep", params={"model": LLAMA, "vary": "batch", "values": "8,1,4,2", "seq_len": 32})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [p["value"] for p in body["points"]] == [1, 2, 4, 8] and body["units"]["predicted_energy"].startswith("J")
    for point in body["points"]:
        assert point["predicted_low"] <= point["predicted_energy"] <= point["predicted_high"]
        single = client.get("/api/energy", params={"model": LLAMA, "batch_size": point["value"], "seq_len": 32})
        assert single.headers["x-irene-cache"] == "hit"  # each point is that size's energy answer
        assert single.json()["root"]["predicted_energy"] == point["predicted_energy"]
    energies = [p["predicted_energy"] for p in body["points"]]
    assert energies == sorted(energies) and body["hardware"]
    contexts = client.get("/api/sweep", params={"model": LLAMA, "vary": "context", "values": "128,4096",
                                                "seq_len": 1, "phase": "decode"}).json()["points"]
    assert contexts[0]["energy_j_per_token"] == contexts[0]["predicted_energy"]  # batch 1: one token per call
    assert contexts[1]["predicted_energy"] is None and "2048 positions" in contexts[1]["error"]
    measured = client.get("/api/sweep", params={"model": "bert-base-uncased", "vary": "batch", "values": "8,16",
                                                "seq_len": 32, "dataset": "runs/device_1.jsonl"}).json()["points"]
    truth = client.get("/api/energy", params=tree_params()).json()["root"]["ground_truth_energy"]
    assert [p["measured_energy"] for p in measured] == [truth, None]  # the dataset holds 8×32, not 16×32


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"values": ",".join(map(str, range(1, 18)))}, "values: up to 16 distinct values from 1 to 256"),
        ({"values": "1,2,2"}, "values: up to 16 distinct values"),
        ({"values": "1,300"}, "from 1 to 256 for vary=batch"),
        ({"values": "1;2"}, "values: String should match pattern"),
        ({"vary": "layers"}, "vary: Input should be 'batch', 'seq' or 'context'"),
        ({"vary": "context", "values": "64"}, "context_len: a context is the KV cache of phase=decode"),
        ({"model": "nope"}, "unknown model 'nope'"),
    ],
)
def test_bad_sweeps_get_one_line_422(client, params, fragment):
    r = client.get("/api/sweep", params={"model": LLAMA, "vary": "batch", "values": "1,2", **params})
    assert r.status_code == 422, r.text
    assert fragment in r.json()["detail"]
