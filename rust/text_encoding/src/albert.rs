//! ALBERT on candle-nn (candle-transformers 0.11 has none), transformers' AlbertModel line by line
//! under its names: word, position and token-type embeddings of `embedding_size` and their layer
//! norm; a linear map to the hidden size (`encoder.embedding_hidden_mapping_in`); then one layer,
//! `encoder.albert_layer_groups.0.albert_layers.0`, applied `num_hidden_layers` times (ALBERT shares
//! its weights across layers): self-attention (query, key, value, scaled by 1/sqrt(head size), the
//! padding masked), `attention.dense` and `attention.LayerNorm` on the residual, then `ffn`, the
//! activation (gelu_new: tanh GELU), `ffn_output` and `full_layer_layer_norm` on the residual.
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{embedding, layer_norm, linear, Embedding, LayerNorm, Linear, VarBuilder};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub embedding_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    #[serde(default = "gelu_new")]
    pub hidden_act: String,
    #[serde(default = "one")]
    pub num_hidden_groups: usize,
    #[serde(default = "one")]
    pub inner_group_num: usize,
}

fn gelu_new() -> String {
    "gelu_new".to_string()
}

fn one() -> usize {
    1
}

pub struct Albert {
    words: Embedding,
    positions: Embedding,
    types: Embedding,
    norm: LayerNorm,
    mapping: Linear,
    query: Linear,
    key: Linear,
    value: Linear,
    dense: Linear,
    attention_norm: LayerNorm,
    ffn: Linear,
    ffn_output: Linear,
    output_norm: LayerNorm,
    layers: usize,
    heads: usize,
    act: String,
}

impl Albert {
    pub fn load(vb: VarBuilder, config: &Config) -> Result<Self> {
        if (config.num_hidden_groups, config.inner_group_num) != (1, 1) {
            candle_core::bail!(
                "ALBERT with {} layer groups of {} layers (this arm shares one layer, as albert-base)",
                config.num_hidden_groups,
                config.inner_group_num
            );
        }
        let (e, h, eps) = (config.embedding_size, config.hidden_size, config.layer_norm_eps);
        let emb = vb.pp("embeddings");
        let layer = vb.pp("encoder.albert_layer_groups.0.albert_layers.0");
        Ok(Albert {
            words: embedding(config.vocab_size, e, emb.pp("word_embeddings"))?,
            positions: embedding(config.max_position_embeddings, e, emb.pp("position_embeddings"))?,
            types: embedding(config.type_vocab_size, e, emb.pp("token_type_embeddings"))?,
            norm: layer_norm(e, eps, emb.pp("LayerNorm"))?,
            mapping: linear(e, h, vb.pp("encoder.embedding_hidden_mapping_in"))?,
            query: linear(h, h, layer.pp("attention.query"))?,
            key: linear(h, h, layer.pp("attention.key"))?,
            value: linear(h, h, layer.pp("attention.value"))?,
            dense: linear(h, h, layer.pp("attention.dense"))?,
            attention_norm: layer_norm(h, eps, layer.pp("attention.LayerNorm"))?,
            ffn: linear(h, config.intermediate_size, layer.pp("ffn"))?,
            ffn_output: linear(config.intermediate_size, h, layer.pp("ffn_output"))?,
            output_norm: layer_norm(h, eps, layer.pp("full_layer_layer_norm"))?,
            layers: config.num_hidden_layers,
            heads: config.num_attention_heads,
            act: config.hidden_act.clone(),
        })
    }

    /// The last hidden states (rows x length x hidden) of ids and mask (u32, 1 for a real token).
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (rows, length) = ids.dims2()?;
        let positions = Tensor::arange(0u32, length as u32, ids.device())?;
        let x = self
            .words
            .forward(ids)?
            .broadcast_add(&self.positions.forward(&positions)?)?
            .broadcast_add(&self.types.forward(&ids.zeros_like()?)?)?;
        let mut x = self.mapping.forward(&self.norm.forward(&x)?)?;
        let width = x.dim(2)?;
        let size = width / self.heads;
        // 0 where a key is a real token, the float32 minimum where it is padding (transformers').
        let padding = (mask.to_dtype(DType::F32)?.affine(-1.0, 1.0)? * f64::from(f32::MIN))?
            .reshape((rows, 1, 1, length))?;
        let split = |t: Tensor| t.reshape((rows, length, self.heads, size))?.transpose(1, 2)?.contiguous();
        for _ in 0..self.layers {
            let q = split(self.query.forward(&x)?)?;
            let k = split(self.key.forward(&x)?)?;
            let v = split(self.value.forward(&x)?)?;
            let scores = (q.matmul(&k.t()?)? / (size as f64).sqrt())?.broadcast_add(&padding)?;
            let weights = candle_nn::ops::softmax_last_dim(&scores)?;
            let context = weights.matmul(&v)?.transpose(1, 2)?.reshape((rows, length, width))?;
            let attention = self.attention_norm.forward(&(self.dense.forward(&context)? + &x)?)?;
            let inner = self.ffn.forward(&attention)?;
            let inner = match self.act.as_str() {
                "gelu" => inner.gelu_erf()?,
                "relu" => inner.relu()?,
                _ => inner.gelu()?, // gelu_new: the tanh approximation
            };
            x = self.output_norm.forward(&(self.ffn_output.forward(&inner)? + &attention)?)?;
        }
        Ok(x)
    }
}
