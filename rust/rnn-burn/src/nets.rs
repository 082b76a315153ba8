//! The recurrent nets on burn's `Rnn`, `Lstm` and `Gru`, one layer and direction each, filled from
//! the shared safetensors file (PyTorch's names and stacked gates). burn's layers read forwards
//! here: the backward direction reads the sequence flipped in time and its outputs are flipped back,
//! which is what a bidirectional layer computes. Dropout acts between layers in training.
use std::path::Path;

use bench_core::config::Job;
use bench_core::error::Result;
use bench_core::training::{recurrent_gates, recurrent_layers, NetShape, TrainParams};
use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, GateController, Gru, GruConfig, Initializer, Linear, Lstm, LstmConfig, LstmState,
    Rnn, RnnConfig, RnnState,
};
use burn::tensor::{Device, Tensor};
use cnn_burn::burn_net::{Model, Weights};

/// One layer and direction (a few per process, so the variants' size difference costs nothing).
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Cell {
    Rnn(Rnn),
    Lstm(Lstm),
    Gru(Gru),
}

impl Cell {
    /// Outputs (batch x steps x hidden) reading `x` (batch x steps x inputs) forwards, from a zero
    /// state in `x`'s precision (burn's own zero state is float32 whatever the job's precision).
    fn outputs(&self, x: Tensor<3>, hidden: usize) -> Tensor<3> {
        let batch = x.dims()[0];
        let zero =
            || x.clone().slice([0..batch, 0..1, 0..1]).reshape([batch, 1]).zeros_like().repeat_dim(1, hidden);
        match self {
            Cell::Rnn(cell) => cell.forward(x.clone(), Some(RnnState::new(zero()))).0,
            Cell::Lstm(cell) => cell.forward(x.clone(), Some(LstmState::new(zero(), zero()))).0,
            Cell::Gru(cell) => cell.forward(x.clone(), Some(zero())),
        }
    }

    /// burn's gates in PyTorch's stacking order.
    fn gates(&self) -> Vec<&GateController> {
        match self {
            Cell::Rnn(cell) => vec![&cell.gate],
            Cell::Lstm(cell) => {
                let forget = cell.forget_gate.as_ref().expect("input_forget is off");
                vec![&cell.input_gate, forget, &cell.cell_gate, &cell.output_gate]
            }
            Cell::Gru(cell) => vec![&cell.reset_gate, &cell.update_gate, &cell.new_gate],
        }
    }

    /// PyTorch's four tensors of this layer and direction (weight_ih, weight_hh, bias_ih, bias_hh).
    fn named_tensors(&self, suffix: &str, out: &mut Vec<(String, Tensor<1>)>) {
        let stacked = |part: fn(&GateController) -> &Linear, weight: bool| -> Tensor<1> {
            let blocks: Vec<Tensor<2>> = self
                .gates()
                .into_iter()
                .map(|gate| {
                    let linear = part(gate);
                    if weight {
                        linear.weight.val().transpose()
                    } else {
                        linear.bias.as_ref().expect("biases are on").val().unsqueeze_dim(1)
                    }
                })
                .collect();
            Tensor::cat(blocks, 0).flatten(0, 1)
        };
        fn input(gate: &GateController) -> &Linear {
            &gate.input_transform
        }
        fn hidden(gate: &GateController) -> &Linear {
            &gate.hidden_transform
        }
        out.push((format!("rnn.weight_ih{suffix}"), stacked(input, true)));
        out.push((format!("rnn.weight_hh{suffix}"), stacked(hidden, true)));
        out.push((format!("rnn.bias_ih{suffix}"), stacked(input, false)));
        out.push((format!("rnn.bias_hh{suffix}"), stacked(hidden, false)));
    }
}

#[derive(Module, Debug)]
pub struct Recurrent {
    /// Per layer: the forward direction, then the backward one when bidirectional.
    layers: Vec<Vec<Cell>>,
    suffixes: Vec<String>,
    hidden: usize,
    dropout: Dropout,
    fc: Linear,
}

