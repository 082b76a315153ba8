//! The `linfa` framework: linfa-svm's binary SMO solver. linfa has no multiclass SVM, so
//! classification trains one binary model per pair of classes and votes, as LIBSVM (and so
//! scikit-learn's SVC) does: the same one-vs-one strategy on both sides.
use std::collections::BTreeMap;

use bench_core::error::{fitted, BenchError, Result};
use bench_core::harness::Supervised;
use bench_core::record::Solver;
use linfa::prelude::*;
use linfa_svm::{Svm, SvmParams};
use ndarray::{Array1, Array2, Axis};

use crate::params::{resolve_gamma, Kernel, KernelParams};

const SMO_RULE: &str = "SMO (linfa-svm): max violating pair's gradient gap < tol; dense precomputed kernel, \
cache_size unused";

/// Kernel settings mapped onto linfa (params.rs), and the feature scaling poly needs.
#[derive(Debug, Clone, Copy)]
struct LinfaKernel {
    gamma: f64,
    scale: f64,
}

fn configure<T>(params: SvmParams<f64, T>, kernel: &KernelParams, mapped: LinfaKernel) -> SvmParams<f64, T> {
    let params = params.eps(kernel.tol).shrinking(kernel.shrinking);
    match kernel.kernel {
        Kernel::Rbf => params.gaussian_kernel(1.0 / mapped.gamma),
        Kernel::Linear => params.linear_kernel(),
        Kernel::Poly => params.polynomial_kernel(kernel.coef0, f64::from(kernel.degree)),
    }
}

fn map_kernel(kernel: &KernelParams, x: &Array2<f64>) -> Result<LinfaKernel> {
    let gamma = resolve_gamma(&kernel.gamma, x).map_err(BenchError::usage)?;
    let scale = if kernel.kernel == Kernel::Poly { gamma.sqrt() } else { 1.0 };
    Ok(LinfaKernel { gamma, scale })
}

/// linfa reports iterations only through its Display text ("Exited after N iterations ...").
fn iterations<T>(model: &Svm<f64, T>) -> u64 {
    let text = model.to_string();
    text.split_whitespace().find_map(|word| word.parse::<u64>().ok()).unwrap_or(0)
}

#[derive(Debug, Clone, Copy)]
pub enum Penalty {
    C(f64),
    Nu(f64),
}

/// One-vs-one classification over linfa's binary SVM.
pub struct LinfaSvc {
    penalty: Penalty,
    kernel: KernelParams,
    mapped: Option<LinfaKernel>,
    classes: Vec<f64>,
    /// Model for each class pair (a, b), a < b in sorted order; positive decision: class a.
    pairs: Vec<Svm<f64, bool>>,
}

impl LinfaSvc {
    pub fn new(penalty: Penalty, kernel: KernelParams) -> Self {
        LinfaSvc { penalty, kernel, mapped: None, classes: Vec::new(), pairs: Vec::new() }
    }

    fn decision_values(&self, x: &Array2<f64>) -> Result<Array2<f64>> {
        let mapped = *fitted(&self.mapped)?;
        let x = x * mapped.scale;
        let mut out = Array2::zeros((x.nrows(), self.pairs.len()));
        for (column, model) in self.pairs.iter().enumerate() {
            for (r, row) in x.rows().into_iter().enumerate() {
                out[[r, column]] = model.weighted_sum(&row) - model.rho;
            }
        }
        Ok(out)
    }
}

