//! What the candle arms of the RL twins need and candle lacks:
//! PyTorch's Adam, global gradient-norm clipping, and candle's errors as the harness's.
use bench_core::error::BenchError;
use candle_core::backprop::GradStore;
use candle_core::Var;

pub fn candle_error(e: candle_core::Error) -> BenchError {
    BenchError::run(e.to_string())
}

/// torch.optim.Adam with its defaults but the learning rate and eps: candle's AdamW without weight
/// decay, which is Adam.
pub fn adam(vars: Vec<Var>, learning_rate: f64, eps: f64) -> Result<candle_nn::AdamW, BenchError> {
    let params =
        candle_nn::ParamsAdamW { lr: learning_rate, beta1: 0.9, beta2: 0.999, eps, weight_decay: 0.0 };
    <candle_nn::AdamW as candle_nn::Optimizer>::new(vars, params).map_err(candle_error)
}

/// torch.nn.utils.clip_grad_norm_: the global L2 norm of every gradient; all scaled by
/// max / (norm + 1e-6) when that is below 1.
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[Var], max: f64) -> candle_core::Result<()> {
    let mut total = 0f64;
    for var in vars {
        if let Some(grad) = grads.get(var.as_tensor()) {
            total += f64::from(grad.sqr()?.sum_all()?.to_scalar::<f32>()?);
        }
    }
    let coefficient = max / (total.sqrt() + 1e-6);
    if coefficient < 1.0 {
        for var in vars {
            if let Some(grad) = grads.remove(var.as_tensor()) {
                grads.insert(var.as_tensor(), (grad * coefficient)?);
            }
        }
    }
    Ok(())
}
