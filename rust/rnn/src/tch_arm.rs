//! The tch arm's recurrent nets: libtorch's fused `at::rnn_tanh`, `at::lstm` and `at::gru`, what
//! PyTorch's nn.RNN, nn.LSTM and nn.GRU call, over the same flat weights under the same names and
//! gate order (so the shared safetensors file loads as it is). The `train` flag reaches the op, so
//! dropout between layers acts in training only.
use std::path::Path;

use bench_core::config::Job;
use bench_core::error::Result;
use bench_core::training::{recurrent_gates, recurrent_layers, NetShape, Network, TrainParams};
use cnn::tch_net::train_net;
use tch::nn::{self, ModuleT};
use tch::Tensor;

#[derive(Debug)]
struct Recurrent {
    cell: String,
    /// Per layer and direction: weight_ih, weight_hh, bias_ih, bias_hh (PyTorch's flat order).
    flat: Vec<Tensor>,
    layers: i64,
    hidden: i64,
    bidirectional: bool,
    dropout: f64,
    fc: nn::Linear,
}

impl Recurrent {
    fn new(root: nn::Path, cell: &str, shape: &NetShape, params: &TrainParams) -> Self {
        let rnn = &root / "rnn";
        let hidden = params.hidden_size as i64;
        let rows = recurrent_gates(cell) as i64 * hidden;
        let mut flat = Vec::new();
        for (suffix, inputs) in recurrent_layers(params, shape.features()) {
            let zero = nn::Init::Const(0.0); // every value comes from the shared file
            flat.push(rnn.var(&format!("weight_ih{suffix}"), &[rows, inputs as i64], zero));
            flat.push(rnn.var(&format!("weight_hh{suffix}"), &[rows, hidden], zero));
            flat.push(rnn.var(&format!("bias_ih{suffix}"), &[rows], zero));
            flat.push(rnn.var(&format!("bias_hh{suffix}"), &[rows], zero));
        }
        let directions = if params.bidirectional { 2 } else { 1 };
        Recurrent {
            cell: cell.to_string(),
            flat,
            layers: params.num_layers as i64,
            hidden,
            bidirectional: params.bidirectional,
            dropout: params.dropout_rate,
            fc: nn::linear(&root / "fc", directions * hidden, shape.classes as i64, Default::default()),
        }
    }
}

impl ModuleT for Recurrent {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let x = xs.squeeze_dim(1); // batch x steps x features
        let directions = if self.bidirectional { 2 } else { 1 };
        let state =
            Tensor::zeros([self.layers * directions, x.size()[0], self.hidden], (x.kind(), x.device()));
        let (layers, dropout, bidirectional) = (self.layers, self.dropout, self.bidirectional);
        let out = match self.cell.as_str() {
            "lstm" => {
                x.lstm(
                    &[&state, &state],
                    &self.flat.iter().collect::<Vec<_>>(),
                    true,
                    layers,
                    dropout,
                    train,
                    bidirectional,
                    true,
                )
                .0
            }
            "gru" => x.gru(&state, &self.flat, true, layers, dropout, train, bidirectional, true).0,
            _ => x.rnn_tanh(&state, &self.flat, true, layers, dropout, train, bidirectional, true).0,
        };
        let last = out.select(1, -1).narrow(1, 0, self.hidden);
        let last = if self.bidirectional {
            Tensor::cat(&[last, out.select(1, 0).narrow(1, self.hidden, self.hidden)], 1)
        } else {
            last
        };
        last.apply(&self.fc)
    }
}

pub fn build(job: &Job, params: &TrainParams, shape: &NetShape, weights: &Path) -> Result<Box<dyn Network>> {
    train_net(job, params, weights, |root| -> Box<dyn ModuleT> {
        Box::new(Recurrent::new(root, &job.algorithm, shape, params))
    })
}
