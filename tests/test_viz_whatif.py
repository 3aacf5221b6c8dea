"""POST /api/whatif: the architecture what-if on the viz server (energy per point and module type, the Pareto
front, the answers), its bounds and one-line errors, and the traces it keeps across requests."""

from __future__ import annotations

import math
import time

import pytest
from fastapi.testclient import TestClient

from irene_core.viz.app import create_app
from irene_core.viz.config import Limits, ServeConfig
from irene_core.viz.energy_service import EnergyService, TraceCache

MINIATURES = [f"bert-L{layers}-H{hidden}" for layers in (2, 4, 6, 8, 10, 12) for hidden in (128, 256, 512, 768)]
#: Scores that do not grow with size everywhere, so that some points are off the front.
ACCURACY = {"bert-L2-H128": 0.62, "bert-L4-H128": 0.66, "bert-L2-H256": 0.6, "bert-L4-H256": 0.71}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("whatif")
    service = EnergyService(ServeConfig(data_dir=root, cache_path=root / "cache.sqlite",
                                        limits=Limits(max_batch_size=64, max_seq_len=512)))
    with TestClient(create_app(service.config, service), base_url="http://127.0.0.1") as client:
        yield client, service


def whatif(client, **body):
    return client.post("/api/whatif", json=body)


def test_each_point_is_the_energy_answer_of_that_model_split_by_module_type(server):
    client, _ = server
    body = whatif(client, models=list(ACCURACY), batch_size=2, seq_len=32, accuracy=ACCURACY, budget_j=0.2,
                  min_accuracy=0.65).json()
    hardware = next(p["hardware"] for p in client.get("/api/models").json()["predictors"] if p["default"])
    assert (body["predictor"], body["device"], body["unit"]) == ("reference", hardware, "J per call, whole batch")
    assert [p["model"] for p in body["points"]] == list(ACCURACY)
    for point in body["points"]:
        tree = client.get("/api/energy", params={"model": point["model"], "batch_size": 2, "seq_len": 32}).json()
        root = tree["root"]
        assert point["energy"] == pytest.approx(root["predicted_energy"], rel=1e-9)
        assert (point["low"], point["high"]) == pytest.approx((root["predicted_low"], root["predicted_high"]), rel=1e-9)
        assert point["extrapolated"] == root["extrapolated"]
        assert point["parameters"] == root["features"]["num_parameters"]
        assert math.fsum(t["energy"] for t in point["per_type"]) == pytest.approx(point["energy"], rel=1e-9)
        energies = [t["energy"] for t in point["per_type"]]
        assert energies == sorted(energies, reverse=True)
        assert "BertSelfAttention" in {t["type"] for t in point["per_type"]}
        assert point["accuracy"] == ACCURACY[point["model"]]
    # The front, by its definition: no other point has no more energy and no less accuracy, better in one.
    points = body["points"]
    for p in points:
        dominated = any(q["energy"] <= p["energy"] and q["accuracy"] >= p["accuracy"]
                        and (q["energy"] < p["energy"] or q["accuracy"] > p["accuracy"]) for q in points)
        assert p["pareto"] is not dominated
    assert 0 < sum(p["pareto"] for p in points) < len(points)
    within = max((p for p in points if p["energy"] <= 0.2), key=lambda p: p["accuracy"], default=None)
    cheapest = min((p for p in points if p["accuracy"] >= 0.65), key=lambda p: p["energy"])
    budget, floor = body["answers"]
    assert budget["question"] == "best accuracy within 0.2 J" and budget["model"] == (within and within["model"])
    assert floor["question"] == "least energy for accuracy >= 0.65" and floor["model"] == cheapest["model"]


def test_a_varied_base_model_is_the_cartesian_product_of_its_settings(server):
    client, _ = server
    body = whatif(client, base="bert-L2-H128", vary={"layers": [1, 2, 3], "hidden": [128, 256]}, batch_size=2,
                  seq_len=32).json()
    assert [p["model"] for p in body["points"]] == [f"bert-L2-H128[layers={n},hidden={h}]"
                                                    for n in (1, 2, 3) for h in (128, 256)]
    assert [p["settings"] for p in body["points"]][:2] == [{"layers": 1, "hidden": 128}, {"layers": 1, "hidden": 256}]
    by = {(p["settings"]["layers"], p["settings"]["hidden"]): p for p in body["points"]}
    assert by[(1, 128)]["energy"] < by[(2, 128)]["energy"] < by[(3, 128)]["energy"] < by[(3, 256)]["energy"]
    assert by[(3, 128)]["parameters"] < by[(3, 256)]["parameters"]
    preset = whatif(client, models=["bert-L2-H128"], batch_size=2, seq_len=32).json()["points"][0]
    assert by[(2, 128)]["energy"] == pytest.approx(preset["energy"], rel=1e-9)  # the preset's own settings
    assert not any(p["pareto"] for p in body["points"]) and body["answers"] == []  # no accuracy: no front


