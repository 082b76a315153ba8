//! GPT-2 on tch (libtorch), the second Rust arm: the same model as gpt2.rs, written with the ops
//! transformers' GPT2LMHeadModel calls in PyTorch, so that against PyTorch it measures the Rust
//! runtime around the same kernels, and against candle the kernels: GPT-2's Conv1D as `addmm` on
//! its stored (inputs x outputs) weights, libtorch's layer norm, scaled-dot-product attention
//! (transformers' default, `sdpa`; causal in the prefill, over the whole cache in a decode step),
//! GPT-2's tanh GELU and the output layer tied to the token embedding. The weights are read from
//! the same model.safetensors under transformers' names.
use std::collections::HashMap;
use std::path::Path;

use bench_core::error::{BenchError, Result};
use tch::{Kind, Tensor};

use text_generation::gpt2::Config;

/// A Conv1D: y = bias + x W, W stored inputs x outputs.
struct Conv1d {
    weight: Tensor,
    bias: Tensor,
}

impl Conv1d {
    fn forward(&self, x: &Tensor) -> Tensor {
        let size = x.size();
        let (inputs, outputs) = (self.weight.size()[0], self.weight.size()[1]);
        let mut shape = size[..size.len() - 1].to_vec();
        shape.push(outputs);
        self.bias.addmm(&x.reshape([-1, inputs]), &self.weight).reshape(shape)
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.layer_norm([self.weight.size()[0]], Some(&self.weight), Some(&self.bias), self.eps, false)
    }
}

struct Block {
    ln_1: LayerNorm,
    c_attn: Conv1d,
    attn_proj: Conv1d,
    ln_2: LayerNorm,
    c_fc: Conv1d,
    mlp_proj: Conv1d,
    /// The keys and values of the positions seen so far (batch x heads x positions x head size).
    cache: Option<(Tensor, Tensor)>,
}

pub struct TchGpt2 {
    wte: Tensor,
    wpe: Tensor,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    heads: i64,
    seen: i64,
}

/// The weights by name, each taken once and checked against the shape the configuration implies.
struct Weights {
    tensors: HashMap<String, Tensor>,
    path: String,
}

impl Weights {
    fn take(&mut self, name: &str, shape: &[i64]) -> Result<Tensor> {
        let tensor = self
            .tensors
            .remove(name)
            .or_else(|| self.tensors.remove(name.trim_start_matches("transformer.")))
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

    fn conv1d(&mut self, prefix: &str, inputs: i64, outputs: i64) -> Result<Conv1d> {
        Ok(Conv1d {
            weight: self.take(&format!("{prefix}.weight"), &[inputs, outputs])?,
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

impl TchGpt2 {
    /// The model from a safetensors file, its tensors on `device`.
    pub fn load(config: &Config, weights: &Path, device: tch::Device) -> Result<Self> {
        let tensors = Tensor::read_safetensors(weights)
            .map_err(|e| BenchError::usage(format!("{}: {e}", weights.display())))?;
        let tensors = tensors.into_iter().map(|(name, tensor)| (name, tensor.to_device(device))).collect();
        let mut w = Weights { tensors, path: weights.display().to_string() };
        let (width, eps) = (config.n_embd as i64, config.layer_norm_epsilon);
        let wte = w.take("transformer.wte.weight", &[config.vocab_size as i64, width])?;
        let wpe = w.take("transformer.wpe.weight", &[config.n_positions as i64, width])?;
        let blocks = (0..config.n_layer)
            .map(|i| {
                let p = format!("transformer.h.{i}");
                Ok(Block {
                    ln_1: w.layer_norm(&format!("{p}.ln_1"), width, eps)?,
                    c_attn: w.conv1d(&format!("{p}.attn.c_attn"), width, 3 * width)?,
                    attn_proj: w.conv1d(&format!("{p}.attn.c_proj"), width, width)?,
                    ln_2: w.layer_norm(&format!("{p}.ln_2"), width, eps)?,
                    c_fc: w.conv1d(&format!("{p}.mlp.c_fc"), width, 4 * width)?,
                    mlp_proj: w.conv1d(&format!("{p}.mlp.c_proj"), 4 * width, width)?,
                    cache: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let ln_f = w.layer_norm("transformer.ln_f", width, eps)?;
        let heads = config.n_head as i64;
        Ok(TchGpt2 { wte, wpe, blocks, ln_f, heads, seen: 0 })
    }

    /// Forget the cached positions (before a new sequence).
    pub fn clear_cache(&mut self) {
        for block in &mut self.blocks {
            block.cache = None;
        }
        self.seen = 0;
    }

    /// The logits of `ids` (batch x steps, int64) following the cached positions: batch x steps x vocab.
    pub fn forward(&mut self, ids: &Tensor) -> Tensor {
        let (batch, steps) = (ids.size()[0], ids.size()[1]);
        let positions = Tensor::arange_start(self.seen, self.seen + steps, (Kind::Int64, ids.device()));
        let mut x = Tensor::embedding(&self.wte, ids, -1, false, false)
            + Tensor::embedding(&self.wpe, &positions, -1, false, false);
        let width = x.size()[2];
        let size = width / self.heads;
        for block in &mut self.blocks {
            let qkv = block.c_attn.forward(&block.ln_1.forward(&x));
            let split = |i: i64| {
                qkv.narrow(2, i * width, width).reshape([batch, steps, self.heads, size]).transpose(1, 2)
            };
            let (q, mut k, mut v) = (split(0), split(1), split(2));
            if let Some((past_k, past_v)) = &block.cache {
                k = Tensor::cat(&[past_k, &k], 2);
                v = Tensor::cat(&[past_v, &v], 2);
            }
            let attended =
                Tensor::scaled_dot_product_attention::<Tensor>(&q, &k, &v, None, 0.0, steps > 1, None, false);
            block.cache = Some((k, v));
            let merged = attended.transpose(1, 2).reshape([batch, steps, width]);
            x = &x + block.attn_proj.forward(&merged);
            let hidden = block.c_fc.forward(&block.ln_2.forward(&x)).gelu("tanh");
            x = &x + block.mlp_proj.forward(&hidden);
        }
        self.seen += steps;
        self.ln_f.forward(&x).matmul(&self.wte.tr())
    }
}
