//! The build script of every crate on tch (rust/cnn's adds csrc/kernels.cpp to it): framework
//! versions (shared script), and how the binary finds and loads libtorch:
//! - an rpath to the libtorch tch was built against (the venv's torch/lib, from torch-sys), so the
//!   binary finds libtorch without LD_LIBRARY_PATH on the machine that built it;
//! - libtorch.so linked with --no-as-needed: the binary uses no symbol of it, but it pulls in
//!   libtorch_cuda.so (CUDA builds of torch), without which libtorch sees no GPU
//!   (`tch::Cuda::is_available()` is false; tch-rs issues #329 and #980).
#[path = "framework_versions.rs"]
mod framework_versions;

pub fn main() {
    framework_versions::main();
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
    }
}
