# Two commands set everything up: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/*/pyproject.toml))
# The CPU wheel of torch lies on these machines; the packages' own requirement stays a range.
TORCH_PIN := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench reference-predictors clean gpu-wheels gpu-check gpu-transfer

$(STAMP): pyproject.toml $(addsuffix /pyproject.toml,$(PLUGIN_DIRS)) requirements-dev.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PIN)
	$(BIN)/python -m pip install -q $(TORCH_PIN) -e ".[viz,pandas,ray]" $(addprefix -e ,$(PLUGIN_DIRS)) -r requirements-dev.txt
	touch $@

install: $(STAMP)

# The main job on its embedded default: profile and predict a small BERT on this machine.
demo: install
	$(BIN)/irene plugins
	rm -f runs/demo.jsonl
	$(BIN)/irene run -o runs/demo.jsonl --html runs/demo.html

test: install
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	bash scripts/run-tests.sh

# ruff on core, plugins, tests and benchmarks; mypy --strict on irene_core; the import contracts (.importlinter).
LINTED := irene_core plugins docs/examples tests benchmarks scripts conftest.py
lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(BIN)/python benchmarks/run_all.py

reference-predictors: install
	$(BIN)/python scripts/train_reference_predictors.py

# For `make gpu-check` on a machine without network (Python 3.12, CUDA torch, transformers, nvidia-ml-py,
# pluggy, rich, click): the project's and plugins' wheels, and core's other dependencies as cp312
# manylinux wheels at the versions installed here, into .whl/.
GPU_DEPS := pydantic pydantic-core annotated-types typing-extensions typing-inspection numpy scipy scikit-learn joblib threadpoolctl
gpu-wheels: install
	rm -rf .whl && mkdir -p .whl
	$(BIN)/python -m pip wheel -q --no-deps -w .whl . $(PLUGIN_DIRS)
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: --implementation cp --python-version 3.12 \
		--platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl \
		$$($(BIN)/python -c "import importlib.metadata as m, sys; print(' '.join(f'{d}=={m.version(d)}' for d in sys.argv[1:]))" $(GPU_DEPS))

# The GPU check (scripts/gpu_check.py): installs .whl/ if present, then checks; exit 2 without a GPU.
GPU_PYTHON = $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
gpu-check:
	PYTHON=$(GPU_PYTHON) bash scripts/gpu-check.sh

# Real-GPU data for the device-transfer benchmark (bench_calibration; benchmarks/data/h200-nvml.jsonl came
# from it): the paper's six models measured with NVML on cuda:0 (b16 s128; bert and gpt2 also b32 s256),
# 1 s windows (10 periods of a 100 ms energy counter), appended to $(GPU_TRANSFER); resumable.
GPU_TRANSFER ?= runs/gpu-transfer.jsonl
GPU_RUN = $(GPU_PYTHON) -m irene_core run --device cuda --meter nvml --window-seconds 1 --rounds 2 --resume \
	-o $(GPU_TRANSFER) --json
gpu-transfer:
	PYTHON=$(GPU_PYTHON) bash scripts/gpu-check.sh $(GPU_RUN) -b 16 -s 128 --model bert-base-uncased \
		--model distilbert-base-uncased --model roberta-base --model gpt2 --model distilgpt2 --model openai-gpt
	PYTHON=$(GPU_PYTHON) bash scripts/gpu-check.sh $(GPU_RUN) -b 32 -s 256 --model bert-base-uncased --model gpt2

clean:
	rm -rf $(VENV) build .pytest_cache
