# mlbench front door. `make help` lists the targets; HW=cpu|gpu picks the hardware profile.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HW ?= cpu
EXTRAS ?= classical,dl,stats,report,rl,llm,dev
ARGS ?=
RUN ?= smoke

RUST_SOURCES := .cargo/config.toml $(wildcard configs/tasks/*.yaml) configs/environments.yaml $(shell find rust -path rust/target -prune -o \( -name '*.rs' -o -name '*.cpp' -o -name 'Cargo.*' -o -name '*.toml' \) -print)
# TARGET_CPU=x86-64-v3 (say): binaries for another machine (one with no Rust toolchain), in
# rust/target/$(TARGET_CPU)/release; the default is .cargo/config.toml's target-cpu=native, whose
# binaries may use instructions another CPU lacks (an AMD build's SSE4a dies with SIGILL on Intel).
TARGET_CPU ?=
RUST_OUT := $(abspath rust/target$(if $(TARGET_CPU),/$(TARGET_CPU)))
RUST_BINARIES := $(addprefix $(RUST_OUT)/release/,regression svm clustering cnn cnn-burn rnn rnn-burn rl-envs dqn reinforce a2c ppo text_encoding text_encoding-tch text_generation text_generation-tch)
# burn's arms are workspaces of their own (burn 0.22 and tch 0.24 cannot share a lockfile).
BURN_CRATES := cnn-burn rnn-burn
CARGO_CPU := $(if $(TARGET_CPU),RUSTFLAGS="-C target-cpu=$(TARGET_CPU)")
# tch builds against the venv's libtorch (torch-sys finds it through the venv's python); HW=gpu adds
# candle's and burn's CUDA backends (needs the CUDA toolkit's nvcc). torch-sys only tests
# LIBTORCH_USE_PYTORCH for presence but re-runs its build script when the value changes: the venv's
# path as the value makes a moved or re-cloned checkout (a cached target dir, as CI keeps) rebuild
# against its own libtorch, not a deleted venv's headers and rpath.
CARGO_ENV := PATH="$(abspath $(VENV))/bin:$$PATH" LIBTORCH_USE_PYTORCH="$(abspath $(VENV))"
CARGO_FEATURES := $(if $(filter gpu,$(HW)),--features cuda)
# burn 0.22's `cuda` backend (cubecl) links LLVM 23 through tracel-llvm-bundler, whose build script
# downloads it: offline, build HW=gpu with BURN_CUDA=0 (burn's binaries then refuse `device: cuda`).
BURN_CUDA ?= 1
BURN_FEATURES := $(if $(filter 1,$(BURN_CUDA)),$(CARGO_FEATURES))
# candle's `cuda` build compiles its kernels with nvcc for one GPU generation, CUDA_COMPUTE_CAP
# (nvidia-smi's compute_cap without the dot; 90 = H100/H200 where no GPU is here to ask). Without an
# nvcc on PATH, HW=gpu makes one from PyPI's wheels in the venv first (`make cuda-toolkit`).
CUDA_COMPUTE_CAP ?= $(or $(shell nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d .),90)
CUDA_WHEELS := $(if $(filter gpu,$(HW)),$(if $(shell command -v nvcc),,$(VENV)/.cuda-build))
CUDA_ENV := $(if $(filter gpu,$(HW)),export CUDA_COMPUTE_CAP=$(CUDA_COMPUTE_CAP) $(if $(CUDA_WHEELS),&& cuda="$$(scripts/cuda-toolkit.sh)" && export CUDA_HOME="$$cuda" PATH="$$cuda/bin:$$PATH") &&)

.PHONY: help setup build cuda-toolkit datasets frameworks doctor ecosystem smoke noise-floor bench-harness report lab bench-classical bench-llm bench-rl bench-rl_small compare export test test-python test-rust lint check-burn-cuda clean distclean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: HW=cpu|gpu  RUN=NAME (report, compare, export)  ARGS='--resume' (passed to mlbench run)  DOWNLOAD=1  TARGET_CPU=x86-64-v3 (build for another machine)"
	@echo "  HW=gpu builds: BURN_CUDA=0 (burn without CUDA: offline)  CUDA_COMPUTE_CAP=90 (candle's kernels; nvidia-smi's when there is one)"
	@echo "  bench-NAME        the full grid of configs/<domain>/NAME.yaml: $(sort $(basename $(notdir $(BENCH_MATRICES))))"
	@echo "  ARGS examples: '--target-ci 0.05 --max-processes 20' (adaptive), '--order grouped', '--processes 10'"

setup: $(VENV)/.installed ## create .venv and install the pinned Python dependencies (once)

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python >= 3.11" >&2; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	touch $@

build: $(RUST_BINARIES) ## build the Rust workspace in release mode (skipped when up to date)

$(RUST_BINARIES) &: $(RUST_SOURCES) $(VENV)/.installed $(CUDA_WHEELS)
	@command -v cargo >/dev/null || { echo "error: cargo not found; install Rust from https://rustup.rs" >&2; exit 2; }
	mkdir -p $(RUST_OUT)/release && date +%s > $(RUST_OUT)/release/.build-start
	$(CUDA_ENV) cd rust && $(CARGO_ENV) $(CARGO_CPU) cargo build --release --locked --target-dir $(RUST_OUT) $(CARGO_FEATURES)
	for crate in $(BURN_CRATES); do (cd rust/$$crate && $(CARGO_CPU) cargo build --release --locked --target-dir $(RUST_OUT) $(BURN_FEATURES)) || exit $$?; done
	touch $(RUST_BINARIES)
	$(PY) -m mlbench.buildinfo $(RUST_OUT)/release --target-cpu "$(TARGET_CPU)" --features "$(CARGO_FEATURES)" --burn-features "$(BURN_FEATURES)"

cuda-toolkit: $(VENV)/.cuda-build ## nvcc from PyPI's wheels in the venv, for HW=gpu builds without a CUDA toolkit (scripts/cuda-toolkit.sh)
	scripts/cuda-toolkit.sh

$(VENV)/.cuda-build: $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[cuda-build]'
	touch $@

datasets: setup ## prepare datasets/ (.npy + meta.json with sha256); DOWNLOAD=1 also fetches non-bundled ones
	@scripts/install-fashion-mnist.sh
	$(PY) -m mlbench datasets prepare $(if $(DOWNLOAD),--download)

smoke: setup build datasets ## run the small matrices in both languages, print the comparison, write reports/smoke.html
	$(PY) -m mlbench run configs/smoke --hw $(HW) --out results/smoke --overwrite $(ARGS); status=$$?; \
	$(PY) -m mlbench report results/smoke --output reports/smoke.html || exit $$?; exit $$status

noise-floor: setup build datasets ## A/A: every smoke job against itself -> results/noise-floor-$(HW)/noise_floor.json (MATRICES=... to choose)
	$(PY) -m mlbench noise-floor $(or $(MATRICES),configs/smoke) --hw $(HW) --out results/noise-floor-$(HW) --overwrite $(ARGS)

bench-harness: setup datasets ## benchmark: a ridge fit timed by the harness against a steady direct loop
	$(PY) benchmarks/harness_vs_direct.py $(ARGS)

report: setup ## execute analysis.ipynb on results/$(RUN) -> reports/$(RUN).html
	$(PY) -m mlbench report results/$(RUN) --output reports/$(RUN).html

# Every matrix configs/<domain>/NAME.yaml (smoke aside) is `make bench-NAME HW=cpu|gpu`, no edit here.
BENCH_MATRICES := $(wildcard $(addsuffix /*.yaml,$(addprefix configs/,classical deep_learning llm rl)))

bench-%: setup build datasets ## the full grid of configs/<domain>/%.yaml -> results/%-$(HW) (e.g. bench-cnn, bench-svm)
	@matrix="$(filter %/$*.yaml,$(BENCH_MATRICES))"; \
	[ -n "$$matrix" ] || { echo "error: no matrix named $* (have: $(sort $(basename $(notdir $(BENCH_MATRICES)))))" >&2; exit 2; }; \
	$(PY) -m mlbench run $$matrix --hw $(HW) --out results/$*-$(HW) $(ARGS)

bench-classical: setup build datasets ## every classical task -> results/classical-$(HW)
	$(PY) -m mlbench run configs/classical --hw $(HW) --out results/classical-$(HW) $(ARGS)

bench-llm: setup build datasets ## every LLM matrix (GPT-2 generation, BERT-family encoders; 2 GB of random weights prepared on first use) -> results/llm-$(HW)
	$(PY) -m mlbench datasets prepare gpt2_small_prompts bert_base_texts distilbert_base_texts roberta_base_texts albert_base_texts
	$(PY) -m mlbench run configs/llm --hw $(HW) --out results/llm-$(HW) $(ARGS)

bench-rl: setup build datasets ## every RL matrix (environment stepping, DQN's cost and quality grids) -> results/rl-$(HW)
	$(PY) -m mlbench run configs/rl --hw $(HW) --out results/rl-$(HW) $(ARGS)

bench-rl_small: setup build datasets ## every RL algorithm x environment x side once, 3,000 steps, 3 seeds (coverage) -> results/rl_small-$(HW)
	$(PY) -m mlbench run configs/rl_small --hw $(HW) --out results/rl_small-$(HW) $(ARGS)

lab: setup ## open analysis.ipynb in JupyterLab on results/$(RUN) (LAB_ARGS='--no-browser --port 8899')
	@[ -e results/$(RUN) ] || { echo "error: results/$(RUN): no such run; run \`make smoke\` or pass RUN=NAME" >&2; exit 2; }
	MLBENCH_RESULTS=$(CURDIR)/results/$(RUN) $(VENV)/bin/jupyter lab analysis.ipynb $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

frameworks: setup ## phase 1: the framework catalog and which algorithms each runs (nothing runs)
	$(PY) -m mlbench frameworks

doctor: setup ## phase 3: check this machine for measuring (pass/warn/fail with remedies; HW=gpu for the GPU)
	$(PY) -m mlbench doctor --hw $(HW)

ecosystem: setup ## phase 6: maturity per framework, with results/$(RUN)'s coverage -> results/$(RUN)/ecosystem.json
	$(PY) -m mlbench ecosystem $(if $(wildcard results/$(RUN)),results/$(RUN))

compare: setup ## print the comparison table of results/$(RUN) in the terminal
	$(PY) -m mlbench compare results/$(RUN)

export: setup ## write results/$(RUN)/records.csv (FORMAT=parquet for Parquet)
	$(PY) -m mlbench export results/$(RUN) --format $(or $(FORMAT),csv)

test: test-python test-rust ## run pytest and cargo test

test-python: setup build
	$(PY) -m pytest

test-rust: setup
	cd rust && $(CARGO_ENV) cargo test --release --locked
	for crate in $(BURN_CRATES); do (cd rust/$$crate && cargo test --release --locked --target-dir ../target) || exit $$?; done

lint: setup ## ruff and cargo clippy -D warnings
	$(VENV)/bin/ruff check python tests benchmarks
	cd rust && $(CARGO_ENV) cargo clippy --release --all-targets --locked -- -D warnings
	for crate in $(BURN_CRATES); do (cd rust/$$crate && cargo clippy --release --all-targets --locked --target-dir ../target -- -D warnings) || exit $$?; done

check-burn-cuda: ## type-check burn's CUDA arms offline (DOCS_RS=1: cubecl-llvm skips its downloaded LLVM; check links nothing)
	for crate in $(BURN_CRATES); do (cd rust/$$crate && DOCS_RS=1 cargo clippy --release --all-targets --locked --features cuda --target-dir ../target -- -D warnings) || exit $$?; done

clean: ## remove results, reports and the Rust build
	rm -rf results reports rust/target

distclean: clean ## also remove .venv and prepared datasets
	rm -rf $(VENV) $(filter-out datasets/README.md,$(wildcard datasets/*))
