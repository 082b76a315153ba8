"""Language-model datasets in the `prompts` layout: a model and the token ids it is run on, so that
both sides load the same weights and decode from the same input (mlbench.generation).

A prompts set holds a model folder's files beside its arrays (transformers' names, read by
transformers and by the Rust twins): `config.json`, `model.safetensors` and, where the shipped corpus
can train one, `tokenizer.json`; `prompts.npy` (int64, n_prompts x prompt_length: a job takes the
first `batch_size` rows and the first `prompt_length` columns, so every prompt of a batch has the same
length and nothing is padded) and `heldout.npy` (int64, one sequence the model scores for
perplexity). meta.json says which configuration, seed and token source.

No GPT-2 weights ship in a package here and nothing downloads at run time: `build` makes a model of
a published configuration (`CONFIGS`: GPT-2 small's sizes, or `tiny` for tests and smoke), initialised
by transformers under a seed. The weights are random: the numbers measure the same arithmetic on the
same weights, not what a trained GPT-2 writes. Nor does GPT-2's BPE vocabulary ship: `train_tokenizer`
trains a byte-level BPE (GPT-2's scheme: bytes mapped to printable characters, merges learnt by
frequency, one special token, `<|endoftext|>`) with `tokenizers` on a text that ships with the pinned
wheels (`corpus`: torch 2.11.0's LICENSE, 351 KB of openly licensed English). It holds enough merges
for the tiny model's 1,000 tokens, not for GPT-2 small's 50,257: the tiny set's prompts are that text
tokenised, GPT-2 small's are seeded uniform token ids (meta.json's `tokens` says which).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Published sizes (GPT-2 small: Radford et al. 2019, 124M parameters, transformers' initialisation)
# and a tiny one for tests and smoke. The tiny model's weights are drawn wider (standard deviation
# 0.3, not 0.02): at 0.02 a 2-layer model's residual stream is its input token's embedding, which
# the tied output layer scores highest, so greedy decoding repeats the prompt's last token forever,
# an agreement that proves nothing; at 0.3 it generates varied tokens whose top logits stand apart.
CONFIGS: dict[str, dict[str, Any]] = {
    "gpt2": {"vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12},
    "tiny": {"vocab_size": 1000, "n_positions": 128, "n_embd": 64, "n_layer": 2, "n_head": 4,
             "initializer_range": 0.3},
}
ENDOFTEXT = "<|endoftext|>"  # the tokenizer's one special token
TOKENIZED = ("tiny",)  # the configurations whose vocabulary the corpus can train (train_tokenizer)
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json")
WEIGHTS_SEED = 0


def build(name: str, seed: int, folder: Path) -> Path:
    """A GPT-2 of configuration `name`, initialised under `seed` (transformers' initialisation),
    saved as config.json and model.safetensors in `folder`, with its tokenizer.json where the corpus
    can train one."""
    import torch
    from tokenizers import Tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel

    sizes = CONFIGS[name]
    folder.mkdir(parents=True, exist_ok=True)
    end = sizes["vocab_size"] - 1  # GPT-2's end-of-text token is its last
    if name in TOKENIZED:
        end = Tokenizer.from_file(str(train_tokenizer(sizes["vocab_size"], folder))).token_to_id(ENDOFTEXT)
    config = GPT2Config(**sizes, bos_token_id=end, eos_token_id=end)
    torch.manual_seed(seed)
    GPT2LMHeadModel(config).save_pretrained(str(folder))
    return folder


def corpus() -> str:
    """The training text: torch's LICENSE as its pinned wheel ships it."""
    from importlib.metadata import distribution

    text = distribution("torch").read_text("licenses/LICENSE")
    if not text:
        raise FileNotFoundError("torch's dist-info has no licenses/LICENSE to train the tokenizer on")
    return text


def train_tokenizer(vocab_size: int, folder: Path) -> Path:
    """A byte-level BPE of exactly `vocab_size` tokens trained on `corpus()`, saved as tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[ENDOFTEXT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(corpus().splitlines(), trainer)
    if tokenizer.get_vocab_size() != vocab_size:
        raise ValueError(f"the corpus gives a vocabulary of {tokenizer.get_vocab_size()} tokens, not {vocab_size}")
    path = folder / "tokenizer.json"
    tokenizer.save(str(path))
    return path


@dataclass(frozen=True)
class PromptSource:
    """A built model folder (moved into the dataset by `datasets.write`) and its token arrays."""

    model: str  # the configuration's name in CONFIGS
    folder: Path  # a temporary folder holding the model files
    prompts: np.ndarray  # int64, n_prompts x prompt_length
    heldout: np.ndarray  # int64, one sequence
    tokens: str  # where the ids came from
    source: str


def corpus_ids(folder: Path) -> np.ndarray:
    """The corpus tokenised with the folder's tokenizer.json, one stream (int64)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    return np.asarray(tokenizer.encode(corpus(), add_special_tokens=False).ids, dtype=np.int64)


def prompt_set(model: str, n_prompts: int, prompt_length: int, heldout_length: int, seed: int) -> PromptSource:
    """Build the model in a temporary folder; prompts are consecutive windows of the tokenised corpus
    where the model has a tokenizer (the held-out sequence the window after them), else seeded
    uniform ids."""
    folder = Path(tempfile.mkdtemp(prefix=f"mlbench-{model}-"))
    build(model, WEIGHTS_SEED, folder)
    if model in TOKENIZED:
        stream = corpus_ids(folder)
        prompts = stream[:n_prompts * prompt_length].reshape(n_prompts, prompt_length)
        heldout = stream[n_prompts * prompt_length:][:heldout_length]
        tokens = "torch 2.11.0's LICENSE tokenised with the set's tokenizer.json: consecutive windows"
    else:
        rng = np.random.default_rng(seed)
        vocab = CONFIGS[model]["vocab_size"]
        prompts = rng.integers(0, vocab, size=(n_prompts, prompt_length), dtype=np.int64)
        heldout = rng.integers(0, vocab, size=heldout_length, dtype=np.int64)
        tokens = f"uniform token ids, seed {seed} (no GPT-2 vocabulary ships offline)"
    source = (f"GPT-2 ({model} configuration), random weights initialised by transformers under seed {WEIGHTS_SEED}; "
              f"{n_prompts} prompts of {prompt_length} tokens and a held-out sequence of {heldout_length}")
    return PromptSource(model, folder, prompts, heldout, tokens, source)


def gpt2_tiny_prompts(download: bool) -> PromptSource:
    return prompt_set("tiny", n_prompts=16, prompt_length=64, heldout_length=128, seed=31)


def gpt2_small_prompts(download: bool) -> PromptSource:
    return prompt_set("gpt2", n_prompts=16, prompt_length=128, heldout_length=256, seed=32)


def arrays(source: PromptSource) -> dict[str, np.ndarray]:
    return {"prompts": np.ascontiguousarray(source.prompts, dtype=np.int64),
            "heldout": np.ascontiguousarray(source.heldout, dtype=np.int64)}


def model_files(source: PromptSource) -> list[Path]:
    """The model folder's files that the set keeps."""
    return [source.folder / name for name in MODEL_FILES if (source.folder / name).is_file()]


def meta(source: PromptSource) -> dict[str, Any]:
    sizes = CONFIGS[source.model]
    n_prompts, prompt_length = source.prompts.shape
    return {"layout": "prompts", "family": "gpt2", "model": source.model, "weights": "random",
            "weights_seed": WEIGHTS_SEED, "vocab_size": sizes["vocab_size"], "n_positions": sizes["n_positions"],
            "n_prompts": n_prompts, "prompt_length": prompt_length, "heldout_length": len(source.heldout),
            "tokens": source.tokens, "tokenizer": (source.folder / "tokenizer.json").is_file()}


def discard(source: PromptSource) -> None:
    shutil.rmtree(source.folder, ignore_errors=True)


@dataclass(frozen=True)
class Prompts:
    """A prompts set as the generate protocol reads it."""

    folder: Path  # the model folder (the dataset's own)
    prompts: np.ndarray
    heldout: np.ndarray
    n_positions: int
    vocab_size: int
