// region_conv: host-side argument checks and the region sort, shared by the CPU and CUDA launchers (ATen only,
// no device code). The per-element math is in region_conv.h.
#pragma once

// Per-operator headers rather than ATen/ATen.h: nvcc compiles this into the CUDA file too, several times faster.
#include <ATen/core/Tensor.h>
#include <ATen/ops/aminmax.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/searchsorted.h>
#include <ATen/ops/sort.h>

#include <tuple>

#include "region_conv.h"

namespace mmlocalrel {
namespace region_conv {

inline Geometry make_geometry(const at::Tensor& x, const at::Tensor& kernels, const at::Tensor& mask,
                              at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation) {
  TORCH_CHECK(x.dim() == 4, "region_conv: x must be 4-D (B, C_in, H, W), got shape ", x.sizes());
  TORCH_CHECK(kernels.dim() == 6, "region_conv: kernels must be 6-D (B, m, C_out, C_in, kh, kw), got shape ",
              kernels.sizes());
  TORCH_CHECK(mask.dim() == 3, "region_conv: mask must be 3-D (B, H_out, W_out), got shape ", mask.sizes());
  TORCH_CHECK(mask.scalar_type() == at::kLong, "region_conv: mask must be int64, got ", mask.scalar_type());
  TORCH_CHECK(x.scalar_type() == kernels.scalar_type(), "region_conv: kernels dtype ", kernels.scalar_type(),
              " differs from x dtype ", x.scalar_type());
  TORCH_CHECK(x.device() == kernels.device() && x.device() == mask.device(),
              "region_conv: x, kernels and mask must be on one device, got ", x.device(), ", ", kernels.device(),
              ", ", mask.device());
  TORCH_CHECK(stride.size() == 2 && padding.size() == 2 && dilation.size() == 2,
              "region_conv: stride, padding and dilation must have 2 values each");
  TORCH_CHECK(stride[0] >= 1 && stride[1] >= 1, "region_conv: stride must be >= 1, got ", stride);
  TORCH_CHECK(padding[0] >= 0 && padding[1] >= 0, "region_conv: padding must be >= 0, got ", padding);
  TORCH_CHECK(dilation[0] >= 1 && dilation[1] >= 1, "region_conv: dilation must be >= 1, got ", dilation);
  Geometry g;
  g.B = x.size(0); g.C = x.size(1); g.H = x.size(2); g.W = x.size(3);
  g.m = kernels.size(1); g.Co = kernels.size(2); g.kh = kernels.size(4); g.kw = kernels.size(5);
  g.sh = stride[0]; g.sw = stride[1]; g.ph = padding[0]; g.pw = padding[1]; g.dh = dilation[0]; g.dw = dilation[1];
  TORCH_CHECK(kernels.size(0) == g.B && kernels.size(3) == g.C,
              "region_conv: kernels must be (B=", g.B, ", m, C_out, C_in=", g.C, ", kh, kw), got shape ",
              kernels.sizes());
  TORCH_CHECK(g.m >= 1 && g.Co >= 1 && g.kh >= 1 && g.kw >= 1, "region_conv: kernels has an empty dimension: ",
              kernels.sizes());
  g.Ho = out_size(g.H, g.kh, g.sh, g.ph, g.dh);
  g.Wo = out_size(g.W, g.kw, g.sw, g.pw, g.dw);
  TORCH_CHECK(g.Ho >= 1 && g.Wo >= 1, "region_conv: input ", x.sizes(), " is too small for kernel (", g.kh, ", ",
              g.kw, ") with padding ", padding, " and dilation ", dilation);
  TORCH_CHECK(mask.size(0) == g.B && mask.size(1) == g.Ho && mask.size(2) == g.Wo,
              "region_conv: mask must be (B, H_out, W_out) = (", g.B, ", ", g.Ho, ", ", g.Wo, "), got shape ",
              mask.sizes());
  return g;
}

// Mask values index the kernels: out of range would read other memory, so it is an error (one reduction).
inline void check_mask_range(const at::Tensor& mask, int64_t m) {
  if (mask.numel() == 0) return;
  const auto range = at::aminmax(mask);
  const int64_t lo = std::get<0>(range).item<int64_t>();
  const int64_t hi = std::get<1>(range).item<int64_t>();
  TORCH_CHECK(lo >= 0 && hi < m, "region_conv: mask values must lie in [0, m) = [0, ", m, "), got values in [", lo,
              ", ", hi, "]");
}

// Pixels of each sample grouped by region: perm (B, L) lists region 0's pixels, then region 1's, ... each in raster
// order (stable sort, so results are deterministic); offsets (B, m + 1) delimits them.
inline std::tuple<at::Tensor, at::Tensor> sort_regions(const at::Tensor& mask, int64_t m) {
  const auto flat = mask.reshape({mask.size(0), mask.size(1) * mask.size(2)});
  const auto sorted = at::sort(flat, /*stable=*/true, /*dim=*/1, /*descending=*/false);
  const auto bounds = at::arange(m + 1, flat.options()).unsqueeze(0).expand({flat.size(0), m + 1}).contiguous();
  auto offsets = at::searchsorted(std::get<0>(sorted), bounds);
  return {std::get<1>(sorted).contiguous(), offsets.contiguous()};
}

}  // namespace region_conv
}  // namespace mmlocalrel
