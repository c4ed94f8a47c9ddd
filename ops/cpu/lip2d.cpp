// LIP pooling, CPU: schemas and the fused forward/backward loops over the element functions of common/lip2d.h.
//
// One thread owns a (batch, channel) plane at a time. The plane is copied once, in the accumulation type, into a
// padded buffer (logit padding -inf, so padding taps weigh exactly 0) laid out as `stride` column phases: column
// c sits in phase c % stride at c / stride, so every window tap reads a unit-stride run along an output row and the
// inner loops vectorise for any stride and no boundary tests. The backward sums the contributions of the outputs
// covering each input into that input's own slot in a fixed tap order: no atomics, bit-for-bit deterministic.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "common/lip2d.h"

// The hot loops are built for several ISAs and picked at load time (GCC/Clang function multiversioning), so one
// portable wheel still runs wide vectors where the CPU has them.
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define LIP_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define LIP_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define LIP_CPU_CLONES
#define LIP_ALWAYS_INLINE inline
#endif

namespace mmlocalrel {
namespace {

struct Lip2dPlan {
  int64_t planes, H, W, OH, OW;
  int64_t kh, kw, sh, sw, ph, pw;
  int64_t Hp, Wq;  // padded rows; entries per row and column phase
};

Lip2dPlan make_plan(const at::Tensor& x, const at::Tensor& logit, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                    at::IntArrayRef padding) {
  TORCH_CHECK(x.dim() == 4, "lip2d: x must be 4-D (B, C, H, W), got shape ", x.sizes());
  TORCH_CHECK(logit.sizes() == x.sizes(), "lip2d: logit must have x's shape ", x.sizes(), ", got ", logit.sizes());
  TORCH_CHECK(logit.scalar_type() == x.scalar_type(), "lip2d: logit dtype ", logit.scalar_type(),
              " differs from x dtype ", x.scalar_type());
  TORCH_CHECK(logit.device() == x.device(), "lip2d: logit and x are on different devices");
  TORCH_CHECK(kernel_size.size() == 2 && stride.size() == 2 && padding.size() == 2,
              "lip2d: kernel_size, stride and padding must have 2 elements");
  Lip2dPlan p;
  p.kh = kernel_size[0], p.kw = kernel_size[1];
  p.sh = stride[0], p.sw = stride[1];
  p.ph = padding[0], p.pw = padding[1];
  TORCH_CHECK(p.kh > 0 && p.kw > 0, "lip2d: kernel_size must be positive, got ", kernel_size);
  TORCH_CHECK(p.sh > 0 && p.sw > 0, "lip2d: stride must be positive, got ", stride);
  TORCH_CHECK(p.ph >= 0 && p.pw >= 0 && 2 * p.ph <= p.kh && 2 * p.pw <= p.kw,
              "lip2d: padding must be >= 0 and <= kernel_size / 2, got padding=", padding,
              " kernel_size=", kernel_size);
  p.planes = x.size(0) * x.size(1);
  p.H = x.size(2), p.W = x.size(3);
  p.OH = lip::out_size(p.H, p.kh, p.sh, p.ph);
  p.OW = lip::out_size(p.W, p.kw, p.sw, p.pw);
  TORCH_CHECK(p.H + 2 * p.ph >= p.kh && p.W + 2 * p.pw >= p.kw, "lip2d: kernel_size ", kernel_size,
              " is larger than the padded input ", x.sizes(), " (padding ", padding, "): empty output");
  p.Hp = p.H + 2 * p.ph;
  p.Wq = (p.W + 2 * p.pw + p.sw - 1) / p.sw;
  return p;
}

// Strided <-> unit-stride row copies (with the dtype conversion) of the phase layout; stride 1 and 2 are unrolled
// at compile time so that they vectorise.
template <typename src_t, typename dst_t>
LIP_ALWAYS_INLINE void strided_to_dense(const src_t* __restrict__ s, dst_t* __restrict__ d, int64_t n, int64_t sw) {
  if (sw == 1) {
    for (int64_t k = 0; k < n; ++k) d[k] = static_cast<dst_t>(s[k]);
  } else if (sw == 2) {
    for (int64_t k = 0; k < n; ++k) d[k] = static_cast<dst_t>(s[2 * k]);
  } else {
    for (int64_t k = 0; k < n; ++k) d[k] = static_cast<dst_t>(s[k * sw]);
  }
}

template <typename src_t, typename dst_t>
LIP_ALWAYS_INLINE void dense_to_strided(const src_t* __restrict__ s, dst_t* __restrict__ d, int64_t n, int64_t sw) {
  if (sw == 1) {
    for (int64_t k = 0; k < n; ++k) d[k] = static_cast<dst_t>(s[k]);
  } else if (sw == 2) {
    for (int64_t k = 0; k < n; ++k) d[2 * k] = static_cast<dst_t>(s[k]);
  } else {
    for (int64_t k = 0; k < n; ++k) d[k * sw] = static_cast<dst_t>(s[k]);
  }
}

LIP_CPU_CLONES void load_row(const float* s, float* d, int64_t n, int64_t sw) { strided_to_dense(s, d, n, sw); }
LIP_CPU_CLONES void store_row(const float* s, float* d, int64_t n, int64_t sw) { dense_to_strided(s, d, n, sw); }
template <typename src_t, typename dst_t>
void load_row(const src_t* s, dst_t* d, int64_t n, int64_t sw) {
  strided_to_dense(s, d, n, sw);
}
template <typename src_t, typename dst_t>
void store_row(const src_t* s, dst_t* d, int64_t n, int64_t sw) {
  dense_to_strided(s, d, n, sw);
}

// Padded plane in column phases (see the file comment).
template <typename acc>
struct PhasePlane {
  std::vector<acc> buf;
  int64_t Hp, Wq, sw, ph, pw, H, W;

