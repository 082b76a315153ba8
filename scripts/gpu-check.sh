#!/usr/bin/env bash
# The CNN smoke and parity checks on one GPU, in under 10 minutes, printing the comparison table.
#
# Meant for a GPU machine with Python and torch (CUDA) installed but possibly no Rust toolchain:
# build the Rust arms elsewhere with `make build HW=gpu` (candle and burn with their `cuda`
# features) and bring rust/target/release/{cnn,cnn-burn} along. Uses .venv/bin/python when there
# is one, else python3. Missing pure-Python packages can be installed from wheels in $WHEELS.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
if [ -n "${WHEELS:-}" ]; then "$PY" -m pip install --quiet --no-index --find-links "$WHEELS" -e '.[stats]' nvidia-ml-py || true; fi
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
echo "== device"; nvidia-smi -L || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'devices', torch.cuda.device_count())"
for binary in cnn cnn-burn; do
    [ -x "rust/target/release/$binary" ] || { echo "gpu-check: rust/target/release/$binary is missing (make build HW=gpu)" >&2; exit 2; }
done
echo "== datasets"; "$PY" -m mlbench datasets prepare fashion_mnist_2k synthetic_images synthetic_images_rgb
echo "== CNN smoke on the GPU"
start=$(date +%s)
"$PY" -m mlbench run configs/smoke/cnn.yaml --hw gpu --out results/gpu-check --overwrite --no-host-watch || status=$?
echo "smoke wall time: $(( $(date +%s) - start )) s"
"$PY" - <<'PYEOF'
import collections, json
devices = collections.Counter((r["framework"], r["device"], r["status"]) for r in map(json.loads, open("results/gpu-check/records.jsonl")))
for (framework, device, status), n in sorted(devices.items()):
    print(f"{framework:<8} device={device:<5} {status}: {n}")
print("NVML and framework figures of the last measured repetition per framework:")
last = {r["framework"]: r for r in map(json.loads, open("results/gpu-check/records.jsonl"))
        if r["status"] == "ok" and not r["warmup"]}
for framework, r in sorted(last.items()):
    gpu = {k: v for k, v in r["resources"].items() if k.startswith("gpu_")}
    print(f"{framework:<8} {r['algorithm']:<10} {gpu}")
PYEOF
echo "== parity (PyTorch vs tch, candle, burn) on the CPU arms of the same binaries"
"$PY" -m pytest -q tests/test_parity_cnn.py -p no:cacheprovider || status=$?
exit "${status:-0}"
