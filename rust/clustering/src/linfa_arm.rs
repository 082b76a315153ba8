//! The `linfa` framework: linfa-clustering's k-means, DBSCAN and Gaussian mixture.
use std::collections::BTreeMap;

use bench_core::error::{fitted, BenchError, Result};
use bench_core::harness::Clusterer;
use bench_core::record::Solver;
use linfa::prelude::*;
use linfa_clustering::{Dbscan, GaussianMixtureModel, GmmCovarType, GmmInitMethod, KMeans, KMeansInit};
use ndarray::{s, Array1, Array2};
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;

use crate::params::{
    kmeans_absolute_tol, linfa_kmeans_tol, DbscanParams, GaussianMixtureParams, Init, KMeansParams,
};

const LLOYD_RULE: &str = "Lloyd: centre shift norm < sqrt(tol * mean feature variance), or max_iter; \
linfa does not report iterations";
const EM_RULE: &str = "EM: change of the log-likelihood < tol, or max_iter; linfa does not report iterations";

fn to_labels(labels: Array1<usize>) -> Array1<f64> {
    labels.mapv(|l| l as f64)
}

pub struct LinfaKMeans {
    params: KMeansParams,
    seed: u64,
    absolute_tol: Option<f64>,
    model: Option<KMeans<f64, linfa_nn::distance::L2Dist>>,
}

impl LinfaKMeans {
    pub fn new(params: KMeansParams, seed: u64) -> Self {
        LinfaKMeans { params, seed, absolute_tol: None, model: None }
    }

    fn model(&self) -> Result<&KMeans<f64, linfa_nn::distance::L2Dist>> {
        fitted(&self.model)
    }
}

impl Clusterer for LinfaKMeans {
    fn fit(&mut self, x: &Array2<f64>) -> Result<()> {
        let p = &self.params;
        let init = match p.init {
            Init::KMeansPlusPlus => KMeansInit::KMeansPlusPlus,
            Init::FirstK => KMeansInit::Precomputed(x.slice(s![..p.n_clusters, ..]).to_owned()),
        };
        let model = KMeans::params_with_rng(p.n_clusters, Xoshiro256Plus::seed_from_u64(self.seed))
            .n_runs(p.n_init)
            .tolerance(linfa_kmeans_tol(p.tol, x))
            .max_n_iterations(p.max_iter)
            .init_method(init)
            .fit(&DatasetBase::from(x.view()))
            .map_err(|e| BenchError::run(format!("linfa k-means: {e}")))?;
        self.model = Some(model);
        self.absolute_tol = Some(kmeans_absolute_tol(p.tol, x));
        Ok(())
    }

    fn labels(&self, x: &Array2<f64>) -> Result<Array1<f64>> {
        Ok(to_labels(self.model()?.predict(x)))
    }

    fn can_predict(&self) -> bool {
        true
    }

    fn predict(&self, x: &Array2<f64>) -> Result<Array1<f64>> {
        self.model().map(|m| to_labels(m.predict(x)))
    }

    fn solver(&self) -> Solver {
        Solver { name: "Lloyd (linfa-clustering)".into(), stopping_rule: LLOYD_RULE.into(), n_iter: None }
    }

    fn resolved(&self) -> BTreeMap<String, f64> {
        self.absolute_tol.map(|t| BTreeMap::from([("absolute_tol".to_string(), t)])).unwrap_or_default()
    }
}

pub struct LinfaDbscan {
    params: DbscanParams,
    labels: Option<Array1<f64>>,
}

impl LinfaDbscan {
    pub fn new(params: DbscanParams) -> Self {
        LinfaDbscan { params, labels: None }
    }
}

impl Clusterer for LinfaDbscan {
    fn fit(&mut self, x: &Array2<f64>) -> Result<()> {
        let clusters = Dbscan::params(self.params.min_samples)
            .tolerance(self.params.eps)
            .transform(x)
            .map_err(|e| BenchError::run(format!("linfa DBSCAN: {e}")))?;
        self.labels = Some(clusters.mapv(|c| c.map_or(-1.0, |l| l as f64)));
        Ok(())
    }

    fn labels(&self, _x: &Array2<f64>) -> Result<Array1<f64>> {
        fitted(&self.labels).cloned()
    }

    fn solver(&self) -> Solver {
        Solver {
            name: "DBSCAN (linfa-clustering, k-d tree)".into(),
            stopping_rule: "exact".into(),
            n_iter: None,
        }
    }
}

pub struct LinfaGmm {
    params: GaussianMixtureParams,
    seed: u64,
    model: Option<GaussianMixtureModel<f64>>,
}

impl LinfaGmm {
    /// linfa has only full covariance matrices; the caller reports the other types unsupported.
    pub fn new(params: GaussianMixtureParams, seed: u64) -> Self {
        LinfaGmm { params, seed, model: None }
    }

    fn model(&self) -> Result<&GaussianMixtureModel<f64>> {
        fitted(&self.model)
    }
}

impl Clusterer for LinfaGmm {
    fn fit(&mut self, x: &Array2<f64>) -> Result<()> {
        let p = &self.params;
        let model =
            GaussianMixtureModel::params_with_rng(p.n_components, Xoshiro256Plus::seed_from_u64(self.seed))
                .covariance_type(GmmCovarType::Full)
                .tolerance(p.tol)
                .max_n_iterations(p.max_iter)
                .n_runs(p.n_init)
                .reg_covariance(p.reg_covar)
                .init_method(GmmInitMethod::KMeans)
                .fit(&DatasetBase::from(x.view()))
                .map_err(|e| BenchError::run(format!("linfa Gaussian mixture: {e}")))?;
        self.model = Some(model);
        Ok(())
    }

    fn labels(&self, x: &Array2<f64>) -> Result<Array1<f64>> {
        Ok(to_labels(self.model()?.predict(x)))
    }

    fn can_predict(&self) -> bool {
        true
    }

    fn predict(&self, x: &Array2<f64>) -> Result<Array1<f64>> {
        self.model().map(|m| to_labels(m.predict(x)))
    }

    fn solver(&self) -> Solver {
        Solver { name: "EM (linfa-clustering)".into(), stopping_rule: EM_RULE.into(), n_iter: None }
    }
}