  PhasePlane(const Lip2dPlan& p, acc fill)
      : buf(p.sw * p.Hp * p.Wq, fill), Hp(p.Hp), Wq(p.Wq), sw(p.sw), ph(p.ph), pw(p.pw), H(p.H), W(p.W) {}

  // Run of phase (j % sw) at padded row r, starting at the tap j of output column 0.
  acc* tap(int64_t r, int64_t j) { return buf.data() + ((j % sw) * Hp + r) * Wq + j / sw; }

  template <typename scalar_t>
  void load(const scalar_t* src) {  // interior only: the padding keeps its fill
    for (int64_t q = 0; q < sw; ++q) {
      const int64_t c0 = ((q - pw) % sw + sw) % sw;  // first image column whose padded column is in phase q
      const int64_t n = c0 < W ? (W - c0 + sw - 1) / sw : 0;
      for (int64_t r = 0; r < H; ++r)
        load_row(src + r * W + c0, buf.data() + (q * Hp + r + ph) * Wq + (c0 + pw) / sw, n, sw);
    }
  }

  template <typename scalar_t>
  void store(scalar_t* dst) const {
    for (int64_t q = 0; q < sw; ++q) {
      const int64_t c0 = ((q - pw) % sw + sw) % sw;
      const int64_t n = c0 < W ? (W - c0 + sw - 1) / sw : 0;
      for (int64_t r = 0; r < H; ++r)
        store_row(buf.data() + (q * Hp + r + ph) * Wq + (c0 + pw) / sw, dst + r * W + c0, n, sw);
    }
  }

