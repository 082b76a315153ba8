#!/usr/bin/env bash
# The deep-learning and language-model checks on one GPU in a few minutes: does tch do the same
# training as PyTorch on CUDA (parity), and what do both measure on the full Fashion-MNIST
# (configs/gpu-check/cnn.yaml; read row by row: configs/gpu-check/rnn.yaml); do transformers and tch
# generate the same greedy GPT-2 small tokens and compute the same BERT-base and MiniLM outputs, and
# how fast (configs/gpu-check/text_generation.yaml, text_encoding.yaml; `mlbench compare` judges them).
#
# Meant for a GPU machine with Python and a CUDA torch 2.11.0 but possibly no Rust toolchain. Build
# the binaries elsewhere for a CPU both machines have: `make build TARGET_CPU=x86-64-v3` (the default
# target-cpu=native may use instructions the GPU machine's CPU lacks), bring
# rust/target/x86-64-v3/release/{cnn,rnn,text_generation-tch,text_encoding-tch} along and set
# MLBENCH_RUST_TARGET=rust/target/x86-64-v3/release.
# The runner points the binary at this Python's torch/lib, so tch loads the same libtorch as the
# PyTorch side. candle runs too where the binaries are its `cuda` build: `make build HW=gpu
# BURN_CUDA=0 TARGET_CPU=x86-64-v3` makes one offline (nvcc from PyPI's wheels, make cuda-toolkit;
# README, "GPU"), then also bring text_generation and text_encoding (each ~58 MB with candle's
# kernels, ~8 MB xz-compressed: carry a .tar.xz and unpack it). burn has no CUDA build offline.
#
# Variables: PY (default .venv/bin/python, else python3), MLBENCH_RUST_TARGET (rust/target/release),
# HW (gpu), MATRICES (configs/gpu-check/{cnn,rnn,text_generation,text_encoding}.yaml), FRAMEWORKS
# (pytorch,transformers,tch, and candle with a cuda build), OUT_DIR (results/gpu-check), PARITY_K (a pytest -k
# filter on the parity cases), MLBENCH_FASHION_MNIST_DIR (the idx .gz files, when not in
# /usr/share/datasets/fashion-mnist). Exit status: the first failing step's.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
HW=${HW:-gpu}
MATRICES=${MATRICES:-configs/gpu-check/cnn.yaml configs/gpu-check/rnn.yaml configs/gpu-check/text_generation.yaml configs/gpu-check/text_encoding.yaml}
BIN_DIR=${MLBENCH_RUST_TARGET:-rust/target/release}
BINARIES="cnn rnn text_generation-tch text_encoding-tch"
if readelf -d "$BIN_DIR/cnn" 2>/dev/null | grep -q '\[libcuda\.so\.1\]'; then
    FRAMEWORKS=${FRAMEWORKS:-pytorch,transformers,tch,candle}
    BINARIES="$BINARIES text_generation text_encoding"
fi
FRAMEWORKS=${FRAMEWORKS:-pytorch,transformers,tch}
OUT_DIR=${OUT_DIR:-results/gpu-check}
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
step() { echo; echo "== $1 ($(date +%T))"; }
fail() { status=${status:-$1}; }

step device
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PY" - <<'PYEOF'
import torch
print(f"torch {torch.__version__} cuda {torch.version.cuda} cudnn {torch.backends.cudnn.version()} "
      f"devices {torch.cuda.device_count()}; libtorch's defaults: cudnn.allow_tf32 {torch.backends.cudnn.allow_tf32} "
      f"matmul.allow_tf32 {torch.backends.cuda.matmul.allow_tf32} cudnn.benchmark {torch.backends.cudnn.benchmark} "
      f"(each job sets its own: env.kernels)")
PYEOF
echo "frameworks: $FRAMEWORKS"
for name in $BINARIES; do
    BIN=$BIN_DIR/$name
    [ -x "$BIN" ] || { echo "gpu-check: $BIN is missing (make build; TARGET_CPU=x86-64-v3 for another machine)" >&2; exit 2; }
done

step "parity: tch against PyTorch on CUDA (same weights, same batches)"
mkdir -p "$OUT_DIR.logs"
"$PY" -m pytest -q -p no:cacheprovider -rP -m gpu ${PARITY_K:+-k "$PARITY_K"} tests/test_parity_cnn.py tests/test_parity_rnn.py >"$OUT_DIR.logs/parity.log" 2>&1 || fail 1
grep -E "on CUDA:|passed|failed|skipped|Error|differ|assert" "$OUT_DIR.logs/parity.log" | grep -v "^tests/" | head -40

step "datasets"
"$PY" -m mlbench datasets prepare $("$PY" - $MATRICES <<'PYEOF'
import sys, yaml
print(" ".join(sorted({name for path in sys.argv[1:] for name in yaml.safe_load(open(path))["datasets"]})))
PYEOF
) || exit 2

step "benchmark: $MATRICES, $FRAMEWORKS, --hw $HW"
"$PY" -m mlbench run $MATRICES --hw "$HW" --frameworks "$FRAMEWORKS" --out "$OUT_DIR" --overwrite || fail $?

step "records"
"$PY" - "$OUT_DIR" <<'PYEOF'
import collections, json, statistics, sys
records = [json.loads(line) for line in open(f"{sys.argv[1]}/records.jsonl")]
print(collections.Counter((r["framework"], r["device"], r["status"]) for r in records))
for r in records:
    if r["status"] != "ok":
        print(f"{r['task']} {r['algorithm']} {r['framework']} {r['status']}: {(r.get('error') or '')[:300]}")
groups = collections.defaultdict(list)
for r in records:
    if r["status"] == "ok" and not r["warmup"]:
        h = r["hyperparameters"]
        switches = ",".join(k for k in ("cudnn_benchmark", "tf32") if h.get(k)) or "-"
        shape = "/".join(str(h[k]) for k in ("batch_size", "prompt_length", "sequence_length") if k in h)
        groups[(r["task"], r["algorithm"], r["dataset"], switches + " " + shape, r["framework"])].append(r)
PHASES = {"cnn": ("train", "epoch_first", "evaluate", "infer_b1"), "rnn": ("train", "epoch_first", "evaluate"),
          "text_generation": ("prefill", "decode_p50", "decode", "score"), "text_encoding": ("forward",)}
for (task, algorithm, dataset, setting, framework), rs in sorted(groups.items()):
    medians = " ".join(f"{phase} {statistics.median(r['timings_s'][phase] for r in rs) * 1e3:.3f}"
                       for phase in PHASES.get(task, ()) if phase in rs[0]["timings_s"])
    accuracy = [round(r["metrics"]["accuracy"], 4) for r in rs if "accuracy" in r.get("metrics", {})]
    gpu = {k: v for k, v in rs[-1]["resources"].items() if k.startswith("gpu_")}
    print(f"{task:<15} {algorithm:<14} {dataset:<20} {setting:<24} {framework:<12} n={len(rs)} median ms: {medians}"
          f"{'; accuracy ' + str(accuracy) if accuracy else ''}; last repetition {gpu}; kernels {rs[-1]['env'].get('kernels')}")
PYEOF

step "judged: Rust against Python (ratio of medians with its CI, quality, agreement)"
"$PY" -m mlbench compare "$OUT_DIR" || fail $?
exit "${status:-0}"
