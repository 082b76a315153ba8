"""GPT-2 greedy generation with a KV cache in transformers, the Python twin of rust/text_generation
(GPT-2 written on candle-nn: candle-transformers 0.11 has no GPT-2). Both sides load the same
model folder (config.json and model.safetensors, transformers' names) and the same pre-tokenised
prompts (int64, batch x prompt length, every prompt the same length, so no padding), and decode
the same way, one loop the Rust twin mirrors:

1. prefill: the prompts through the model at once, the KV cache filled; the first new token is the
   argmax of the last position's logits (time to first token);
2. decode: each later token from the previous one alone, attending to the cache (one step per
   token; the argmax, the first on a tie).

No model weights ship for GPT-2 here (nothing downloads at run time): `build` makes a model from a
published configuration (`CONFIGS`: GPT-2 small's sizes, or `tiny` for tests and smoke), initialised
in transformers under a seed, and saves it once; every side then loads that file. Greedy decoding
is the parity case: the generated ids must be identical between sides
(tests/test_text_generation.py).

Nor does GPT-2's BPE vocabulary ship in a package here: `train_tokenizer` trains a byte-level BPE
(GPT-2's scheme: bytes mapped to printable characters, merges learnt by frequency, one special
token, `<|endoftext|>`) with `tokenizers` on a text that ships with the pinned wheels (`corpus`:
torch 2.11.0's LICENSE, 351 KB of openly licensed English), to the model's vocabulary size, and
saves tokenizer.json beside the model; Python's `tokenizers` and the Rust `tokenizers` crate read
that file. The corpus holds enough merges for the tiny model's 1,000 tokens, not for GPT-2 small's
50,257.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

# Published sizes (GPT-2 small: Radford et al. 2019, 124M parameters, transformers' initialisation)
# and a tiny one for tests and smoke. The tiny model's weights are drawn wider (standard deviation
# 0.3, not 0.02): at 0.02 a 2-layer model's residual stream is its input token's embedding, which
# the tied output layer scores highest, so greedy decoding repeats the prompt's last token forever,
# an agreement that proves nothing; at 0.3 it generates varied tokens whose top logits stand apart.
CONFIGS = {
    "gpt2": {"vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12},
    "tiny": {"vocab_size": 1000, "n_positions": 128, "n_embd": 64, "n_layer": 2, "n_head": 4,
             "initializer_range": 0.3},
}


ENDOFTEXT = "<|endoftext|>"  # the tokenizer's one special token
TOKENIZED = ("tiny",)  # the configurations whose vocabulary the corpus can train (train_tokenizer)


def build(name: str, seed: int, folder: Path) -> Path:
    """A GPT-2 of configuration `name`, initialised under `seed` (transformers' initialisation),
    saved as config.json and model.safetensors in `folder`, with its tokenizer.json where the corpus
    can train one."""
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


def tokenize(folder: Path, texts: list[str]) -> list[list[int]]:
    """The token ids of each text (no special tokens added)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    return [encoding.ids for encoding in tokenizer.encode_batch(texts, add_special_tokens=False)]


def load(folder: Path) -> torch.nn.Module:
    from transformers import GPT2LMHeadModel

    return GPT2LMHeadModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32).eval()


def generate(model: torch.nn.Module, prompts: np.ndarray, new_tokens: int) -> tuple[np.ndarray, float, list[float]]:
    """Greedy decoding: the new ids (batch x new_tokens), the prefill's seconds (to the first token)
    and each later token's seconds."""
    ids = torch.from_numpy(prompts)
    out = np.zeros((len(prompts), new_tokens), dtype=np.int64)
    decode_s: list[float] = []
    with torch.no_grad():
        start = time.perf_counter()
        result = model(input_ids=ids, use_cache=True)
        token = result.logits[:, -1].argmax(dim=-1)
        out[:, 0] = token.numpy()
        prefill_s = time.perf_counter() - start
        for k in range(1, new_tokens):
            start = time.perf_counter()
            result = model(input_ids=token.unsqueeze(1), cache=result.cache, use_cache=True)
            token = result.logits[:, -1].argmax(dim=-1)
            out[:, k] = token.numpy()
            decode_s.append(time.perf_counter() - start)
    return out, prefill_s, decode_s


def logits(model: torch.nn.Module, prompts: np.ndarray) -> np.ndarray:
    """The prompts' logits without a cache (batch x length x vocab), for the forward parity test."""
    with torch.no_grad():
        return model(input_ids=torch.from_numpy(prompts)).logits.numpy()
