//! The `libsvm-rs` framework: a pure-Rust port of LIBSVM, the library inside scikit-learn's SVMs.
use bench_core::error::{fitted, BenchError, Result};
use bench_core::harness::Supervised;
use bench_core::record::Solver;
use libsvm_rs::predict::{predict, predict_probability, predict_values};
use libsvm_rs::train::svm_train;
use libsvm_rs::{KernelType, SvmModel, SvmNode, SvmParameter, SvmProblem, SvmType};
use ndarray::{Array1, Array2, ArrayView1};
use std::collections::BTreeMap;

use crate::params::{resolve_gamma, Kernel, KernelParams};

const SMO_RULE: &str = "SMO (LIBSVM): maximal KKT violation < tol; libsvm-rs does not report iterations";

/// Which LIBSVM formulation, with its own parameter.
#[derive(Debug, Clone, Copy)]
pub enum Formulation {
    CSvc { c: f64 },
    NuSvc { nu: f64 },
    EpsilonSvr { c: f64, epsilon: f64 },
}

pub struct Libsvm {
    formulation: Formulation,
    kernel: KernelParams,
    gamma: Option<f64>,
    probability: bool,
    model: Option<SvmModel>,
}

impl Libsvm {
    pub fn new(formulation: Formulation, kernel: KernelParams) -> Self {
        libsvm_rs::set_quiet(true); // LIBSVM prints progress dots otherwise
        Libsvm { formulation, kernel, gamma: None, probability: false, model: None }
    }

    /// Fit Platt's sigmoid on LIBSVM's internal 5-fold cross-validation too (scikit-learn's
    /// `probability=True`): class probabilities become an output.
    pub fn with_probability(mut self, probability: bool) -> Self {
        self.probability = probability;
        self
    }

    /// The model's label positions in sorted-label order (scikit-learn's class order).
    fn sorted_labels(model: &SvmModel) -> Vec<usize> {
        let labels = model.labels();
        let mut sorted: Vec<usize> = (0..labels.len()).collect();
        sorted.sort_by_key(|&i| labels[i]);
        sorted
    }

    fn model(&self) -> Result<&SvmModel> {
        fitted(&self.model)
    }
}

/// LIBSVM's sparse row format (1-based indices); dense rows keep every feature, as scikit-learn's
/// dense LIBSVM does.
fn nodes(row: ArrayView1<f64>) -> Vec<SvmNode> {
    row.iter().enumerate().map(|(i, &value)| SvmNode { index: i as i32 + 1, value }).collect()
}

impl Supervised for Libsvm {
    fn fit(&mut self, x: &Array2<f64>, y: &Array1<f64>) -> Result<()> {
        let gamma = resolve_gamma(&self.kernel.gamma, x).map_err(BenchError::usage)?;
        let (svm_type, c, nu, p) = match self.formulation {
            Formulation::CSvc { c } => (SvmType::CSvc, c, 0.5, 0.1),
            Formulation::NuSvc { nu } => (SvmType::NuSvc, 1.0, nu, 0.1),
            Formulation::EpsilonSvr { c, epsilon } => (SvmType::EpsilonSvr, c, 0.5, epsilon),
        };
        let param = SvmParameter {
            svm_type,
            kernel_type: match self.kernel.kernel {
                Kernel::Rbf => KernelType::Rbf,
                Kernel::Linear => KernelType::Linear,
                Kernel::Poly => KernelType::Polynomial,
            },
            degree: self.kernel.degree as i32,
            gamma,
            coef0: self.kernel.coef0,
            cache_size: self.kernel.cache_size,
            eps: self.kernel.tol,
            c,
            nu,
            p,
            shrinking: self.kernel.shrinking,
            probability: self.probability,
            ..Default::default()
        };
        param.validate().map_err(|e| BenchError::usage(format!("hyperparameters: {e}")))?;
        let problem = SvmProblem { labels: y.to_vec(), instances: x.rows().into_iter().map(nodes).collect() };
        self.model = Some(svm_train(&problem, &param));
        self.gamma = Some(gamma);
        Ok(())
    }

    fn predict(&self, x: &Array2<f64>) -> Result<Array1<f64>> {
        let model = self.model()?;
        Ok(x.rows().into_iter().map(|row| predict(model, &nodes(row))).collect())
    }

    /// Decision values per class pair, reordered from LIBSVM's label order (first appearance in the
    /// training data) to sorted labels, the order scikit-learn's LIBSVM uses.
    fn scores(&self, x: &Array2<f64>) -> Result<Option<Array2<f64>>> {
        let model = self.model()?;
        if model.param.svm_type == SvmType::EpsilonSvr {
            return Ok(None);
        }
        let sorted = Self::sorted_labels(model);
        let k = sorted.len();
        let pair_index = |a: usize, b: usize| a * k - a * (a + 1) / 2 + (b - a - 1); // a < b, model order
        let mut out = Array2::zeros((x.nrows(), k * (k - 1) / 2));
        let mut values = vec![0.0; k * (k - 1) / 2];
        for (r, row) in x.rows().into_iter().enumerate() {
            predict_values(model, &nodes(row), &mut values);
            let mut column = 0;
            for a in 0..k {
                for b in a + 1..k {
                    let (i, j) = (sorted[a], sorted[b]);
                    out[[r, column]] =
                        if i < j { values[pair_index(i, j)] } else { -values[pair_index(j, i)] };
                    column += 1;
                }
            }
        }
        Ok(Some(out))
    }

    fn probabilities(&self, x: &Array2<f64>) -> Result<Option<Array2<f64>>> {
        let model = self.model()?;
        if !self.probability {
            return Ok(None);
        }
        let sorted = Self::sorted_labels(model);
        let mut out = Array2::zeros((x.nrows(), sorted.len()));
        for (r, row) in x.rows().into_iter().enumerate() {
            let (_, probabilities) = predict_probability(model, &nodes(row))
                .ok_or_else(|| BenchError::run("libsvm-rs gave no probabilities for a probability model"))?;
            for (column, &i) in sorted.iter().enumerate() {
                out[[r, column]] = probabilities[i];
            }
        }
        Ok(Some(out))
    }

    fn solver(&self) -> Solver {
        Solver { name: "SMO (libsvm-rs)".into(), stopping_rule: SMO_RULE.into(), n_iter: None }
    }

    fn resolved(&self) -> BTreeMap<String, f64> {
        self.gamma.map(|g| BTreeMap::from([("gamma".to_string(), g)])).unwrap_or_default()
    }
}
