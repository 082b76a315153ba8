"""Does the harness time a fit as a user's steady loop does? (issue: "a one-sided memory bias")

Measures one scikit-learn ridge fit two ways on the same prepared dataset and thread count:
1. through the harness: `mlbench run` of one task process, with its warm-ups, calibrated inner
   loops and allocator settings (the per-call fit times of its measured repetitions);
2. in a steady direct loop: a fresh Python process that loads the split once and fits
   `Ridge(solver="cholesky")` back to back (no harness, default allocator), one time per fit.
The same code's speed differs by up to ~30% from one process to the next on a small VM, so the two
take turns for several rounds (H D D H ...) and each side's number is the median of its
per-process medians. It prints every round, both medians and their ratio; the harness is
faithful when the ratio is within 10%.

    .venv/bin/python benchmarks/harness_vs_direct.py [--dataset synthetic_linear] [--alpha 1.0]

A benchmark, not a test: it measures this machine and asserts nothing (exit 0 either way).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]

DIRECT_LOOP = """
import sys, time, json
import numpy as np
from threadpoolctl import threadpool_limits
from sklearn.linear_model import Ridge
folder, alpha, fits = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
X, y = np.load(folder + "/X_train.npy"), np.load(folder + "/y_train.npy")
times = []
with threadpool_limits(limits=1):
    for _ in range(fits):
        model = Ridge(alpha=alpha, solver="cholesky")
        start = time.perf_counter()
        model.fit(X, y)
        times.append(time.perf_counter() - start)
print(json.dumps(times[fits // 10:]))  # the first tenth warms up
"""


def harness_times(dataset: str, alpha: float, repetitions: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        matrix = Path(tmp) / "ridge.yaml"
        matrix.write_text(yaml.safe_dump({"task": "regression", "repetitions": repetitions, "processes": 1,
                                          "datasets": [dataset], "algorithms": {"ridge": {"alpha": alpha}}}))
        out = Path(tmp) / "run"
        subprocess.run([sys.executable, "-m", "mlbench", "run", str(matrix), "--langs", "python", "--out", str(out),
                        "--no-table", "--noise-floor", "none"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    return [r["timings_s"]["fit"] for r in records if r["status"] == "ok" and not r["warmup"]]


def direct_times(dataset: str, alpha: float, fits: int) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"} | {"OMP_NUM_THREADS": "1",
                                                                         "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", DIRECT_LOOP, str(ROOT / "datasets" / dataset), str(alpha),
                             str(fits)], check=True, capture_output=True, text=True, env=env)
    return json.loads(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="synthetic_linear")
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=8, help="processes per side, taking turns")
    parser.add_argument("--repetitions", type=int, default=10, help="measured repetitions per harness process")
    parser.add_argument("--fits", type=int, default=300, help="fits per direct-loop process")
    args = parser.parse_args()
    if not (ROOT / "datasets" / args.dataset / "meta.json").is_file():
        print(f"datasets/{args.dataset} is not prepared: run `make datasets` first", file=sys.stderr)
        return 2
    print(f"ridge fit on {args.dataset}, scikit-learn, 1 thread; per-process medians in ms:")
    sides: dict[str, list[float]] = {"harness": [], "direct": []}
    for round_ in range(args.rounds):
        for side in (("harness", "direct") if round_ % 2 == 0 else ("direct", "harness")):
            times = (harness_times(args.dataset, args.alpha, args.repetitions) if side == "harness"
                     else direct_times(args.dataset, args.alpha, args.fits))
            sides[side].append(float(np.median(times)))
        print(f"  round {round_}: harness {sides['harness'][-1] * 1e3:.3f}, direct {sides['direct'][-1] * 1e3:.3f}")
    harness, direct = np.median(sides["harness"]), np.median(sides["direct"])
    print(f"  harness (median per-call fit time):  {harness * 1e3:.3f} ms")
    print(f"  steady direct loop (median fit time): {direct * 1e3:.3f} ms")
    print(f"  harness / direct = {harness / direct:.3f} ({'within' if abs(harness / direct - 1) <= 0.1 else 'outside'}"
          " the 10% the harness promises)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
