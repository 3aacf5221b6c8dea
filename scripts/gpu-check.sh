#!/usr/bin/env bash
# `make gpu-check` on a GPU machine without network: install the wheels of .whl/ (from `make gpu-wheels`)
# into a private directory with --no-deps --no-index, skipping dependencies already installed there,
# so `irene` and the plugins' entry points resolve; then run scripts/gpu_check.py (4-minute limit), or
# the command given as arguments (`make gpu-transfer`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if compgen -G ".whl/*.whl" >/dev/null; then
    target=$(mktemp -d)/site
    wheels=()
    for wheel in .whl/*.whl; do
        dist=$(basename "$wheel" | cut -d- -f1)
        case "$dist" in
            irene*) wheels+=("$wheel") ;;
            *) "$PY" -c "import importlib.metadata as m, sys; m.version(sys.argv[1])" "$dist" 2>/dev/null \
                   || wheels+=("$wheel") ;;
        esac
    done
    "$PY" -m pip install -q --no-deps --no-index --target "$target" "${wheels[@]}"
    export PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}" PATH="$target/bin:$PATH"
fi
if (($#)); then exec "$@"; fi
exec timeout 240 "$PY" scripts/gpu_check.py