  void zero() { std::fill(buf.begin(), buf.end(), acc(0)); }
};

// The window loops over one output row. Restrict-qualified unit-stride runs: the compiler vectorises along ow.
template <typename acc>
LIP_ALWAYS_INLINE void row_max(const acc* __restrict__ l, int64_t n, acc* __restrict__ m) {
  for (int64_t o = 0; o < n; ++o) m[o] = lip::window_max(m[o], l[o]);
}

template <typename acc>
LIP_ALWAYS_INLINE void row_forward(const acc* __restrict__ l, const acc* __restrict__ x, const acc* __restrict__ m,
                                   int64_t n, acc* __restrict__ s, acc* __restrict__ t) {
  for (int64_t o = 0; o < n; ++o) lip::forward_tap(l[o], x[o], m[o], s[o], t[o]);
}

template <typename acc>
LIP_ALWAYS_INLINE void row_backward(const acc* __restrict__ l, const acc* __restrict__ x,
                                    const acc* __restrict__ lse, const acc* __restrict__ out, const acc* __restrict__ g,
                                    int64_t n, acc* __restrict__ gx, acc* __restrict__ gl) {
  for (int64_t o = 0; o < n; ++o) lip::backward_tap(l[o], x[o], lse[o], out[o], g[o], gx[o], gl[o]);
}

LIP_CPU_CLONES void row_max_f(const float* l, int64_t n, float* m) { row_max(l, n, m); }
LIP_CPU_CLONES void row_forward_f(const float* l, const float* x, const float* m, int64_t n, float* s, float* t) {
  row_forward(l, x, m, n, s, t);
}
LIP_CPU_CLONES void row_backward_f(const float* l, const float* x, const float* lse, const float* out,
                                   const float* g, int64_t n, float* gx, float* gl) {
  row_backward(l, x, lse, out, g, n, gx, gl);
}
void row_max_f(const double* l, int64_t n, double* m) { row_max(l, n, m); }
void row_forward_f(const double* l, const double* x, const double* m, int64_t n, double* s, double* t) {
  row_forward(l, x, m, n, s, t);
}
void row_backward_f(const double* l, const double* x, const double* lse, const double* out, const double* g,
                    int64_t n, double* gx, double* gl) {
  row_backward(l, x, lse, out, g, n, gx, gl);
}

int64_t grain(const Lip2dPlan& p) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, p.H * p.W)); }

template <typename scalar_t>
void forward_impl(const Lip2dPlan& p, const scalar_t* x, const scalar_t* logit, scalar_t* out,
                  acc_t<scalar_t>* lse) {
  using acc = acc_t<scalar_t>;
  at::parallel_for(0, p.planes, grain(p), [&](int64_t begin, int64_t end) {
    PhasePlane<acc> xs(p, acc(0)), ls(p, lip::neg_inf<acc>());
    std::vector<acc> m(p.OW), s(p.OW), t(p.OW);
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t in_off = plane * p.H * p.W, out_off = plane * p.OH * p.OW;
      xs.load(x + in_off);
      ls.load(logit + in_off);
      for (int64_t oh = 0; oh < p.OH; ++oh) {
        std::fill(m.begin(), m.end(), lip::neg_inf<acc>());
        std::fill(s.begin(), s.end(), acc(0));
        std::fill(t.begin(), t.end(), acc(0));
        for (int64_t i = 0; i < p.kh; ++i)
          for (int64_t j = 0; j < p.kw; ++j) row_max_f(ls.tap(oh * p.sh + i, j), p.OW, m.data());
        for (int64_t i = 0; i < p.kh; ++i)
          for (int64_t j = 0; j < p.kw; ++j) {
            const int64_t r = oh * p.sh + i;
            row_forward_f(ls.tap(r, j), xs.tap(r, j), m.data(), p.OW, s.data(), t.data());
          }
        scalar_t* o = out + out_off + oh * p.OW;
        acc* e = lse + out_off + oh * p.OW;
        for (int64_t ow = 0; ow < p.OW; ++ow) {
          o[ow] = static_cast<scalar_t>(lip::forward_out(s[ow], t[ow]));
          e[ow] = lip::forward_lse(m[ow], s[ow]);
        }
      }
    }
  });
}

template <typename scalar_t>
void backward_impl(const Lip2dPlan& p, const scalar_t* grad_out, const scalar_t* x, const scalar_t* logit,
                   const scalar_t* out, const acc_t<scalar_t>* lse, scalar_t* grad_x, scalar_t* grad_logit) {
  using acc = acc_t<scalar_t>;
  at::parallel_for(0, p.planes, grain(p), [&](int64_t begin, int64_t end) {
    PhasePlane<acc> xs(p, acc(0)), ls(p, lip::neg_inf<acc>()), gxs(p, acc(0)), gls(p, acc(0));
    std::vector<acc> g(p.OW), o(p.OW);
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t in_off = plane * p.H * p.W, out_off = plane * p.OH * p.OW;
      xs.load(x + in_off);
      ls.load(logit + in_off);
      gxs.zero();
      gls.zero();
      for (int64_t oh = 0; oh < p.OH; ++oh) {
        const int64_t row = out_off + oh * p.OW;
        for (int64_t ow = 0; ow < p.OW; ++ow) {
          g[ow] = static_cast<acc>(grad_out[row + ow]);
          o[ow] = static_cast<acc>(out[row + ow]);
        }
        for (int64_t i = 0; i < p.kh; ++i)
          for (int64_t j = 0; j < p.kw; ++j) {
            const int64_t r = oh * p.sh + i;
            row_backward_f(ls.tap(r, j), xs.tap(r, j), lse + row, o.data(), g.data(), p.OW, gxs.tap(r, j),
                           gls.tap(r, j));
          }
      }
      gxs.store(grad_x + in_off);
      gls.store(grad_logit + in_off);
    }
  });
}

