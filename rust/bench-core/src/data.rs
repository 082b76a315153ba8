//! Prepared datasets: `datasets/<name>/{X,y}_{train,test}.npy` (or a rollouts set's actions and
//! starts, or a prompts or texts set's model files and token ids) checked against meta.json's sha256.
//! Mirrors python/mlbench/datasets.py; the dataset digest is the sha256 of meta.json.
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use ndarray::{Array1, Array2};
use ndarray_npy::{read_npy, ReadNpyExt};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{BenchError, Result};

pub const FILES: [&str; 4] = ["X_train.npy", "X_test.npy", "y_train.npy", "y_test.npy"];
/// A prompts set's files (python/mlbench/datasets.py's PROMPT_FILES).
pub const PROMPT_FILES: [&str; 4] = ["config.json", "model.safetensors", "prompts.npy", "heldout.npy"];
/// A texts set's files (python/mlbench/datasets.py's TEXT_FILES).
pub const TEXT_FILES: [&str; 5] =
    ["config.json", "model.safetensors", "heads.safetensors", "ids.npy", "mask.npy"];

#[derive(Debug, Deserialize)]
struct FileMeta {
    sha256: String,
}

#[derive(Debug, Deserialize)]
struct Meta {
    files: BTreeMap<String, FileMeta>,
    #[serde(default)]
    layout: Option<String>,
    #[serde(default)]
    start: Option<String>,
}

