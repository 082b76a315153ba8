//! Framework versions (shared script), and an rpath to the libtorch tch was built against (the venv's
//! torch/lib, from torch-sys), so the binary finds libtorch without LD_LIBRARY_PATH.
#[path = "../framework_versions.rs"]
mod framework_versions;

fn main() {
    framework_versions::main();
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