impl Supervised for LinfaSvc {
    fn fit(&mut self, x: &Array2<f64>, y: &Array1<f64>) -> Result<()> {
        let mapped = map_kernel(&self.kernel, x)?;
        let x = x * mapped.scale;
        let mut classes: Vec<f64> = y.to_vec();
        classes.sort_by(f64::total_cmp);
        classes.dedup();
        self.pairs.clear();
        for (a, &class_a) in classes.iter().enumerate() {
            for &class_b in &classes[a + 1..] {
                let rows: Vec<usize> = (0..y.len()).filter(|&i| y[i] == class_a || y[i] == class_b).collect();
                let records = x.select(Axis(0), &rows);
                let targets: Array1<bool> = rows.iter().map(|&i| y[i] == class_a).collect();
                let params = match self.penalty {
                    Penalty::C(c) => Svm::<f64, bool>::params().pos_neg_weights(c, c),
                    Penalty::Nu(nu) => Svm::<f64, bool>::params().nu_weight(nu),
                };
                let model = configure(params, &self.kernel, mapped)
                    .fit(&DatasetBase::new(records, targets))
                    .map_err(|e| BenchError::run(format!("linfa-svm: {e}")))?;
                self.pairs.push(model);
            }
        }
        self.classes = classes;
        self.mapped = Some(mapped);
        Ok(())
    }

    /// LIBSVM's vote: each pair votes for its winner; the most votes win, ties to the lower class.
    fn predict(&self, x: &Array2<f64>) -> Result<Array1<f64>> {
        let values = self.decision_values(x)?;
        let k = self.classes.len();
        Ok(values
            .rows()
            .into_iter()
            .map(|row| {
                let mut votes = vec![0usize; k];
                let mut column = 0;
                for a in 0..k {
                    for b in a + 1..k {
                        votes[if row[column] > 0.0 { a } else { b }] += 1;
                        column += 1;
                    }
                }
                let best = (0..k).fold(0, |best, c| if votes[c] > votes[best] { c } else { best });
                self.classes[best]
            })
            .collect())
    }

    fn scores(&self, x: &Array2<f64>) -> Result<Option<Array2<f64>>> {
        self.decision_values(x).map(Some)
    }

    fn solver(&self) -> Solver {
        let n_iter = self.pairs.iter().map(iterations).sum();
        Solver {
            name: "SMO (linfa-svm), one-vs-one".into(),
            stopping_rule: SMO_RULE.into(),
            n_iter: Some(n_iter),
        }
    }

    fn resolved(&self) -> BTreeMap<String, f64> {
        self.mapped.map(|m| BTreeMap::from([("gamma".to_string(), m.gamma)])).unwrap_or_default()
    }
}

/// Epsilon-SVR over linfa's regression SVM.
pub struct LinfaSvr {
    c: f64,
    epsilon: f64,
    kernel: KernelParams,
    mapped: Option<LinfaKernel>,
    model: Option<Svm<f64, f64>>,
}

impl LinfaSvr {
    pub fn new(c: f64, epsilon: f64, kernel: KernelParams) -> Self {
        LinfaSvr { c, epsilon, kernel, mapped: None, model: None }
    }
}

impl Supervised for LinfaSvr {
    fn fit(&mut self, x: &Array2<f64>, y: &Array1<f64>) -> Result<()> {
        let mapped = map_kernel(&self.kernel, x)?;
        let params = Svm::<f64, f64>::params().c_svr(self.c, Some(self.epsilon));
        let model = configure(params, &self.kernel, mapped)
            .fit(&DatasetBase::new(x * mapped.scale, y.clone()))
            .map_err(|e| BenchError::run(format!("linfa-svm: {e}")))?;
        self.model = Some(model);
        self.mapped = Some(mapped);
        Ok(())
    }

    fn predict(&self, x: &Array2<f64>) -> Result<Array1<f64>> {
        let (model, mapped) =
            self.model.as_ref().zip(self.mapped).ok_or_else(|| BenchError::run("predict before fit"))?;
        Ok(model.predict(&(x * mapped.scale)))
    }

    fn solver(&self) -> Solver {
        Solver {
            name: "SMO (linfa-svm)".into(),
            stopping_rule: SMO_RULE.into(),
            n_iter: self.model.as_ref().map(iterations),
        }
    }

    fn resolved(&self) -> BTreeMap<String, f64> {
        self.mapped.map(|m| BTreeMap::from([("gamma".to_string(), m.gamma)])).unwrap_or_default()
    }
}