@pytest.mark.parametrize(("body", "field"), [
    ({"models": ["no-such-model"]}, "models: unknown model 'no-such-model'"),
    ({"models": [f"bert-L2-H128[{i}]" for i in range(65)]}, "models: 65 points, more than the 64"),
    ({"base": "bert-L2-H128", "vary": {"layers": list(range(1, 9)), "hidden": [64 * k for k in range(1, 10)]}},
     "vary: 72 points, more than the 64"),
    ({"base": "bert-L2-H128", "vary": {"layers": [300]}}, "vary layers: values from 1 to 256"),
    ({"base": "bert-L2-H128", "vary": {"colour": [2]}}, "vary colour: not an integer setting"),
    ({"base": "bert-L2-H128", "vary": {"hidden": [100]}}, "vary hidden=100: not a multiple of the head size 64"),
    ({"models": ["bert-L2-H128"], "base": "bert-L2-H128"}, "models: give either"),
    ({}, "base: give a model to vary"),
    ({"models": ["bert-L2-H128"], "budget_j": 1}, "budget_j: needs accuracy"),
    ({"models": ["bert-L2-H128"], "predictor": "../elsewhere"}, "unknown predictor '../elsewhere'"),
    ({"models": ["bert-L2-H128"], "framework": "tensorflow"}, "framework: this server traces with 'torch'"),
    ({"models": ["bert-L2-H128"], "batch_size": 65}, "batch_size, seq_len: at most 64 and 512"),
    ({"models": ["bert-L2-H128"], "budget_j": 0}, "budget_j: Input should be greater than 0"),
    ({"models": ["bert-L2-H128"], "colour": "red"}, "colour: Extra inputs are not permitted"),
])
def test_bad_input_is_refused_in_one_line_naming_the_field(server, body, field):
    client, _ = server
    response = whatif(client, **body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert field in detail, detail
    assert "\n" not in detail and "--" not in detail  # the API's fields, not the command line's flags


def test_only_post_and_the_schema_documents_body_answer_and_errors(server):
    client, _ = server
    assert client.get("/api/whatif").status_code == 405
    broken = client.post("/api/whatif", content=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 422 and broken.json()["detail"]
    op = client.get("/openapi.json").json()["paths"]["/api/whatif"]["post"]
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/WhatIfQuery") and body["examples"][0]["models"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/WhatIfResult")
    assert {"422", "503"} <= op["responses"].keys()
    example = whatif(client, **body["examples"][0])
    assert example.status_code == 200 and example.json()["answers"][0]["model"]


def test_the_24_miniatures_are_traced_once_and_a_repeat_only_predicts(server):
    client, service = server
    whatif(client, models=["bert-L2-H128"])  # imports the tracer and the predictor: a warm server
    accuracy = {m: 0.6 + 0.01 * i for i, m in enumerate(MINIATURES)}
    start = time.perf_counter()
    first = whatif(client, models=MINIATURES, batch_size=16, seq_len=128, accuracy=accuracy)
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    again = whatif(client, models=MINIATURES, batch_size=16, seq_len=128, budget_j=3, accuracy=accuracy)
    again_s = time.perf_counter() - start
    assert first.status_code == again.status_code == 200
    assert [p["energy"] for p in again.json()["points"]] == [p["energy"] for p in first.json()["points"]]
    assert again.json()["answers"][0]["model"]  # new questions on the kept traces
    kept = [key for key in service._traces if key[3:] == (16, 128)]
    assert sorted(key[1] for key in kept) == sorted(MINIATURES)
    assert first_s < 15 and again_s < first_s / 2, (first_s, again_s)  # the target on a quiet machine: 5 s


def test_the_trace_cache_keeps_the_most_recently_used():
    cache = TraceCache(2)
    cache["a"], cache["b"] = 1, 2
    assert cache["a"] == 1  # used: "b" is now the oldest
    cache["c"] = 3
    assert list(cache) == ["a", "c"]
