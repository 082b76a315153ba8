// libtorch's CUDA float32 switches that tch 0.24 does not bind: TF32 for cuDNN (convolutions and
// recurrent kernels) and for cuBLAS (matrix products), set and read back, and the cuDNN autotuner's
// setting read back. The same at::Context calls as PyTorch's torch.backends.cudnn.allow_tf32,
// torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.benchmark
// (python/mlbench/torch_net.py, `kernels`). These setters keep libtorch's two generations of
// precision flags consistent; setting the newer per-op `fp32_precision` flags one by one does not
// (libtorch 2.11 then refuses to answer the older getters its own code may ask).
#include <ATen/Context.h>

extern "C" {
void mlbench_set_tf32(int allow) {
    at::globalContext().setAllowTF32CuDNN(allow != 0);
    at::globalContext().setAllowTF32CuBLAS(allow != 0);
}

int mlbench_cudnn_tf32() { return at::globalContext().allowTF32CuDNN() ? 1 : 0; }

int mlbench_cublas_tf32() { return at::globalContext().allowTF32CuBLAS() ? 1 : 0; }

int mlbench_cudnn_benchmark() { return at::globalContext().benchmarkCuDNN() ? 1 : 0; }
}
