#!/usr/bin/env bash
# The CNN and RNN checks on one GPU in a few minutes: does tch do the same training as PyTorch on
# CUDA (parity), and what do both measure on the full Fashion-MNIST (configs/gpu-check/cnn.yaml; read
# row by row: configs/gpu-check/rnn.yaml).
#
# Meant for a GPU machine with Python and a CUDA torch 2.11.0 but possibly no Rust toolchain. Build
# the binaries elsewhere for a CPU both machines have: `make build TARGET_CPU=x86-64-v3` (the default
# target-cpu=native may use instructions the GPU machine's CPU lacks), bring
# rust/target/x86-64-v3/release/{cnn,rnn} along and set MLBENCH_RUST_TARGET=rust/target/x86-64-v3/release.
# The runner points the binary at this Python's torch/lib, so tch loads the same libtorch as the
# PyTorch side. candle and burn have no CUDA build from an offline machine (README, "GPU"), so only
# PyTorch and tch run.
#
# Variables: PY (default .venv/bin/python, else python3), MLBENCH_RUST_TARGET (rust/target/release),
# HW (gpu), MATRICES (configs/gpu-check/cnn.yaml configs/gpu-check/rnn.yaml), OUT_DIR (results/gpu-check), PARITY_K (a pytest -k
# filter on the parity cases), MLBENCH_FASHION_MNIST_DIR (the idx .gz files, when not in
# /usr/share/datasets/fashion-mnist). Exit status: the first failing step's.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
HW=${HW:-gpu}
MATRICES=${MATRICES:-configs/gpu-check/cnn.yaml configs/gpu-check/rnn.yaml}
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
for name in cnn rnn; do
    BIN=${MLBENCH_RUST_TARGET:-rust/target/release}/$name
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

step "benchmark: $MATRICES, PyTorch against tch, --hw $HW"
"$PY" -m mlbench run $MATRICES --hw "$HW" --frameworks pytorch,tch --out "$OUT_DIR" --overwrite || fail $?

step "records"
"$PY" - "$OUT_DIR" <<'PYEOF'
import collections, json, statistics, sys
records = [json.loads(line) for line in open(f"{sys.argv[1]}/records.jsonl")]
print(collections.Counter((r["framework"], r["device"], r["status"]) for r in records))
groups = collections.defaultdict(list)
for r in records:
    if r["status"] == "ok" and not r["warmup"]:
        switches = ",".join(k for k in ("cudnn_benchmark", "tf32") if r["hyperparameters"].get(k)) or "-"
        groups[(r["task"], r["algorithm"], switches, r["framework"])].append(r)
for (task, algorithm, switches, framework), rs in sorted(groups.items()):
    median = lambda phase: statistics.median(r["timings_s"][phase] for r in rs)  # noqa: E731
    accuracy = [round(r["metrics"]["accuracy"], 4) for r in rs]
    gpu = {k: v for k, v in rs[-1]["resources"].items() if k.startswith("gpu_")}
    print(f"{task:<4} {algorithm:<10} {switches:<20} {framework:<8} n={len(rs)} median s: train {median('train'):.3f} "
          f"epoch_first {median('epoch_first'):.3f} evaluate {median('evaluate'):.4f} "
          f"infer_b1 {median('infer_b1') * 1e3:.3f} ms; accuracy {accuracy}; last repetition {gpu}; "
          f"kernels {rs[-1]['env'].get('kernels')}")
PYEOF
exit "${status:-0}"
