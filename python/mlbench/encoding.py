"""The `encode` protocol: a BERT-family encoder with one task head (or none: sentence embeddings)
run on a batch of token ids from a texts set (mlbench.texts). Mirrors rust/bench-core/src/encoding.rs.

The model (the encoder and the algorithm's head) is loaded once per process (with the set, the
`load` timing). Each repetition:

1. tokenize (only for a set with sentences, sentences.txt): the batch's sentences tokenised with the
   set's tokenizer.json, padded to the set's length; the ids and mask must equal the set's own rows
   (a tokenizer that disagrees with the stored input is an error, not a measurement);
2. forward: the batch's ids and mask (the set's first `batch_size` rows, first `sequence_length`
   columns; padding masked) through the encoder and the head, no gradients, to the head's outputs.

Each phase is a calibrated sample of k calls (k found in the first warm-up, as the classical tasks').
Counts are sequences, so throughput is sequences per second. The output (`outputs`, float32) is
per head: `classification` the logits of each sequence (batch x labels), `token_classification`
each token's (batch x length x labels), `question_answering` each token's start and end logits
(batch x length x 2), `embedding` the last hidden state of the first token and its mean over the
real tokens (batch x 2 x hidden). Heads are seeded, not trained, so the judge compares each Rust
side's outputs with the Python side's (mlbench.evaluate's `encoding_labels`, `encoding_spans` and
`embedding` kinds), never with labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlbench.errors import UsageError
from mlbench.texts import Texts

HEADS = ("classification", "token_classification", "question_answering", "embedding")


@dataclass(frozen=True)
class Encode:
    """A framework's encoder: `load(set, head, device)` the set's model folder with the algorithm's
    head once, onto the job's device (`cpu` or `cuda`); `forward(model, ids, mask)` gives the head's
    outputs (float32, copied to the host, which waits for the device); `tokenize(set, sentences,
    length)` gives the ids and mask of sentences padded to `length`. `reset_peak_memory` and
    `peak_memory_mb` give the framework's own peak device memory over a repetition (None on a CPU)."""

    load: Callable[[Texts, str, str], Any]
    forward: Callable[[Any, np.ndarray, np.ndarray], np.ndarray]
    tokenize: Callable[[Texts, list[str], int], tuple[np.ndarray, np.ndarray]]
    describe: Callable[[str, Texts], str]
    reset_peak_memory: Callable[[Any], None] = lambda model: None
    peak_memory_mb: Callable[[Any], float | None] = lambda model: None


def check_params(params: dict[str, Any], meta: dict[str, Any]) -> None:
    """What a job's schema cannot see: the set has the rows and tokens it asks."""
    batch, length = params["batch_size"], params["sequence_length"]
    if batch > meta["n_sequences"]:
        raise UsageError(f"batch_size: {batch} is above the {meta['n_sequences']} sequences of the set")
    if length > meta["sequence_length"]:
        raise UsageError(f"sequence_length: {length} is above the set's sequences of {meta['sequence_length']} "
                         "tokens")
    if length > meta["max_positions"]:
        raise UsageError(f"sequence_length: {length} is above the model's {meta['max_positions']} positions")


def check_set(data: Texts) -> None:
    """The set's model folder fits its token ids: config.json's vocabulary is the set's (meta.json),
    every id lies in it, the mask is 0/1 with a real first token in every row, padding holds the
    pad id, and a tokenizer.json beside the model has the model's vocabulary size."""
    from mlbench.datasets import read_model_config

    (vocab,) = read_model_config(data.folder, ("vocab_size",))
    path = data.folder / "config.json"
    if vocab != data.vocab_size:
        raise UsageError(f"{path}: vocab_size {vocab} does not match the set's meta.json ({data.vocab_size})")
    if data.ids.shape != data.mask.shape or data.ids.ndim != 2:
        raise UsageError(f"{data.folder / 'mask.npy'}: shape {data.mask.shape} does not match the ids' "
                         f"{data.ids.shape}")
    if data.ids.size and (data.ids.min() < 0 or data.ids.max() >= vocab):
        bad = data.ids[(data.ids < 0) | (data.ids >= vocab)][0]
        raise UsageError(f"{data.folder / 'ids.npy'}: token id {bad} is outside the vocabulary of {vocab}")
    if not np.isin(data.mask, (0, 1)).all() or (data.mask.size and not data.mask[:, 0].all()):
        raise UsageError(f"{data.folder / 'mask.npy'}: not 0/1 with a real first token in every row")
    tokenizer = data.folder / "tokenizer.json"
    if tokenizer.is_file():
        from tokenizers import Tokenizer

        try:
            size = Tokenizer.from_file(str(tokenizer)).get_vocab_size(with_added_tokens=True)
        except Exception as exc:  # whatever tokenizers raises on a file it cannot read
            raise UsageError(f"{tokenizer}: cannot read the tokenizer: {exc}") from None
        if size != vocab:
            raise UsageError(f"{tokenizer}: a vocabulary of {size} tokens does not match the model's vocab_size "
                             f"{vocab}")


def batch_of(data: Texts, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    rows, length = params["batch_size"], params["sequence_length"]
    return (np.ascontiguousarray(data.ids[:rows, :length]), np.ascontiguousarray(data.mask[:rows, :length]))


def sentences_of(data: Texts, params: dict[str, Any]) -> list[str] | None:
    """The batch's sentences, for a set that has them (None: a synthetic set)."""
    return None if data.sentences is None else data.sentences[:params["batch_size"]]


def check_tokens(ids: np.ndarray, mask: np.ndarray, data: Texts, rows: int) -> None:
    """The tokenize phase gave the set's own rows (else the tokenizer disagrees with the stored input)."""
    if ids.shape != (rows, data.ids.shape[1]) or not np.array_equal(ids, data.ids[:rows]) or \
            not np.array_equal(mask, data.mask[:rows]):
        raise UsageError(f"{data.folder / 'tokenizer.json'}: the sentences tokenise to other ids than the set's "
                         "ids.npy and mask.npy")


def expected_shape(head: str, data: Texts, params: dict[str, Any], hidden: int) -> tuple[int, ...]:
    rows, length = params["batch_size"], params["sequence_length"]
    return {"classification": (rows, data.labels.get("classification", 0)),
            "token_classification": (rows, length, data.labels.get("token_classification", 0)),
            "question_answering": (rows, length, 2),
            "embedding": (rows, 2, hidden)}[head]


def check_outputs(outputs: np.ndarray, head: str, data: Texts, params: dict[str, Any]) -> None:
    """A side's outputs have the head's shape (a wrong shape is a bug, never judged)."""
    hidden = outputs.shape[-1] if outputs.ndim == 3 else 0
    expected = expected_shape(head, data, params, hidden)
    if outputs.shape != expected or outputs.dtype != np.float32:
        raise RuntimeError(f"{head} outputs of shape {outputs.shape} ({outputs.dtype}), expected {expected} "
                           "(float32)")


def counts(params: dict[str, Any], tokenized: bool) -> dict[str, int]:
    out = {"forward": params["batch_size"]}
    if tokenized:
        out["tokenize"] = params["batch_size"]
    return out
