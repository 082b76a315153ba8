//! The four regression models behind one fit/predict interface.
use bench_core::error::{fitted, BenchError, Result};
use bench_core::harness::Supervised;
use bench_core::record::Solver;
use linfa::prelude::*;
use linfa_elasticnet::ElasticNet;
use linfa_linear::{FittedLinearRegression, LinearRegression, TweedieRegressor};
use ndarray::{Array1, Array2, Axis};

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
///
/// linfa-elasticnet 0.8.1 fits the intercept as the mean of y and centres y only, which is the
/// unpenalised-intercept model scikit-learn fits only when the features have mean 0. They do on a
/// whole training split (standardised with its own statistics), not on a cross-validation fold,
/// where linfa's model differed from scikit-learn's by up to 1.3% of the predictions (found by
/// tests/test_cross_validation.py). So `fit` centres the features first, as scikit-learn's fit
/// does inside its clock, and `predict` adds back the offset `-mean(x)·w`.
pub struct Net {
    settings: NetSettings,
    fitted: Option<(ElasticNet<f64>, f64)>,
}

impl Net {
    pub fn new(settings: NetSettings) -> Self {
        Net { settings, fitted: None }
    }
}

impl Supervised for Net {
    fn fit(&mut self, x: &Array2<f64>, y: &Array1<f64>) -> Result<()> {
        let s = self.settings;
        let mean = x.mean_axis(Axis(0)).ok_or_else(|| BenchError::run("elastic net: no training rows"))?;
        let centred = x - &mean;
        let dataset = DatasetBase::new(centred.view(), y.view());
        let fitted = ElasticNet::params()
            .penalty(s.penalty)
            .l1_ratio(s.l1_ratio)
            .tolerance(s.tol)
            .max_iterations(s.max_iter)
            .with_intercept(true)
            .fit(&dataset)
            .map_err(|e| BenchError::run(e.to_string()))?;
        let offset = -mean.dot(fitted.hyperplane());
        self.fitted = Some((fitted, offset));
        Ok(())
    }

    fn predict(&self, x: &Array2<f64>) -> Result<Array1<f64>> {
        let (model, offset) = fitted(&self.fitted)?;
        Ok(model.predict(x) + *offset)
    }

    fn solver(&self) -> Solver {
        Solver {
            name: "coordinate_descent (cyclic)".into(),
            stopping_rule: CD_RULE.into(),
            n_iter: self.fitted.as_ref().map(|(f, _)| u64::from(f.n_steps())),
        }
    }
}
