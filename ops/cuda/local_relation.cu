// Local relation and local aggregation: CUDA kernels (forward and backward).
//
// Same element functions as the CPU path (common/local_relation.h). One thread per output element for the
// forward, per input element for the gathering backward passes: every thread owns what it writes, so there are no
// atomics and results are deterministic. The weights are recomputed where needed (from the saved log-sum-exp), never
// stored: neither the unfolded value nor the (B, G, k*k, H_out, W_out) weight tensor is allocated.
// Per-op ATen headers rather than ATen/ATen.h: nvcc parses every included header twice (host and device passes).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <tuple>

#include "common/local_relation.h"
#include "common/local_relation_shape.h"

namespace mmlocalrel {
namespace {

using Geo = LocalRelationGeometry;

constexpr int kThreads = 256;

inline int blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < 65535 * 32 ? b : 65535 * 32);
}

#define CUDA_1D_LOOP(i, n) \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// Geometry passed by value to the kernels.
struct KGeo {
  int B, C, G, cpg, H, W, Ho, Wo, k, K2, half, stride, dilation;
};

KGeo to_kgeo(const Geo& g) {
  return KGeo{static_cast<int>(g.B), static_cast<int>(g.C), static_cast<int>(g.G), static_cast<int>(g.cpg),
              static_cast<int>(g.H), static_cast<int>(g.W), static_cast<int>(g.Ho), static_cast<int>(g.Wo),
              g.k, g.K2, g.half, g.stride, g.dilation};
}

// Logit of tap t for output pixel (yo, xo) of (b, gi); false when the tap falls outside the image.
template <typename scalar_t, typename acc>
__device__ __forceinline__ bool tap_logit(const KGeo& g, int form, const scalar_t* q, const scalar_t* key,
                                          const scalar_t* geo, int b, int gi, int yo, int xo, int t, acc* logit,
                                          int* y, int* x) {
  *y = lr_input_coord(yo, t / g.k, g.half, g.stride, g.dilation);
  *x = lr_input_coord(xo, t % g.k, g.half, g.stride, g.dilation);
  if (*y < 0 || *y >= g.H || *x < 0 || *x >= g.W) return false;
  const int64_t bg = static_cast<int64_t>(b) * g.G + gi;
  const acc qv = static_cast<acc>(q[(bg * g.Ho + yo) * g.Wo + xo]);
  const acc kv = static_cast<acc>(key[(bg * g.H + *y) * g.W + *x]);
  *logit = lr_logit<acc>(form, qv, kv, static_cast<acc>(geo[gi * g.K2 + t]));
  return true;
}

// ----------------------------------------------------------------------------------------------------------------
// local_relation forward
template <typename scalar_t, typename acc>
__global__ void relation_lse_kernel(KGeo g, int form, const scalar_t* q, const scalar_t* key, const scalar_t* geo,
                                    acc* lse) {
  const int64_t n = static_cast<int64_t>(g.B) * g.G * g.Ho * g.Wo;
  CUDA_1D_LOOP(i, n) {
    const int xo = i % g.Wo, yo = (i / g.Wo) % g.Ho, gi = (i / (static_cast<int64_t>(g.Wo) * g.Ho)) % g.G;
    const int b = i / (static_cast<int64_t>(g.Wo) * g.Ho * g.G);
    acc mx = -INFINITY, L;
    int y, x;
    for (int t = 0; t < g.K2; ++t)
      if (tap_logit<scalar_t, acc>(g, form, q, key, geo, b, gi, yo, xo, t, &L, &y, &x)) mx = L > mx ? L : mx;
    acc sum = acc(0);
    for (int t = 0; t < g.K2; ++t)
      if (tap_logit<scalar_t, acc>(g, form, q, key, geo, b, gi, yo, xo, t, &L, &y, &x)) sum += lr_exp(L - mx);
    lse[i] = mx + lr_log(sum);
  }
}

