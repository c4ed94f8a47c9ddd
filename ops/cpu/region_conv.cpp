// region_conv on the CPU at the cost of one convolution: the output pixels of each sample are sorted by region,
// an im2col matrix is built directly in that order (rows = pixels, from an NHWC copy of x so that every
// (pixel, tap) segment is one contiguous copy of C_in values), and each region's kernel multiplies only its own
// rows (one GEMM per region through ATen's BLAS). Total multiply-adds: B * L * C_out * C_in * kh * kw, as a plain
// convolution, whatever m is.
//
// Backward: grad_kernels and grad_x are one GEMM-convolution each over the same sorted columns (col2im gathers,
// deterministic). The guided-feature surrogate needs Y_t(p) for every region t at every pixel; that is m
// convolutions' worth of multiply-adds, done as one GEMM per block of pixels against all m kernels stacked
// (m*C_out, K), with the block's Y never leaving the cache.
//
// The region_conv_direct_* ops loop over the per-element functions of ops/common/region_conv.h, exactly as the
// CUDA kernels do: a test hook that checks the GPU's arithmetic on the CPU.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <tuple>
#include <vector>

#include "common/region_conv.h"
#include "common/region_conv_host.h"

namespace mmlocalrel {
namespace region_conv {
namespace {

// Loops split into chunks of about this many element operations (ATen's own grain): small problems run inline
// instead of waking threads for microseconds of work.
constexpr int64_t kGrain = 32768;
inline int64_t grain(int64_t work_per_item) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(1, work_per_item)); }

// Pixels per block in the guide-gradient GEMMs: Y for a block is (m*C_out, kGuideBlock), small enough for L2.
constexpr int64_t kGuideBlock = 128;

// <a, b> over n values with independent partial sums, so the compiler can vectorise it (a single accumulator
// is a serial dependency chain: several times slower on these lengths).
template <typename scalar_t>
acc_t<scalar_t> dot_product(const scalar_t* a, const scalar_t* b, int64_t n) {
  using acc = acc_t<scalar_t>;
  constexpr int64_t kLanes = 16;
  acc part[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes) {
    for (int64_t u = 0; u < kLanes; ++u) part[u] += static_cast<acc>(a[k + u]) * static_cast<acc>(b[k + u]);
  }
  acc sum = acc(0);
  for (; k < n; ++k) sum += static_cast<acc>(a[k]) * static_cast<acc>(b[k]);
  for (int64_t u = 0; u < kLanes; ++u) sum += part[u];
  return sum;
}

// cols (L, K) in region-sorted pixel order, K laid out (tap, channel) to match the NHWC input xt_b (H, W, C).
template <typename scalar_t>
void im2col_sorted(const scalar_t* xt_b, const int64_t* perm_b, scalar_t* cols, const Geometry& g) {
  const int64_t K = g.K();
  at::parallel_for(0, g.L(), grain(g.K()), [&](int64_t begin, int64_t end) {
    for (int64_t q = begin; q < end; ++q) {
      const int64_t p = perm_b[q];
      const int64_t oh = p / g.Wo, ow = p % g.Wo;
      scalar_t* row = cols + q * K;
      for (int64_t i = 0; i < g.kh; ++i) {
        const int64_t ih = input_coord(oh, i, g.sh, g.ph, g.dh);
        for (int64_t j = 0; j < g.kw; ++j) {
          const int64_t iw = input_coord(ow, j, g.sw, g.pw, g.dw);
          scalar_t* dst = row + (i * g.kw + j) * g.C;
          if (in_bounds(ih, g.H) && in_bounds(iw, g.W)) {
            std::memcpy(dst, xt_b + (ih * g.W + iw) * g.C, g.C * sizeof(scalar_t));
          } else {
            std::fill(dst, dst + g.C, scalar_t(0));
          }
        }
      }
    }
  });
}

// grad_xt_b (H, W, C) from gcols (L, K) in sorted order: every input value gathers the taps that read it.
template <typename scalar_t>
void col2im_sorted(const scalar_t* gcols, const int64_t* invperm_b, scalar_t* gxt_b, const Geometry& g) {
  using acc = acc_t<scalar_t>;
  const int64_t K = g.K();
  at::parallel_for(0, g.H * g.W, grain(g.K()), [&](int64_t begin, int64_t end) {
    std::vector<acc> buf(g.C);
    for (int64_t s = begin; s < end; ++s) {
      const int64_t ih = s / g.W, iw = s % g.W;
      std::fill(buf.begin(), buf.end(), acc(0));
      for (int64_t i = 0; i < g.kh; ++i) {
        int64_t oh;
        if (!output_coord(ih, i, g.sh, g.ph, g.dh, g.Ho, &oh)) continue;
        for (int64_t j = 0; j < g.kw; ++j) {
          int64_t ow;
          if (!output_coord(iw, j, g.sw, g.pw, g.dw, g.Wo, &ow)) continue;
          const scalar_t* src = gcols + invperm_b[oh * g.Wo + ow] * K + (i * g.kw + j) * g.C;
          for (int64_t c = 0; c < g.C; ++c) buf[c] += static_cast<acc>(src[c]);
        }
      }
      scalar_t* dst = gxt_b + s * g.C;
      for (int64_t c = 0; c < g.C; ++c) dst[c] = static_cast<scalar_t>(buf[c]);
    }
  });
}

// dst[r, perm[q]] = src[r, q]: back from sorted order.
template <typename scalar_t>
void scatter_columns(const scalar_t* src, const int64_t* perm_b, scalar_t* dst, int64_t rows, int64_t L) {
  at::parallel_for(0, rows, grain(L), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const scalar_t* s = src + r * L;
      scalar_t* d = dst + r * L;
      for (int64_t q = 0; q < L; ++q) d[perm_b[q]] = s[q];
    }
  });
}

