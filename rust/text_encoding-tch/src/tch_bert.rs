//! BERT, RoBERTa, DistilBERT and ALBERT encoders on tch (libtorch), with the task heads, written with the ops
//! transformers' modules call in PyTorch (`linear`, `layer_norm`, scaled-dot-product attention with
//! the padding masked, erf GELU), so that against PyTorch they measure the Rust runtime around the
//! same kernels, and against candle the kernels. The weights are read from the set's
//! model.safetensors and heads.safetensors under transformers' names. RoBERTa is BERT's layers with
//! positions counted from the pad id (transformers' `create_position_ids_from_input_ids`) and one
//! token type; DistilBERT names its layers otherwise and has no token types; ALBERT's embeddings are
//! narrower than its layers (a linear map between them) and one layer's weights serve every layer.
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bench_core::error::{BenchError, Result};
use serde::Deserialize;
use tch::{Kind, Tensor};

/// config.json, BERT's names with DistilBERT's as aliases.
#[derive(Debug, Deserialize)]
pub struct Config {
    pub vocab_size: i64,
    #[serde(alias = "dim")]
    pub hidden_size: i64,
    #[serde(alias = "n_layers")]
    pub num_hidden_layers: i64,
    #[serde(alias = "n_heads")]
    pub num_attention_heads: i64,
    #[serde(alias = "hidden_dim")]
    pub intermediate_size: i64,
    pub max_position_embeddings: i64,
    #[serde(default)]
    pub type_vocab_size: i64,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: i64,
    #[serde(alias = "activation", default = "default_act")]
    pub hidden_act: String,
    /// ALBERT's embedding width (the others: the hidden size).
    #[serde(default)]
    pub embedding_size: Option<i64>,
    /// ALBERT: layer groups and layers per group (this arm: one of each, albert-base's).
    #[serde(default = "one")]
    pub num_hidden_groups: i64,
    #[serde(default = "one")]
    pub inner_group_num: i64,
}

fn one() -> i64 {
    1
}

fn default_eps() -> f64 {
    1e-12 // DistilBERT's, fixed in its code
}

fn default_act() -> String {
    "gelu".to_string()
}

pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    fn share(&self) -> Linear {
        Linear { weight: self.weight.shallow_clone(), bias: self.bias.shallow_clone() }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, Some(&self.bias))
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn share(&self) -> LayerNorm {
        LayerNorm { weight: self.weight.shallow_clone(), bias: self.bias.shallow_clone(), eps: self.eps }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        x.layer_norm([self.weight.size()[0]], Some(&self.weight), Some(&self.bias), self.eps, false)
    }
}

/// One post-norm transformer layer (the same arithmetic in the three families).
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

impl Layer {
    /// The same weights (ALBERT's layers share one layer's).
    fn share(&self) -> Layer {
        Layer {
            query: self.query.share(),
            key: self.key.share(),
            value: self.value.share(),
            attention_out: self.attention_out.share(),
            attention_norm: self.attention_norm.share(),
            intermediate: self.intermediate.share(),
            output: self.output.share(),
            output_norm: self.output_norm.share(),
        }
    }
}

/// The weights of a file by name, each taken once and checked against the shape the configuration
/// implies.
pub struct Weights {
    tensors: HashMap<String, Tensor>,
    path: String,
    /// ALBERT: the one layer every layer shares, once taken.
    shared: Option<Layer>,
}

impl Weights {
    /// A safetensors file's tensors, on `device`.
    pub fn read(path: &Path, device: tch::Device) -> Result<Self> {
        let tensors = Tensor::read_safetensors(path)
            .map_err(|e| BenchError::usage(format!("{}: {e}", path.display())))?;
        let tensors = tensors.into_iter().map(|(name, tensor)| (name, tensor.to_device(device))).collect();
        Ok(Weights { tensors, path: path.display().to_string(), shared: None })
    }

    fn take(&mut self, name: &str, shape: &[i64]) -> Result<Tensor> {
        let tensor = self
            .tensors
            .remove(name)
            .ok_or_else(|| BenchError::usage(format!("{}: no tensor {name}", self.path)))?;
        if tensor.size() != shape {
            return Err(BenchError::usage(format!(
                "{}: {name} has shape {:?}, the configuration needs {shape:?}",
                self.path,
                tensor.size()
            )));
        }
        Ok(tensor.to_kind(Kind::Float))
    }

    fn linear(&mut self, prefix: &str, inputs: i64, outputs: i64) -> Result<Linear> {
        Ok(Linear {
            weight: self.take(&format!("{prefix}.weight"), &[outputs, inputs])?,
            bias: self.take(&format!("{prefix}.bias"), &[outputs])?,
        })
    }

    fn layer_norm(&mut self, prefix: &str, size: i64, eps: f64) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: self.take(&format!("{prefix}.weight"), &[size])?,
            bias: self.take(&format!("{prefix}.bias"), &[size])?,
            eps,
        })
    }
}