template <typename scalar_t, typename acc>
__global__ void relation_aggregate_kernel(KGeo g, int form, const scalar_t* q, const scalar_t* key,
                                          const scalar_t* v, const scalar_t* geo, const acc* lse, scalar_t* out) {
  const int64_t n = static_cast<int64_t>(g.B) * g.C * g.Ho * g.Wo;
  CUDA_1D_LOOP(i, n) {
    const int xo = i % g.Wo, yo = (i / g.Wo) % g.Ho, c = (i / (static_cast<int64_t>(g.Wo) * g.Ho)) % g.C;
    const int b = i / (static_cast<int64_t>(g.Wo) * g.Ho * g.C), gi = c / g.cpg;
    const acc l = lse[((static_cast<int64_t>(b) * g.G + gi) * g.Ho + yo) * g.Wo + xo];
    const scalar_t* vimg = v + (static_cast<int64_t>(b) * g.C + c) * g.H * g.W;
    acc sum = acc(0), L;
    int y, x;
    for (int t = 0; t < g.K2; ++t)
      if (tap_logit<scalar_t, acc>(g, form, q, key, geo, b, gi, yo, xo, t, &L, &y, &x))
        sum += lr_weight(L, l) * static_cast<acc>(vimg[y * g.W + x]);
    out[i] = static_cast<scalar_t>(sum);
  }
}

// ----------------------------------------------------------------------------------------------------------------
// local_relation backward

// delta(p') = sum_{c in g} grad_out[c, p'] * out[c, p']
template <typename scalar_t, typename acc>
__global__ void relation_delta_kernel(KGeo g, const scalar_t* gout, const scalar_t* out, acc* delta) {
  const int64_t n = static_cast<int64_t>(g.B) * g.G * g.Ho * g.Wo;
  const int64_t HWo = static_cast<int64_t>(g.Ho) * g.Wo;
  CUDA_1D_LOOP(i, n) {
    const int64_t p = i % HWo, bg = i / HWo;
    const int gi = bg % g.G, b = bg / g.G;
    acc sum = acc(0);
    for (int cc = 0; cc < g.cpg; ++cc) {
      const int64_t idx = (static_cast<int64_t>(b) * g.C + gi * g.cpg + cc) * HWo + p;
      sum += static_cast<acc>(gout[idx]) * static_cast<acc>(out[idx]);
    }
    delta[i] = sum;
  }
}

// grad_w(tap) = sum_{c in g} grad_out[c, p'] * value[c, p]
template <typename scalar_t, typename acc>
__device__ __forceinline__ acc grad_weight(const KGeo& g, const scalar_t* gout, const scalar_t* v, int b, int gi,
                                           int yo, int xo, int y, int x) {
  const int64_t HWo = static_cast<int64_t>(g.Ho) * g.Wo, HW = static_cast<int64_t>(g.H) * g.W;
  acc sum = acc(0);
  for (int cc = 0; cc < g.cpg; ++cc) {
    const int64_t c = static_cast<int64_t>(b) * g.C + gi * g.cpg + cc;
    sum += static_cast<acc>(gout[c * HWo + yo * g.Wo + xo]) * static_cast<acc>(v[c * HW + y * g.W + x]);
  }
  return sum;
}

