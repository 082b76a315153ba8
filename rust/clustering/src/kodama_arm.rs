//! The `kodama` framework: agglomerative clustering on Euclidean distances (a Rust port of
//! fastcluster, the algorithm scipy uses), cut into n_clusters as scikit-learn does.
use bench_core::error::{fitted, BenchError, Result};
use bench_core::harness::Clusterer;
use bench_core::record::Solver;
use kodama::{linkage, Dendrogram, Method};
use ndarray::{Array1, Array2};

use crate::params::{AgglomerativeParams, Linkage};

pub struct Agglomerative {
    params: AgglomerativeParams,
    labels: Option<Array1<f64>>,
}

impl Agglomerative {
    pub fn new(params: AgglomerativeParams) -> Self {
        Agglomerative { params, labels: None }
    }
}

/// Upper triangle of the Euclidean distance matrix, row by row (kodama's condensed form).
fn condensed_distances(x: &Array2<f64>) -> Vec<f64> {
    let n = x.nrows();
    let mut out = Vec::with_capacity(n * (n - 1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            let d: f64 = x.row(i).iter().zip(x.row(j)).map(|(a, b)| (a - b) * (a - b)).sum();
            out.push(d.sqrt());
        }
    }
    out
}

/// Labels after the first n - k merges, numbered by first appearance.
pub fn cut(dendrogram: &Dendrogram<f64>, n: usize, k: usize) -> Array1<f64> {
    let mut parent: Vec<usize> = (0..2 * n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (step, merge) in dendrogram.steps().iter().take(n.saturating_sub(k)).enumerate() {
        let new = n + step;
        let (a, b) = (root(&mut parent, merge.cluster1), root(&mut parent, merge.cluster2));
        parent[a] = new;
        parent[b] = new;
    }
    let mut names = std::collections::HashMap::new();
    (0..n)
        .map(|i| {
            let r = root(&mut parent, i);
            let next = names.len();
            *names.entry(r).or_insert(next) as f64
        })
        .collect()
}

impl Clusterer for Agglomerative {
    fn fit(&mut self, x: &Array2<f64>) -> Result<()> {
        let n = x.nrows();
        if self.params.n_clusters > n {
            return Err(BenchError::usage(format!("n_clusters {} > {n} samples", self.params.n_clusters)));
        }
        let method = match self.params.linkage {
            Linkage::Ward => Method::Ward,
            Linkage::Complete => Method::Complete,
            Linkage::Average => Method::Average,
        };
        let mut distances = condensed_distances(x);
        let dendrogram = linkage(&mut distances, n, method);
        self.labels = Some(cut(&dendrogram, n, self.params.n_clusters));
        Ok(())
    }

    fn labels(&self, _x: &Array2<f64>) -> Result<Array1<f64>> {
        fitted(&self.labels).cloned()
    }

    fn solver(&self) -> Solver {
        Solver {
            name: "kodama linkage (fastcluster), Euclidean".into(),
            stopping_rule: "exact".into(),
            n_iter: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn two_obvious_groups() {
        let x = array![[0.0], [0.1], [10.0], [10.2], [0.2]];
        let mut model = Agglomerative::new(AgglomerativeParams { n_clusters: 2, linkage: Linkage::Ward });
        model.fit(&x).unwrap();
        assert_eq!(model.labels(&x).unwrap().to_vec(), vec![0.0, 0.0, 1.0, 1.0, 0.0]);
    }
}
