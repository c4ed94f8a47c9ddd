// region_conv (DRConv, Chen et al. 2021): out[b, :, p] = (kernels[b, mask[b, p]] * x[b])[p].
//
// Per-element math shared by the CPU kernels (ops/cpu/region_conv.cpp) and the CUDA kernels
// (ops/cuda/region_conv.cu). The CPU's fast path batches the same index maps into im2col/GEMM/col2im; its
// "direct" path (test hook) loops over exactly the element functions the CUDA kernels call, so the GPU's
// arithmetic is exercised by the CPU tests.
#pragma once

#include <cstdint>

#include "macros.h"

namespace mmlocalrel {
namespace region_conv {

// Shapes of one call: x (B, C, H, W), kernels (B, m, Co, C, kh, kw), mask (B, Ho, Wo), out (B, Co, Ho, Wo).
struct Geometry {
  int64_t B, C, H, W;      // input
  int64_t m, Co, kh, kw;   // regions, output channels, kernel size
  int64_t Ho, Wo;          // output
  int64_t sh, sw, ph, pw, dh, dw;  // stride, padding, dilation

  HOST_DEVICE_INLINE int64_t L() const { return Ho * Wo; }          // output pixels per sample
  HOST_DEVICE_INLINE int64_t taps() const { return kh * kw; }
  HOST_DEVICE_INLINE int64_t K() const { return C * kh * kw; }      // multiply-adds per output value
  HOST_DEVICE_INLINE int64_t kernel_numel() const { return Co * C * kh * kw; }  // one region's kernel
};

HOST_DEVICE_INLINE int64_t out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
  return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

// The input coordinate that output coordinate `o` reads at tap `k`.
HOST_DEVICE_INLINE int64_t input_coord(int64_t o, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
  return o * stride - pad + k * dil;
}

HOST_DEVICE_INLINE bool in_bounds(int64_t i, int64_t size) { return i >= 0 && i < size; }

// The inverse map: the output coordinate whose tap `k` reads input coordinate `i`, if there is one. Backward to x
// gathers through it (each input value sums its own contributions: no atomics, deterministic).
HOST_DEVICE_INLINE bool output_coord(int64_t i, int64_t k, int64_t stride, int64_t pad, int64_t dil,
                                     int64_t out, int64_t* o) {
  const int64_t num = i + pad - k * dil;
  if (num < 0 || num % stride != 0) return false;
  const int64_t q = num / stride;
  if (q >= out) return false;
  *o = q;
  return true;
}

// Y(p)[co] for one kernel slice w = kernels[b, t, co] (C, kh, kw) at output pixel (oh, ow) of one sample
// x_b (C, H, W): the convolution sum of a single output value.
template <typename scalar_t, typename acc_t>
HOST_DEVICE_INLINE acc_t kernel_response(const scalar_t* x_b, const scalar_t* w, int64_t oh, int64_t ow,
                                         const Geometry& g) {
  acc_t acc = acc_t(0);
  for (int64_t i = 0; i < g.kh; ++i) {
    const int64_t ih = input_coord(oh, i, g.sh, g.ph, g.dh);
    if (!in_bounds(ih, g.H)) continue;
    for (int64_t j = 0; j < g.kw; ++j) {
      const int64_t iw = input_coord(ow, j, g.sw, g.pw, g.dw);
      if (!in_bounds(iw, g.W)) continue;
      const scalar_t* xp = x_b + ih * g.W + iw;
      const scalar_t* wp = w + i * g.kw + j;
      for (int64_t c = 0; c < g.C; ++c) {
        acc += static_cast<acc_t>(wp[c * g.taps()]) * static_cast<acc_t>(xp[c * g.H * g.W]);
      }
    }
  }
  return acc;
}

// Forward value out[b, co, p]: the response of the kernel of p's region. kernels_b is (m, Co, C, kh, kw).
template <typename scalar_t, typename acc_t>
HOST_DEVICE_INLINE acc_t forward_element(const scalar_t* x_b, const scalar_t* kernels_b, int64_t region,
                                         int64_t co, int64_t p, const Geometry& g) {
  const scalar_t* w = kernels_b + (region * g.Co + co) * g.K();
  return kernel_response<scalar_t, acc_t>(x_b, w, p / g.Wo, p % g.Wo, g);
}

// dL/dx[b, c, ih, iw]: for every tap whose output pixel p reads (ih, iw), the kernel of p's region against
// grad_out at p. gy_b is (Co, L), mask_b (L).
template <typename scalar_t, typename acc_t>
HOST_DEVICE_INLINE acc_t grad_input_element(const scalar_t* gy_b, const scalar_t* kernels_b, const int64_t* mask_b,
                                            int64_t c, int64_t ih, int64_t iw, const Geometry& g) {
  acc_t acc = acc_t(0);
  for (int64_t i = 0; i < g.kh; ++i) {
    int64_t oh;
    if (!output_coord(ih, i, g.sh, g.ph, g.dh, g.Ho, &oh)) continue;
    for (int64_t j = 0; j < g.kw; ++j) {
      int64_t ow;
      if (!output_coord(iw, j, g.sw, g.pw, g.dw, g.Wo, &ow)) continue;
      const int64_t p = oh * g.Wo + ow;
      const scalar_t* w = kernels_b + mask_b[p] * g.kernel_numel() + (c * g.kh + i) * g.kw + j;
      for (int64_t co = 0; co < g.Co; ++co) {
        acc += static_cast<acc_t>(w[co * g.K()]) * static_cast<acc_t>(gy_b[co * g.L() + p]);
      }
    }
  }
  return acc;
}

// dL/dkernels[b, t, co, c, i, j]: sum over the pixels of region t only (`pixels`, n of them, from the region
// sort), so all regions together cost one convolution. gy_bco is grad_out[b, co] (L).
template <typename scalar_t, typename acc_t>
HOST_DEVICE_INLINE acc_t grad_kernel_element(const scalar_t* x_b, const scalar_t* gy_bco, const int64_t* pixels,
                                             int64_t n, int64_t c, int64_t i, int64_t j, const Geometry& g) {
  acc_t acc = acc_t(0);
  const scalar_t* x_c = x_b + c * g.H * g.W;
  for (int64_t q = 0; q < n; ++q) {
    const int64_t p = pixels[q];
    const int64_t ih = input_coord(p / g.Wo, i, g.sh, g.ph, g.dh);
    const int64_t iw = input_coord(p % g.Wo, j, g.sw, g.pw, g.dw);
    if (in_bounds(ih, g.H) && in_bounds(iw, g.W)) {
      acc += static_cast<acc_t>(gy_bco[p]) * static_cast<acc_t>(x_c[ih * g.W + iw]);
    }
  }
  return acc;
}

// The paper's surrogate for the guided feature: dL/dF^_t(p) = <dL/dY(p), Y_t(p)>, Y_t(p) being region t's kernel
// applied at p (whatever p's region is). kernels_bt is kernels[b, t] (Co, C, kh, kw).
template <typename scalar_t, typename acc_t>
HOST_DEVICE_INLINE acc_t guide_grad_element(const scalar_t* x_b, const scalar_t* gy_b, const scalar_t* kernels_bt,
                                            int64_t p, const Geometry& g) {
  acc_t acc = acc_t(0);
  for (int64_t co = 0; co < g.Co; ++co) {
    const acc_t response = kernel_response<scalar_t, acc_t>(x_b, kernels_bt + co * g.K(), p / g.Wo, p % g.Wo, g);
    acc += static_cast<acc_t>(gy_b[co * g.L() + p]) * response;
  }
  return acc;
}

// One output element per flat index, the bodies of the CUDA kernels (and of the CPU "direct" test path). Index
// layouts follow the output tensors: out (B, Co, L), grad_x (B, C, H, W), grad_kernels (B, m, Co, C, kh, kw),
// grad_guide (B, m, L).
template <typename scalar_t, typename acc_t>
HOST_DEVICE_INLINE acc_t forward_at(int64_t index, const scalar_t* x, const scalar_t* kernels, const int64_t* mask,
                                    const Geometry& g) {
  const int64_t p = index % g.L();
  const int64_t co = (index / g.L()) % g.Co;
  const int64_t b = index / (g.L() * g.Co);
  return forward_element<scalar_t, acc_t>(x + b * g.C * g.H * g.W, kernels + b * g.m * g.kernel_numel(),
                                          mask[b * g.L() + p], co, p, g);
}

template <typename scalar_t, typename acc_t>
HOST_DEVICE_INLINE acc_t grad_input_at(int64_t index, const scalar_t* gy, const scalar_t* kernels,
                                       const int64_t* mask, const Geometry& g) {
  const int64_t iw = index % g.W;
  const int64_t ih = (index / g.W) % g.H;
  const int64_t c = (index / (g.W * g.H)) % g.C;
  const int64_t b = index / (g.W * g.H * g.C);
  return grad_input_element<scalar_t, acc_t>(gy + b * g.Co * g.L(), kernels + b * g.m * g.kernel_numel(),
                                             mask + b * g.L(), c, ih, iw, g);
}

// perm (B, L) and offsets (B, m + 1) are the region sort (region_conv_host.h: sort_regions).
template <typename scalar_t, typename acc_t>
HOST_DEVICE_INLINE acc_t grad_kernel_at(int64_t index, const scalar_t* x, const scalar_t* gy, const int64_t* perm,
                                        const int64_t* offsets, const Geometry& g) {
  const int64_t j = index % g.kw;
  const int64_t i = (index / g.kw) % g.kh;
  const int64_t c = (index / g.taps()) % g.C;
  const int64_t co = (index / g.K()) % g.Co;
  const int64_t t = (index / g.kernel_numel()) % g.m;
  const int64_t b = index / (g.kernel_numel() * g.m);
  const int64_t begin = offsets[b * (g.m + 1) + t];
  const int64_t end = offsets[b * (g.m + 1) + t + 1];
  return grad_kernel_element<scalar_t, acc_t>(x + b * g.C * g.H * g.W, gy + (b * g.Co + co) * g.L(),
                                              perm + b * g.L() + begin, end - begin, c, i, j, g);
}

template <typename scalar_t, typename acc_t>
HOST_DEVICE_INLINE acc_t guide_grad_at(int64_t index, const scalar_t* x, const scalar_t* gy, const scalar_t* kernels,
                                       const Geometry& g) {
  const int64_t p = index % g.L();
  const int64_t t = (index / g.L()) % g.m;
  const int64_t b = index / (g.L() * g.m);
  return guide_grad_element<scalar_t, acc_t>(x + b * g.C * g.H * g.W, gy + b * g.Co * g.L(),
                                             kernels + (b * g.m + t) * g.kernel_numel(), p, g);
}

}  // namespace region_conv
}  // namespace mmlocalrel
