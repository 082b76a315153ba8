//! Build script shared by the task crates: reads the resolved versions of the framework crates from
//! Cargo.lock into `MLBENCH_VERSION_<CRATE>` (e.g. MLBENCH_VERSION_LIBSVM_RS), so that records name
//! the exact framework version that ran.
const FRAMEWORKS: [&str; 7] =
    ["linfa", "libsvm-rs", "kodama", "linfa-clustering", "tch", "candle-core", "burn"];

pub fn main() {
    // The crate's own lockfile first (rust/cnn-burn is its own workspace), else the workspace's.
    let lock = std::fs::read_to_string("Cargo.lock")
        .or_else(|_| std::fs::read_to_string("../Cargo.lock"))
        .unwrap_or_default();
    for name in FRAMEWORKS {
        let version = lock
            .split("[[package]]")
            .find(|block| block.contains(&format!("name = \"{name}\"\n")))
            .and_then(|block| block.lines().find(|l| l.starts_with("version = ")))
            .map(|l| l.trim_start_matches("version = ").trim_matches('"').to_string())
            .unwrap_or_else(|| "unknown".into());
        let variable = name.to_uppercase().replace('-', "_");
        println!("cargo:rustc-env=MLBENCH_VERSION_{variable}={version}");
    }
    println!("cargo:rerun-if-changed=../Cargo.lock");
    println!("cargo:rerun-if-changed=Cargo.lock");
}
