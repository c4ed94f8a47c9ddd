// region_conv on the CPU at the cost of one convolution. The output pixels of each sample are sorted by region
// (stable, so the order is deterministic); the sorted list is cut into chunks of at most kChunk pixels of one
// region; for each chunk an im2col block is built (rows = pixels, columns = (tap, channel) from an NHWC copy of x, so
// each (pixel, tap) segment is one contiguous copy of C_in values) and multiplied by that region's kernel only
// (ATen's BLAS). The block stays in L2 between the copy and the GEMM. Total multiply-adds: B * L * C_out * C_in *
// kh * kw, a plain convolution's, whatever m is.
//
// Backward, chunk by chunk over the same blocks, everything staying in L2:
//  - grad_kernels[t] += dL/dY_chunk^T @ block (one convolution in all);
//  - grad_x: columns dL/dY_chunk @ W_t (one convolution), added into an NHWC accumulator tap by tap, threads
//    splitting the channels (no atomics, a fixed order: deterministic);
//  - the guide's surrogate dL/dF^_s(p) = <dL/dY(p), Y_s(p)> needs every region's response at every pixel: one GEMM
//    per chunk against all m kernels stacked, Y = block @ W_all^T (n, m*C_out), then dots over C_out. That is m
//    convolutions' multiply-adds, the one m-fold cost of the op, and only when the guide needs a gradient.
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
#include <type_traits>
#include <vector>

#include "common/region_conv.h"
#include "common/region_conv_host.h"

// The extension is compiled for the baseline x86-64 ISA; the few hand-written float loops get AVX2/AVX-512 clones
// picked at load time (GCC ifunc), as ATen does for its own kernels.
#if defined(__GNUC__) && __GNUC__ >= 11 && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MMLOCALREL_ISA_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MMLOCALREL_ISA_CLONES
#endif

namespace mmlocalrel {
namespace region_conv {
namespace {

// Loops split into chunks of about this many element operations (ATen's own grain): small problems run inline
// instead of waking threads for microseconds of work.
constexpr int64_t kGrain = 32768;
inline int64_t grain(int64_t work_per_item) {
  return std::max<int64_t>(1, kGrain / std::max<int64_t>(1, work_per_item));
}

// Pixels per chunk: a (kChunk, K) im2col block is 590 KB at K = 576 (64 channels, 3x3), within L2.
constexpr int64_t kChunk = 256;

MMLOCALREL_ISA_CLONES float dot_f32(const float* a, const float* b, int64_t n) {
  float part[16] = {};  // independent partial sums: vectorisable, no serial dependency chain
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    for (int u = 0; u < 16; ++u) part[u] += a[k + u] * b[k + u];
  }
  float sum = 0.f;
  for (; k < n; ++k) sum += a[k] * b[k];
  for (int u = 0; u < 16; ++u) sum += part[u];
  return sum;
}

MMLOCALREL_ISA_CLONES void accumulate_f32(float* acc, const float* src, int64_t n) {
  for (int64_t k = 0; k < n; ++k) acc[k] += src[k];
}

template <typename scalar_t>
acc_t<scalar_t> dot_product(const scalar_t* a, const scalar_t* b, int64_t n) {
  if constexpr (std::is_same_v<scalar_t, float>) {
    return dot_f32(a, b, n);
  } else {
    using acc = acc_t<scalar_t>;
    acc part[8] = {};
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
      for (int u = 0; u < 8; ++u) part[u] += static_cast<acc>(a[k + u]) * static_cast<acc>(b[k + u]);
    }
    acc sum = acc(0);
    for (; k < n; ++k) sum += static_cast<acc>(a[k]) * static_cast<acc>(b[k]);
    for (int u = 0; u < 8; ++u) sum += part[u];
    return sum;
  }
}

template <typename scalar_t>
void accumulate(acc_t<scalar_t>* acc, const scalar_t* src, int64_t n) {
  if constexpr (std::is_same_v<scalar_t, float>) {
    accumulate_f32(acc, src, n);
  } else {
    for (int64_t k = 0; k < n; ++k) acc[k] += static_cast<acc_t<scalar_t>>(src[k]);
  }
}

// (rows, C, taps) <-> (rows, taps, C): the kernels' layout (C_in, kh, kw) against the im2col column order.
template <typename scalar_t>
void transpose_taps(const scalar_t* src, scalar_t* dst, int64_t rows, int64_t C, int64_t taps, bool to_taps_major) {
  const int64_t K = C * taps;
  at::parallel_for(0, rows, grain(K), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const scalar_t* s = src + r * K;
      scalar_t* d = dst + r * K;
      for (int64_t c = 0; c < C; ++c) {
        for (int64_t k = 0; k < taps; ++k) {
          if (to_taps_major) {
            d[k * C + c] = s[c * taps + k];
          } else {
            d[c * taps + k] = s[k * C + c];
          }
        }
      }
    }
  });
}