impl Meta {
    /// The files a layout cannot do without (a split's four arrays; a rollouts set's actions and
    /// starts), checked beside every file meta.json lists.
    fn required_files(&self) -> Vec<&'static str> {
        match (self.layout.as_deref(), self.start.as_deref()) {
            (Some("rollouts"), Some("states")) => vec!["actions.npy", "starts.npy"],
            (Some("rollouts"), _) => vec!["actions.npy", "reset_seeds.npy"],
            (Some("prompts"), _) => PROMPT_FILES.to_vec(),
            (Some("texts"), _) => TEXT_FILES.to_vec(),
            _ => FILES.to_vec(),
        }
    }
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| BenchError::usage(format!("{}: cannot open: {e}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|e| BenchError::usage(format!("{}: cannot read: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Check every file of a dataset against meta.json and return the dataset digest.
pub fn verify(name: &str, datasets_dir: &Path) -> Result<String> {
    let folder = datasets_dir.join(name);
    let meta_path = folder.join("meta.json");
    if !meta_path.is_file() {
        return Err(BenchError::usage(format!(
            "dataset {name:?} is not prepared in {} (run `make datasets`)",
            datasets_dir.display()
        )));
    }
    let text = std::fs::read_to_string(&meta_path)
        .map_err(|e| BenchError::usage(format!("{}: cannot read: {e}", meta_path.display())))?;
    let meta: Meta = serde_json::from_str(&text)
        .map_err(|e| BenchError::usage(format!("{}: corrupt meta.json: {e}", meta_path.display())))?;
    let mut files: Vec<&str> = meta.files.keys().map(String::as_str).collect();
    files.extend(meta.required_files());
    files.sort_unstable();
    files.dedup();
    for file in files {
        let path = folder.join(file);
        if !path.is_file() {
            return Err(BenchError::usage(format!(
                "{}: missing file of dataset {name:?} (run `make datasets`)",
                path.display()
            )));
        }
        let expected = meta.files.get(file).map(|f| f.sha256.as_str()).unwrap_or("");
        if sha256_file(&path)? != expected {
            return Err(BenchError::usage(format!(
                "{}: sha256 mismatch with meta.json: the dataset is corrupt or was changed; \
                 run `make datasets` to prepare it again",
                path.display()
            )));
        }
    }
    sha256_file(&meta_path)
}

/// meta.json of a dataset that must be in `layout` (`what`: the layout in words), read into `T`
/// (python/mlbench/datasets.py's `meta_of_layout`).
pub fn meta_of_layout<T: DeserializeOwned>(
    name: &str,
    datasets_dir: &Path,
    layout: &str,
    what: &str,
) -> Result<T> {
    let meta_path = datasets_dir.join(name).join("meta.json");
    let text = std::fs::read_to_string(&meta_path)
        .map_err(|e| BenchError::usage(format!("{}: cannot read: {e}", meta_path.display())))?;
    let meta: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| BenchError::usage(format!("{}: corrupt meta.json: {e}", meta_path.display())))?;
    let found = meta.get("layout").and_then(serde_json::Value::as_str);
    if found != Some(layout) {
        return Err(BenchError::usage(format!(
            "dataset {name:?} is not {what} (layout {})",
            found.unwrap_or("tabular")
        )));
    }
    serde_json::from_value(meta)
        .map_err(|e| BenchError::usage(format!("{}: corrupt meta.json: {e}", meta_path.display())))
}

/// The four arrays of a prepared split. Features are float64; targets are float64 for regression
/// and int64 class labels otherwise, read here as f64 (labels 0..k-1 are exact).
pub struct Split {
    pub x_train: Array2<f64>,
    pub x_test: Array2<f64>,
    pub y_train: Array1<f64>,
    pub y_test: Array1<f64>,
}

/// Read a split (call `verify` once per process first).
pub fn load_split(name: &str, datasets_dir: &Path) -> Result<Split> {
    let folder = datasets_dir.join(name);
    Ok(Split {
        x_train: read(&folder, "X_train.npy")?,
        x_test: read(&folder, "X_test.npy")?,
        y_train: read_target(&folder, "y_train.npy")?,
        y_test: read_target(&folder, "y_test.npy")?,
    })
}

fn read<T: ReadNpyExt>(folder: &Path, file: &str) -> Result<T> {
    let path = folder.join(file);
    read_npy(&path).map_err(|e| BenchError::usage(format!("{}: cannot read .npy: {e}", path.display())))
}

fn read_target(folder: &Path, file: &str) -> Result<Array1<f64>> {
    match read::<Array1<f64>>(folder, file) {
        Ok(values) => Ok(values),
        Err(_) => Ok(read::<Array1<i64>>(folder, file)?.mapv(|label| label as f64)),
    }
}

/// Reads and checks a `cv_folds` job's folds file as Python's `folds.load` does: one fold in
/// 0..k-1 per training row, every fold non-empty. Errors name the file.
pub fn load_folds(path: &Path, n_train: usize, k: u32) -> Result<Vec<usize>> {
    let in_file = |message: String| BenchError::usage(format!("{}: {message}", path.display()));
    let folds: Array1<i64> =
        read_npy(path).map_err(|e| in_file(format!("cannot read the folds file: {e}")))?;
    if folds.len() != n_train {
        return Err(in_file(format!("{} folds for {n_train} training rows", folds.len())));
    }
    let (lowest, highest) = (folds.iter().min().copied(), folds.iter().max().copied());
    if let (Some(lowest), Some(highest)) = (lowest, highest) {
        if lowest < 0 || highest >= i64::from(k) {
            return Err(in_file(format!(
                "fold numbers must lie in 0..{}, found {lowest}..{highest}",
                i64::from(k) - 1
            )));
        }
    }
    let mut sizes = vec![0usize; k as usize];
    for &fold in &folds {
        sizes[fold as usize] += 1;
    }
    let non_empty = sizes.iter().filter(|&&n| n > 0).count();
    if non_empty != k as usize {
        return Err(in_file(format!("{k} folds expected, {non_empty} are non-empty")));
    }
    Ok(folds.iter().map(|&fold| fold as usize).collect())
}

/// A model folder's config.json (a prompts or texts set's), read into the fields `T` names;
/// `fields` says which in the one-line error.
pub fn read_model_config<T: DeserializeOwned>(folder: &Path, fields: &str) -> Result<T> {
    let path = folder.join("config.json");
    std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
        .map_err(|e| {
            BenchError::usage(format!("{}: not a model configuration with {fields}: {e}", path.display()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn folds_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("folds.npy");
        ndarray_npy::write_npy(&path, &ndarray::arr1(&[0i64, 1, 2, 0, 1, 2])).unwrap();
        assert_eq!(load_folds(&path, 6, 3).unwrap(), vec![0, 1, 2, 0, 1, 2]);
        let short = load_folds(&path, 7, 3).unwrap_err();
        assert!(short.to_string().contains("6 folds for 7 training rows"), "{short}");
        let range = load_folds(&path, 6, 2).unwrap_err();
        assert!(range.to_string().contains("must lie in 0..1"), "{range}");
        let empty = load_folds(&path, 6, 4).unwrap_err();
        assert!(empty.to_string().contains("4 folds expected, 3 are non-empty"), "{empty}");
        assert_eq!(load_folds(&dir.path().join("none.npy"), 6, 3).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn missing_dataset_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = verify("nothing", dir.path()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("not prepared"), "{err}");
    }
}
