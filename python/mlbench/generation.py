"""The `generate` protocol: a language model's generation with a KV cache (greedy or sampled), and
its perplexity of a held-out sequence, from a prompts set (mlbench.prompts). Mirrors rust/bench-core/src/generation.rs.

The model is loaded once per process (with the set, the `load` timing). Each repetition:

1. prefill: the batch's prompts (the set's first `batch_size` rows, first `prompt_length` tokens)
   through the model at once, filling the cache, to the first new token (the phase's seconds: time
   to first token);
2. decode: each later token from the previous one alone, attending to the cache, `max_new_tokens`
   - 1 steps, each timed on its own (`decode` is their sum; `decode_p50`, `decode_p90` and
   `decode_p99` the percentiles of one step's seconds, numpy's linear interpolation, which the Rust
   side computes the same way); `generate` is prefill plus decode. Each new token is the argmax of
   the last logits (`greedy`) or, for `sample`, a draw with the side's own random generator seeded
   with the repetition's seed, after transformers' logits processing (repetition penalty,
   temperature, top-k, top-p); that choice is inside each step's time;
3. score (timed apart, cache off): the held-out sequence's logits, and the negative log-likelihood
   of each next token (float64), from which the judge derives perplexity.

Counts are tokens: `prefill` the prompt tokens read, `decode` and `generate` the tokens produced,
`score` the tokens scored, so the throughput of each phase is tokens per second. The generated ids
(`tokens`, int64, batch x max_new_tokens), each decode step's seconds (`decode_steps`) and the
held-out NLLs (`nll`) are the record's artifacts; greedy tokens are compared side by side (the
agreement), sampled ones are not, and the NLLs give each side's quality (mlbench.evaluate's
`generation` and `sampled_generation` kinds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlbench.errors import UsageError
from mlbench.prompts import Prompts

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class Generated:
    """One generation: the new ids (batch x new tokens), the prefill's seconds (to the first token)
    and each later token's seconds."""

    tokens: np.ndarray
    prefill_s: float
    decode_s: list[float]


@dataclass(frozen=True)
class Generate:
    """A framework's model: `load` the set's model folder once onto the job's device (`cpu` or
    `cuda`); `generate` from prompts (int64 batch x length) with a fresh cache, each next token
    picked by `chooser(params, seed)`'s function of the last logits and the prompts (greedy: the
    argmax; `sample`: a seeded draw over the tokens it has seen, which it keeps itself), the device
    synchronised before every clock read; `score` a sequence's next-token NLLs without a cache.
    `reset_peak_memory` and `peak_memory_mb` give the framework's own peak device memory over a
    repetition (None on a CPU)."""

    load: Callable[[Prompts, str], Any]
    generate: Callable[[Any, np.ndarray, int, Any], Generated]
    score: Callable[[Any, np.ndarray], np.ndarray]
    describe: Callable[[dict[str, Any]], str]
    chooser: Callable[[dict[str, Any], int], Any]
    reset_peak_memory: Callable[[Any], None] = lambda model: None
    peak_memory_mb: Callable[[Any], float | None] = lambda model: None


def check_params(params: dict[str, Any], meta: dict[str, Any]) -> None:
    """What a job's schema cannot see: the set has the prompts it asks, and they fit the model."""
    batch, length, new = params["batch_size"], params["prompt_length"], params["max_new_tokens"]
    if batch > meta["n_prompts"]:
        raise UsageError(f"batch_size: {batch} is above the {meta['n_prompts']} prompts of the set")
    if length > meta["prompt_length"]:
        raise UsageError(f"prompt_length: {length} is above the set's prompts of {meta['prompt_length']} tokens")
    if length + new > meta["n_positions"]:
        raise UsageError(f"max_new_tokens: {length} prompt tokens and {new} new ones exceed the model's "
                         f"{meta['n_positions']} positions")


def check_set(data: Prompts) -> None:
    """The set's model folder fits its token ids: config.json's vocabulary and positions are the set's
    (meta.json), every id lies in the vocabulary, the held-out sequence fits the positions."""
    from mlbench.datasets import read_model_config

    vocab, positions = read_model_config(data.folder, ("vocab_size", "n_positions"))
    path = data.folder / "config.json"
    if (vocab, positions) != (data.vocab_size, data.n_positions):
        raise UsageError(f"{path}: vocab_size {vocab} and n_positions {positions} do not match the set's meta.json "
                         f"({data.vocab_size} and {data.n_positions})")
    ids = np.concatenate([data.prompts.ravel(), data.heldout.ravel()])
    if ids.size and (ids.min() < 0 or ids.max() >= vocab):
        bad = ids[(ids < 0) | (ids >= vocab)][0]
        raise UsageError(f"{data.folder}: token id {bad} is outside the vocabulary of {vocab}")
    if not 2 <= len(data.heldout) <= positions:
        raise UsageError(f"{data.folder / 'heldout.npy'}: a held-out sequence of {len(data.heldout)} tokens (the "
                         f"model scores 2 to {positions})")


def batch_of(data: Prompts, params: dict[str, Any]) -> np.ndarray:
    return np.ascontiguousarray(data.prompts[:params["batch_size"], :params["prompt_length"]])


def percentiles(decode_s: list[float]) -> dict[str, float]:
    """One decode step's seconds at each of PERCENTILES (linear interpolation between order statistics)."""
    values = np.asarray(decode_s, dtype=np.float64)
    return {f"decode_p{q}": float(np.percentile(values, q)) for q in PERCENTILES}


def timings(generated: Generated) -> dict[str, float]:
    decode = float(np.sum(generated.decode_s))
    return {"prefill": generated.prefill_s, "decode": decode, "generate": generated.prefill_s + decode} | \
        percentiles(generated.decode_s)


def counts(params: dict[str, Any], heldout: int) -> dict[str, int]:
    batch, new = params["batch_size"], params["max_new_tokens"]
    return {"prefill": batch * params["prompt_length"], "decode": batch * (new - 1), "generate": batch * new,
            "score": heldout - 1}


def check_outputs(generated: Generated, nll: np.ndarray, params: dict[str, Any], heldout: int) -> None:
    """A side's outputs have the protocol's shapes (a wrong shape is a bug, never judged)."""
    expected = (params["batch_size"], params["max_new_tokens"])
    if generated.tokens.shape != expected or len(generated.decode_s) != expected[1] - 1:
        raise RuntimeError(f"generated tokens {generated.tokens.shape} and {len(generated.decode_s)} decode steps, "
                           f"expected {expected} and {expected[1] - 1}")
    if nll.shape != (heldout - 1,):
        raise RuntimeError(f"held-out NLLs of shape {nll.shape}, expected ({heldout - 1},)")
