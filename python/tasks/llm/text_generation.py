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
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a plain script, too

import numpy as np
import torch

from mlbench.generation import Generate, Generated
from mlbench.harness import run_task
from mlbench.prompts import Prompts
from mlbench.torch_net import model_device, peak_memory_mb, reset_peak_memory, setup, sync


def tokenize(folder: Path, texts: list[str]) -> list[list[int]]:
    """The token ids of each text (no special tokens added)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    return [encoding.ids for encoding in tokenizer.encode_batch(texts, add_special_tokens=False)]


def load(folder: Path, device: str = "cpu") -> torch.nn.Module:
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
    return model.to(device).eval()


Choose = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (last logits, prompts) -> next tokens


def greedy(params: dict[str, Any], seed: int) -> Choose:
    """The argmax of the last logits (the first on a tie)."""
    return lambda logits, seen: logits.argmax(dim=-1)


def sampler(params: dict[str, Any], seed: int) -> Choose:
    """transformers' processing (repetition penalty, temperature, top-k, top-p), then one draw from
    the softmax with torch.multinomial on a generator seeded with `seed`. One per generation: it keeps
    each row's tokens so far (the prompt, then its own draws), as the Rust arms' sampler does."""
    generators: list[torch.Generator] = []  # on the logits' device, made at the first draw
    penalty, temperature = params["repetition_penalty"], params["temperature"]
    top_k, top_p = params["top_k"], params["top_p"]
    history: list[torch.Tensor] = []

    def choose(logits: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
        seen = history[0] if history else prompts
        scores = logits.to(torch.float32)
        if penalty != 1.0:
            picked = scores.gather(1, seen)
            scores = scores.scatter(1, seen, torch.where(picked < 0, picked * penalty, picked / penalty))
        scores = scores / temperature
        if 0 < top_k < scores.shape[-1]:
            kth = torch.topk(scores, top_k).values[:, -1:]
            scores = scores.masked_fill(scores < kth, -torch.inf)
        if top_p < 1.0:  # keep a token while the more likely ones before it have not reached top_p
            ordered, order = scores.sort(dim=-1, descending=True)
            probabilities = ordered.softmax(dim=-1)
            drop = probabilities.cumsum(dim=-1) - probabilities >= top_p
            scores = scores.scatter(1, order, ordered.masked_fill(drop, -torch.inf))
        if not generators:
            generators.append(torch.Generator(device=scores.device).manual_seed(seed))
        token = torch.multinomial(scores.softmax(dim=-1), 1, generator=generators[0]).squeeze(1)
        history[:] = [torch.cat([seen, token.unsqueeze(1)], dim=1)]
        return token

    return choose


def generate(model: torch.nn.Module, prompts: np.ndarray, new_tokens: int, choose: Choose | None = None) -> Generated:
    """Decoding with the cache, each next token `choose(last logits, prompts)` (default: greedy):
    the new ids (batch x new_tokens), the prefill's seconds (to the first token) and each later
    token's seconds. The tokens stay on the model's device until the end (as on the tch arm), and
    the device is synchronised before every clock read."""
    choose = choose or greedy({}, 0)
    device = model_device(model)
    ids = torch.from_numpy(prompts).to(device)
    tokens: list[torch.Tensor] = []
    decode_s: list[float] = []
    with torch.no_grad():
        sync(device)
        start = time.perf_counter()
        result = model(input_ids=ids, use_cache=True)
        token = choose(result.logits[:, -1], ids)
        tokens.append(token)
        sync(device)
        prefill_s = time.perf_counter() - start
        for _ in range(1, new_tokens):
            start = time.perf_counter()
            result = model(input_ids=token.unsqueeze(1), cache=result.cache, use_cache=True)
            token = choose(result.logits[:, -1], ids)
            tokens.append(token)
            sync(device)
            decode_s.append(time.perf_counter() - start)
    return Generated(torch.stack(tokens, dim=1).cpu().numpy(), prefill_s, decode_s)


def logits(model: torch.nn.Module, prompts: np.ndarray) -> np.ndarray:
    """The prompts' logits without a cache (batch x length x vocab), for the forward parity test."""
    with torch.no_grad():
        return model(input_ids=torch.from_numpy(prompts).to(model_device(model))).logits.cpu().numpy()


def score(model: torch.nn.Module, sequence: np.ndarray) -> np.ndarray:
    """Each next token's negative log-likelihood given the ones before it (float64, length - 1)."""
    ids = torch.from_numpy(sequence).unsqueeze(0).to(model_device(model))
    with torch.no_grad():
        logits = model(input_ids=ids, use_cache=False).logits[0, :-1]
        nll = -torch.log_softmax(logits, dim=-1).gather(1, ids[0, 1:].unsqueeze(1)).squeeze(1)
    return nll.cpu().numpy().astype(np.float64)


def describe(params: dict[str, Any]) -> str:
    how = "sampled (torch.multinomial)" if "temperature" in params else "greedy"
    return f"transformers GPT2LMHeadModel, {how}, KV cache (DynamicCache)"


def load_set(data: Prompts, device: str) -> torch.nn.Module:
    return load(data.folder, device)


ALGORITHMS = {name: Generate(load=load_set, generate=generate, score=score, describe=describe, chooser=chooser,
                             reset_peak_memory=reset_peak_memory, peak_memory_mb=peak_memory_mb)
              for name, chooser in (("greedy", greedy), ("sample", sampler))}

if __name__ == "__main__":
    import transformers

    run_task(ALGORITHMS, transformers.__version__, ["transformers", "torch", "tokenizers", "numpy"], setup=setup)
