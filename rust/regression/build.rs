//! Reads the resolved linfa version from Cargo.lock, so records name the exact framework version.
fn main() {
    let lock = std::fs::read_to_string("../Cargo.lock").unwrap_or_default();
    let version = lock
        .split("[[package]]")
        .find(|block| block.contains("name = \"linfa\"\n"))
        .and_then(|block| block.lines().find(|l| l.starts_with("version = ")))
        .map(|l| l.trim_start_matches("version = ").trim_matches('"').to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=LINFA_VERSION={version}");
    println!("cargo:rerun-if-changed=../Cargo.lock");
}
