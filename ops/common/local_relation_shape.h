// Host-side argument checks and geometry of the local relation ops, shared by the CPU and CUDA launchers so both
// reject the same inputs with the same messages (the Python layer checks first, with friendlier wording).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <string>

#include "local_relation.h"

namespace mmlocalrel {

struct LocalRelationGeometry {
  int64_t B, C, G, cpg, H, W, Ho, Wo;
  int k, K2, half, stride, dilation;
};

inline int lr_parse_form(c10::string_view name) {
  if (name == "squared_diff") return kSquaredDiff;
  if (name == "abs_diff") return kAbsDiff;
  if (name == "dot") return kDot;
  TORCH_CHECK(false, "local_relation: composability must be one of ('squared_diff', 'abs_diff', 'dot'), got '",
              std::string(name.data(), name.size()), "'");
  return -1;
}

inline LocalRelationGeometry lr_geometry(const char* op, const at::Tensor& value, int64_t groups, int64_t kernel_size,
                                         int64_t stride, int64_t dilation) {
  TORCH_CHECK(value.dim() == 4, op, ": value must be 4-D (B, C, H, W), got ", value.sizes());
  TORCH_CHECK(kernel_size >= 1 && kernel_size % 2 == 1, op, ": kernel_size must be an odd positive int, got ",
              kernel_size);
  TORCH_CHECK(stride >= 1, op, ": stride must be >= 1, got ", stride);
  TORCH_CHECK(dilation >= 1, op, ": dilation must be >= 1, got ", dilation);
  LocalRelationGeometry g;
  g.B = value.size(0);
  g.C = value.size(1);
  g.H = value.size(2);
  g.W = value.size(3);
  g.G = groups;
  TORCH_CHECK(g.G >= 1 && g.C % g.G == 0, op, ": value channels (", g.C, ") must be divisible by the groups (", g.G,
              ")");
  g.cpg = g.C / g.G;
  g.k = static_cast<int>(kernel_size);
  g.K2 = g.k * g.k;
  g.half = g.k / 2;
  g.stride = static_cast<int>(stride);
  g.dilation = static_cast<int>(dilation);
  g.Ho = lr_out_size(static_cast<int>(g.H), g.stride);
  g.Wo = lr_out_size(static_cast<int>(g.W), g.stride);
  return g;
}

inline void lr_check_shape(const char* op, const char* name, const at::Tensor& t, at::IntArrayRef expected,
                           const at::Tensor& value) {
  TORCH_CHECK(t.sizes() == expected, op, ": ", name, " must have shape ", expected, ", got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == value.scalar_type(), op, ": ", name, " must have the dtype of value (",
              value.scalar_type(), "), got ", t.scalar_type());
  TORCH_CHECK(t.device() == value.device(), op, ": ", name, " must be on the device of value (", value.device(),
              "), got ", t.device());
}

// Checks query/key/geo_prior against value; returns the geometry.
inline LocalRelationGeometry lr_check_relation(const at::Tensor& query, const at::Tensor& key,
                                               const at::Tensor& value, const at::Tensor& geo_prior,
                                               int64_t kernel_size, int64_t stride, int64_t dilation) {
  const char* op = "local_relation";
  TORCH_CHECK(key.dim() == 4, op, ": key must be 4-D (B, G, H, W), got ", key.sizes());
  auto g = lr_geometry(op, value, key.size(1), kernel_size, stride, dilation);
  lr_check_shape(op, "key", key, {g.B, g.G, g.H, g.W}, value);
  lr_check_shape(op, "query", query, {g.B, g.G, g.Ho, g.Wo}, value);
  lr_check_shape(op, "geo_prior", geo_prior, {g.G, static_cast<int64_t>(g.K2)}, value);
  return g;
}

// Checks weights (B, G, k*k, Ho, Wo) against value; returns the geometry.
inline LocalRelationGeometry lr_check_aggregation(const at::Tensor& weights, const at::Tensor& value,
                                                  int64_t kernel_size, int64_t stride, int64_t dilation) {
  const char* op = "local_aggregation";
  TORCH_CHECK(weights.dim() == 5, op, ": weights must be 5-D (B, G, k*k, H_out, W_out), got ", weights.sizes());
  auto g = lr_geometry(op, value, weights.size(1), kernel_size, stride, dilation);
  lr_check_shape(op, "weights", weights, {g.B, g.G, static_cast<int64_t>(g.K2), g.Ho, g.Wo}, value);
  return g;
}

inline at::ScalarType lr_acc_dtype(const at::Tensor& value) {
  return value.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

}  // namespace mmlocalrel
