//! Typed hyperparameters per algorithm (unknown keys rejected) and the one place where
//! scikit-learn's parametrization is mapped onto linfa's.
//!
//! linfa's ElasticNet minimizes
//!     1/(2n) ||y - Xw||^2 + penalty * l1_ratio * ||w||_1 + penalty * (1 - l1_ratio)/2 * ||w||^2
//! which is exactly scikit-learn's Lasso/ElasticNet objective with penalty = alpha.
//!
//! scikit-learn's Ridge minimizes ||y - Xw - b||^2 + alpha ||w||^2. linfa's ElasticNet could reach
//! it (l1_ratio = 0, penalty = alpha / n), but its duality-gap stopping test degenerates without an
//! L1 term and it always runs max_iter sweeps. linfa's TweedieRegressor with power 0 (normal
//! distribution, identity link) minimizes 0.5 * (sum of squared residuals + alpha ||w||^2), with
//! the intercept unpenalized: the same minimizer with alpha passed through unchanged.
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RidgeParams {
    pub alpha: f64,
    pub tol: f64,
    pub max_iter: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LassoParams {
    pub alpha: f64,
    pub tol: f64,
    pub max_iter: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticNetParams {
    pub alpha: f64,
    pub l1_ratio: f64,
    pub tol: f64,
    pub max_iter: u32,
}

/// The linfa ElasticNet settings that reproduce a scikit-learn model's objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetSettings {
    pub penalty: f64,
    pub l1_ratio: f64,
    pub tol: f64,
    pub max_iter: u32,
}

/// The linfa TweedieRegressor settings that reproduce scikit-learn's Ridge objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GlmSettings {
    pub power: f64,
    pub alpha: f64,
    pub tol: f64,
    pub max_iter: u64,
}

pub fn ridge_settings(p: &RidgeParams) -> GlmSettings {
    GlmSettings { power: 0.0, alpha: p.alpha, tol: p.tol, max_iter: u64::from(p.max_iter) }
}

pub fn lasso_settings(p: &LassoParams) -> NetSettings {
    NetSettings { penalty: p.alpha, l1_ratio: 1.0, tol: p.tol, max_iter: p.max_iter }
}

pub fn elastic_net_settings(p: &ElasticNetParams) -> NetSettings {
    NetSettings { penalty: p.alpha, l1_ratio: p.l1_ratio, tol: p.tol, max_iter: p.max_iter }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ridge_is_a_normal_glm_with_the_same_alpha() {
        let p = RidgeParams { alpha: 10.0, tol: 1e-8, max_iter: 10 };
        let s = ridge_settings(&p);
        assert_eq!((s.power, s.alpha), (0.0, 10.0));
    }

    #[test]
    fn lasso_and_elastic_net_keep_alpha() {
        let lasso = lasso_settings(&LassoParams { alpha: 0.3, tol: 1e-4, max_iter: 5 });
        assert_eq!((lasso.penalty, lasso.l1_ratio), (0.3, 1.0));
        let net =
            elastic_net_settings(&ElasticNetParams { alpha: 0.3, l1_ratio: 0.2, tol: 1e-4, max_iter: 5 });
        assert_eq!((net.penalty, net.l1_ratio), (0.3, 0.2));
    }
}