// dst (L, Co) = src (Co, L) transposed into sorted order: dst[q, co] = src[co, perm[q]].
template <typename scalar_t>
void gather_transposed(const scalar_t* src, const int64_t* perm_b, scalar_t* dst, int64_t Co, int64_t L) {
  at::parallel_for(0, L, grain(Co), [&](int64_t begin, int64_t end) {
    for (int64_t q = begin; q < end; ++q) {
      const scalar_t* s = src + perm_b[q];
      scalar_t* d = dst + q * Co;
      for (int64_t co = 0; co < Co; ++co) d[co] = s[co * L];
    }
  });
}

// Operands shared by forward and backward: NHWC input, kernels as (B, m, Co, K) with K = (tap, channel), the
// region sort (perm, and offsets on the host).
struct Prepared {
  at::Tensor xt, wr, perm, offsets;
};

Prepared prepare(const at::Tensor& x, const at::Tensor& kernels, const at::Tensor& mask, const Geometry& g) {
  check_mask_range(mask, g.m);
  Prepared prep;
  prep.xt = x.permute({0, 2, 3, 1}).contiguous();
  prep.wr = kernels.permute({0, 1, 2, 4, 5, 3}).contiguous().view({g.B, g.m, g.Co, g.K()});
  std::tie(prep.perm, prep.offsets) = sort_regions(mask.contiguous(), g.m);
  return prep;
}

// Samples run in parallel (each on one thread, its GEMMs single-threaded) when there are at least as many as
// threads: no synchronisation inside a sample. Otherwise samples run one after the other and the loops and GEMMs
// inside each use all threads.
template <typename F>
void for_each_sample(const Geometry& g, const F& fn) {
  const int64_t threads = at::get_num_threads();
  if (threads > 1 && g.B >= threads && g.L() * g.K() * g.Co >= kGrain * 16) {
    at::parallel_for(0, g.B, 1, [&](int64_t begin, int64_t end) {
      at::NoGradGuard no_grad;  // grad mode is thread-local: worker threads must not build graphs either
      fn(begin, end);
    });
  } else {
    fn(0, g.B);
  }
}