// im2col rows for n sorted pixels (pixels[0..n)), into rows (n, K), K laid out (tap, channel) to match the NHWC
// input xt_b (H, W, C).
template <typename scalar_t>
void im2col_rows(const scalar_t* xt_b, const int64_t* pixels, int64_t n, scalar_t* rows, const Geometry& g) {
  const int64_t K = g.K();
  at::parallel_for(0, n, grain(K), [&](int64_t begin, int64_t end) {
    for (int64_t q = begin; q < end; ++q) {
      const int64_t p = pixels[q];
      const int64_t oh = p / g.Wo, ow = p % g.Wo;
      scalar_t* row = rows + q * K;
      for (int64_t i = 0; i < g.kh; ++i) {
        const int64_t ih = input_coord(oh, i, g.sh, g.ph, g.dh);
        const bool row_in = in_bounds(ih, g.H);
        for (int64_t j = 0; j < g.kw; ++j) {
          const int64_t iw = input_coord(ow, j, g.sw, g.pw, g.dw);
          scalar_t* dst = row + (i * g.kw + j) * g.C;
          if (row_in && in_bounds(iw, g.W)) {
            std::memcpy(dst, xt_b + (ih * g.W + iw) * g.C, g.C * sizeof(scalar_t));
          } else {
            std::fill(dst, dst + g.C, scalar_t(0));
          }
        }
      }
    }
  });
}

