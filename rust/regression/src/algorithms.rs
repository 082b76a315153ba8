//! The four regression models behind one fit/predict interface.
use bench_core::error::{fitted, BenchError, Result};
use bench_core::harness::Supervised;
use bench_core::record::Solver;
use linfa::prelude::*;
use linfa_elasticnet::ElasticNet;
use linfa_linear::{FittedLinearRegression, LinearRegression, TweedieRegressor};
use ndarray::{Array1, Array2};

use crate::params::{GlmSettings, NetSettings};

const LBFGS_RULE: &str = "L-BFGS: ||gradient|| < tol or max_iter; linfa does not report iterations";
const CD_RULE: &str = "coordinate descent: max|dw|/max|w| < tol, then duality gap < tol * ||y - mean(y)||^2";

/// Ordinary least squares (linfa-linear, pure-Rust least squares through linfa-linalg).
#[derive(Default)]
pub struct Linear {
    fitted: Option<FittedLinearRegression<f64>>,
}

impl Supervised for Linear {
    fn fit(&mut self, x: &Array2<f64>, y: &Array1<f64>) -> Result<()> {
        let dataset = DatasetBase::new(x.view(), y.view());
        let fitted = LinearRegression::new().fit(&dataset).map_err(|e| BenchError::run(e.to_string()))?;
        self.fitted = Some(fitted);
        Ok(())
    }

    fn predict(&self, x: &Array2<f64>) -> Result<Array1<f64>> {
        Ok(fitted(&self.fitted)?.predict(x))
    }

    fn solver(&self) -> Solver {
        Solver { name: "least squares (linfa-linalg)".into(), stopping_rule: "exact".into(), n_iter: None }
    }
}

/// Ridge: linfa-linear's TweedieRegressor (power 0) minimized by argmin's L-BFGS.
pub struct Ridge {
    settings: GlmSettings,
    fitted: Option<TweedieRegressor<f64>>,
}

impl Ridge {
    pub fn new(settings: GlmSettings) -> Self {
        Ridge { settings, fitted: None }
    }
}

impl Supervised for Ridge {
    fn fit(&mut self, x: &Array2<f64>, y: &Array1<f64>) -> Result<()> {
        let s = self.settings;
        let dataset = DatasetBase::new(x.view(), y.view());
        let fitted = TweedieRegressor::params()
            .power(s.power)
            .alpha(s.alpha)
            .tol(s.tol)
            .max_iter(s.max_iter as usize)
            .fit_intercept(true)
            .fit(&dataset)
            .map_err(|e| BenchError::run(e.to_string()))?;
        self.fitted = Some(fitted);
        Ok(())
    }

    fn predict(&self, x: &Array2<f64>) -> Result<Array1<f64>> {
        Ok(fitted(&self.fitted)?.predict(x))
    }

    fn solver(&self) -> Solver {
        Solver {
            name: "lbfgs (argmin, TweedieRegressor power 0)".into(),
            stopping_rule: LBFGS_RULE.into(),
            n_iter: None,
        }
    }
}

/// Lasso and elastic net: linfa-elasticnet's coordinate descent, with settings mapped from
/// scikit-learn's parameters by `params`.
pub struct Net {
    settings: NetSettings,
    fitted: Option<ElasticNet<f64>>,
}

impl Net {
    pub fn new(settings: NetSettings) -> Self {
        Net { settings, fitted: None }
    }
}

impl Supervised for Net {
    fn fit(&mut self, x: &Array2<f64>, y: &Array1<f64>) -> Result<()> {
        let s = self.settings;
        let dataset = DatasetBase::new(x.view(), y.view());
        let fitted = ElasticNet::params()
            .penalty(s.penalty)
            .l1_ratio(s.l1_ratio)
            .tolerance(s.tol)
            .max_iterations(s.max_iter)
            .with_intercept(true)
            .fit(&dataset)
            .map_err(|e| BenchError::run(e.to_string()))?;
        self.fitted = Some(fitted);
        Ok(())
    }

    fn predict(&self, x: &Array2<f64>) -> Result<Array1<f64>> {
        Ok(fitted(&self.fitted)?.predict(x))
    }

    fn solver(&self) -> Solver {
        Solver {
            name: "coordinate_descent (cyclic)".into(),
            stopping_rule: CD_RULE.into(),
            n_iter: self.fitted.as_ref().map(|f| u64::from(f.n_steps())),
        }
    }
}
