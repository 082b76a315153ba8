//! The candle arm's recurrent nets, one layer and direction at a time: candle-nn's `LSTM` (PyTorch's
//! gate order and names, `layer_idx` and `_reverse` included) and `GRU` (PyTorch's gate order; it
//! reads only `*_l0` names, so a renaming VarBuilder points it at `_l{k}` and `_reverse`); candle-nn
//! has no tanh RNN, so `TanhRnn` is its one-line cell on candle-nn's `RNN` trait. candle runs every
//! layer forwards only: the backward direction reads the sequence reversed in time and its outputs
//! are reversed back, which is what a bidirectional layer computes. Dropout acts between layers in
//! training, as PyTorch's does.
use std::path::Path;

use bench_core::config::Job;
use bench_core::error::Result;
use bench_core::training::{recurrent_gates, recurrent_layers, NetShape, Network, TrainParams};
use candle_core::{IndexOp, ModuleT, Tensor};
use candle_nn::rnn::{GRUConfig, LSTMConfig, RNN};
use candle_nn::{Linear, VarBuilder};
use cnn::candle_net::{dropout, train_net};

/// Elman's cell as nn.RNN computes it: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh).
#[derive(Debug, Clone)]
struct TanhRnn {
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
}

impl TanhRnn {
    fn new(vb: &VarBuilder, suffix: &str, inputs: usize, hidden: usize) -> candle_core::Result<Self> {
        Ok(TanhRnn {
            w_ih: vb.get((hidden, inputs), &format!("weight_ih{suffix}"))?,
            w_hh: vb.get((hidden, hidden), &format!("weight_hh{suffix}"))?,
            b_ih: vb.get(hidden, &format!("bias_ih{suffix}"))?,
            b_hh: vb.get(hidden, &format!("bias_hh{suffix}"))?,
        })
    }
}

impl RNN for TanhRnn {
    type State = Tensor;

    fn zero_state(&self, batch: usize) -> candle_core::Result<Tensor> {
        Tensor::zeros((batch, self.w_hh.dim(0)?), self.w_hh.dtype(), self.w_hh.device())
    }

    fn step(&self, input: &Tensor, h: &Tensor) -> candle_core::Result<Tensor> {
        let ih = input.matmul(&self.w_ih.t()?)?.broadcast_add(&self.b_ih)?;
        let hh = h.matmul(&self.w_hh.t()?)?.broadcast_add(&self.b_hh)?;
        (ih + hh)?.tanh()
    }

    fn states_to_tensor(&self, states: &[Tensor]) -> candle_core::Result<Tensor> {
        Tensor::stack(states, 1)
    }
}

enum Layer {
    Rnn(TanhRnn),
    Lstm(candle_nn::LSTM),
    Gru(candle_nn::GRU),
}

impl Layer {
    fn new(
        vb: &VarBuilder,
        cell: &str,
        suffix: &str,
        inputs: usize,
        hidden: usize,
    ) -> candle_core::Result<Self> {
        let reverse = suffix.ends_with("_reverse");
        Ok(match cell {
            "lstm" => {
                let layer_idx =
                    suffix.trim_start_matches("_l").trim_end_matches("_reverse").parse().unwrap_or(0);
                let direction = if reverse {
                    candle_nn::rnn::Direction::Backward
                } else {
                    candle_nn::rnn::Direction::Forward
                };
                let config = LSTMConfig { layer_idx, direction, ..Default::default() };
                Layer::Lstm(candle_nn::lstm(inputs, hidden, config, vb.pp("rnn"))?)
            }
            "gru" => {
                let suffix = suffix.to_string();
                let renamed = vb.clone().rename_f(move |name: &str| name.replace("_l0", &suffix)).pp("rnn");
                Layer::Gru(candle_nn::gru(inputs, hidden, GRUConfig::default(), renamed)?)
            }
            _ => Layer::Rnn(TanhRnn::new(&vb.pp("rnn"), suffix, inputs, hidden)?),
        })
    }

    /// Outputs (batch x steps x hidden) of one direction reading `x` (batch x steps x inputs) forwards.
    fn outputs(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Layer::Rnn(cell) => cell.states_to_tensor(&cell.seq(x)?),
            Layer::Lstm(cell) => cell.states_to_tensor(&cell.seq(x)?),
            Layer::Gru(cell) => Tensor::stack(&cell.seq(x)?.into_iter().map(|s| s.h).collect::<Vec<_>>(), 1),
        }
    }
}

/// `x` with its steps (dimension 1) in reverse order.
fn reversed(x: &Tensor) -> candle_core::Result<Tensor> {
    let steps = x.dim(1)? as u32;
    let index = Tensor::from_vec((0..steps).rev().collect::<Vec<u32>>(), steps as usize, x.device())?;
    x.index_select(&index, 1)
}

struct Recurrent {
    /// Per layer: the forward direction, then the backward one when bidirectional.
    layers: Vec<Vec<Layer>>,
    hidden: usize,
    dropout: f32,
    fc: Linear,
}

impl Recurrent {
    fn new(vb: &VarBuilder, cell: &str, shape: &NetShape, params: &TrainParams) -> candle_core::Result<Self> {
        let directions = if params.bidirectional { 2 } else { 1 };
        let mut layers: Vec<Vec<Layer>> = Vec::new();
        for (i, (suffix, inputs)) in recurrent_layers(params, shape.features()).iter().enumerate() {
            let layer = Layer::new(vb, cell, suffix, *inputs, params.hidden_size)?;
            if i % directions == 0 {
                layers.push(vec![layer]);
            } else if let Some(last) = layers.last_mut() {
                last.push(layer);
            }
        }
        debug_assert!(recurrent_gates(cell) > 0);
        Ok(Recurrent {
            layers,
            hidden: params.hidden_size,
            dropout: params.dropout_rate as f32,
            fc: candle_nn::linear(directions * params.hidden_size, shape.classes, vb.pp("fc"))?,
        })
    }
}

impl ModuleT for Recurrent {
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let mut x = xs.squeeze(1)?; // batch x steps x features
        for (i, directions) in self.layers.iter().enumerate() {
            if i > 0 {
                x = dropout(x, self.dropout, train)?;
            }
            let forward = directions[0].outputs(&x)?;
            x = match directions.get(1) {
                Some(backward) => Tensor::cat(&[forward, reversed(&backward.outputs(&reversed(&x)?)?)?], 2)?,
                None => forward,
            };
        }
        let steps = x.dim(1)?;
        let last = x.i((.., steps - 1, 0..self.hidden))?;
        let last = if self.layers[0].len() == 2 {
            Tensor::cat(&[last, x.i((.., 0, self.hidden..2 * self.hidden))?], 1)?
        } else {
            last
        };
        last.apply(&self.fc)
    }
}

pub fn build(job: &Job, params: &TrainParams, shape: &NetShape, weights: &Path) -> Result<Box<dyn Network>> {
    train_net(job, params, weights, |vb| Ok(Box::new(Recurrent::new(vb, &job.algorithm, shape, params)?)))
}