template <typename scalar_t, typename acc>
__global__ void relation_grad_query_kernel(KGeo g, int form, const scalar_t* gout, const scalar_t* q,
                                           const scalar_t* key, const scalar_t* v, const scalar_t* geo,
                                           const acc* lse, const acc* delta, scalar_t* gq) {
  const int64_t n = static_cast<int64_t>(g.B) * g.G * g.Ho * g.Wo;
  CUDA_1D_LOOP(i, n) {
    const int xo = i % g.Wo, yo = (i / g.Wo) % g.Ho, gi = (i / (static_cast<int64_t>(g.Wo) * g.Ho)) % g.G;
    const int b = i / (static_cast<int64_t>(g.Wo) * g.Ho * g.G);
    const acc qv = static_cast<acc>(q[i]), l = lse[i], d = delta[i];
    const scalar_t* kimg = key + (static_cast<int64_t>(b) * g.G + gi) * g.H * g.W;
    acc sum = acc(0), L;
    int y, x;
    for (int t = 0; t < g.K2; ++t) {
      if (!tap_logit<scalar_t, acc>(g, form, q, key, geo, b, gi, yo, xo, t, &L, &y, &x)) continue;
      const acc gl = lr_grad_logit(lr_weight(L, l), grad_weight<scalar_t, acc>(g, gout, v, b, gi, yo, xo, y, x), d);
      sum += gl * lr_dlogit_dq<acc>(form, qv, static_cast<acc>(kimg[y * g.W + x]));
    }
    gq[i] = static_cast<scalar_t>(sum);
  }
}

// Partial sums of grad_geo_prior over one output row: part[b, g, t, yo].
template <typename scalar_t, typename acc>
__global__ void relation_grad_geo_kernel(KGeo g, int form, const scalar_t* gout, const scalar_t* q,
                                         const scalar_t* key, const scalar_t* v, const scalar_t* geo, const acc* lse,
                                         const acc* delta, acc* part) {
  const int64_t n = static_cast<int64_t>(g.B) * g.G * g.K2 * g.Ho;
  CUDA_1D_LOOP(i, n) {
    const int yo = i % g.Ho, t = (i / g.Ho) % g.K2, gi = (i / (static_cast<int64_t>(g.Ho) * g.K2)) % g.G;
    const int b = i / (static_cast<int64_t>(g.Ho) * g.K2 * g.G);
    const int64_t row = ((static_cast<int64_t>(b) * g.G + gi) * g.Ho + yo) * g.Wo;
    acc sum = acc(0), L;
    int y, x;
    for (int xo = 0; xo < g.Wo; ++xo) {
      if (!tap_logit<scalar_t, acc>(g, form, q, key, geo, b, gi, yo, xo, t, &L, &y, &x)) continue;
      sum += lr_grad_logit(lr_weight(L, lse[row + xo]),
                           grad_weight<scalar_t, acc>(g, gout, v, b, gi, yo, xo, y, x), delta[row + xo]);
    }
    part[i] = sum;
  }
}

// grad_key[g, p]: gathered from the output pixels p' whose tap t reads p.
template <typename scalar_t, typename acc>
__global__ void relation_grad_key_kernel(KGeo g, int form, const scalar_t* gout, const scalar_t* q,
                                         const scalar_t* key, const scalar_t* v, const scalar_t* geo, const acc* lse,
                                         const acc* delta, scalar_t* gk) {
  const int64_t n = static_cast<int64_t>(g.B) * g.G * g.H * g.W;
  CUDA_1D_LOOP(i, n) {
    const int x = i % g.W, y = (i / g.W) % g.H, gi = (i / (static_cast<int64_t>(g.W) * g.H)) % g.G;
    const int b = i / (static_cast<int64_t>(g.W) * g.H * g.G);
    const acc kv = static_cast<acc>(key[i]);
    const int64_t bg = static_cast<int64_t>(b) * g.G + gi;
    acc sum = acc(0);
    for (int t = 0; t < g.K2; ++t) {
      const int yo = lr_output_coord(y, t / g.k, g.half, g.stride, g.dilation, g.Ho);
      const int xo = lr_output_coord(x, t % g.k, g.half, g.stride, g.dilation, g.Wo);
      if (yo < 0 || xo < 0) continue;
      const int64_t po = (bg * g.Ho + yo) * g.Wo + xo;
      const acc qv = static_cast<acc>(q[po]);
      const acc w = lr_weight(lr_logit<acc>(form, qv, kv, static_cast<acc>(geo[gi * g.K2 + t])), lse[po]);
      const acc gl = lr_grad_logit(w, grad_weight<scalar_t, acc>(g, gout, v, b, gi, yo, xo, y, x), delta[po]);
      sum += gl * lr_dlogit_dk<acc>(form, qv, kv);
    }
    gk[i] = static_cast<scalar_t>(sum);
  }
}