std::tuple<at::Tensor, at::Tensor> lip2d_forward_cpu(const at::Tensor& x_, const at::Tensor& logit_,
                                                    at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                                    at::IntArrayRef padding) {
  const Lip2dPlan p = make_plan(x_, logit_, kernel_size, stride, padding);
  const at::Tensor x = x_.contiguous(), logit = logit_.contiguous();
  at::Tensor out = at::empty({x.size(0), x.size(1), p.OH, p.OW}, x.options());
  const auto acc_dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor lse = at::empty({x.size(0), x.size(1), p.OH, p.OW}, x.options().dtype(acc_dtype));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "lip2d_forward_cpu", [&] {
    forward_impl<scalar_t>(p, x.const_data_ptr<scalar_t>(), logit.const_data_ptr<scalar_t>(),
                           out.mutable_data_ptr<scalar_t>(), lse.mutable_data_ptr<acc_t<scalar_t>>());
  });
  return {out, lse};
}

std::tuple<at::Tensor, at::Tensor> lip2d_backward_cpu(const at::Tensor& grad_out_, const at::Tensor& x_,
                                                     const at::Tensor& logit_, const at::Tensor& out_,
                                                     const at::Tensor& lse_, at::IntArrayRef kernel_size,
                                                     at::IntArrayRef stride, at::IntArrayRef padding) {
  const Lip2dPlan p = make_plan(x_, logit_, kernel_size, stride, padding);
  const std::vector<int64_t> out_shape{x_.size(0), x_.size(1), p.OH, p.OW};
  TORCH_CHECK(grad_out_.sizes() == out_shape && out_.sizes() == out_shape && lse_.sizes() == out_shape,
              "lip2d_backward: grad_out, out and lse must have the output shape ", at::IntArrayRef(out_shape));
  TORCH_CHECK(grad_out_.scalar_type() == x_.scalar_type() && out_.scalar_type() == x_.scalar_type(),
              "lip2d_backward: grad_out and out must have x's dtype ", x_.scalar_type());
  const auto acc_dtype = x_.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  TORCH_CHECK(lse_.scalar_type() == acc_dtype, "lip2d_backward: lse must be ", acc_dtype, ", got ",
              lse_.scalar_type());
  const at::Tensor x = x_.contiguous(), logit = logit_.contiguous(), grad_out = grad_out_.contiguous(),
                   out = out_.contiguous(), lse = lse_.contiguous();
  at::Tensor grad_x = at::empty_like(x), grad_logit = at::empty_like(logit);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "lip2d_backward_cpu", [&] {
    backward_impl<scalar_t>(p, grad_out.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                            logit.const_data_ptr<scalar_t>(), out.const_data_ptr<scalar_t>(),
                            lse.const_data_ptr<acc_t<scalar_t>>(), grad_x.mutable_data_ptr<scalar_t>(),
                            grad_logit.mutable_data_ptr<scalar_t>());
  });
  return {grad_x, grad_logit};
}

}  // namespace
}  // namespace mmlocalrel

TORCH_LIBRARY_FRAGMENT(mmlocalrel, m) {
  m.def("lip2d_forward(Tensor x, Tensor logit, int[2] kernel_size, int[2] stride, int[2] padding) -> "
        "(Tensor out, Tensor lse)");
  m.def("lip2d_backward(Tensor grad_out, Tensor x, Tensor logit, Tensor out, Tensor lse, int[2] kernel_size, "
        "int[2] stride, int[2] padding) -> (Tensor grad_x, Tensor grad_logit)");
}

TORCH_LIBRARY_IMPL(mmlocalrel, CPU, m) {
  m.impl("lip2d_forward", &mmlocalrel::lip2d_forward_cpu);
  m.impl("lip2d_backward", &mmlocalrel::lip2d_backward_cpu);
}