at::Tensor region_conv_forward_cpu(const at::Tensor& x, const at::Tensor& kernels, const at::Tensor& mask,
                                   at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation) {
  const Geometry g = make_geometry(x, kernels, mask, stride, padding, dilation);
  at::NoGradGuard no_grad;  // internal ATen calls (mm_out) on views of inputs that may require grad
  const Prepared prep = prepare(x, kernels, mask, g);
  auto out = at::empty({g.B, g.Co, g.Ho, g.Wo}, x.options());
  const auto off = prep.offsets.accessor<int64_t, 2>();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "region_conv_forward_cpu", [&] {
    for_each_sample(g, [&](int64_t b_begin, int64_t b_end) {
      auto cols = at::empty({g.L(), g.K()}, x.options());
      auto outs = at::empty({g.Co, g.L()}, x.options());  // output columns in sorted order
      for (int64_t b = b_begin; b < b_end; ++b) {
        const int64_t* perm_b = prep.perm.data_ptr<int64_t>() + b * g.L();
        im2col_sorted<scalar_t>(prep.xt.data_ptr<scalar_t>() + b * g.H * g.W * g.C, perm_b,
                                cols.data_ptr<scalar_t>(), g);
        for (int64_t t = 0; t < g.m; ++t) {
          const int64_t begin = off[b][t], n = off[b][t + 1] - begin;
          if (n == 0) continue;
          auto dst = outs.narrow(1, begin, n);
          at::mm_out(dst, prep.wr[b][t], cols.narrow(0, begin, n).t());
        }
        scatter_columns<scalar_t>(outs.data_ptr<scalar_t>(), perm_b,
                                  out.data_ptr<scalar_t>() + b * g.Co * g.L(), g.Co, g.L());
      }
    });
  });
  return out;
}