impl Model for Recurrent {
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x: Tensor<3> = x.squeeze_dim(1); // batch x steps x features
        for (i, directions) in self.layers.iter().enumerate() {
            if i > 0 {
                x = self.dropout.forward(x);
            }
            let forward = directions[0].outputs(x.clone(), self.hidden);
            x = match directions.get(1) {
                Some(backward) => {
                    Tensor::cat(vec![forward, backward.outputs(x.flip([1]), self.hidden).flip([1])], 2)
                }
                None => forward,
            };
        }
        let [batch, steps, _] = x.dims();
        let h = self.hidden;
        let last = x.clone().slice([0..batch, steps - 1..steps, 0..h]).reshape([batch, h]);
        let last = if self.layers[0].len() == 2 {
            Tensor::cat(vec![last, x.slice([0..batch, 0..1, h..2 * h]).reshape([batch, h])], 1)
        } else {
            last
        };
        self.fc.forward(last)
    }

    fn named_tensors(&self) -> Vec<(String, Tensor<1>)> {
        let mut out = Vec::new();
        for (cell, suffix) in self.layers.iter().flatten().zip(&self.suffixes) {
            cell.named_tensors(suffix, &mut out);
        }
        out.push(("fc.weight".into(), self.fc.weight.val().transpose().flatten(0, 1)));
        out.push(("fc.bias".into(), self.fc.bias.as_ref().expect("fc has a bias").val()));
        out
    }
}

/// burn's gate `k` of PyTorch's stacked matrices: rows k*hidden..(k+1)*hidden, transposed.
fn gate(
    w: &Weights,
    suffix: &str,
    k: usize,
    [rows, inputs, hidden]: [usize; 3],
    device: &Device,
) -> Result<GateController> {
    let block = |name: &str, width: usize| -> Result<Tensor<2>> {
        let full: Tensor<2> = w.get(&format!("rnn.{name}{suffix}"), [rows, width])?;
        Ok(full.slice([k * hidden..(k + 1) * hidden, 0..width]).transpose())
    };
    let bias = |name: &str| -> Result<Tensor<1>> {
        let full: Tensor<1> = w.get(&format!("rnn.{name}{suffix}"), [rows])?;
        Ok(full.narrow(0, k * hidden, hidden))
    };
    let mut controller = GateController::new(inputs, hidden, true, Initializer::Zeros, device);
    controller.input_transform.weight = Param::from_tensor(block("weight_ih", inputs)?);
    controller.input_transform.bias = Some(Param::from_tensor(bias("bias_ih")?));
    controller.hidden_transform.weight = Param::from_tensor(block("weight_hh", hidden)?);
    controller.hidden_transform.bias = Some(Param::from_tensor(bias("bias_hh")?));
    Ok(controller)
}

fn cell(
    w: &Weights,
    name: &str,
    suffix: &str,
    inputs: usize,
    hidden: usize,
    device: &Device,
) -> Result<Cell> {
    let dims = [recurrent_gates(name) * hidden, inputs, hidden];
    let g = |k| gate(w, suffix, k, dims, device);
    Ok(match name {
        "lstm" => {
            let mut lstm = LstmConfig::new(inputs, hidden, true).init(device);
            (lstm.input_gate, lstm.forget_gate, lstm.cell_gate, lstm.output_gate) =
                (g(0)?, Some(g(1)?), g(2)?, g(3)?);
            Cell::Lstm(lstm)
        }
        "gru" => {
            let mut gru = GruConfig::new(inputs, hidden, true).init(device);
            (gru.reset_gate, gru.update_gate, gru.new_gate) = (g(0)?, g(1)?, g(2)?);
            Cell::Gru(gru)
        }
        _ => {
            let mut rnn = RnnConfig::new(inputs, hidden, true).init(device);
            rnn.gate = g(0)?;
            Cell::Rnn(rnn)
        }
    })
}

pub fn load(
    job: &Job,
    params: &TrainParams,
    shape: &NetShape,
    path: &Path,
    device: &Device,
) -> Result<Recurrent> {
    let bytes = Weights::read(path)?;
    let w = Weights::new(job, &bytes, path, device)?;
    let directions = if params.bidirectional { 2 } else { 1 };
    let mut layers: Vec<Vec<Cell>> = Vec::new();
    let mut suffixes = Vec::new();
    for (i, (suffix, inputs)) in recurrent_layers(params, shape.features()).into_iter().enumerate() {
        let layer = cell(&w, &job.algorithm, &suffix, inputs, params.hidden_size, device)?;
        if i % directions == 0 {
            layers.push(vec![layer]);
        } else if let Some(last) = layers.last_mut() {
            last.push(layer);
        }
        suffixes.push(suffix);
    }
    Ok(Recurrent {
        layers,
        suffixes,
        hidden: params.hidden_size,
        dropout: DropoutConfig::new(params.dropout_rate).init(),
        fc: w.linear("fc", directions * params.hidden_size, shape.classes)?,
    })
}
