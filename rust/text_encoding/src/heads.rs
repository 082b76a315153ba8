//! The task heads on candle-nn, each transformers' own for the family (the weights from
//! heads.safetensors, prefixed by the head; BERT's pooler from the encoder's file):
//! `classification` on the first token's last hidden state (BERT: pooler dense + tanh, ALBERT: its
//! pooler + tanh, then classifier; DistilBERT: pre_classifier + ReLU, then classifier; RoBERTa:
//! classifier.dense + tanh, then classifier.out_proj), `token_classification` a linear layer on every token,
//! `question_answering` a linear layer to each token's start and end logits, `embedding` no head:
//! the first token's last hidden state and the mean over the real tokens, stacked.
use std::collections::BTreeMap;
use std::path::Path;

use bench_core::error::{BenchError, Result};
use candle_core::{DType, Module, Tensor};
use candle_nn::{linear, Linear, VarBuilder};

/// The activation between a sentence head's two layers.
pub enum Activation {
    Tanh,
    Relu,
}

pub enum Head {
    /// An optional first layer and its activation, then the output layer, on the first token.
    Sentence { first: Option<(Linear, Activation)>, out: Linear },
    /// One linear layer on every token (token classification, question answering).
    Tokens(Linear),
    /// The first token's and the mean of the real tokens' last hidden states.
    Embedding,
}

impl Head {
    /// The job's head for the family, `hidden` wide, with the set's label counts.
    pub fn load(
        algorithm: &str,
        family: &str,
        hidden: usize,
        labels: &BTreeMap<String, usize>,
        encoder: &VarBuilder,
        folder: &Path,
    ) -> Result<Head> {
        if algorithm == "embedding" {
            return Ok(Head::Embedding);
        }
        let path = folder.join("heads.safetensors");
        // SAFETY: the weights file is only read, and not changed while mapped.
        let heads = unsafe { VarBuilder::from_mmaped_safetensors(&[&path], DType::F32, encoder.device()) }
            .map_err(|e| BenchError::usage(format!("{}: {e}", path.display())))?;
        let in_file = |e: candle_core::Error| BenchError::usage(format!("{}: {e}", path.display()));
        let vb = heads.pp(algorithm);
        let n = labels.get(algorithm).copied().unwrap_or(0);
        Ok(match algorithm {
            "classification" => {
                let (first, out) = match family {
                    "distilbert" => (
                        (linear(hidden, hidden, vb.pp("pre_classifier")), Activation::Relu),
                        linear(hidden, n, vb.pp("classifier")),
                    ),
                    "roberta" => (
                        (linear(hidden, hidden, vb.pp("classifier.dense")), Activation::Tanh),
                        linear(hidden, n, vb.pp("classifier.out_proj")),
                    ),
                    "albert" => (
                        (linear(hidden, hidden, encoder.pp("pooler")), Activation::Tanh),
                        linear(hidden, n, vb.pp("classifier")),
                    ),
                    _ => (
                        (linear(hidden, hidden, encoder.pp("pooler.dense")), Activation::Tanh),
                        linear(hidden, n, vb.pp("classifier")),
                    ),
                };
                let (layer, activation) = first;
                Head::Sentence {
                    first: Some((layer.map_err(in_file)?, activation)),
                    out: out.map_err(in_file)?,
                }
            }
            "token_classification" => Head::Tokens(linear(hidden, n, vb.pp("classifier")).map_err(in_file)?),
            "question_answering" => Head::Tokens(linear(hidden, 2, vb.pp("qa_outputs")).map_err(in_file)?),
            other => return Err(BenchError::usage(format!("algorithm: no head {other:?}"))),
        })
    }

    /// The head's outputs from the last hidden states (rows x length x hidden) and the mask (u32).
    pub fn forward(&self, hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Head::Sentence { first, out } => {
                let mut x = hidden.narrow(1, 0, 1)?.squeeze(1)?;
                if let Some((layer, activation)) = first {
                    x = layer.forward(&x)?;
                    x = match activation {
                        Activation::Tanh => x.tanh()?,
                        Activation::Relu => x.relu()?,
                    };
                }
                out.forward(&x)
            }
            Head::Tokens(layer) => layer.forward(hidden),
            Head::Embedding => {
                let cls = hidden.narrow(1, 0, 1)?.squeeze(1)?;
                let weights = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
                let mean = hidden.broadcast_mul(&weights)?.sum(1)?.broadcast_div(&weights.sum(1)?)?;
                Tensor::stack(&[&cls, &mean], 1)
            }
        }
    }
}
