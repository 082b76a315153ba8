"""GPT-2 greedy generation with a KV cache in transformers, the Python twin of rust/text_generation
(GPT-2 written on candle-nn: candle-transformers 0.11 has no GPT-2): the `generate` protocol of
mlbench.generation on a prompts set (mlbench.prompts: the model folder, config.json and
model.safetensors under transformers' names, and pre-tokenised prompts, every prompt of a batch the
same length, so no padding). Both sides decode the same way, one loop the Rust twin mirrors:

1. prefill: the prompts through the model at once, the KV cache filled; the first new token is the
   argmax of the last position's logits (time to first token);
2. decode: each later token from the previous one alone, attending to the cache (one step per
   token; the argmax, the first on a tie).

`score` gives the next-token negative log-likelihoods of a held-out sequence (no cache), from which
the judge derives perplexity. Greedy decoding is the parity case: the generated ids must be
identical between sides (tests/test_text_generation.py). The model itself (random weights of a
published configuration) and its tokenizer are built once, at dataset preparation (mlbench.prompts).
"""


from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a plain script, too

import numpy as np
import torch

from mlbench.generation import Generate, Generated
from mlbench.harness import run_task
from mlbench.prompts import Prompts
from mlbench.torch_net import setup


def tokenize(folder: Path, texts: list[str]) -> list[list[int]]:
    """The token ids of each text (no special tokens added)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    return [encoding.ids for encoding in tokenizer.encode_batch(texts, add_special_tokens=False)]


def load(folder: Path) -> torch.nn.Module:
    from transformers import GPT2LMHeadModel

    return GPT2LMHeadModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32).eval()


def generate(model: torch.nn.Module, prompts: np.ndarray, new_tokens: int) -> Generated:
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
    return Generated(out, prefill_s, decode_s)


def logits(model: torch.nn.Module, prompts: np.ndarray) -> np.ndarray:
    """The prompts' logits without a cache (batch x length x vocab), for the forward parity test."""
    with torch.no_grad():
        return model(input_ids=torch.from_numpy(prompts)).logits.numpy()


def score(model: torch.nn.Module, sequence: np.ndarray) -> np.ndarray:
    """Each next token's negative log-likelihood given the ones before it (float64, length - 1)."""
    ids = torch.from_numpy(sequence).unsqueeze(0)
    with torch.no_grad():
        logits = model(input_ids=ids, use_cache=False).logits[0, :-1]
        nll = -torch.log_softmax(logits, dim=-1).gather(1, ids[0, 1:].unsqueeze(1)).squeeze(1)
    return nll.numpy().astype(np.float64)


def describe(params: dict[str, Any]) -> str:
    return "transformers GPT2LMHeadModel, greedy, KV cache (DynamicCache)"


def load_set(data: Prompts) -> torch.nn.Module:
    return load(data.folder)


ALGORITHMS = {"greedy": Generate(load=load_set, generate=generate, score=score, describe=describe)}

if __name__ == "__main__":
    import transformers

    run_task(ALGORITHMS, transformers.__version__, ["transformers", "torch", "tokenizers", "numpy"], setup=setup)
