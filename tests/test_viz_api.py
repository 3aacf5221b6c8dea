"""The viz JSON API on the paper's real trees: listing, answers, caching, sharing, bounds and safety."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from irene_core.errors import IreneError
from irene_core.tree.jsonl import write_records
from irene_core.tree.schema import MODEL_FEATURES
from irene_core.viz.app import create_app
from irene_core.viz.cache import ResultCache
from irene_core.viz.config import Limits, ServeConfig
from irene_core.viz.energy_service import EnergyService

SIZES = {(8, 32), (16, 128)}


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
    assert set(schema["paths"]) == {"/api/models", "/api/energy", "/api/tree", "/api/status", "/api/problems"}
    energy = schema["paths"]["/api/energy"]["get"]
    assert set(energy["responses"]) == {"200", "422", "503"}
    params = {p["name"]: p["schema"] for p in energy["parameters"]}
    assert params["batch_size"]["maximum"] == 256 and params["seq_len"]["maximum"] == 4096
    assert all("get" in ops and len(ops) == 1 for ops in schema["paths"].values())


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
