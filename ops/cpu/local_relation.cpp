// Local relation and local aggregation: schemas and the fused CPU kernels.
//
// Work is split into rows: a task is one (batch, group, row) and owns every element it writes, so the loops run in
// parallel without atomics and the results do not depend on the thread count. Within a row the innermost loops run
// along x over a tap's valid range (no bounds tests inside), which the compiler vectorises for stride 1.
// Neither the unfolded value (k*k times the input) nor the weight tensor is ever materialised: a row's k*k x W_out
// weights live in a per-thread buffer, and the backward recomputes them from the saved log-sum-exp.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <tuple>
#include <vector>

#include "common/local_relation.h"
#include "common/local_relation_shape.h"

namespace mmlocalrel {
namespace {

using Geo = LocalRelationGeometry;

// Runs `body` with constexpr kS = 1 for unit stride (contiguous inner loops) and kS = 0 (runtime stride) otherwise.
#define LR_DISPATCH_STRIDE(stride, ...) \
  [&] {                                 \
    if ((stride) == 1) {                \
      constexpr int kS = 1;             \
      __VA_ARGS__();                    \
    } else {                            \
      constexpr int kS = 0;             \
      __VA_ARGS__();                    \
    }                                   \
  }()

// Rows per parallel_for chunk: small problems (gradcheck sizes) run inline instead of waking the thread pool.
int64_t row_grain(const Geo& g, int64_t row_width) {
  const int64_t work = std::max<int64_t>(1, static_cast<int64_t>(g.K2) * row_width * std::max<int64_t>(g.cpg, 1));
  return std::max<int64_t>(1, at::internal::GRAIN_SIZE / work);
}

// The valid x range and input offsets of every tap for one output row `yo` (forward direction).
struct RowTaps {
  std::vector<int> y, lo, hi, off;
  explicit RowTaps(int K2) : y(K2), lo(K2), hi(K2), off(K2) {}
  void set(const Geo& g, int yo) {
    for (int t = 0; t < g.K2; ++t) {
      const int ty = t / g.k, tx = t % g.k;
      y[t] = lr_input_coord(yo, ty, g.half, g.stride, g.dilation);
      off[t] = (tx - g.half) * g.dilation;
      if (y[t] < 0 || y[t] >= g.H) {
        lo[t] = hi[t] = 0;
      } else {
        lr_valid_range(tx, g.half, g.stride, g.dilation, static_cast<int>(g.W), static_cast<int>(g.Wo), &lo[t],
                       &hi[t]);
      }
    }
  }
};

// ---------------------------------------------------------------------------------------------------------------
// local_relation forward: logits -> max-subtracted softmax (lse saved) -> aggregation.
template <typename scalar_t, int kS>
void relation_forward_rows(const Geo& g, int form, const scalar_t* q, const scalar_t* key, const scalar_t* v,
                           const scalar_t* geo, scalar_t* out, acc_t<scalar_t>* lse) {
  using acc = acc_t<scalar_t>;
  const int s = kS > 0 ? kS : g.stride;  // kS = 1: compile-time unit stride, vectorisable
  const int64_t HW = g.H * g.W, HWo = g.Ho * g.Wo;
  at::parallel_for(0, g.B * g.G * g.Ho, row_grain(g, g.Wo), [&](int64_t begin, int64_t end) {
    std::vector<acc> wbuf(static_cast<size_t>(g.K2) * g.Wo), mx(g.Wo), sm(g.Wo), orow(g.Wo);
    RowTaps taps(g.K2);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / (g.G * g.Ho), gi = (task / g.Ho) % g.G;
      const int yo = static_cast<int>(task % g.Ho);
      taps.set(g, yo);
      const scalar_t* qrow = q + (b * g.G + gi) * HWo + yo * g.Wo;
      const scalar_t* kimg = key + (b * g.G + gi) * HW;
      std::fill(mx.begin(), mx.end(), -std::numeric_limits<acc>::infinity());
      std::fill(sm.begin(), sm.end(), acc(0));
      for (int t = 0; t < g.K2; ++t) {
        if (taps.lo[t] >= taps.hi[t]) continue;
        const scalar_t* krow = kimg + taps.y[t] * g.W + taps.off[t];
        const acc gv = static_cast<acc>(geo[gi * g.K2 + t]);
        acc* L = wbuf.data() + static_cast<int64_t>(t) * g.Wo;
        for (int x = taps.lo[t]; x < taps.hi[t]; ++x) {
          L[x] = lr_logit<acc>(form, static_cast<acc>(qrow[x]), static_cast<acc>(krow[x * s]), gv);
          mx[x] = std::max(mx[x], L[x]);
        }
      }
      for (int t = 0; t < g.K2; ++t) {
        acc* L = wbuf.data() + static_cast<int64_t>(t) * g.Wo;
        for (int x = taps.lo[t]; x < taps.hi[t]; ++x) {
          L[x] = lr_exp(L[x] - mx[x]);
          sm[x] += L[x];
        }
      }
      acc* lrow = lse + (b * g.G + gi) * HWo + yo * g.Wo;
      for (int x = 0; x < g.Wo; ++x) {
        lrow[x] = mx[x] + lr_log(sm[x]);  // the centre tap is always inside, so sm >= 1
        sm[x] = acc(1) / sm[x];
      }
      for (int t = 0; t < g.K2; ++t) {
        acc* L = wbuf.data() + static_cast<int64_t>(t) * g.Wo;
        for (int x = taps.lo[t]; x < taps.hi[t]; ++x) L[x] *= sm[x];
      }
      for (int64_t cc = 0; cc < g.cpg; ++cc) {
        const int64_t c = gi * g.cpg + cc;
        const scalar_t* vimg = v + (b * g.C + c) * HW;
        std::fill(orow.begin(), orow.end(), acc(0));
        for (int t = 0; t < g.K2; ++t) {
          if (taps.lo[t] >= taps.hi[t]) continue;
          const scalar_t* vrow = vimg + taps.y[t] * g.W + taps.off[t];
          const acc* w = wbuf.data() + static_cast<int64_t>(t) * g.Wo;
          for (int x = taps.lo[t]; x < taps.hi[t]; ++x) orow[x] += w[x] * static_cast<acc>(vrow[x * s]);
        }
        scalar_t* dst = out + (b * g.C + c) * HWo + yo * g.Wo;
        for (int x = 0; x < g.Wo; ++x) dst[x] = static_cast<scalar_t>(orow[x]);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// local_relation backward, pass A (per output row): grad_query, delta, and per-row partial sums of grad_geo_prior.
template <typename scalar_t, int kS>
void relation_backward_rows_out(const Geo& g, int form, const scalar_t* gout, const scalar_t* q, const scalar_t* key,
                                const scalar_t* v, const scalar_t* geo, const scalar_t* out,
                                const acc_t<scalar_t>* lse, scalar_t* gq, acc_t<scalar_t>* delta,
                                acc_t<scalar_t>* geo_part) {
  using acc = acc_t<scalar_t>;
  const int s = kS > 0 ? kS : g.stride;  // kS = 1: compile-time unit stride, vectorisable
  const int64_t HW = g.H * g.W, HWo = g.Ho * g.Wo;
  at::parallel_for(0, g.B * g.G * g.Ho, row_grain(g, g.Wo), [&](int64_t begin, int64_t end) {
    std::vector<acc> wbuf(static_cast<size_t>(g.K2) * g.Wo), gwbuf(static_cast<size_t>(g.K2) * g.Wo), dl(g.Wo),
        gqrow(g.Wo);
    RowTaps taps(g.K2);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / (g.G * g.Ho), gi = (task / g.Ho) % g.G;
      const int yo = static_cast<int>(task % g.Ho);
      taps.set(g, yo);
      const int64_t row = (b * g.G + gi) * HWo + yo * g.Wo;
      const scalar_t* qrow = q + row;
      const acc* lrow = lse + row;
      const scalar_t* kimg = key + (b * g.G + gi) * HW;
      // delta(p') = sum_c grad_out * out (= sum_tap w * grad_w)
      std::fill(dl.begin(), dl.end(), acc(0));
      std::fill(gwbuf.begin(), gwbuf.end(), acc(0));
      for (int64_t cc = 0; cc < g.cpg; ++cc) {
        const int64_t cimg = (b * g.C + gi * g.cpg + cc);
        const scalar_t* grow = gout + cimg * HWo + yo * g.Wo;
        const scalar_t* orow = out + cimg * HWo + yo * g.Wo;
        for (int x = 0; x < g.Wo; ++x) dl[x] += static_cast<acc>(grow[x]) * static_cast<acc>(orow[x]);
        const scalar_t* vimg = v + cimg * HW;
        for (int t = 0; t < g.K2; ++t) {
          if (taps.lo[t] >= taps.hi[t]) continue;
          const scalar_t* vrow = vimg + taps.y[t] * g.W + taps.off[t];
          acc* gw = gwbuf.data() + static_cast<int64_t>(t) * g.Wo;
          for (int x = taps.lo[t]; x < taps.hi[t]; ++x)
            gw[x] += static_cast<acc>(grow[x]) * static_cast<acc>(vrow[x * s]);
        }
      }
      std::fill(gqrow.begin(), gqrow.end(), acc(0));
      for (int t = 0; t < g.K2; ++t) {
        const int64_t pidx = ((b * g.G + gi) * g.K2 + t) * g.Ho + yo;
        geo_part[pidx] = acc(0);
        if (taps.lo[t] >= taps.hi[t]) continue;
        const scalar_t* krow = kimg + taps.y[t] * g.W + taps.off[t];
        const acc gv = static_cast<acc>(geo[gi * g.K2 + t]);
        const acc* gw = gwbuf.data() + static_cast<int64_t>(t) * g.Wo;
        acc part = acc(0);
        for (int x = taps.lo[t]; x < taps.hi[t]; ++x) {
          const acc qv = static_cast<acc>(qrow[x]), kv = static_cast<acc>(krow[x * s]);
          const acc w = lr_weight(lr_logit<acc>(form, qv, kv, gv), lrow[x]);
          const acc gl = lr_grad_logit(w, gw[x], dl[x]);
          gqrow[x] += gl * lr_dlogit_dq<acc>(form, qv, kv);
          part += gl;
        }
        geo_part[pidx] = part;
      }
      for (int x = 0; x < g.Wo; ++x) {
        gq[row + x] = static_cast<scalar_t>(gqrow[x]);
        delta[row + x] = dl[x];
      }
    }
  });
}

// local_relation backward, pass B (per input row): grad_key and grad_value, gathered from the output pixels whose
// window contains each input pixel.
template <typename scalar_t, int kS>
void relation_backward_rows_in(const Geo& g, int form, const scalar_t* gout, const scalar_t* q, const scalar_t* key,
                               const scalar_t* v, const scalar_t* geo, const acc_t<scalar_t>* lse,
                               const acc_t<scalar_t>* delta, scalar_t* gk, scalar_t* gvalue) {
  using acc = acc_t<scalar_t>;
  const int s = kS > 0 ? kS : g.stride;  // kS = 1: compile-time unit stride, vectorisable
  const int64_t HW = g.H * g.W, HWo = g.Ho * g.Wo;
  at::parallel_for(0, g.B * g.G * g.H, row_grain(g, g.W), [&](int64_t begin, int64_t end) {
    std::vector<acc> wrow(g.Wo), gwrow(g.Wo), gkrow(g.W), gvrows(static_cast<size_t>(g.cpg) * g.W);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / (g.G * g.H), gi = (task / g.H) % g.G;
      const int y = static_cast<int>(task % g.H);
      const scalar_t* krow0 = key + (b * g.G + gi) * HW + y * g.W;
      std::fill(gkrow.begin(), gkrow.end(), acc(0));
      std::fill(gvrows.begin(), gvrows.end(), acc(0));
      for (int t = 0; t < g.K2; ++t) {
        const int ty = t / g.k, tx = t % g.k;
        const int yo = lr_output_coord(y, ty, g.half, g.stride, g.dilation, static_cast<int>(g.Ho));
        if (yo < 0) continue;
        int lo, hi;
        lr_valid_range(tx, g.half, g.stride, g.dilation, static_cast<int>(g.W), static_cast<int>(g.Wo), &lo, &hi);
        if (lo >= hi) continue;
        const int off = (tx - g.half) * g.dilation;
        const int64_t row = (b * g.G + gi) * HWo + yo * g.Wo;
        const scalar_t* qrow = q + row;
        const acc* lrow = lse + row;
        const acc* drow = delta + row;
        const scalar_t* krow = krow0 + off;
        const acc gv = static_cast<acc>(geo[gi * g.K2 + t]);
        for (int x = lo; x < hi; ++x) {
          wrow[x] = lr_weight(lr_logit<acc>(form, static_cast<acc>(qrow[x]), static_cast<acc>(krow[x * s]), gv),
                              lrow[x]);
          gwrow[x] = acc(0);
        }
        for (int64_t cc = 0; cc < g.cpg; ++cc) {
          const int64_t cimg = b * g.C + gi * g.cpg + cc;
          const scalar_t* grow = gout + cimg * HWo + yo * g.Wo;
          const scalar_t* vrow = v + cimg * HW + y * g.W + off;
          acc* gvr = gvrows.data() + cc * g.W + off;
          for (int x = lo; x < hi; ++x) {
            const acc go = static_cast<acc>(grow[x]);
            gwrow[x] += go * static_cast<acc>(vrow[x * s]);
            gvr[x * s] += wrow[x] * go;
          }
        }
        acc* gkr = gkrow.data() + off;
        for (int x = lo; x < hi; ++x) {
          const acc gl = lr_grad_logit(wrow[x], gwrow[x], drow[x]);
          gkr[x * s] += gl * lr_dlogit_dk<acc>(form, static_cast<acc>(qrow[x]), static_cast<acc>(krow[x * s]));
        }
      }
      scalar_t* gkdst = gk + (b * g.G + gi) * HW + y * g.W;
      for (int x = 0; x < g.W; ++x) gkdst[x] = static_cast<scalar_t>(gkrow[x]);
      for (int64_t cc = 0; cc < g.cpg; ++cc) {
        scalar_t* gvdst = gvalue + (b * g.C + gi * g.cpg + cc) * HW + y * g.W;
        const acc* src = gvrows.data() + cc * g.W;
        for (int x = 0; x < g.W; ++x) gvdst[x] = static_cast<scalar_t>(src[x]);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// local_aggregation with given weights (B, G, k*k, Ho, Wo).
template <typename scalar_t, int kS>
void aggregation_forward_rows(const Geo& g, const scalar_t* wts, const scalar_t* v, scalar_t* out) {
  using acc = acc_t<scalar_t>;
  const int s = kS > 0 ? kS : g.stride;  // kS = 1: compile-time unit stride, vectorisable
  const int64_t HW = g.H * g.W, HWo = g.Ho * g.Wo;
  at::parallel_for(0, g.B * g.G * g.Ho, row_grain(g, g.Wo), [&](int64_t begin, int64_t end) {
    std::vector<acc> orow(g.Wo);
    RowTaps taps(g.K2);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / (g.G * g.Ho), gi = (task / g.Ho) % g.G;
      const int yo = static_cast<int>(task % g.Ho);
      taps.set(g, yo);
      const scalar_t* wbase = wts + (b * g.G + gi) * g.K2 * HWo + yo * g.Wo;
      for (int64_t cc = 0; cc < g.cpg; ++cc) {
        const int64_t c = gi * g.cpg + cc;
        const scalar_t* vimg = v + (b * g.C + c) * HW;
        std::fill(orow.begin(), orow.end(), acc(0));
        for (int t = 0; t < g.K2; ++t) {
          if (taps.lo[t] >= taps.hi[t]) continue;
          const scalar_t* vrow = vimg + taps.y[t] * g.W + taps.off[t];
          const scalar_t* w = wbase + t * HWo;
          for (int x = taps.lo[t]; x < taps.hi[t]; ++x)
            orow[x] += static_cast<acc>(w[x]) * static_cast<acc>(vrow[x * s]);
        }
        scalar_t* dst = out + (b * g.C + c) * HWo + yo * g.Wo;
        for (int x = 0; x < g.Wo; ++x) dst[x] = static_cast<scalar_t>(orow[x]);
      }
    }
  });
}

template <typename scalar_t, int kS>
void aggregation_backward_weights_rows(const Geo& g, const scalar_t* gout, const scalar_t* v, scalar_t* gw) {
  using acc = acc_t<scalar_t>;
  const int s = kS > 0 ? kS : g.stride;  // kS = 1: compile-time unit stride, vectorisable
  const int64_t HW = g.H * g.W, HWo = g.Ho * g.Wo;
  at::parallel_for(0, g.B * g.G * g.Ho, row_grain(g, g.Wo), [&](int64_t begin, int64_t end) {
    std::vector<acc> gwbuf(static_cast<size_t>(g.K2) * g.Wo);
    RowTaps taps(g.K2);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / (g.G * g.Ho), gi = (task / g.Ho) % g.G;
      const int yo = static_cast<int>(task % g.Ho);
      taps.set(g, yo);
      std::fill(gwbuf.begin(), gwbuf.end(), acc(0));
      for (int64_t cc = 0; cc < g.cpg; ++cc) {
        const int64_t cimg = b * g.C + gi * g.cpg + cc;
        const scalar_t* grow = gout + cimg * HWo + yo * g.Wo;
        const scalar_t* vimg = v + cimg * HW;
        for (int t = 0; t < g.K2; ++t) {
          if (taps.lo[t] >= taps.hi[t]) continue;
          const scalar_t* vrow = vimg + taps.y[t] * g.W + taps.off[t];
          acc* dst = gwbuf.data() + static_cast<int64_t>(t) * g.Wo;
          for (int x = taps.lo[t]; x < taps.hi[t]; ++x)
            dst[x] += static_cast<acc>(grow[x]) * static_cast<acc>(vrow[x * s]);
        }
      }
      scalar_t* wbase = gw + (b * g.G + gi) * g.K2 * HWo + yo * g.Wo;
      for (int t = 0; t < g.K2; ++t) {
        const acc* src = gwbuf.data() + static_cast<int64_t>(t) * g.Wo;
        for (int x = 0; x < g.Wo; ++x) wbase[t * HWo + x] = static_cast<scalar_t>(src[x]);  // 0 outside the image
      }
    }
  });
}

template <typename scalar_t, int kS>
void aggregation_backward_value_rows(const Geo& g, const scalar_t* gout, const scalar_t* wts, scalar_t* gvalue) {
  using acc = acc_t<scalar_t>;
  const int s = kS > 0 ? kS : g.stride;  // kS = 1: compile-time unit stride, vectorisable
  const int64_t HW = g.H * g.W, HWo = g.Ho * g.Wo;
  at::parallel_for(0, g.B * g.G * g.H, row_grain(g, g.W), [&](int64_t begin, int64_t end) {
    std::vector<acc> gvrows(static_cast<size_t>(g.cpg) * g.W);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / (g.G * g.H), gi = (task / g.H) % g.G;
      const int y = static_cast<int>(task % g.H);
      std::fill(gvrows.begin(), gvrows.end(), acc(0));
      for (int t = 0; t < g.K2; ++t) {
        const int ty = t / g.k, tx = t % g.k;
        const int yo = lr_output_coord(y, ty, g.half, g.stride, g.dilation, static_cast<int>(g.Ho));
        if (yo < 0) continue;
        int lo, hi;
        lr_valid_range(tx, g.half, g.stride, g.dilation, static_cast<int>(g.W), static_cast<int>(g.Wo), &lo, &hi);
        const int off = (tx - g.half) * g.dilation;
        const scalar_t* wrow = wts + ((b * g.G + gi) * g.K2 + t) * HWo + yo * g.Wo;
        for (int64_t cc = 0; cc < g.cpg; ++cc) {
          const scalar_t* grow = gout + (b * g.C + gi * g.cpg + cc) * HWo + yo * g.Wo;
          acc* gvr = gvrows.data() + cc * g.W + off;
          for (int x = lo; x < hi; ++x) gvr[x * s] += static_cast<acc>(wrow[x]) * static_cast<acc>(grow[x]);
        }
      }
      for (int64_t cc = 0; cc < g.cpg; ++cc) {
        scalar_t* dst = gvalue + (b * g.C + gi * g.cpg + cc) * HW + y * g.W;
        const acc* src = gvrows.data() + cc * g.W;
        for (int x = 0; x < g.W; ++x) dst[x] = static_cast<scalar_t>(src[x]);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Operator entry points.
std::tuple<at::Tensor, at::Tensor> local_relation_forward_cpu(const at::Tensor& query_, const at::Tensor& key_,
                                                              const at::Tensor& value_, const at::Tensor& geo_,
                                                              int64_t kernel_size, int64_t stride, int64_t dilation,
                                                              c10::string_view composability) {
  const int form = lr_parse_form(composability);
  const auto g = lr_check_relation(query_, key_, value_, geo_, kernel_size, stride, dilation);
  const auto query = query_.contiguous(), key = key_.contiguous(), value = value_.contiguous(),
             geo = geo_.contiguous();
  auto out = at::empty({g.B, g.C, g.Ho, g.Wo}, value.options());
  auto lse = at::empty({g.B, g.G, g.Ho, g.Wo}, value.options().dtype(lr_acc_dtype(value)));
  if (out.numel() == 0) return {out, lse};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, value.scalar_type(), "local_relation_forward_cpu", [&] {
    LR_DISPATCH_STRIDE(g.stride, [&] {
      relation_forward_rows<scalar_t, kS>(g, form, query.data_ptr<scalar_t>(), key.data_ptr<scalar_t>(),
                                          value.data_ptr<scalar_t>(), geo.data_ptr<scalar_t>(),
                                          out.data_ptr<scalar_t>(), lse.data_ptr<acc_t<scalar_t>>());
    });
  });
  return {out, lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> local_relation_backward_cpu(
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
  const auto grad_out = grad_out_.to(value_.scalar_type()).contiguous(), query = query_.contiguous(),
             key = key_.contiguous(), value = value_.contiguous(), geo = geo_.contiguous(),
             out = out_.contiguous(), lse = lse_.contiguous();
  auto gq = at::empty_like(query), gk = at::empty_like(key), gv = at::empty_like(value);
  auto acc_opts = value.options().dtype(lr_acc_dtype(value));
  auto delta = at::empty({g.B, g.G, g.Ho, g.Wo}, acc_opts);
  auto geo_part = at::empty({g.B, g.G, g.K2, g.Ho}, acc_opts);
  auto ggeo = at::zeros({g.G, g.K2}, acc_opts);
  if (out.numel() == 0) {
    return {gq.zero_(), gk.zero_(), gv.zero_(), ggeo.to(geo.scalar_type())};
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, value.scalar_type(), "local_relation_backward_cpu", [&] {
    using acc = acc_t<scalar_t>;
    LR_DISPATCH_STRIDE(g.stride, [&] {
      relation_backward_rows_out<scalar_t, kS>(g, form, grad_out.data_ptr<scalar_t>(), query.data_ptr<scalar_t>(),
                                               key.data_ptr<scalar_t>(), value.data_ptr<scalar_t>(),
                                               geo.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), lse.data_ptr<acc>(),
                                               gq.data_ptr<scalar_t>(), delta.data_ptr<acc>(),
                                               geo_part.data_ptr<acc>());
      relation_backward_rows_in<scalar_t, kS>(g, form, grad_out.data_ptr<scalar_t>(), query.data_ptr<scalar_t>(),
                                              key.data_ptr<scalar_t>(), value.data_ptr<scalar_t>(),
                                              geo.data_ptr<scalar_t>(), lse.data_ptr<acc>(), delta.data_ptr<acc>(),
                                              gk.data_ptr<scalar_t>(), gv.data_ptr<scalar_t>());
    });
    // grad_geo_prior: fixed-order sum of the per-row partials (deterministic).
    const acc* part = geo_part.data_ptr<acc>();
    acc* dst = ggeo.data_ptr<acc>();
    for (int64_t gi = 0; gi < g.G; ++gi)
      for (int t = 0; t < g.K2; ++t) {
        acc sum = acc(0);
        for (int64_t b = 0; b < g.B; ++b) {
          const acc* p = part + ((b * g.G + gi) * g.K2 + t) * g.Ho;
          for (int64_t yo = 0; yo < g.Ho; ++yo) sum += p[yo];
        }
        dst[gi * g.K2 + t] = sum;
      }
  });
  return {gq, gk, gv, ggeo.to(geo.scalar_type())};
}

at::Tensor local_aggregation_forward_cpu(const at::Tensor& weights_, const at::Tensor& value_, int64_t kernel_size,
                                         int64_t stride, int64_t dilation) {
  const auto g = lr_check_aggregation(weights_, value_, kernel_size, stride, dilation);
  const auto weights = weights_.contiguous(), value = value_.contiguous();
  auto out = at::empty({g.B, g.C, g.Ho, g.Wo}, value.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, value.scalar_type(), "local_aggregation_forward_cpu", [&] {
    LR_DISPATCH_STRIDE(g.stride, [&] {
      aggregation_forward_rows<scalar_t, kS>(g, weights.data_ptr<scalar_t>(), value.data_ptr<scalar_t>(),
                                             out.data_ptr<scalar_t>());
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> local_aggregation_backward_cpu(const at::Tensor& grad_out_,
                                                                  const at::Tensor& weights_,
                                                                  const at::Tensor& value_, int64_t kernel_size,
                                                                  int64_t stride, int64_t dilation) {
  const auto g = lr_check_aggregation(weights_, value_, kernel_size, stride, dilation);
  TORCH_CHECK(grad_out_.sizes() == at::IntArrayRef({g.B, g.C, g.Ho, g.Wo}),
              "local_aggregation_backward: grad_output must have shape (B, C, H_out, W_out) = ",
              at::IntArrayRef({g.B, g.C, g.Ho, g.Wo}), ", got ", grad_out_.sizes());
  const auto grad_out = grad_out_.to(value_.scalar_type()).contiguous(), weights = weights_.contiguous(),
             value = value_.contiguous();
  auto gw = at::empty_like(weights), gv = at::empty_like(value);
  if (grad_out.numel() == 0) return {gw.zero_(), gv.zero_()};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, value.scalar_type(), "local_aggregation_backward_cpu",
                                  [&] {
    LR_DISPATCH_STRIDE(g.stride, [&] {
      aggregation_backward_weights_rows<scalar_t, kS>(g, grad_out.data_ptr<scalar_t>(), value.data_ptr<scalar_t>(),
                                                      gw.data_ptr<scalar_t>());
      aggregation_backward_value_rows<scalar_t, kS>(g, grad_out.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>(),
                                                    gv.data_ptr<scalar_t>());
    });
  });
  return {gw, gv};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(mmlocalrel, m) {
  m.def(
      "local_relation_forward(Tensor query, Tensor key, Tensor value, Tensor geo_prior, int kernel_size, "
      "int stride, int dilation, str composability) -> (Tensor output, Tensor lse)");
  m.def(
      "local_relation_backward(Tensor grad_output, Tensor query, Tensor key, Tensor value, Tensor geo_prior, "
      "Tensor output, Tensor lse, int kernel_size, int stride, int dilation, str composability) "
      "-> (Tensor grad_query, Tensor grad_key, Tensor grad_value, Tensor grad_geo_prior)");
  m.def(
      "local_aggregation_forward(Tensor weights, Tensor value, int kernel_size, int stride, int dilation) "
      "-> Tensor");
  m.def(
      "local_aggregation_backward(Tensor grad_output, Tensor weights, Tensor value, int kernel_size, int stride, "
      "int dilation) -> (Tensor grad_weights, Tensor grad_value)");
}

TORCH_LIBRARY_IMPL(mmlocalrel, CPU, m) {
  m.impl("local_relation_forward", &local_relation_forward_cpu);
  m.impl("local_relation_backward", &local_relation_backward_cpu);
  m.impl("local_aggregation_forward", &local_aggregation_forward_cpu);
  m.impl("local_aggregation_backward", &local_aggregation_backward_cpu);
}

}  // namespace mmlocalrel