// grad_value[c, p]: gathered from the output pixels p' whose tap t reads p.
template <typename scalar_t, typename acc>
__global__ void relation_grad_value_kernel(KGeo g, int form, const scalar_t* gout, const scalar_t* q,
                                           const scalar_t* key, const scalar_t* geo, const acc* lse,
                                           scalar_t* gvalue) {
  const int64_t n = static_cast<int64_t>(g.B) * g.C * g.H * g.W;
  const int64_t HWo = static_cast<int64_t>(g.Ho) * g.Wo;
  CUDA_1D_LOOP(i, n) {
    const int x = i % g.W, y = (i / g.W) % g.H, c = (i / (static_cast<int64_t>(g.W) * g.H)) % g.C;
    const int b = i / (static_cast<int64_t>(g.W) * g.H * g.C), gi = c / g.cpg;
    const int64_t bg = static_cast<int64_t>(b) * g.G + gi;
    const acc kv = static_cast<acc>(key[(bg * g.H + y) * g.W + x]);
    const scalar_t* grow = gout + (static_cast<int64_t>(b) * g.C + c) * HWo;
    acc sum = acc(0);
    for (int t = 0; t < g.K2; ++t) {
      const int yo = lr_output_coord(y, t / g.k, g.half, g.stride, g.dilation, g.Ho);
      const int xo = lr_output_coord(x, t % g.k, g.half, g.stride, g.dilation, g.Wo);
      if (yo < 0 || xo < 0) continue;
      const int64_t po = (bg * g.Ho + yo) * g.Wo + xo;
      const acc w = lr_weight(
          lr_logit<acc>(form, static_cast<acc>(q[po]), kv, static_cast<acc>(geo[gi * g.K2 + t])), lse[po]);
      sum += w * static_cast<acc>(grow[yo * g.Wo + xo]);
    }
    gvalue[i] = static_cast<scalar_t>(sum);
  }
}

template <typename acc>
__global__ void sum_geo_partials_kernel(KGeo g, const acc* part, acc* ggeo) {
  const int64_t n = static_cast<int64_t>(g.G) * g.K2;
  CUDA_1D_LOOP(i, n) {
    const int t = i % g.K2, gi = i / g.K2;
    acc sum = acc(0);
    for (int b = 0; b < g.B; ++b) {
      const acc* p = part + ((static_cast<int64_t>(b) * g.G + gi) * g.K2 + t) * g.Ho;
      for (int yo = 0; yo < g.Ho; ++yo) sum += p[yo];
    }
    ggeo[i] = sum;
  }
}

// ----------------------------------------------------------------------------------------------------------------
// local_aggregation
template <typename scalar_t, typename acc>
__global__ void aggregation_forward_kernel(KGeo g, const scalar_t* wts, const scalar_t* v, scalar_t* out) {
  const int64_t n = static_cast<int64_t>(g.B) * g.C * g.Ho * g.Wo;
  const int64_t HWo = static_cast<int64_t>(g.Ho) * g.Wo;
  CUDA_1D_LOOP(i, n) {
    const int xo = i % g.Wo, yo = (i / g.Wo) % g.Ho, c = (i / HWo) % g.C;
    const int b = i / (HWo * g.C), gi = c / g.cpg;
    const scalar_t* wbase = wts + (static_cast<int64_t>(b) * g.G + gi) * g.K2 * HWo + yo * g.Wo + xo;
    const scalar_t* vimg = v + (static_cast<int64_t>(b) * g.C + c) * g.H * g.W;
    acc sum = acc(0);
    for (int t = 0; t < g.K2; ++t) {
      const int y = lr_input_coord(yo, t / g.k, g.half, g.stride, g.dilation);
      const int x = lr_input_coord(xo, t % g.k, g.half, g.stride, g.dilation);
      if (y < 0 || y >= g.H || x < 0 || x >= g.W) continue;
      sum += static_cast<acc>(wbase[t * HWo]) * static_cast<acc>(vimg[y * g.W + x]);
    }
    out[i] = static_cast<scalar_t>(sum);
  }
}

