// The Python module that carries the ops. Every op registers its schema and kernels with torch's dispatcher
// (TORCH_LIBRARY_FRAGMENT / TORCH_LIBRARY_IMPL in its own cpu/ and cuda/ files), so importing this module is
// all it takes to make torch.ops.mmlocalrel.<op> available, and device dispatch is torch's, not ours.
#include <torch/extension.h>

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "mmlocalrel custom ops (see torch.ops.mmlocalrel)";
#ifdef WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
}
