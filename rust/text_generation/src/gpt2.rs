//! GPT-2 (Radford et al. 2019) on candle-nn, with a KV cache: candle-transformers 0.11 has no GPT-2,
//! so it is written here, line by line transformers' GPT2LMHeadModel (pre-norm blocks: ln_1,
//! causal self-attention, ln_2, an MLP with GPT-2's tanh GELU; learned positions; ln_f; the output
//! layer tied to the token embedding) under transformers' names (`transformer.h.0.attn.c_attn.weight`,
//! ...). GPT-2's Conv1D layers store their weights as inputs x outputs: they are transposed once, at
//! load, into candle's Linear (outputs x inputs).
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Embedding, LayerNorm, Linear, Module, VarBuilder};
use serde::Deserialize;

/// The fields of transformers' config.json that GPT-2's shape needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub n_positions: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
}

fn default_eps() -> f64 {
    1e-5
}

/// A Conv1D (inputs x outputs weights) as a Linear.
fn conv1d(inputs: usize, outputs: usize, vb: VarBuilder) -> candle_core::Result<Linear> {
    let weight = vb.get((inputs, outputs), "weight")?.t()?.contiguous()?;
    Ok(Linear::new(weight, Some(vb.get(outputs, "bias")?)))
}

fn layer_norm(size: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<LayerNorm> {
    candle_nn::layer_norm(size, candle_nn::LayerNormConfig { eps, ..Default::default() }, vb)
}

struct Attention {
    c_attn: Linear,
    c_proj: Linear,
    heads: usize,
    /// The keys and values of the positions seen so far (batch x heads x positions x head size).
    cache: Option<(Tensor, Tensor)>,
}

impl Attention {
    fn forward(&mut self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, steps, width) = x.dims3()?;
        let size = width / self.heads;
        let qkv = self.c_attn.forward(x)?;
        let split = |i: usize| {
            qkv.narrow(D::Minus1, i * width, width)?
                .reshape((batch, steps, self.heads, size))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, mut k, mut v) = (split(0)?, split(1)?, split(2)?);
        if let Some((past_k, past_v)) = &self.cache {
            k = Tensor::cat(&[past_k, &k], 2)?;
            v = Tensor::cat(&[past_v, &v], 2)?;
        }
        self.cache = Some((k.clone(), v.clone()));
        let past = k.dim(2)? - steps;
        let scores = (q.matmul(&k.t()?)? / (size as f64).sqrt())?;
        let scores =
            if steps > 1 { scores.broadcast_add(&causal_mask(steps, past, x.device())?)? } else { scores };
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let merged = weights.matmul(&v)?.transpose(1, 2)?.reshape((batch, steps, width))?;
        self.c_proj.forward(&merged)
    }
}

/// 0 where query i (at position past + i) may see key j, minus infinity after it.
fn causal_mask(steps: usize, past: usize, device: &Device) -> candle_core::Result<Tensor> {
    let keys = past + steps;
    let mask: Vec<f32> = (0..steps)
        .flat_map(|i| (0..keys).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (steps, keys), device)
}

struct Block {
    ln_1: LayerNorm,
    attn: Attention,
    ln_2: LayerNorm,
    c_fc: Linear,
    mlp_proj: Linear,
}

impl Block {
    fn load(config: &Config, vb: VarBuilder) -> candle_core::Result<Self> {
        let (width, eps) = (config.n_embd, config.layer_norm_epsilon);
        Ok(Block {
            ln_1: layer_norm(width, eps, vb.pp("ln_1"))?,
            attn: Attention {
                c_attn: conv1d(width, 3 * width, vb.pp("attn").pp("c_attn"))?,
                c_proj: conv1d(width, width, vb.pp("attn").pp("c_proj"))?,
                heads: config.n_head,
                cache: None,
            },
            ln_2: layer_norm(width, eps, vb.pp("ln_2"))?,
            c_fc: conv1d(width, 4 * width, vb.pp("mlp").pp("c_fc"))?,
            mlp_proj: conv1d(4 * width, width, vb.pp("mlp").pp("c_proj"))?,
        })
    }

    fn forward(&mut self, x: &Tensor) -> candle_core::Result<Tensor> {
        let x = (x + self.attn.forward(&self.ln_1.forward(x)?)?)?;
        let hidden = self.c_fc.forward(&self.ln_2.forward(&x)?)?.gelu()?; // GPT-2's tanh approximation
        &x + self.mlp_proj.forward(&hidden)?
    }
}

pub struct Gpt2 {
    wte: Embedding,
    wpe: Embedding,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    lm_head: Linear,
    /// Positions already in the cache.
    seen: usize,
    pub config: Config,
}

impl Gpt2 {
    pub fn load(config: Config, vb: VarBuilder) -> candle_core::Result<Self> {
        let vb = vb.pp("transformer");
        let wte = candle_nn::embedding(config.vocab_size, config.n_embd, vb.pp("wte"))?;
        let wpe = candle_nn::embedding(config.n_positions, config.n_embd, vb.pp("wpe"))?;
        let blocks = (0..config.n_layer)
            .map(|i| Block::load(&config, vb.pp("h").pp(i)))
            .collect::<candle_core::Result<_>>()?;
        let ln_f = layer_norm(config.n_embd, config.layer_norm_epsilon, vb.pp("ln_f"))?;
        let lm_head = Linear::new(wte.embeddings().clone(), None); // tied, as transformers ties it
        Ok(Gpt2 { wte, wpe, blocks, ln_f, lm_head, seen: 0, config })
    }

    /// Forget the cached positions (before a new sequence).
    pub fn clear_cache(&mut self) {
        for block in &mut self.blocks {
            block.attn.cache = None;
        }
        self.seen = 0;
    }

    /// The logits of `ids` (batch x steps, u32) following the cached positions: batch x steps x vocab.
    pub fn forward(&mut self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let (_, steps) = ids.dims2()?;
        let positions = Tensor::arange(self.seen as u32, (self.seen + steps) as u32, ids.device())?;
        let mut x = self.wte.forward(ids)?.broadcast_add(&self.wpe.forward(&positions)?)?;
        for block in &mut self.blocks {
            x = block.forward(&x)?;
        }
        self.seen += steps;
        self.lm_head.forward(&self.ln_f.forward(&x)?)
    }
}

/// The argmax of the last position's logits of each row (the first on a tie): batch, u32.
pub fn next_tokens(logits: &Tensor) -> candle_core::Result<Tensor> {
    let steps = logits.dim(1)?;
    logits.narrow(1, steps - 1, 1)?.squeeze(1)?.to_dtype(DType::F32)?.argmax(D::Minus1)
}
