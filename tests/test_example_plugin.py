"""The worked example of docs/writing-a-plugin.md, built and installed like a user would."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "irene-primitive-rotary"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target), str(EXAMPLE)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return target


def _env(site: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def test_example_shows_in_irene_plugins(installed, cli_run):
    rows = json.loads(cli_run("plugins", "--json", env=_env(installed)).stdout)
    row = next(r for r in rows if r["distribution"] == "irene-primitive-rotary")
    assert row["status"] == "ok" and row["contributes"] == ["primitive:RotaryEmbedding"]
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
    assert np.isfinite(float(value))