// gxt_b (H, W, C) += the taps of n grad_x columns (n, K) of sorted pixels, threads splitting the channels.
template <typename scalar_t>
void col2im_add(const scalar_t* gcols, const int64_t* pixels, int64_t n, acc_t<scalar_t>* gxt_b, const Geometry& g) {
  const int64_t K = g.K();
  at::parallel_for(0, g.C, std::max<int64_t>(16, grain(n * K)), [&](int64_t c0, int64_t c1) {
    for (int64_t q = 0; q < n; ++q) {
      const int64_t p = pixels[q];
      const int64_t oh = p / g.Wo, ow = p % g.Wo;
      for (int64_t i = 0; i < g.kh; ++i) {
        const int64_t ih = input_coord(oh, i, g.sh, g.ph, g.dh);
        if (!in_bounds(ih, g.H)) continue;
        for (int64_t j = 0; j < g.kw; ++j) {
          const int64_t iw = input_coord(ow, j, g.sw, g.pw, g.dw);
          if (!in_bounds(iw, g.W)) continue;
          accumulate(gxt_b + (ih * g.W + iw) * g.C + c0, gcols + q * K + (i * g.kw + j) * g.C + c0, c1 - c0);
        }
      }
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

// Operands shared by forward and backward: NHWC input, the kernels with K = (tap, channel), the region sort
// (perm, and offsets read on the host). Backward uses the kernels as wr (B, m, Co, K); forward as wt (B, m, K, Co),
// so that its GEMM is block (n, K) @ wt (K, Co), the faster orientation for C_out ~ 64 (M = C_out is too thin for
// the BLAS's blocking).
struct Prepared {
  at::Tensor xt, wr, wt, perm, offsets;
};

Prepared prepare(const at::Tensor& x, const at::Tensor& kernels, const at::Tensor& mask, const Geometry& g,
                 bool for_forward) {
  check_mask_range(mask, g.m);
  Prepared prep;
  prep.xt = x.permute({0, 2, 3, 1}).contiguous();
  const auto k = kernels.contiguous();
  if (for_forward) {
    prep.wt = k.permute({0, 1, 4, 5, 3, 2}).contiguous().view({g.B, g.m, g.K(), g.Co});
  } else {
    prep.wr = at::empty({g.B, g.m, g.Co, g.K()}, k.options());
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, k.scalar_type(), "region_conv_prepare", [&] {
      transpose_taps<scalar_t>(k.data_ptr<scalar_t>(), prep.wr.data_ptr<scalar_t>(), g.B * g.m * g.Co, g.C,
                               g.taps(), true);
    });
  }
  std::tie(prep.perm, prep.offsets) = sort_regions(mask.contiguous(), g.m);
  return prep;
}

// Calls fn(t, q0, n) for every chunk of at most kChunk sorted pixels of one region (offsets_b: m + 1 bounds).
template <typename F>
void for_each_chunk(const int64_t* offsets_b, int64_t m, const F& fn) {
  for (int64_t t = 0; t < m; ++t) {
    for (int64_t q0 = offsets_b[t]; q0 < offsets_b[t + 1]; q0 += kChunk) {
      fn(t, q0, std::min(kChunk, offsets_b[t + 1] - q0));
    }
  }
}

// Samples run in parallel (each on one thread, its GEMMs single-threaded) when there are at least as many as
// threads and each has enough work: no synchronisation inside a sample. Otherwise samples run one after the other
// and the loops and GEMMs inside each use all threads.
template <typename F>
void for_each_sample(const Geometry& g, const F& fn) {
  const int64_t threads = at::get_num_threads();
  if (threads > 1 && g.B >= threads && g.L() * g.K() * g.Co >= kGrain * 16) {
    at::parallel_for(0, g.B, 1, [&](int64_t begin, int64_t end) {
      at::NoGradGuard no_grad;  // grad mode is thread-local: worker threads must not record either
      fn(begin, end);
    });
  } else {
    fn(0, g.B);
  }
}

at::Tensor region_conv_forward_cpu(const at::Tensor& x, const at::Tensor& kernels, const at::Tensor& mask,
                                   at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation) {
  const Geometry g = make_geometry(x, kernels, mask, stride, padding, dilation);
  at::NoGradGuard no_grad;  // internal ATen calls (mm_out) take views of inputs that may require grad
  const Prepared prep = prepare(x, kernels, mask, g, /*for_forward=*/true);
  auto out = at::empty({g.B, g.Co, g.Ho, g.Wo}, x.options());
  // Chunks of all samples are independent (each writes its own output columns): threads take whole chunks, one
  // single-threaded GEMM each, one parallel region for the whole batch.
  struct Chunk {
    int64_t b, t, q0, n;
  };
  std::vector<Chunk> chunks;
  for (int64_t b = 0; b < g.B; ++b) {
    for_each_chunk(prep.offsets.data_ptr<int64_t>() + b * (g.m + 1), g.m,
                   [&](int64_t t, int64_t q0, int64_t n) { chunks.push_back({b, t, q0, n}); });
  }
  auto outs = at::empty({g.B, g.L(), g.Co}, x.options());  // output rows in sorted pixel order
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "region_conv_forward_cpu", [&] {
    const int64_t n_chunks = static_cast<int64_t>(chunks.size());
    at::parallel_for(0, n_chunks, grain(kChunk * g.K() * g.Co), [&](int64_t begin, int64_t end) {
      at::NoGradGuard no_grad;  // grad mode is thread-local: worker threads must not record either
      auto block = at::empty({std::min(kChunk, g.L()), g.K()}, x.options());
      for (int64_t i = begin; i < end; ++i) {
        const Chunk& c = chunks[i];
        im2col_rows<scalar_t>(prep.xt.data_ptr<scalar_t>() + c.b * g.H * g.W * g.C,
                              prep.perm.data_ptr<int64_t>() + c.b * g.L() + c.q0, c.n, block.data_ptr<scalar_t>(), g);
        auto dst = outs[c.b].narrow(0, c.q0, c.n);
        at::mm_out(dst, block.narrow(0, 0, c.n), prep.wt[c.b][c.t]);
      }
    });
    // out[b, co, perm[q]] = outs[b, q, co], in tiles of pixels so that reads and writes stay in cache
    constexpr int64_t kTile = 64;
    const int64_t tiles = (g.L() + kTile - 1) / kTile;
    const scalar_t* src = outs.data_ptr<scalar_t>();
    scalar_t* dst = out.data_ptr<scalar_t>();
    const int64_t* perm = prep.perm.data_ptr<int64_t>();
    at::parallel_for(0, g.B * tiles, grain(kTile * g.Co), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t b = r / tiles, q0 = (r % tiles) * kTile, q1 = std::min(q0 + kTile, g.L());
        const int64_t* perm_b = perm + b * g.L();
        const scalar_t* s = src + b * g.L() * g.Co;
        scalar_t* d = dst + b * g.Co * g.L();
        for (int64_t co = 0; co < g.Co; ++co) {
          for (int64_t q = q0; q < q1; ++q) d[co * g.L() + perm_b[q]] = s[q * g.Co + co];
        }
      }
    });
  });
  return out;
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
  const Prepared prep = prepare(x, kernels, mask, g, /*for_forward=*/false);
  const auto gy = grad_out.contiguous().to(x.scalar_type());
  // grad_x accumulates in acc_t (fp32 for fp16/bf16 inputs)
  const auto acc_dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor gxt, gkr;
  if (need_x) gxt = at::zeros({g.B, g.H, g.W, g.C}, x.options().dtype(acc_dtype));
  if (need_k) gkr = at::empty({g.B, g.m, g.Co, g.K()}, x.options());
  if (need_guide) grad_guide = at::empty({g.B, g.m, g.Ho, g.Wo}, x.options());

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "region_conv_backward_cpu", [&] {
    using acc = acc_t<scalar_t>;
    for_each_sample(g, [&](int64_t b_begin, int64_t b_end) {
      const int64_t rows = std::min(kChunk, g.L());
      auto block = at::empty({rows, g.K()}, x.options());
      auto gyT = at::empty({g.L(), g.Co}, x.options());  // grad_out rows in sorted order
      at::Tensor gcols, Y;
      if (need_x) gcols = at::empty({rows, g.K()}, x.options());
      if (need_guide) Y = at::empty({rows, g.m * g.Co}, x.options());
      for (int64_t b = b_begin; b < b_end; ++b) {
        const int64_t* perm_b = prep.perm.data_ptr<int64_t>() + b * g.L();
        const int64_t* off_b = prep.offsets.data_ptr<int64_t>() + b * (g.m + 1);
        const scalar_t* xt_b = prep.xt.data_ptr<scalar_t>() + b * g.H * g.W * g.C;
        gather_transposed<scalar_t>(gy.data_ptr<scalar_t>() + b * g.Co * g.L(), perm_b, gyT.data_ptr<scalar_t>(),
                                    g.Co, g.L());
        if (need_k) {
          for (int64_t t = 0; t < g.m; ++t) {
            if (off_b[t] == off_b[t + 1]) gkr[b][t].zero_();  // a region without pixels
          }
        }
        for_each_chunk(off_b, g.m, [&](int64_t t, int64_t q0, int64_t n) {
          im2col_rows<scalar_t>(xt_b, perm_b + q0, n, block.data_ptr<scalar_t>(), g);
          const auto rows_n = block.narrow(0, 0, n);
          const auto gy_n = gyT.narrow(0, q0, n);  // (n, Co)
          if (need_k) {
            auto dst = gkr[b][t];
            if (q0 == off_b[t]) {
              at::mm_out(dst, gy_n.t(), rows_n);
            } else {
              dst.addmm_(gy_n.t(), rows_n);
            }
          }
          if (need_x) {
            auto dst = gcols.narrow(0, 0, n);
            at::mm_out(dst, gy_n, prep.wr[b][t]);
            col2im_add<scalar_t>(gcols.data_ptr<scalar_t>(), perm_b + q0, n,
                                 gxt.data_ptr<acc>() + b * g.H * g.W * g.C, g);
          }
          if (need_guide) {
            auto y = Y.narrow(0, 0, n);  // (n, m*Co): every region's response at the chunk's pixels
            at::mm_out(y, rows_n, prep.wr[b].view({g.m * g.Co, g.K()}).t());
            const scalar_t* yp = Y.data_ptr<scalar_t>();
            const scalar_t* gp = gyT.data_ptr<scalar_t>() + q0 * g.Co;
            scalar_t* gg_b = grad_guide.data_ptr<scalar_t>() + b * g.m * g.L();
            at::parallel_for(0, n, grain(g.m * g.Co), [&](int64_t begin, int64_t end) {
              for (int64_t q = begin; q < end; ++q) {
                const int64_t p = perm_b[q0 + q];
                for (int64_t s = 0; s < g.m; ++s) {
                  gg_b[s * g.L() + p] = static_cast<scalar_t>(
                      dot_product(yp + (q * g.m + s) * g.Co, gp + q * g.Co, g.Co));
                }
              }
            });
          }
        });
      }
    });
  });
  if (need_x) grad_x = gxt.permute({0, 3, 1, 2}).to(x.scalar_type()).contiguous();
  if (need_k) {
    grad_kernels = at::empty_like(kernels, at::MemoryFormat::Contiguous);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "region_conv_grad_kernels", [&] {
      transpose_taps<scalar_t>(gkr.data_ptr<scalar_t>(), grad_kernels.data_ptr<scalar_t>(), g.B * g.m * g.Co, g.C,
                               g.taps(), false);
    });
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
        for (int64_t i = begin; i < end; ++i) {
          dst[i] = static_cast<scalar_t>(grad_input_at<scalar_t, acc>(i, gp, kp, mp, g));
        }
      });
    }
    if (output_mask[1]) {
      scalar_t* dst = grad_kernels.data_ptr<scalar_t>();
      const int64_t* pp = perm.data_ptr<int64_t>();
      const int64_t* op = offsets.data_ptr<int64_t>();
      at::parallel_for(0, grad_kernels.numel(), grain(g.L()), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          dst[i] = static_cast<scalar_t>(grad_kernel_at<scalar_t, acc>(i, xp, gp, pp, op, g));
        }
      });
    }
    if (output_mask[2]) {
      scalar_t* dst = grad_guide.data_ptr<scalar_t>();
      at::parallel_for(0, grad_guide.numel(), grain(g.Co * g.K()), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          dst[i] = static_cast<scalar_t>(guide_grad_at<scalar_t, acc>(i, xp, gp, kp, g));
        }
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