// Guide surrogate (and, on the way, the grad_x columns): per block of sorted pixels and per region t,
// G = gyT_block (n, Co) @ W_t (Co, K) holds W_t^T dL/dY for every pixel of the block; its row-wise dot with the
// block's im2col rows is dL/dF^_t(p) = <dL/dY(p), W_t col(p)>, and its rows for the block's pixels of region t
// are exactly their grad_x columns. m GEMMs of a convolution's size in all, the grad_x GEMM included.
template <typename scalar_t>
void guide_sample(const scalar_t* cols, const scalar_t* gyT, const at::Tensor& wr_b, const int64_t* perm_b,
                  const int64_t* off_b, scalar_t* gg_b, scalar_t* gcols, const Geometry& g) {
  const int64_t L = g.L(), K = g.K();
  const int64_t blocks = (L + kGuideBlock - 1) / kGuideBlock;
  const auto opts = wr_b.options();
  const auto gyT_t = at::from_blob(const_cast<scalar_t*>(gyT), {L, g.Co}, opts);
  at::parallel_for(0, blocks, grain(kGuideBlock * g.m * g.Co * K), [&](int64_t blk_begin, int64_t blk_end) {
    at::NoGradGuard no_grad;
    auto G = at::empty({kGuideBlock, K}, opts);
    for (int64_t blk = blk_begin; blk < blk_end; ++blk) {
      const int64_t q0 = blk * kGuideBlock, n = std::min(kGuideBlock, L - q0);
      auto Gn = G.narrow(0, 0, n);
      for (int64_t t = 0; t < g.m; ++t) {
        at::mm_out(Gn, gyT_t.narrow(0, q0, n), wr_b[t]);
        const scalar_t* gp = G.data_ptr<scalar_t>();
        for (int64_t q = 0; q < n; ++q) {
          gg_b[t * L + perm_b[q0 + q]] = static_cast<scalar_t>(dot_product(gp + q * K, cols + (q0 + q) * K, K));
        }
        if (gcols != nullptr) {  // rows of this block that belong to region t
          const int64_t r0 = std::max(q0, off_b[t]), r1 = std::min(q0 + n, off_b[t + 1]);
          if (r1 > r0) std::memcpy(gcols + r0 * K, gp + (r0 - q0) * K, (r1 - r0) * K * sizeof(scalar_t));
        }
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> region_conv_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& kernels, const at::Tensor& mask,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, std::array<bool, 3> output_mask) {
  const Geometry g = make_geometry(x, kernels, mask, stride, padding, dilation);
  TORCH_CHECK(grad_out.dim() == 4 && grad_out.size(0) == g.B && grad_out.size(1) == g.Co &&
                  grad_out.size(2) == g.Ho && grad_out.size(3) == g.Wo,
              "region_conv_backward: grad_out must be (", g.B, ", ", g.Co, ", ", g.Ho, ", ", g.Wo, "), got shape ",
              grad_out.sizes());
  const bool need_x = output_mask[0], need_k = output_mask[1], need_guide = output_mask[2];
  at::Tensor grad_x, grad_kernels, grad_guide;
  if (!(need_x || need_k || need_guide)) return {grad_x, grad_kernels, grad_guide};
  at::NoGradGuard no_grad;
  const Prepared prep = prepare(x, kernels, mask, g);
  const auto gy = grad_out.contiguous().to(x.scalar_type());
  const auto off = prep.offsets.accessor<int64_t, 2>();
  at::Tensor gxt, gkr, invperm;
  if (need_x) {
    gxt = at::empty({g.B, g.H, g.W, g.C}, x.options());
    invperm = at::empty_like(prep.perm);
    invperm.scatter_(1, prep.perm, at::arange(g.L(), prep.perm.options()).expand({g.B, g.L()}));
  }
  if (need_k) gkr = at::empty({g.B, g.m, g.Co, g.K()}, x.options());
  if (need_guide) grad_guide = at::empty({g.B, g.m, g.Ho, g.Wo}, x.options());

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "region_conv_backward_cpu", [&] {
    for_each_sample(g, [&](int64_t b_begin, int64_t b_end) {
      auto cols = at::empty({g.L(), g.K()}, x.options());
      auto gyT = at::empty({g.L(), g.Co}, x.options());  // grad_out rows in sorted order
      at::Tensor gcols;
      if (need_x) gcols = at::empty({g.L(), g.K()}, x.options());
      for (int64_t b = b_begin; b < b_end; ++b) {
        const int64_t* perm_b = prep.perm.data_ptr<int64_t>() + b * g.L();
        im2col_sorted<scalar_t>(prep.xt.data_ptr<scalar_t>() + b * g.H * g.W * g.C, perm_b,
                                cols.data_ptr<scalar_t>(), g);
        gather_transposed<scalar_t>(gy.data_ptr<scalar_t>() + b * g.Co * g.L(), perm_b, gyT.data_ptr<scalar_t>(),
                                    g.Co, g.L());
        for (int64_t t = 0; t < g.m; ++t) {
          const int64_t begin = off[b][t], n = off[b][t + 1] - begin;
          if (need_k) {
            auto dst = gkr[b][t];
            if (n == 0) {
              dst.zero_();
            } else {
              at::mm_out(dst, gyT.narrow(0, begin, n).t(), cols.narrow(0, begin, n));
            }
          }
          if (need_x && !need_guide && n > 0) {
            auto dst = gcols.narrow(0, begin, n);
            at::mm_out(dst, gyT.narrow(0, begin, n), prep.wr[b][t]);
          }
        }
        if (need_guide) {
          guide_sample<scalar_t>(cols.data_ptr<scalar_t>(), gyT.data_ptr<scalar_t>(), prep.wr[b], perm_b,
                                 prep.offsets.data_ptr<int64_t>() + b * (g.m + 1), grad_guide.data_ptr<scalar_t>() + b * g.m * g.L(),
                                 need_x ? gcols.data_ptr<scalar_t>() : nullptr, g);
        }
        if (need_x) {
          col2im_sorted<scalar_t>(gcols.data_ptr<scalar_t>(), invperm.data_ptr<int64_t>() + b * g.L(),
                                  gxt.data_ptr<scalar_t>() + b * g.H * g.W * g.C, g);
        }
      }
    });
  });
  if (need_x) grad_x = gxt.permute({0, 3, 1, 2}).contiguous();
  if (need_k) {
    grad_kernels = gkr.view({g.B, g.m, g.Co, g.kh, g.kw, g.C}).permute({0, 1, 2, 5, 3, 4}).contiguous();
  }
  return {grad_x, grad_kernels, grad_guide};
}

// ---- direct path: the CUDA kernels' per-element loops, run on the CPU (tests) ----

at::Tensor region_conv_direct_forward_cpu(const at::Tensor& x_in, const at::Tensor& kernels_in,
                                          const at::Tensor& mask_in, at::IntArrayRef stride,
                                          at::IntArrayRef padding, at::IntArrayRef dilation) {
  const Geometry g = make_geometry(x_in, kernels_in, mask_in, stride, padding, dilation);
  check_mask_range(mask_in, g.m);
  const auto x = x_in.contiguous(), kernels = kernels_in.contiguous(), mask = mask_in.contiguous();
  auto out = at::empty({g.B, g.Co, g.Ho, g.Wo}, x.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "region_conv_direct_forward", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* kp = kernels.data_ptr<scalar_t>();
    const int64_t* mp = mask.data_ptr<int64_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, out.numel(), grain(g.K()), [&](int64_t begin, int64_t end) {
      for (int64_t index = begin; index < end; ++index) {
        op[index] = static_cast<scalar_t>(forward_at<scalar_t, acc_t<scalar_t>>(index, xp, kp, mp, g));
      }
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> region_conv_direct_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& x_in, const at::Tensor& kernels_in, const at::Tensor& mask_in,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, std::array<bool, 3> output_mask) {
  const Geometry g = make_geometry(x_in, kernels_in, mask_in, stride, padding, dilation);
  check_mask_range(mask_in, g.m);
  const auto x = x_in.contiguous(), kernels = kernels_in.contiguous(), mask = mask_in.contiguous();
  const auto gy = grad_out.contiguous().to(x.scalar_type());
  at::Tensor grad_x, grad_kernels, grad_guide;
  if (output_mask[0]) grad_x = at::empty_like(x);
  if (output_mask[1]) grad_kernels = at::empty_like(kernels);
  if (output_mask[2]) grad_guide = at::empty({g.B, g.m, g.Ho, g.Wo}, x.options());
  at::Tensor perm, offsets;
  if (output_mask[1]) std::tie(perm, offsets) = sort_regions(mask, g.m);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "region_conv_direct_backward", [&] {
    using acc = acc_t<scalar_t>;
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* kp = kernels.data_ptr<scalar_t>();
    const scalar_t* gp = gy.data_ptr<scalar_t>();
    const int64_t* mp = mask.data_ptr<int64_t>();
    if (output_mask[0]) {
      scalar_t* dst = grad_x.data_ptr<scalar_t>();
      at::parallel_for(0, grad_x.numel(), grain(g.Co * g.taps()), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) dst[i] = static_cast<scalar_t>(grad_input_at<scalar_t, acc>(i, gp, kp, mp, g));
      });
    }
    if (output_mask[1]) {
      scalar_t* dst = grad_kernels.data_ptr<scalar_t>();
      const int64_t* pp = perm.data_ptr<int64_t>();
      const int64_t* op = offsets.data_ptr<int64_t>();
      at::parallel_for(0, grad_kernels.numel(), grain(g.L()), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) dst[i] = static_cast<scalar_t>(grad_kernel_at<scalar_t, acc>(i, xp, gp, pp, op, g));
      });
    }
    if (output_mask[2]) {
      scalar_t* dst = grad_guide.data_ptr<scalar_t>();
      at::parallel_for(0, grad_guide.numel(), grain(g.Co * g.K()), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) dst[i] = static_cast<scalar_t>(guide_grad_at<scalar_t, acc>(i, xp, gp, kp, g));
      });
    }
  });
  return {grad_x, grad_kernels, grad_guide};
}

}  // namespace
}  // namespace region_conv
}  // namespace mmlocalrel

