"""The worked example of docs/writing-a-plugin.md, built and installed like a user would, from a copy
(a pip build writes into the source folder), then used as the doc says: `irene plugins`, `irene train`."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from irene_core.tree.jsonl import write_records

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "irene-primitive-rotary"


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    before = _files(EXAMPLE)
    work = tmp_path_factory.mktemp("example")
    source = shutil.copytree(EXAMPLE, work / "src", ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
         str(work / "site"), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    assert _files(EXAMPLE) == before  # nothing written under docs/examples
    return work / "site"


def _env(site: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def test_example_shows_in_irene_plugins(installed, cli_run):
    rows = json.loads(cli_run("plugins", "--json", env=_env(installed)).stdout)
    row = next(r for r in rows if r["distribution"] == "irene-primitive-rotary")
    assert (row["name"], row["status"], row["contributes"]) == ("rotary", "ok", ["primitive:RotaryEmbedding"])
    assert row["version"] == "1.0.0"


def test_example_regressor_is_found_by_alias_and_learns_a_power_law(installed):
    code = (
        "import numpy as np\n"
        "from irene_core.plugins import get_registry\n"
        "from irene_core.predictor.regressor import make_regressor\n"
        "spec = get_registry().get('primitive', 'LlamaRotaryEmbedding')\n"
        "X = np.array([[f, 2 * f] for f in (10.0, 20.0, 40.0, 80.0)])\n"
        "r = make_regressor(spec.factory, ['flops', 'mem_bytes'], {}).fit(X, 1e-3 * X[:, 0])\n"
        "state = r.get_state()\n"
        "again = make_regressor(spec.factory, ['flops', 'mem_bytes'], {}).set_state(state)\n"
        "print(spec.name, float(again.predict(np.array([[160.0, 320.0]]))[0]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=_env(installed), capture_output=True, text=True, check=True)
    name, value = out.stdout.split()
    assert name == "RotaryEmbedding"
    assert float(value) == pytest.approx(0.16, rel=1e-3)  # extrapolates the power law E = 1e-3·flops


def test_irene_train_fits_the_example_regressor_on_its_leaves(installed, tmp_path, device1_records, cli_run):
    """The doc's `irene train runs/llama.jsonl -o predictors/llama`: the LlamaRotaryEmbedding leaves
    (here distilgpt2's position embedding, renamed) train the example's PowerLawRegressor."""
    records = [r.model_copy(deep=True) for r in device1_records if r.model_name == "distilgpt2" and r.batch_size <= 16]
    for record in records:
        (leaf,) = (n for n in record.root.walk() if n.scope == "wpe")
        leaf.type, leaf.id = "LlamaRotaryEmbedding", "wpe:LlamaRotaryEmbedding"
    write_records(tmp_path / "runs" / "llama.jsonl", records)
    predictor = tmp_path / "predictors" / "llama"
    out = cli_run("train", str(tmp_path / "runs" / "llama.jsonl"), "-o", str(predictor), env=_env(installed)).stdout
    assert re.search(rf"RotaryEmbedding\W+{len(records)}\W+PowerLawRegressor", out), out
    manifest = json.loads((predictor / "predictor.json").read_text(encoding="utf-8"))
    report = manifest["training"]["leaves"]["primitives"]["RotaryEmbedding"]
    assert report == {"rows": len(records), "model": "PowerLawRegressor"}
    saved = manifest["leaves"]["primitives"]["RotaryEmbedding"]
    assert (saved["spec"], saved["distribution"]) == ("RotaryEmbedding", "irene-primitive-rotary")
    with np.load(predictor / "arrays.npz", allow_pickle=False) as arrays:
        coef = arrays[saved["state"]["coef"]["$array"]]
    assert saved["state"]["ridge"] == 1e-6 and coef.shape == (3,)  # log E = a + b·log flops + c·log bytes
