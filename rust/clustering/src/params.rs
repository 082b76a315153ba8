//! Typed hyperparameters (unknown keys rejected) and the mapping of scikit-learn's settings onto
//! linfa's and kodama's.
//!
//! k-means: scikit-learn stops when the squared Frobenius norm of the centre shift is <= tol times
//! the mean per-feature variance of X; linfa stops when the (unsquared) norm of the shift is below its
//! tolerance, so linfa gets sqrt(tol * mean variance). DBSCAN: both count the point itself in
//! min_samples and take eps as a Euclidean distance; linfa marks noise `None`, written as -1.
use ndarray::{Array2, Axis};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub enum Init {
    #[serde(rename = "k-means++")]
    KMeansPlusPlus,
    #[serde(rename = "first_k")]
    FirstK,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KMeansParams {
    pub n_clusters: usize,
    pub init: Init,
    pub n_init: usize,
    pub max_iter: u64,
    pub tol: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbscanParams {
    pub eps: f64,
    pub min_samples: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Linkage {
    Ward,
    Complete,
    Average,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgglomerativeParams {
    pub n_clusters: usize,
    pub linkage: Linkage,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Covariance {
    Full,
    Tied,
    Diag,
    Spherical,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GaussianMixtureParams {
    pub n_components: usize,
    pub covariance_type: Covariance,
    pub tol: f64,
    pub max_iter: u64,
    pub n_init: u64,
    pub reg_covar: f64,
}

/// scikit-learn's absolute k-means tolerance: tol times the mean of the per-feature variances.
pub fn kmeans_absolute_tol(tol: f64, x: &Array2<f64>) -> f64 {
    tol * x.var_axis(Axis(0), 0.0).mean().unwrap_or(0.0)
}

/// linfa compares the unsquared norm of the centre shift.
pub fn linfa_kmeans_tol(tol: f64, x: &Array2<f64>) -> f64 {
    kmeans_absolute_tol(tol, x).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn kmeans_tolerance_follows_scikit_learn() {
        let x = array![[0.0, 0.0], [2.0, 4.0]]; // variances 1 and 4: mean 2.5
        assert_eq!(kmeans_absolute_tol(1e-4, &x), 2.5e-4);
        assert!((linfa_kmeans_tol(1e-4, &x) - 2.5e-4f64.sqrt()).abs() < 1e-18);
    }
}
