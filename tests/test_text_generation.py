"""GPT-2 greedy generation: transformers (python/tasks/llm/text_generation.py) against the candle twin
(rust/text_generation, GPT-2 written on candle-nn), on the same seeded tiny GPT-2 saved once as
safetensors and the same pre-tokenised prompts.

The twin's logits equal transformers' (1e-4 relative to the largest); the greedy tokens are
identical, at batch 1 and 4; the project's loop with the KV cache gives what transformers' own
`generate` gives and what decoding without a cache gives (so the cache is right, not merely the
same on both sides); a second seed gives other tokens (the negative control). The byte-level BPE
trained on the shipped corpus has the model's vocabulary, gives the same ids in Python's
`tokenizers` and the Rust crate, and decodes back to the text. Bad input: one line, exit 2,
nothing written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, rust_binary
from test_bad_input import assert_usage_error

torch = pytest.importorskip("torch", reason="the dl extra (torch) is not installed")
pytest.importorskip("transformers", reason="the llm extra (transformers) is not installed")
sys.path.insert(0, str(ROOT / "python" / "tasks" / "llm"))
import text_generation  # noqa: E402

from mlbench import prompts as prompt_sets  # noqa: E402

NEW_TOKENS = 20


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return prompt_sets.build("tiny", seed=0, folder=tmp_path_factory.mktemp("gpt2-tiny"))


def prompts_file(folder: Path, batch: int, length: int, seed: int = 1) -> Path:
    path = folder / f"prompts-{batch}x{length}.npy"
    np.save(path, np.random.default_rng(seed).integers(0, prompt_sets.CONFIGS["tiny"]["vocab_size"],
                                                       size=(batch, length)))
    return path


def twin(command: str, model: Path, prompts: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(rust_binary("text_generation")), command, "--model-dir", str(model), "--prompts",
                           str(prompts), "--out", str(out), *extra], capture_output=True, text=True, timeout=300)


def test_the_twins_logits_are_transformers(model_dir: Path, tmp_path: Path) -> None:
    prompts = prompts_file(tmp_path, 3, 16)
    result = twin("logits", model_dir, prompts, tmp_path / "rust")
    assert result.returncode == 0, result.stderr
    expected = text_generation.logits(text_generation.load(model_dir), np.load(prompts))
    got = np.load(tmp_path / "rust" / "logits.npy")
    assert got.shape == expected.shape == (3, 16, 1000)
    assert np.max(np.abs(got - expected)) <= 1e-4 * np.max(np.abs(expected))


@pytest.mark.parametrize("batch", [1, 4])
def test_greedy_tokens_are_identical(model_dir: Path, tmp_path: Path, batch: int) -> None:
    prompts = prompts_file(tmp_path, batch, 8)
    model = text_generation.load(model_dir)
    generated = text_generation.generate(model, np.load(prompts), NEW_TOKENS)
    expected, decode_s = generated.tokens, generated.decode_s
    assert generated.prefill_s > 0
    result = twin("generate", model_dir, prompts, tmp_path / "rust", "--new-tokens", str(NEW_TOKENS))
    assert result.returncode == 0, result.stderr
    got = np.load(tmp_path / "rust" / "ids.npy")
    assert got.shape == (batch, NEW_TOKENS) and got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)
    timings = json.loads((tmp_path / "rust" / "timings.json").read_text())
    assert timings["prefill_s"] > 0 and len(timings["decode_s"]) == NEW_TOKENS - 1 == len(decode_s)
    assert len(set(expected[0].tolist())) > 1  # not one token repeated: a real sequence to agree on


def test_the_cached_loop_is_transformers_generate_and_the_uncached_loop(model_dir: Path, tmp_path: Path) -> None:
    from transformers import GenerationConfig

    prompts = np.load(prompts_file(tmp_path, 2, 8, seed=3))
    model = text_generation.load(model_dir)
    ours = text_generation.generate(model, prompts, NEW_TOKENS).tokens
    with torch.no_grad():
        # no end-of-text stop (and so no suppression of it): exactly NEW_TOKENS greedy tokens, as our loop
        model.generation_config = GenerationConfig(max_new_tokens=NEW_TOKENS, do_sample=False, use_cache=True,
                                                   pad_token_id=0)
        library = model.generate(torch.from_numpy(prompts))
    np.testing.assert_array_equal(ours, library[:, prompts.shape[1]:].numpy())
    sequence = prompts.copy()
    for _ in range(NEW_TOKENS):  # no cache: the whole sequence each step
        nxt = text_generation.logits(model, sequence)[:, -1].argmax(axis=-1)
        sequence = np.concatenate([sequence, nxt[:, None]], axis=1)
    np.testing.assert_array_equal(ours, sequence[:, prompts.shape[1]:])


def test_another_seed_generates_other_tokens(model_dir: Path, tmp_path: Path) -> None:
    other = prompt_sets.build("tiny", seed=1, folder=tmp_path / "other")
    prompts = prompts_file(tmp_path, 1, 8)
    for folder, name in [(model_dir, "a"), (other, "b")]:
        assert twin("generate", folder, prompts, tmp_path / name, "--new-tokens", str(NEW_TOKENS)).returncode == 0
    assert not np.array_equal(np.load(tmp_path / "a" / "ids.npy"), np.load(tmp_path / "b" / "ids.npy"))


TEXTS = ["Licensed under the Apache License, Version 2.0 (the \"License\");",
         "  two leading spaces, a tab\tand digits 0123456789",
         "naïve café, Straße, 東京, and an emoji 🚀 outside the corpus"]


def test_the_tokenizer_is_the_same_on_both_sides(model_dir: Path, tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    assert tokenizer.get_vocab_size() == prompt_sets.CONFIGS["tiny"]["vocab_size"]
    config = json.loads((model_dir / "config.json").read_text())
    assert config["eos_token_id"] == tokenizer.token_to_id(prompt_sets.ENDOFTEXT)
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS), encoding="utf-8")
    result = subprocess.run([str(rust_binary("text_generation")), "tokenize", "--model-dir", str(model_dir), "--texts",
                             str(texts), "--out", str(tmp_path / "rust")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    expected = text_generation.tokenize(model_dir, TEXTS)
    lengths = np.load(tmp_path / "rust" / "lengths.npy")
    assert lengths.tolist() == [len(ids) for ids in expected]
    assert np.load(tmp_path / "rust" / "ids.npy").tolist() == [i for ids in expected for i in ids]
    assert [tokenizer.decode(ids) for ids in expected] == TEXTS  # byte-level: lossless
    assert len(expected[0]) < len(TEXTS[0].encode()) / 2  # the corpus's own words merge


def test_a_tokenizer_of_another_vocabulary_is_refused(model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((model_dir / name).read_bytes())
    prompt_sets.train_tokenizer(500, folder)
    result = twin("generate", folder, prompts_file(tmp_path, 1, 4), tmp_path / "out", "--new-tokens", "2")
    assert_usage_error(result, str(folder / "tokenizer.json"), "500 tokens does not match the model's vocab_size 1000")
    assert not (tmp_path / "out").exists()


def bad_prompts(folder: Path, case: str) -> Path:
    path = folder / "prompts.npy"
    values = {"too long": np.zeros((1, 120), dtype=np.int64), "id outside": np.full((1, 4), 1000, dtype=np.int64),
              "empty batch": np.zeros((0, 4), dtype=np.int64), "one axis": np.zeros(4, dtype=np.int64)}
    np.save(path, values[case])
    return path


@pytest.mark.parametrize(("case", "message"), [
    ("too long", "exceed the model's 128 positions"),
    ("id outside", "token id 1000 is outside the vocabulary of 1000"),
    ("empty batch", "is empty"),
    ("one axis", "is not batch x length"),
])
def test_bad_prompts_are_refused(model_dir: Path, tmp_path: Path, case: str, message: str) -> None:
    prompts = bad_prompts(tmp_path, case)
    result = twin("generate", model_dir, prompts, tmp_path / "out", "--new-tokens", str(NEW_TOKENS))
    assert_usage_error(result, str(prompts), message)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_bad_weights_file_is_refused(model_dir: Path, tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (folder / name).write_text((model_dir / name).read_text())
    if damage == "corrupt":
        (folder / "model.safetensors").write_bytes((model_dir / "model.safetensors").read_bytes()[:1000])
    result = twin("generate", folder, prompts_file(tmp_path, 1, 4), tmp_path / "out", "--new-tokens", "2")
    assert_usage_error(result, str(folder / "model.safetensors"))
    assert not (tmp_path / "out").exists()


def test_zero_new_tokens_is_refused(model_dir: Path, tmp_path: Path) -> None:
    result = twin("generate", model_dir, prompts_file(tmp_path, 1, 4), tmp_path / "out", "--new-tokens", "0")
    assert_usage_error(result, "--new-tokens")
    assert not (tmp_path / "out").exists()