template <typename scalar_t, typename acc>
__global__ void aggregation_grad_weights_kernel(KGeo g, const scalar_t* gout, const scalar_t* v, scalar_t* gw) {
  const int64_t HWo = static_cast<int64_t>(g.Ho) * g.Wo;
  const int64_t n = static_cast<int64_t>(g.B) * g.G * g.K2 * HWo;
  CUDA_1D_LOOP(i, n) {
    const int xo = i % g.Wo, yo = (i / g.Wo) % g.Ho, t = (i / HWo) % g.K2;
    const int gi = (i / (HWo * g.K2)) % g.G, b = i / (HWo * g.K2 * g.G);
    const int y = lr_input_coord(yo, t / g.k, g.half, g.stride, g.dilation);
    const int x = lr_input_coord(xo, t % g.k, g.half, g.stride, g.dilation);
    acc sum = acc(0);  // zero for taps outside the image
    if (y >= 0 && y < g.H && x >= 0 && x < g.W) sum = grad_weight<scalar_t, acc>(g, gout, v, b, gi, yo, xo, y, x);
    gw[i] = static_cast<scalar_t>(sum);
  }
}

template <typename scalar_t, typename acc>
__global__ void aggregation_grad_value_kernel(KGeo g, const scalar_t* gout, const scalar_t* wts, scalar_t* gvalue) {
  const int64_t n = static_cast<int64_t>(g.B) * g.C * g.H * g.W;
  const int64_t HWo = static_cast<int64_t>(g.Ho) * g.Wo;
  CUDA_1D_LOOP(i, n) {
    const int x = i % g.W, y = (i / g.W) % g.H, c = (i / (static_cast<int64_t>(g.W) * g.H)) % g.C;
    const int b = i / (static_cast<int64_t>(g.W) * g.H * g.C), gi = c / g.cpg;
    const scalar_t* wbase = wts + (static_cast<int64_t>(b) * g.G + gi) * g.K2 * HWo;
    const scalar_t* grow = gout + (static_cast<int64_t>(b) * g.C + c) * HWo;
    acc sum = acc(0);
    for (int t = 0; t < g.K2; ++t) {
      const int yo = lr_output_coord(y, t / g.k, g.half, g.stride, g.dilation, g.Ho);
      const int xo = lr_output_coord(x, t % g.k, g.half, g.stride, g.dilation, g.Wo);
      if (yo < 0 || xo < 0) continue;
      sum += static_cast<acc>(wbase[t * HWo + yo * g.Wo + xo]) * static_cast<acc>(grow[yo * g.Wo + xo]);
    }
    gvalue[i] = static_cast<scalar_t>(sum);
  }
}

