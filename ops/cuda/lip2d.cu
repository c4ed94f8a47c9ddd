// LIP pooling, CUDA: the element functions of common/lip2d.h (the CPU kernels' arithmetic, fexp included).
// Forward: one thread per output, two passes over its window (maximum, then the shifted sums). Backward: one thread
// per input gathers the contributions of the outputs whose windows cover it, in a fixed order: no atomics,
// deterministic.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "common/lip2d.h"

namespace mmlocalrel {
namespace {

constexpr int kThreads = 256;

struct Geometry {
  int64_t H, W, OH, OW;
  int kh, kw, sh, sw, ph, pw;
};

inline unsigned int blocks_for(int64_t n) {
  return static_cast<unsigned int>(std::min<int64_t>((n + kThreads - 1) / kThreads, int64_t(1) << 20));
}

template <typename scalar_t>
__global__ void lip2d_forward_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ logit,
                                     scalar_t* __restrict__ out, acc_t<scalar_t>* __restrict__ lse, int64_t total,
                                     Geometry g) {
  using acc = acc_t<scalar_t>;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(blockDim.x) * gridDim.x) {
    const int64_t ow = idx % g.OW, oh = (idx / g.OW) % g.OH, plane = idx / (g.OW * g.OH);
    const int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
    const int64_t ha = h0 < 0 ? 0 : h0, hb = h0 + g.kh < g.H ? h0 + g.kh : g.H;
    const int64_t wa = w0 < 0 ? 0 : w0, wb = w0 + g.kw < g.W ? w0 + g.kw : g.W;
    const scalar_t* xp = x + plane * g.H * g.W;
    const scalar_t* lp = logit + plane * g.H * g.W;
    acc m = lip::neg_inf<acc>();
    for (int64_t h = ha; h < hb; ++h)
      for (int64_t w = wa; w < wb; ++w) m = lip::window_max(m, static_cast<acc>(lp[h * g.W + w]));
    acc s = 0, t = 0;
    for (int64_t h = ha; h < hb; ++h)
      for (int64_t w = wa; w < wb; ++w)
        lip::forward_tap(static_cast<acc>(lp[h * g.W + w]), static_cast<acc>(xp[h * g.W + w]), m, s, t);
    out[idx] = static_cast<scalar_t>(lip::forward_out(s, t));
    lse[idx] = lip::forward_lse(m, s);
  }
}

template <typename scalar_t>
__global__ void lip2d_backward_kernel(const scalar_t* __restrict__ grad_out, const scalar_t* __restrict__ x,
                                      const scalar_t* __restrict__ logit, const scalar_t* __restrict__ out,
                                      const acc_t<scalar_t>* __restrict__ lse, scalar_t* __restrict__ grad_x,
                                      scalar_t* __restrict__ grad_logit, int64_t total, Geometry g) {
  using acc = acc_t<scalar_t>;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(blockDim.x) * gridDim.x) {
    const int64_t w = idx % g.W, h = (idx / g.W) % g.H, plane = idx / (g.W * g.H);
    // Outputs whose window [o*s - p, o*s - p + k) holds this input.
    const int64_t hp = h + g.ph, wp = w + g.pw;
    const int64_t oh_a = hp < g.kh ? 0 : (hp - g.kh) / g.sh + 1, oh_b = hp / g.sh < g.OH - 1 ? hp / g.sh : g.OH - 1;
    const int64_t ow_a = wp < g.kw ? 0 : (wp - g.kw) / g.sw + 1, ow_b = wp / g.sw < g.OW - 1 ? wp / g.sw : g.OW - 1;
    const acc l = static_cast<acc>(logit[idx]), xv = static_cast<acc>(x[idx]);
    const int64_t base = plane * g.OH * g.OW;
    acc gx = 0, gl = 0;
    for (int64_t oh = oh_a; oh <= oh_b; ++oh)
      for (int64_t ow = ow_a; ow <= ow_b; ++ow) {
        const int64_t o = base + oh * g.OW + ow;
        lip::backward_tap(l, xv, lse[o], static_cast<acc>(out[o]), static_cast<acc>(grad_out[o]), gx, gl);
      }
    grad_x[idx] = static_cast<scalar_t>(gx);
    grad_logit[idx] = static_cast<scalar_t>(gl);
  }
}