pub struct Encoder {
    family: String,
    /// ALBERT: the embeddings' map to the hidden size.
    mapping: Option<Linear>,
    words: Tensor,
    positions: Tensor,
    types: Option<Tensor>,
    norm: LayerNorm,
    layers: Vec<Layer>,
    heads: i64,
    pad: i64,
    act: String,
}

impl Encoder {
    pub fn load(family: &str, config: &Config, w: &mut Weights) -> Result<Self> {
        let (h, eps) = (config.hidden_size, config.layer_norm_eps);
        if config.num_attention_heads <= 0 || h % config.num_attention_heads != 0 {
            return Err(BenchError::usage(format!(
                "config.json: hidden size {h} is not a multiple of {} heads",
                config.num_attention_heads
            )));
        }
        if family == "albert" && (config.num_hidden_groups, config.inner_group_num) != (1, 1) {
            return Err(BenchError::usage(format!(
                "config.json: ALBERT with {} layer groups of {} layers (this arm shares one layer, as albert-base)",
                config.num_hidden_groups, config.inner_group_num
            )));
        }
        let inner = config.intermediate_size;
        let width = config.embedding_size.unwrap_or(h);
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                if family == "albert" {
                    if let Some(shared) = &w.shared {
                        return Ok(shared.share());
                    }
                    let p = "encoder.albert_layer_groups.0.albert_layers.0";
                    let layer = Layer {
                        query: w.linear(&format!("{p}.attention.query"), h, h)?,
                        key: w.linear(&format!("{p}.attention.key"), h, h)?,
                        value: w.linear(&format!("{p}.attention.value"), h, h)?,
                        attention_out: w.linear(&format!("{p}.attention.dense"), h, h)?,
                        attention_norm: w.layer_norm(&format!("{p}.attention.LayerNorm"), h, eps)?,
                        intermediate: w.linear(&format!("{p}.ffn"), h, inner)?,
                        output: w.linear(&format!("{p}.ffn_output"), inner, h)?,
                        output_norm: w.layer_norm(&format!("{p}.full_layer_layer_norm"), h, eps)?,
                    };
                    w.shared = Some(layer.share());
                    Ok(layer)
                } else if family == "distilbert" {
                    let p = format!("transformer.layer.{i}");
                    Ok(Layer {
                        query: w.linear(&format!("{p}.attention.q_lin"), h, h)?,
                        key: w.linear(&format!("{p}.attention.k_lin"), h, h)?,
                        value: w.linear(&format!("{p}.attention.v_lin"), h, h)?,
                        attention_out: w.linear(&format!("{p}.attention.out_lin"), h, h)?,
                        attention_norm: w.layer_norm(&format!("{p}.sa_layer_norm"), h, eps)?,
                        intermediate: w.linear(&format!("{p}.ffn.lin1"), h, inner)?,
                        output: w.linear(&format!("{p}.ffn.lin2"), inner, h)?,
                        output_norm: w.layer_norm(&format!("{p}.output_layer_norm"), h, eps)?,
                    })
                } else {
                    let p = format!("encoder.layer.{i}");
                    Ok(Layer {
                        query: w.linear(&format!("{p}.attention.self.query"), h, h)?,
                        key: w.linear(&format!("{p}.attention.self.key"), h, h)?,
                        value: w.linear(&format!("{p}.attention.self.value"), h, h)?,
                        attention_out: w.linear(&format!("{p}.attention.output.dense"), h, h)?,
                        attention_norm: w.layer_norm(&format!("{p}.attention.output.LayerNorm"), h, eps)?,
                        intermediate: w.linear(&format!("{p}.intermediate.dense"), h, inner)?,
                        output: w.linear(&format!("{p}.output.dense"), inner, h)?,
                        output_norm: w.layer_norm(&format!("{p}.output.LayerNorm"), h, eps)?,
                    })
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let types = if family == "distilbert" {
            None
        } else {
            Some(w.take("embeddings.token_type_embeddings.weight", &[config.type_vocab_size, width])?)
        };
        let mapping = if family == "albert" {
            Some(w.linear("encoder.embedding_hidden_mapping_in", width, h)?)
        } else {
            None
        };
        Ok(Encoder {
            family: family.to_string(),
            mapping,
            words: w.take("embeddings.word_embeddings.weight", &[config.vocab_size, width])?,
            positions: w
                .take("embeddings.position_embeddings.weight", &[config.max_position_embeddings, width])?,
            types,
            norm: w.layer_norm("embeddings.LayerNorm", width, eps)?,
            layers,
            heads: config.num_attention_heads,
            pad: config.pad_token_id,
            act: config.hidden_act.clone(),
        })
    }

    /// The last hidden states (rows x length x hidden) of ids and mask (int64, 1 for a real token).
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Tensor {
        let (rows, length) = (ids.size()[0], ids.size()[1]);
        let positions = if self.family == "roberta" {
            let real = ids.ne(self.pad).to_kind(Kind::Int64);
            real.cumsum(1, Kind::Int64) * &real + self.pad
        } else {
            Tensor::arange(length, (Kind::Int64, ids.device())).unsqueeze(0).expand([rows, length], false)
        };
        let mut x = self.words.index_select(0, &ids.flatten(0, -1)).view([rows, length, -1])
            + self.positions.index_select(0, &positions.flatten(0, -1)).view([rows, length, -1]);
        if let Some(types) = &self.types {
            x += types.get(0); // token type 0 everywhere
        }
        let mut x = self.norm.forward(&x);
        if let Some(mapping) = &self.mapping {
            x = mapping.forward(&x);
        }
        let keep = mask.ne(0).view([rows, 1, 1, length]); // attend to real tokens only
        let width = x.size()[2];
        let split = |t: Tensor| t.view([rows, length, self.heads, width / self.heads]).transpose(1, 2);
        for layer in &self.layers {
            let (q, k, v) = (
                split(layer.query.forward(&x)),
                split(layer.key.forward(&x)),
                split(layer.value.forward(&x)),
            );
            let context =
                Tensor::scaled_dot_product_attention(&q, &k, &v, Some(&keep), 0.0, false, None, false)
                    .transpose(1, 2)
                    .reshape([rows, length, width]);
            x = layer.attention_norm.forward(&(layer.attention_out.forward(&context) + &x));
            let inner = layer.intermediate.forward(&x);
            let inner = match self.act.as_str() {
                "relu" => inner.relu(),
                "gelu_new" | "gelu_pytorch_tanh" => inner.gelu("tanh"),
                _ => inner.gelu("none"),
            };
            x = layer.output_norm.forward(&(layer.output.forward(&inner) + &x));
        }
        x
    }
}

/// The task heads, each transformers' own for the family (as rust/text_encoding/src/heads.rs).
pub enum Head {
    /// A first layer (tanh, or ReLU for DistilBERT) and the output layer, on the first token.
    Sentence { first: Linear, relu: bool, out: Linear },
    /// One linear layer on every token.
    Tokens(Linear),
    /// The first token's and the mean of the real tokens' last hidden states, stacked.
    Embedding,
}

impl Head {
    pub fn load(
        algorithm: &str,
        family: &str,
        hidden: i64,
        labels: &BTreeMap<String, usize>,
        encoder: &mut Weights,
        heads: &mut Weights,
    ) -> Result<Head> {
        let n = labels.get(algorithm).copied().unwrap_or(0) as i64;
        let p = algorithm;
        Ok(match algorithm {
            "embedding" => Head::Embedding,
            "classification" => match family {
                "distilbert" => Head::Sentence {
                    first: heads.linear(&format!("{p}.pre_classifier"), hidden, hidden)?,
                    relu: true,
                    out: heads.linear(&format!("{p}.classifier"), hidden, n)?,
                },
                "roberta" => Head::Sentence {
                    first: heads.linear(&format!("{p}.classifier.dense"), hidden, hidden)?,
                    relu: false,
                    out: heads.linear(&format!("{p}.classifier.out_proj"), hidden, n)?,
                },
                "albert" => Head::Sentence {
                    first: encoder.linear("pooler", hidden, hidden)?,
                    relu: false,
                    out: heads.linear(&format!("{p}.classifier"), hidden, n)?,
                },
                _ => Head::Sentence {
                    first: encoder.linear("pooler.dense", hidden, hidden)?,
                    relu: false,
                    out: heads.linear(&format!("{p}.classifier"), hidden, n)?,
                },
            },
            "token_classification" => Head::Tokens(heads.linear(&format!("{p}.classifier"), hidden, n)?),
            "question_answering" => Head::Tokens(heads.linear(&format!("{p}.qa_outputs"), hidden, 2)?),
            other => return Err(BenchError::usage(format!("algorithm: no head {other:?}"))),
        })
    }

    /// The head's outputs from the last hidden states and the mask (int64).
    pub fn forward(&self, hidden: &Tensor, mask: &Tensor) -> Tensor {
        match self {
            Head::Sentence { first, relu, out } => {
                let x = first.forward(&hidden.select(1, 0));
                out.forward(&if *relu { x.relu() } else { x.tanh() })
            }
            Head::Tokens(layer) => layer.forward(hidden),
            Head::Embedding => {
                let weights = mask.to_kind(Kind::Float).unsqueeze(2);
                let mean = (hidden * &weights).sum_dim_intlist(1, false, Kind::Float)
                    / weights.sum_dim_intlist(1, false, Kind::Float);
                Tensor::stack(&[hidden.select(1, 0), mean], 1)
            }
        }
    }
}