template <typename... KArgs, typename... Args>
void launch(void (*kernel)(KArgs...), int64_t n, Args... args) {
  if (n <= 0) return;
  kernel<<<blocks_for(n), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(args...);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// ----------------------------------------------------------------------------------------------------------------
// Operator entry points.
std::tuple<at::Tensor, at::Tensor> local_relation_forward_cuda(const at::Tensor& query_, const at::Tensor& key_,
                                                               const at::Tensor& value_, const at::Tensor& geo_,
                                                               int64_t kernel_size, int64_t stride, int64_t dilation,
                                                               c10::string_view composability) {
  const int form = lr_parse_form(composability);
  const auto g = lr_check_relation(query_, key_, value_, geo_, kernel_size, stride, dilation);
  const c10::cuda::CUDAGuard guard(value_.device());
  const auto query = query_.contiguous(), key = key_.contiguous(), value = value_.contiguous(),
             geo = geo_.contiguous();
  auto out = at::empty({g.B, g.C, g.Ho, g.Wo}, value.options());
  auto lse = at::empty({g.B, g.G, g.Ho, g.Wo}, value.options().dtype(lr_acc_dtype(value)));
  const KGeo kg = to_kgeo(g);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, value.scalar_type(), "local_relation_forward_cuda", [&] {
    using acc = acc_t<scalar_t>;
    launch(relation_lse_kernel<scalar_t, acc>, lse.numel(), kg, form, query.data_ptr<scalar_t>(),
              key.data_ptr<scalar_t>(), geo.data_ptr<scalar_t>(), lse.data_ptr<acc>());
    launch(relation_aggregate_kernel<scalar_t, acc>, out.numel(), kg, form, query.data_ptr<scalar_t>(),
              key.data_ptr<scalar_t>(), value.data_ptr<scalar_t>(), geo.data_ptr<scalar_t>(), lse.data_ptr<acc>(),
              out.data_ptr<scalar_t>());
  });
  return {out, lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> local_relation_backward_cuda(
    const at::Tensor& grad_out_, const at::Tensor& query_, const at::Tensor& key_, const at::Tensor& value_,
    const at::Tensor& geo_, const at::Tensor& out_, const at::Tensor& lse_, int64_t kernel_size, int64_t stride,
    int64_t dilation, c10::string_view composability) {
  const int form = lr_parse_form(composability);
  const auto g = lr_check_relation(query_, key_, value_, geo_, kernel_size, stride, dilation);
  TORCH_CHECK(grad_out_.sizes() == out_.sizes() && out_.sizes() == at::IntArrayRef({g.B, g.C, g.Ho, g.Wo}),
              "local_relation_backward: grad_output and output must have shape (B, C, H_out, W_out) = ",
              at::IntArrayRef({g.B, g.C, g.Ho, g.Wo}));
  TORCH_CHECK(lse_.sizes() == at::IntArrayRef({g.B, g.G, g.Ho, g.Wo}) && lse_.scalar_type() == lr_acc_dtype(value_),
              "local_relation_backward: lse must be the forward's (B, G, H_out, W_out) log-sum-exp");
  const c10::cuda::CUDAGuard guard(value_.device());
  const auto grad_out = grad_out_.to(value_.scalar_type()).contiguous(), query = query_.contiguous(),
             key = key_.contiguous(), value = value_.contiguous(), geo = geo_.contiguous(),
             out = out_.contiguous(), lse = lse_.contiguous();
  auto gq = at::empty_like(query), gk = at::empty_like(key), gv = at::empty_like(value);
  auto acc_opts = value.options().dtype(lr_acc_dtype(value));
  auto delta = at::empty({g.B, g.G, g.Ho, g.Wo}, acc_opts);
  auto geo_part = at::empty({g.B, g.G, g.K2, g.Ho}, acc_opts);
  auto ggeo = at::zeros({g.G, g.K2}, acc_opts);
  const KGeo kg = to_kgeo(g);
  if (out.numel() == 0) return {gq.zero_(), gk.zero_(), gv.zero_(), ggeo.to(geo.scalar_type())};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, value.scalar_type(), "local_relation_backward_cuda", [&] {
    using acc = acc_t<scalar_t>;
    const scalar_t *go = grad_out.data_ptr<scalar_t>(), *qp = query.data_ptr<scalar_t>(),
                   *kp = key.data_ptr<scalar_t>(), *vp = value.data_ptr<scalar_t>(), *gp = geo.data_ptr<scalar_t>();
    launch(relation_delta_kernel<scalar_t, acc>, delta.numel(), kg, go, out.data_ptr<scalar_t>(),
              delta.data_ptr<acc>());
    launch(relation_grad_query_kernel<scalar_t, acc>, gq.numel(), kg, form, go, qp, kp, vp, gp,
              lse.data_ptr<acc>(), delta.data_ptr<acc>(), gq.data_ptr<scalar_t>());
    launch(relation_grad_geo_kernel<scalar_t, acc>, geo_part.numel(), kg, form, go, qp, kp, vp, gp,
              lse.data_ptr<acc>(), delta.data_ptr<acc>(), geo_part.data_ptr<acc>());
    launch(sum_geo_partials_kernel<acc>, ggeo.numel(), kg, geo_part.data_ptr<acc>(), ggeo.data_ptr<acc>());
    launch(relation_grad_key_kernel<scalar_t, acc>, gk.numel(), kg, form, go, qp, kp, vp, gp,
              lse.data_ptr<acc>(), delta.data_ptr<acc>(), gk.data_ptr<scalar_t>());
    launch(relation_grad_value_kernel<scalar_t, acc>, gv.numel(), kg, form, go, qp, kp, gp, lse.data_ptr<acc>(),
              gv.data_ptr<scalar_t>());
  });
  return {gq, gk, gv, ggeo.to(geo.scalar_type())};
}

at::Tensor local_aggregation_forward_cuda(const at::Tensor& weights_, const at::Tensor& value_, int64_t kernel_size,
                                          int64_t stride, int64_t dilation) {
  const auto g = lr_check_aggregation(weights_, value_, kernel_size, stride, dilation);
  const c10::cuda::CUDAGuard guard(value_.device());
  const auto weights = weights_.contiguous(), value = value_.contiguous();
  auto out = at::empty({g.B, g.C, g.Ho, g.Wo}, value.options());
  const KGeo kg = to_kgeo(g);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, value.scalar_type(), "local_aggregation_forward_cuda",
                                  [&] {
                                    using acc = acc_t<scalar_t>;
                                    launch(aggregation_forward_kernel<scalar_t, acc>, out.numel(), kg,
                                              weights.data_ptr<scalar_t>(), value.data_ptr<scalar_t>(),
                                              out.data_ptr<scalar_t>());
                                  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> local_aggregation_backward_cuda(const at::Tensor& grad_out_,
                                                                   const at::Tensor& weights_,
                                                                   const at::Tensor& value_, int64_t kernel_size,
                                                                   int64_t stride, int64_t dilation) {
  const auto g = lr_check_aggregation(weights_, value_, kernel_size, stride, dilation);
  TORCH_CHECK(grad_out_.sizes() == at::IntArrayRef({g.B, g.C, g.Ho, g.Wo}),
              "local_aggregation_backward: grad_output must have shape (B, C, H_out, W_out) = ",
              at::IntArrayRef({g.B, g.C, g.Ho, g.Wo}), ", got ", grad_out_.sizes());
  const c10::cuda::CUDAGuard guard(value_.device());
  const auto grad_out = grad_out_.to(value_.scalar_type()).contiguous(), weights = weights_.contiguous(),
             value = value_.contiguous();
  auto gw = at::empty_like(weights), gv = at::empty_like(value);
  const KGeo kg = to_kgeo(g);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, value.scalar_type(), "local_aggregation_backward_cuda",
                                  [&] {
                                    using acc = acc_t<scalar_t>;
                                    launch(aggregation_grad_weights_kernel<scalar_t, acc>, gw.numel(), kg,
                                              grad_out.data_ptr<scalar_t>(), value.data_ptr<scalar_t>(),
                                              gw.data_ptr<scalar_t>());
                                    launch(aggregation_grad_value_kernel<scalar_t, acc>, gv.numel(), kg,
                                              grad_out.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>(),
                                              gv.data_ptr<scalar_t>());
                                  });
  return {gw, gv};
}

}  // namespace

TORCH_LIBRARY_IMPL(mmlocalrel, CUDA, m) {
  m.impl("local_relation_forward", &local_relation_forward_cuda);
  m.impl("local_relation_backward", &local_relation_backward_cuda);
  m.impl("local_aggregation_forward", &local_aggregation_forward_cuda);
  m.impl("local_aggregation_backward", &local_aggregation_backward_cuda);
}

}  // namespace mmlocalrel