Geometry make_geometry(const at::Tensor& x, const at::Tensor& logit, at::IntArrayRef k, at::IntArrayRef s,
                       at::IntArrayRef p) {
  TORCH_CHECK(x.dim() == 4, "lip2d: x must be 4-D (B, C, H, W), got shape ", x.sizes());
  TORCH_CHECK(logit.sizes() == x.sizes(), "lip2d: logit must have x's shape ", x.sizes(), ", got ", logit.sizes());
  TORCH_CHECK(logit.scalar_type() == x.scalar_type(), "lip2d: logit dtype ", logit.scalar_type(),
              " differs from x dtype ", x.scalar_type());
  TORCH_CHECK(logit.device() == x.device(), "lip2d: logit and x are on different devices");
  TORCH_CHECK(k.size() == 2 && s.size() == 2 && p.size() == 2,
              "lip2d: kernel_size, stride and padding must have 2 elements");
  TORCH_CHECK(k[0] > 0 && k[1] > 0, "lip2d: kernel_size must be positive, got ", k);
  TORCH_CHECK(s[0] > 0 && s[1] > 0, "lip2d: stride must be positive, got ", s);
  TORCH_CHECK(p[0] >= 0 && p[1] >= 0 && 2 * p[0] <= k[0] && 2 * p[1] <= k[1],
              "lip2d: padding must be >= 0 and <= kernel_size / 2, got padding=", p, " kernel_size=", k);
  TORCH_CHECK(x.size(2) + 2 * p[0] >= k[0] && x.size(3) + 2 * p[1] >= k[1], "lip2d: kernel_size ", k,
              " is larger than the padded input ", x.sizes(), " (padding ", p, "): empty output");
  Geometry g;
  g.H = x.size(2), g.W = x.size(3);
  g.kh = k[0], g.kw = k[1], g.sh = s[0], g.sw = s[1], g.ph = p[0], g.pw = p[1];
  g.OH = lip::out_size(g.H, g.kh, g.sh, g.ph);
  g.OW = lip::out_size(g.W, g.kw, g.sw, g.pw);
  return g;
}

std::tuple<at::Tensor, at::Tensor> lip2d_forward_cuda(const at::Tensor& x_, const at::Tensor& logit_,
                                                     at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                                     at::IntArrayRef padding) {
  const Geometry g = make_geometry(x_, logit_, kernel_size, stride, padding);
  const c10::cuda::CUDAGuard guard(x_.device());
  const at::Tensor x = x_.contiguous(), logit = logit_.contiguous();
  at::Tensor out = at::empty({x.size(0), x.size(1), g.OH, g.OW}, x.options());
  const auto acc_dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor lse = at::empty({x.size(0), x.size(1), g.OH, g.OW}, x.options().dtype(acc_dtype));
  const int64_t total = out.numel();
  if (total == 0) return {out, lse};
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "lip2d_forward_cuda", [&] {
    lip2d_forward_kernel<scalar_t><<<blocks_for(total), kThreads, 0, stream>>>(
        x.const_data_ptr<scalar_t>(), logit.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(),
        lse.mutable_data_ptr<acc_t<scalar_t>>(), total, g);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {out, lse};
}

std::tuple<at::Tensor, at::Tensor> lip2d_backward_cuda(const at::Tensor& grad_out_, const at::Tensor& x_,
                                                      const at::Tensor& logit_, const at::Tensor& out_,
                                                      const at::Tensor& lse_, at::IntArrayRef kernel_size,
                                                      at::IntArrayRef stride, at::IntArrayRef padding) {
  const Geometry g = make_geometry(x_, logit_, kernel_size, stride, padding);
  const std::vector<int64_t> out_shape{x_.size(0), x_.size(1), g.OH, g.OW};
  TORCH_CHECK(grad_out_.sizes() == out_shape && out_.sizes() == out_shape && lse_.sizes() == out_shape,
              "lip2d_backward: grad_out, out and lse must have the output shape ", at::IntArrayRef(out_shape));
  TORCH_CHECK(grad_out_.scalar_type() == x_.scalar_type() && out_.scalar_type() == x_.scalar_type(),
              "lip2d_backward: grad_out and out must have x's dtype ", x_.scalar_type());
  const auto acc_dtype = x_.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  TORCH_CHECK(lse_.scalar_type() == acc_dtype, "lip2d_backward: lse must be ", acc_dtype, ", got ",
              lse_.scalar_type());
  const c10::cuda::CUDAGuard guard(x_.device());
  const at::Tensor x = x_.contiguous(), logit = logit_.contiguous(), grad_out = grad_out_.contiguous(),
                   out = out_.contiguous(), lse = lse_.contiguous();
  at::Tensor grad_x = at::empty_like(x), grad_logit = at::empty_like(logit);
  const int64_t total = x.numel();
  if (total == 0) return {grad_x, grad_logit};
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "lip2d_backward_cuda", [&] {
    lip2d_backward_kernel<scalar_t><<<blocks_for(total), kThreads, 0, stream>>>(
        grad_out.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(), logit.const_data_ptr<scalar_t>(),
        out.const_data_ptr<scalar_t>(), lse.const_data_ptr<acc_t<scalar_t>>(), grad_x.mutable_data_ptr<scalar_t>(),
        grad_logit.mutable_data_ptr<scalar_t>(), total, g);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {grad_x, grad_logit};
}

}  // namespace
}  // namespace mmlocalrel

TORCH_LIBRARY_IMPL(mmlocalrel, CUDA, m) {
  m.impl("lip2d_forward", &mmlocalrel::lip2d_forward_cuda);
  m.impl("lip2d_backward", &mmlocalrel::lip2d_backward_cuda);
}
