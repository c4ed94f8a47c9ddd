// region_conv on CUDA: one thread per output element, each calling the per-element function of
// ops/common/region_conv.h that the CPU's direct path (region_conv_direct_*) runs in the tests.
//
// Costs: forward one convolution's multiply-adds (each output value sums its own region's kernel only);
// grad_x one convolution (gather over the taps that read each input value: no atomics, deterministic);
// grad_kernels one convolution (each kernel element sums over its region's pixels only, listed by a stable sort of
// the mask); the guide's surrogate m convolutions (every region's response at every pixel, as the paper's
// gradient needs). Direct kernels, not tiled GEMMs: simple enough to be right without a GPU to test on.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <tuple>

#include "common/region_conv.h"
#include "common/region_conv_host.h"

namespace mmlocalrel {
namespace region_conv {
namespace {

constexpr int kThreads = 256;

inline int blocks_for(int64_t n) {
  return static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, int64_t(1) << 20));
}

inline void check_launch() {
  const cudaError_t err = cudaGetLastError();
  TORCH_CHECK(err == cudaSuccess, "region_conv: CUDA kernel launch failed: ", cudaGetErrorString(err));
}

template <typename scalar_t>
__global__ void forward_kernel(int64_t n, const scalar_t* __restrict__ x, const scalar_t* __restrict__ kernels,
                               const int64_t* __restrict__ mask, scalar_t* __restrict__ out, Geometry g) {
  for (int64_t index = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; index < n;
       index += int64_t(blockDim.x) * gridDim.x) {
    out[index] = static_cast<scalar_t>(forward_at<scalar_t, acc_t<scalar_t>>(index, x, kernels, mask, g));
  }
}

template <typename scalar_t>
__global__ void grad_input_kernel(int64_t n, const scalar_t* __restrict__ gy, const scalar_t* __restrict__ kernels,
                                  const int64_t* __restrict__ mask, scalar_t* __restrict__ grad_x, Geometry g) {
  for (int64_t index = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; index < n;
       index += int64_t(blockDim.x) * gridDim.x) {
    grad_x[index] = static_cast<scalar_t>(grad_input_at<scalar_t, acc_t<scalar_t>>(index, gy, kernels, mask, g));
  }
}

template <typename scalar_t>
__global__ void grad_kernel_kernel(int64_t n, const scalar_t* __restrict__ x, const scalar_t* __restrict__ gy,
                                   const int64_t* __restrict__ perm, const int64_t* __restrict__ offsets,
                                   scalar_t* __restrict__ grad_kernels, Geometry g) {
  for (int64_t index = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; index < n;
       index += int64_t(blockDim.x) * gridDim.x) {
    grad_kernels[index] =
        static_cast<scalar_t>(grad_kernel_at<scalar_t, acc_t<scalar_t>>(index, x, gy, perm, offsets, g));
  }
}

template <typename scalar_t>
__global__ void guide_grad_kernel(int64_t n, const scalar_t* __restrict__ x, const scalar_t* __restrict__ gy,
                                  const scalar_t* __restrict__ kernels, scalar_t* __restrict__ grad_guide,
                                  Geometry g) {
  for (int64_t index = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; index < n;
       index += int64_t(blockDim.x) * gridDim.x) {
    grad_guide[index] = static_cast<scalar_t>(guide_grad_at<scalar_t, acc_t<scalar_t>>(index, x, gy, kernels, g));
  }
}

at::Tensor region_conv_forward_cuda(const at::Tensor& x_in, const at::Tensor& kernels_in, const at::Tensor& mask_in,
                                    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation) {
  const Geometry g = make_geometry(x_in, kernels_in, mask_in, stride, padding, dilation);
  const c10::cuda::CUDAGuard device_guard(x_in.device());
  check_mask_range(mask_in, g.m);
  const auto x = x_in.contiguous(), kernels = kernels_in.contiguous(), mask = mask_in.contiguous();
  auto out = at::empty({g.B, g.Co, g.Ho, g.Wo}, x.options());
  const int64_t n = out.numel();
  if (n == 0) return out;
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "region_conv_forward_cuda", [&] {
    forward_kernel<scalar_t><<<blocks_for(n), kThreads, 0, stream>>>(
        n, x.data_ptr<scalar_t>(), kernels.data_ptr<scalar_t>(), mask.data_ptr<int64_t>(),
        out.data_ptr<scalar_t>(), g);
  });
  check_launch();
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> region_conv_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& x_in, const at::Tensor& kernels_in, const at::Tensor& mask_in,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, std::array<bool, 3> output_mask) {
  const Geometry g = make_geometry(x_in, kernels_in, mask_in, stride, padding, dilation);
  TORCH_CHECK(grad_out.dim() == 4 && grad_out.size(0) == g.B && grad_out.size(1) == g.Co &&
                  grad_out.size(2) == g.Ho && grad_out.size(3) == g.Wo,
              "region_conv_backward: grad_out must be (", g.B, ", ", g.Co, ", ", g.Ho, ", ", g.Wo, "), got shape ",
              grad_out.sizes());
  const c10::cuda::CUDAGuard device_guard(x_in.device());
  at::Tensor grad_x, grad_kernels, grad_guide;
  if (!(output_mask[0] || output_mask[1] || output_mask[2])) return {grad_x, grad_kernels, grad_guide};
  check_mask_range(mask_in, g.m);
  const auto x = x_in.contiguous(), kernels = kernels_in.contiguous(), mask = mask_in.contiguous();
  const auto gy = grad_out.contiguous().to(x.scalar_type());
  const auto stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor perm, offsets;
  if (output_mask[1]) std::tie(perm, offsets) = sort_regions(mask, g.m);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "region_conv_backward_cuda", [&] {
    if (output_mask[0]) {
      grad_x = at::empty_like(x);
      const int64_t n = grad_x.numel();
      if (n > 0) {
        grad_input_kernel<scalar_t><<<blocks_for(n), kThreads, 0, stream>>>(
            n, gy.data_ptr<scalar_t>(), kernels.data_ptr<scalar_t>(), mask.data_ptr<int64_t>(),
            grad_x.data_ptr<scalar_t>(), g);
        check_launch();
      }
    }
    if (output_mask[1]) {
      grad_kernels = at::empty_like(kernels);
      const int64_t n = grad_kernels.numel();
      if (n > 0) {
        grad_kernel_kernel<scalar_t><<<blocks_for(n), kThreads, 0, stream>>>(
            n, x.data_ptr<scalar_t>(), gy.data_ptr<scalar_t>(), perm.data_ptr<int64_t>(),
            offsets.data_ptr<int64_t>(), grad_kernels.data_ptr<scalar_t>(), g);
        check_launch();
      }
    }
    if (output_mask[2]) {
      grad_guide = at::empty({g.B, g.m, g.Ho, g.Wo}, x.options());
      const int64_t n = grad_guide.numel();
      if (n > 0) {
        guide_grad_kernel<scalar_t><<<blocks_for(n), kThreads, 0, stream>>>(
            n, x.data_ptr<scalar_t>(), gy.data_ptr<scalar_t>(), kernels.data_ptr<scalar_t>(),
            grad_guide.data_ptr<scalar_t>(), g);
        check_launch();
      }
    }
  });
  return {grad_x, grad_kernels, grad_guide};
}

}  // namespace
}  // namespace region_conv
}  // namespace mmlocalrel

TORCH_LIBRARY_IMPL(mmlocalrel, CUDA, m) {
  m.impl("region_conv_forward", &mmlocalrel::region_conv::region_conv_forward_cuda);
  m.impl("region_conv_backward", &mmlocalrel::region_conv::region_conv_backward_cuda);
}