TORCH_LIBRARY_FRAGMENT(mmlocalrel, m) {
  m.def("region_conv_forward(Tensor x, Tensor kernels, Tensor mask, int[2] stride, int[2] padding, "
        "int[2] dilation) -> Tensor");
  m.def("region_conv_backward(Tensor grad_out, Tensor x, Tensor kernels, Tensor mask, int[2] stride, "
        "int[2] padding, int[2] dilation, bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
  // The CUDA kernels' element loops on the CPU (tests only).
  m.def("region_conv_direct_forward(Tensor x, Tensor kernels, Tensor mask, int[2] stride, int[2] padding, "
        "int[2] dilation) -> Tensor");
  m.def("region_conv_direct_backward(Tensor grad_out, Tensor x, Tensor kernels, Tensor mask, int[2] stride, "
        "int[2] padding, int[2] dilation, bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(mmlocalrel, CPU, m) {
  m.impl("region_conv_forward", &mmlocalrel::region_conv::region_conv_forward_cpu);
  m.impl("region_conv_backward", &mmlocalrel::region_conv::region_conv_backward_cpu);
  m.impl("region_conv_direct_forward", &mmlocalrel::region_conv::region_conv_direct_forward_cpu);
  m.impl("region_conv_direct_backward", &mmlocalrel::region_conv::region_conv_direct_backward_cpu);
}
