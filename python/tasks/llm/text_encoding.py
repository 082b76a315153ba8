"""A BERT-family encoder with one seeded task head in transformers, the Python twin of
rust/text_encoding (candle-transformers' BertModel, DistilBertModel and XLMRobertaModel, the heads
on candle-nn): the `encode` protocol of mlbench.encoding on a texts set (mlbench.texts: the
encoder's model.safetensors and the heads' heads.safetensors under transformers' names, and
pre-tokenised ids with their attention mask).

Each algorithm is one head, transformers' own class for it: `classification`
(AutoModelForSequenceClassification: BERT and ALBERT the pooler and a linear layer, DistilBERT
pre_classifier, ReLU and classifier, RoBERTa its dense-tanh-out_proj head, all on the first token),
`token_classification` (AutoModelForTokenClassification: a linear layer on every token),
`question_answering` (AutoModelForQuestionAnswering: a linear layer to each token's start and end
logits) and `embedding` (AutoModel, no pooler: the first token's last hidden state and the mean of
the real tokens', sentence-transformers' pooling for MiniLM). Token type ids are zeros (DistilBERT
has none); padding is masked.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a plain script, too

import numpy as np
import torch

from mlbench.encoding import Encode
from mlbench.harness import run_task
from mlbench.texts import Texts, head_classes, tokenize
from mlbench.torch_net import model_device, peak_memory_mb, reset_peak_memory, setup


def load(data: Texts, head: str, device: str = "cpu") -> torch.nn.Module:
    """The encoder with the head's weights from the set's files (every parameter from a file: a
    missing or unexpected one is an error, except the pooler a head does not use and the position
    ids older files carry as a buffer)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel

    def read(name: str) -> dict[str, torch.Tensor]:
        try:
            return load_file(str(data.folder / name))
        except Exception as exc:  # whatever safetensors raises on a file it cannot read
            raise ValueError(f"{name}: {exc}") from None

    config = AutoConfig.from_pretrained(str(data.folder))
    encoder = read("model.safetensors")
    if head == "embedding":
        pooler = {} if data.family == "distilbert" else {"add_pooling_layer": False}
        model, state = AutoModel.from_config(config, **pooler), encoder
    else:
        config.num_labels = data.labels[head]
        model = head_classes()[head].from_config(config)
        prefix = f"{head}."
        heads = {name.removeprefix(prefix): tensor
                 for name, tensor in read("heads.safetensors").items()
                 if name.startswith(prefix)}
        state = {f"{model.base_model_prefix}.{name}": tensor for name, tensor in encoder.items()} | heads
    missing, unexpected = model.load_state_dict(state, strict=False)
    unused = [name for name in unexpected if "pooler" not in name and not name.endswith("position_ids")]
    if missing or unused:
        raise ValueError(f"the model files do not fit {type(model).__name__}: missing {missing[:3]}, "
                         f"unexpected {unused[:3]}")
    return model.to(device=device, dtype=torch.float32).eval()


def forward(model: torch.nn.Module, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The head's outputs (float32, on the host): logits, start/end logits stacked last, or (CLS, mean)
    embeddings. The copy to the host waits for the device, so a clock read after it is synchronised."""
    device = model_device(model)
    ids_t, mask_t = torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)
    inputs = {"input_ids": ids_t, "attention_mask": mask_t}
    if model.config.model_type != "distilbert":
        inputs["token_type_ids"] = torch.zeros_like(ids_t)
    with torch.no_grad():
        out = model(**inputs)
        if hasattr(out, "start_logits"):
            return torch.stack([out.start_logits, out.end_logits], dim=-1).cpu().numpy()
        if hasattr(out, "logits"):
            return out.logits.cpu().numpy()
        hidden = out.last_hidden_state
        weights = mask_t.to(hidden.dtype).unsqueeze(2)
        mean = (hidden * weights).sum(dim=1) / weights.sum(dim=1)
        return torch.stack([hidden[:, 0], mean], dim=1).cpu().numpy()


def tokenize_batch(data: Texts, sentences: list[str], length: int) -> tuple[np.ndarray, np.ndarray]:
    return tokenize(data.folder, sentences, length)


def describe(head: str, data: Texts) -> str:
    name = "AutoModel (no pooler)" if head == "embedding" else head_classes()[head].__name__
    return f"transformers {name}, {data.family}, float32, no gradients"


ALGORITHMS = {head: Encode(load=load, forward=forward, tokenize=tokenize_batch, describe=describe,
                           reset_peak_memory=reset_peak_memory, peak_memory_mb=peak_memory_mb)
              for head in ("classification", "token_classification", "question_answering", "embedding")}

if __name__ == "__main__":
    import transformers

    run_task(ALGORITHMS, transformers.__version__, ["transformers", "torch", "tokenizers", "numpy"], setup=setup)
