//! The shared tch build script (../libtorch_build.rs), plus csrc/kernels.cpp: libtorch's CUDA
//! float32 switches tch does not bind, compiled against the headers of the libtorch tch links.
#[path = "../libtorch_build.rs"]
mod libtorch_build;

fn main() {
    libtorch_build::main();
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        kernels(std::path::Path::new(&lib));
    }
}

/// csrc/kernels.cpp against the headers beside libtorch's `lib` (torch/include in a PyTorch wheel).
fn kernels(lib: &std::path::Path) {
    println!("cargo:rerun-if-changed=csrc/kernels.cpp");
    let include = lib.parent().expect("libtorch's lib directory has a parent").join("include");
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .flag("-std=c++17")
        .file("csrc/kernels.cpp")
        .compile("mlbench_kernels");
}
