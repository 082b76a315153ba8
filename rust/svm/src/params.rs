//! Typed hyperparameters (unknown keys rejected) and the mapping of scikit-learn's kernel
//! parametrization onto each Rust framework's.
//!
//! scikit-learn: rbf exp(-gamma ||x - x'||^2), poly (gamma <x, x'> + coef0)^degree, linear <x, x'>.
//! libsvm-rs takes the same gamma, degree and coef0 (it is LIBSVM). linfa-kernel has
//! Gaussian(eps) = exp(-||x - x'||^2 / eps), so eps = 1 / gamma; and Polynomial(c, d) =
//! (<x, x'> + c)^d with no gamma, so both sides' features are scaled by sqrt(gamma) first:
//! <sqrt(g) x, sqrt(g) x'> = g <x, x'>.
use ndarray::Array2;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kernel {
    Rbf,
    Linear,
    Poly,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Gamma {
    Value(f64),
    Named(String),
}

/// The kernel and solver settings every kernel SVM shares.
#[derive(Debug, Clone)]
pub struct KernelParams {
    pub kernel: Kernel,
    pub gamma: Gamma,
    pub degree: u32,
    pub coef0: f64,
    pub tol: f64,
    pub cache_size: f64,
    pub shrinking: bool,
}

/// One struct per algorithm, every key spelled out: serde cannot reject unknown keys through
/// `flatten`, and a typo must not pass silently.
macro_rules! kernel_svm_params {
    ($name:ident { $($field:ident: $type:ty $(as $key:literal)?),* }) => {
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[serde(rename = $key)])? pub $field: $type,)*
            pub kernel: Kernel,
            pub gamma: Gamma,
            pub degree: u32,
            pub coef0: f64,
            pub tol: f64,
            pub cache_size: f64,
            pub shrinking: bool,
        }

        impl $name {
            pub fn kernel_params(&self) -> KernelParams {
                KernelParams {
                    kernel: self.kernel,
                    gamma: self.gamma.clone(),
                    degree: self.degree,
                    coef0: self.coef0,
                    tol: self.tol,
                    cache_size: self.cache_size,
                    shrinking: self.shrinking,
                }
            }
        }
    };
}

kernel_svm_params!(SvcParams { c: f64 as "C", probability: bool });
kernel_svm_params!(NuSvcParams { nu: f64, probability: bool });
kernel_svm_params!(SvrParams { c: f64 as "C", epsilon: f64 });

/// The gamma used: scikit-learn's `scale` is 1 / (n_features * X.var()) over all entries of the
/// training features (population variance), `auto` is 1 / n_features.
pub fn resolve_gamma(gamma: &Gamma, x: &Array2<f64>) -> Result<f64, String> {
    let n_features = x.ncols() as f64;
    match gamma {
        Gamma::Value(value) => Ok(*value),
        Gamma::Named(name) if name == "auto" => Ok(1.0 / n_features),
        Gamma::Named(name) if name == "scale" => {
            let variance = x.var(0.0);
            Ok(if variance > 0.0 { 1.0 / (n_features * variance) } else { 1.0 })
        }
        Gamma::Named(other) => Err(format!("gamma: expected a number, scale or auto, got {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn scale_and_auto_follow_scikit_learn() {
        let x = array![[1.0, 2.0], [3.0, 6.0]]; // entries 1, 2, 3, 6: mean 3, variance 3.5
        assert_eq!(resolve_gamma(&Gamma::Named("auto".into()), &x).unwrap(), 0.5);
        assert!((resolve_gamma(&Gamma::Named("scale".into()), &x).unwrap() - 1.0 / 7.0).abs() < 1e-15);
        assert_eq!(resolve_gamma(&Gamma::Value(0.1), &x).unwrap(), 0.1);
        assert!(resolve_gamma(&Gamma::Named("big".into()), &x).is_err());
    }
}
