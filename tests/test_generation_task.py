"""The text_generation task (the `generate` protocol): transformers and the Rust twins (GPT-2 on
candle-nn and on tch) run through `mlbench run` on the tiny GPT-2 prompts set.

All three sides generate the same greedy tokens at batch 1 and 3, and those are the tokens transformers'
own `generate` gives, computed here outside either harness; both score the held-out sequence as
PyTorch's cross-entropy does (1e-5); the judge gives each side the same mean NLL and perplexity and the
comparison an agreement of 1 with no quality mismatch. The timings hold together (decode is the sum
of the steps, each percentile numpy's of the steps, on both sides) and the counts are tokens. Bad
input, in a matrix or a job file, to either side: one line naming file and field, exit 2, nothing
written; a corrupt model file and a config that does not fit the set too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import ROOT, load_run, rust_binary
from mlbench import datasets as ds
from mlbench.yamlio import dump_yaml
from rl_checks import quiet_run
from test_bad_input import GARBLED_SAFETENSORS, assert_bad_matrix, assert_program_refuses, changed_copy

torch = pytest.importorskip("torch", reason="the dl extra (torch) is not installed")
pytest.importorskip("transformers", reason="the llm extra (transformers) is not installed")

SET = "gpt2_tiny_prompts"
BATCHES = [1, 3]
LENGTH, NEW = 12, 16
SIDES_RUN = ["candle", "tch", "transformers"]
SAMPLE = {"batch_size": 3, "prompt_length": LENGTH, "max_new_tokens": NEW, "temperature": 0.8, "top_k": 20,
          "top_p": 0.9, "repetition_penalty": 1.3}


@pytest.fixture(scope="module")
def prompts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("prompts")
    ds.prepare([SET], folder, log=lambda _: None)
    ds.write("iris", ds.BUILDERS["iris"](False), folder)  # not a prompts set (the bad-input cases)
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, prompts_dir: Path) -> Path:
    rust_binary("text_generation"), rust_binary("text_generation-tch")
    return quiet_run(tmp_path_factory.mktemp("text_generation"), prompts_dir, {
        "task": "text_generation", "repetitions": 2, "processes": 1, "warmup": 1, "datasets": [SET],
        "algorithms": {"greedy": {"batch_size": BATCHES, "prompt_length": LENGTH, "max_new_tokens": NEW},
                       "sample": SAMPLE}})


def measured(run: Path, algorithm: str = "greedy") -> list[dict[str, Any]]:
    return [r for r in load_run(run) if not r["warmup"] and r["algorithm"] == algorithm]


def outputs(run: Path, record: dict[str, Any]) -> dict[str, np.ndarray]:
    return {name: np.load(run / path) for name, path in record["artifacts"].items()}


def test_every_job_ran_and_its_timings_hold_together(run: Path) -> None:
    records = measured(run)
    assert len(records) == len(BATCHES) * len(SIDES_RUN) * 2
    for r in records:
        assert r["status"] == "ok", r["error"]
        batch = r["hyperparameters"]["batch_size"]
        assert r["counts"] == {"prefill": batch * LENGTH, "decode": batch * (NEW - 1), "generate": batch * NEW,
                               "score": 127}
        timings, steps = r["timings_s"], outputs(run, r)["decode_steps"]
        assert len(steps) == NEW - 1 and np.all(steps > 0)
        assert timings["decode"] == pytest.approx(steps.sum(), rel=1e-9)
        assert timings["generate"] == pytest.approx(timings["prefill"] + timings["decode"], rel=1e-9)
        for q in (50, 90, 99):  # the Rust side's percentile is numpy's
            assert timings[f"decode_p{q}"] == pytest.approx(np.percentile(steps, q), rel=1e-9), r["language"]
        for phase, count in r["counts"].items():
            assert r["throughput"][f"{phase}_samples_per_s"] == pytest.approx(count / timings[phase])


def reference(prompts_dir: Path, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """transformers' own greedy `generate` and PyTorch's cross-entropy of the held-out sequence."""
    from transformers import GenerationConfig, GPT2LMHeadModel

    data = ds.load_prompts(SET, prompts_dir)
    model = GPT2LMHeadModel.from_pretrained(str(data.folder), local_files_only=True).eval()
    model.generation_config = GenerationConfig(max_new_tokens=NEW, do_sample=False, use_cache=True, pad_token_id=0)
    prompts = torch.from_numpy(data.prompts[:batch, :LENGTH])
    heldout = torch.from_numpy(data.heldout)
    with torch.no_grad():
        tokens = model.generate(prompts)[:, LENGTH:].numpy()
        logits = model(input_ids=heldout[None]).logits[0, :-1]
        nll = torch.nn.functional.cross_entropy(logits, heldout[1:], reduction="none").numpy()
    return tokens, nll.astype(np.float64)


@pytest.mark.parametrize("batch", BATCHES)
def test_both_sides_generate_the_reference_tokens_and_nll(run: Path, prompts_dir: Path, batch: int) -> None:
    tokens, nll = reference(prompts_dir, batch)
    assert len(set(tokens[0].tolist())) > 1, "a real sequence to agree on, not one token repeated"
    for r in measured(run):
        if r["hyperparameters"]["batch_size"] != batch:
            continue
        got = outputs(run, r)
        np.testing.assert_array_equal(got["tokens"], tokens, err_msg=r["language"])
        np.testing.assert_allclose(got["nll"], nll, rtol=1e-5, atol=1e-5, err_msg=r["language"])
        assert r["metrics"]["mean_nll"] == pytest.approx(float(np.mean(nll)), rel=1e-6)
        assert r["metrics"]["perplexity"] == pytest.approx(float(np.exp(np.mean(nll))), rel=1e-5)


def test_the_comparison_agrees_and_sees_the_same_quality(run: Path) -> None:
    from mlbench import stats

    table, loaded = stats.load([run])
    compared = stats.compare(table, loaded, phase="generate")
    assert len(compared) == (len(BATCHES) + 1) * 2  # candle and tch, each against transformers
    greedy = compared["algorithm"] == "greedy"
    assert (compared.loc[greedy, "agreement"] == 1.0).all()
    assert compared.loc[~greedy, "agreement"].isna().all()  # sampled tokens: each side's own generator
    assert not compared["quality_mismatch"].any()
    assert (compared["quality_metric"] == "mean_nll").all()


def test_the_report_table_of_language_models(run: Path) -> None:
    from mlbench import stats

    table, loaded = stats.load([run])
    llm = stats.language_models(table, stats.compare(table, loaded))
    llm = llm[llm["algorithm"] == "greedy"]
    assert sorted(zip(llm["framework"], llm["batch"], strict=True)) == \
        [(framework, batch) for framework in SIDES_RUN for batch in BATCHES]
    for _, r in llm.iterrows():
        side = table[(table["framework"] == r["framework"]) & (table["algorithm"] == "greedy")
                     & table["params"].str.contains(f'"batch_size": {r["batch"]}')]
        assert r["repetitions"] == 2
        assert r["TTFT ms"] == pytest.approx(1e3 * side["time_prefill"].median())
        assert r["decode tokens/s"] == pytest.approx(side["throughput_decode_samples_per_s"].median())
        assert (r["framework"] != "transformers") == (r["token agreement"] == 1.0)
        assert (r["framework"] != "transformers") == (r["greedy BLEU vs Python"] == pytest.approx(1.0))


def test_bleu_falls_when_one_token_differs() -> None:
    from mlbench.stats import token_bleu

    pytest.importorskip("sacrebleu", reason="the llm extra (sacrebleu) is not installed")
    python = np.arange(40).reshape(2, 20)
    changed = python.copy()
    changed[1, 10] = 99
    assert token_bleu(python, python) == pytest.approx(1.0)
    assert 0.5 < token_bleu(python, changed) < 0.95
    assert token_bleu(python, python[:, ::-1]) < 0.05


def processed_scores(model: Any, sequence: np.ndarray) -> torch.Tensor:
    """transformers' own logits processors (repetition penalty, temperature, top-k, top-p), in
    `generate`'s order, on the next-token logits after `sequence` (rows x tokens): -inf where a token
    may not be drawn."""
    from transformers import (
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    ids = torch.from_numpy(sequence)
    with torch.no_grad():
        scores = model(input_ids=ids).logits[:, -1]
    for processor in (RepetitionPenaltyLogitsProcessor(SAMPLE["repetition_penalty"]),
                      TemperatureLogitsWarper(SAMPLE["temperature"]), TopKLogitsWarper(SAMPLE["top_k"]),
                      TopPLogitsWarper(SAMPLE["top_p"])):
        scores = processor(ids, scores)
    return scores


def test_every_side_samples_only_what_transformers_processors_allow(run: Path, prompts_dir: Path) -> None:
    from transformers import GPT2LMHeadModel

    data = ds.load_prompts(SET, prompts_dir)
    model = GPT2LMHeadModel.from_pretrained(str(data.folder), local_files_only=True).eval()
    prompts = data.prompts[:SAMPLE["batch_size"], :LENGTH]
    _, nll = reference(prompts_dir, 1)
    seen: dict[str, list[np.ndarray]] = {}
    for r in measured(run, "sample"):
        got = outputs(run, r)
        tokens = got["tokens"]
        assert tokens.shape == (SAMPLE["batch_size"], NEW)
        np.testing.assert_allclose(got["nll"], nll, rtol=1e-5, atol=1e-5)  # sampling leaves scoring alone
        for step in range(NEW):
            allowed = torch.isfinite(processed_scores(model, np.concatenate([prompts, tokens[:, :step]], axis=1)))
            assert allowed[torch.arange(len(tokens)), torch.from_numpy(tokens[:, step])].all(), (r["framework"], step)
        seen.setdefault(r["framework"], []).append(tokens)
    for framework, draws in seen.items():  # repetitions have seeds of their own
        assert len(draws) == 2 and not np.array_equal(draws[0], draws[1]), framework


def test_the_judge_refuses_tokens_outside_the_vocabulary() -> None:
    from mlbench.evaluate import EvaluationError, evaluate_generation

    nll = np.array([1.0, 2.0])
    assert evaluate_generation({"tokens": np.array([[1, 2]]), "nll": nll}, {"vocab_size": 10})["mean_nll"] == 1.5
    with pytest.raises(EvaluationError, match=r"0\.\.9"):
        evaluate_generation({"tokens": np.array([[1, 10]]), "nll": nll}, {"vocab_size": 10})
    with pytest.raises(EvaluationError, match="NaN"):
        evaluate_generation({"tokens": np.array([[1, 2]]), "nll": np.array([np.nan])}, {"vocab_size": 10})


GOOD: dict[str, Any] = {"task": "text_generation", "repetitions": 1, "processes": 1, "datasets": [SET],
                        "algorithms": {"greedy": {"batch_size": 1, "prompt_length": 8, "max_new_tokens": 4}}}
MATRIX_CASES = {
    "batch above the prompts": ({"batch_size": 17}, "batch_size: 17 is above the 16 prompts"),
    "prompt above the set's": ({"prompt_length": 65}, "prompt_length: 65 is above the set's prompts of 64"),
    "past the positions": ({"prompt_length": 64, "max_new_tokens": 65}, "exceed the model's 128 positions"),
    "one new token": ({"max_new_tokens": 1}, "max_new_tokens: 1 is less than the minimum of 2"),
    "batch 0": ({"batch_size": 0}, "batch_size: 0 is less than the minimum of 1"),
}


@pytest.mark.parametrize("case", list(MATRIX_CASES))
def test_bad_generation_matrix(case: str, tmp_path: Path, prompts_dir: Path) -> None:
    change, message = MATRIX_CASES[case]
    matrix = GOOD | {"algorithms": {"greedy": GOOD["algorithms"]["greedy"] | change}}
    assert_bad_matrix(matrix, message, tmp_path, prompts_dir)


def test_a_matrix_on_a_set_that_is_not_prompts(tmp_path: Path, prompts_dir: Path) -> None:
    assert_bad_matrix(GOOD | {"datasets": ["iris"]}, "datasets: unknown dataset 'iris' for task text_generation",
                      tmp_path, prompts_dir)


def job_file(folder: Path, datasets: Path, language: str, framework: str, dataset: str = SET,
             **params: Any) -> Path:
    job = {"schema_version": 3, "job_id": "0123456789abcdef", "run": "bad", "task": "text_generation",
           "domain": "llm", "language": language, "framework": framework, "algorithm": "greedy", "dataset": dataset,
           "datasets_dir": str(datasets), "hyperparameters": {"batch_size": 1, "prompt_length": 8,
                                                               "max_new_tokens": 4} | params,
           "hardware_profile": "cpu", "device": "cpu", "threads": 1, "precision": "float32", "repetitions": 1,
           "warmup": 0, "seed": 1, "timeout_s": 60, "predictions_dir": str(folder / "predictions"),
           "min_sample_s": 0.0, "processes": 1}
    path = folder / f"{framework}.yaml"
    path.write_text(dump_yaml(job))
    return path


def broken_set(prompts_dir: Path, folder: Path, change: str) -> Path:
    """A copy of the set with one file changed: `weights` garbles model.safetensors, `vocabulary`
    gives config.json another vocab_size."""
    def apply(copy: Path) -> None:
        if change == "weights":
            (copy / "model.safetensors").write_bytes(GARBLED_SAFETENSORS)
        else:
            config = json.loads((copy / "config.json").read_text())
            (copy / "config.json").write_text(json.dumps(config | {"vocab_size": 999}))

    return changed_copy(prompts_dir, SET, folder, apply)


SIDES = {"transformers": ("python", [sys.executable, str(ROOT / "python/tasks/llm/text_generation.py")]),
         "candle": ("rust", "text_generation"), "tch": ("rust", "text_generation-tch")}
PROGRAM_CASES = {
    "batch above the prompts": ({"batch_size": 17}, None, "batch_size: 17 is above the 16 prompts"),
    "past the positions": ({"prompt_length": 64, "max_new_tokens": 65}, None, "exceed the model's 128 positions"),
    "not a prompts set": ({}, "iris", "is not a dataset of task text_generation"),
    "corrupt weights": ({}, "weights", "model.safetensors"),
    "a config of another vocabulary": ({}, "vocabulary", "vocab_size 999 and n_positions 128 do not match"),
}


@pytest.mark.parametrize("framework", list(SIDES))
@pytest.mark.parametrize("case", list(PROGRAM_CASES))
def test_generation_program_refuses_bad_job(framework: str, case: str, tmp_path: Path, prompts_dir: Path) -> None:
    params, change, message = PROGRAM_CASES[case]
    language, command = SIDES[framework]
    datasets, dataset = prompts_dir, SET
    if change == "iris":
        dataset = "iris"
    elif change is not None:
        datasets = broken_set(prompts_dir, tmp_path, change)
    config = job_file(tmp_path, datasets, language, framework, dataset, **params)
    assert_program_refuses([str(rust_binary(command))] if isinstance(command, str) else command, config, message)


@pytest.mark.parametrize("framework", list(SIDES))
def test_a_cuda_job_without_a_gpu_is_refused(framework: str, tmp_path: Path, prompts_dir: Path) -> None:
    """The GPU path on a machine without one (or a candle built without `cuda`): one line naming the
    job file and its device, exit 2, nothing written."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    language, command = SIDES[framework]
    config = job_file(tmp_path, prompts_dir, language, framework)
    config.write_text(config.read_text().replace("device: cpu", "device: cuda"))
    assert_program_refuses([str(rust_binary(command))] if isinstance(command, str) else command, config,
                           "device: cuda: ")
