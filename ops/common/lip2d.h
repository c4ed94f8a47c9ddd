// LIP (Local Importance-based Pooling, Gao et al. ICCV 2019): per-element math shared by the CPU loops
// (ops/cpu/lip2d.cpp) and the CUDA kernels (ops/cuda/lip2d.cu).
//
//   out_o = sum_{i in W(o)} x_i e^{l_i - m_o} / sum_{i in W(o)} e^{l_i - m_o},   m_o = max_{i in W(o)} l_i
//
// W(o) is the avg_pool2d window of output o clipped to the image (taps outside count in neither sum). Subtracting
// the window maximum keeps every exponent <= 0: no overflow whatever the logits (the paper's 12*sigmoid already
// overflows fp16 without it), and the largest term of every denominator is exactly 1, so no 0/0 either.
// The forward also returns lse_o = m_o + log(sum_i e^{l_i - m_o}); the backward needs only that:
//   w_io = e^{l_i - lse_o},  dL/dx_i = sum_o g_o w_io,  dL/dl_i = sum_o g_o w_io (x_i - out_o).
#pragma once

#include <cstdint>
#include <cstring>
#include <cmath>

#include "common/macros.h"

// Forced inline on the host too: the CPU loops are built per ISA (function multiversioning) and GCC only inlines
// plain `inline` functions into them when told to, without which nothing vectorises.
#if defined(__CUDACC__) || defined(__HIPCC__) || !defined(__GNUC__)
#define LIP_INLINE HOST_DEVICE_INLINE
#else
#define LIP_INLINE inline __attribute__((always_inline))
#endif

namespace mmlocalrel {
namespace lip {

// Output length along one axis: F.avg_pool2d's, ceil_mode=False.
LIP_INLINE int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p) { return (in + 2 * p - k) / s + 1; }

LIP_INLINE float as_float(uint32_t i) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(i);
#else
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
#endif
}

LIP_INLINE uint32_t as_uint(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i;
#endif
}

// exp(x), float. Written without branches so that the CPU loops vectorise (no float op sits under a condition,
// which -ftrapping-math would forbid if-converting): Cephes' range reduction and degree-6 polynomial, ~1 ulp on
// [-87, 88]. Below -87 (including -inf, the logit of padding taps) the result is exactly 0, by a bit mask; above 88
// +inf; NaN stays NaN. The callers pass x <= 0 (logit minus a window maximum or a log-sum-exp). The GPU runs the
// same code, so both devices compute the same weights.
LIP_INLINE float fexp(float x) {
  const float lo = -87.0f, hi = 88.0f;
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits
  const float t = x * 1.44269504088896341f + magic;
  const float n = t - magic;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n from n = round(x log2 e) read off t's bits; unsigned, so out-of-range x (masked below) wraps, no UB.
  const uint32_t k = as_uint(t) - as_uint(magic);
  const uint32_t y = as_uint(p * as_float((k + 127u) << 23));
  const uint32_t under = x < lo ? 0u : ~0u, over = x > hi ? ~0u : 0u;
  return as_float(((y & under) & ~over) | (0x7f800000u & over));  // 0 below lo, +inf above hi
}

LIP_INLINE float lexp(float x) { return fexp(x); }
LIP_INLINE double lexp(double x) { return exp(x); }
LIP_INLINE float llog(float x) { return logf(x); }
LIP_INLINE double llog(double x) { return log(x); }

template <typename acc>
LIP_INLINE acc neg_inf() {
  return static_cast<acc>(-INFINITY);  // not numeric_limits: device code without --expt-relaxed-constexpr
}

// Window maximum; a NaN logit never wins here but still reaches the output through its exp.
template <typename acc>
LIP_INLINE acc window_max(acc m, acc l) {
  return l > m ? l : m;
}

// One tap of the forward sums, relative to the window maximum m.
template <typename acc>
LIP_INLINE void forward_tap(acc l, acc x, acc m, acc& s, acc& t) {
  const acc e = lexp(l - m);
  s += e;
  t += e * x;
}

template <typename acc>
LIP_INLINE acc forward_out(acc s, acc t) {
  return t / s;
}

template <typename acc>
LIP_INLINE acc forward_lse(acc m, acc s) {
  return m + llog(s);
}

// Contribution of output o (gradient g, value out, log-sum-exp lse) to the gradients of one of its taps.
template <typename acc>
LIP_INLINE void backward_tap(acc l, acc x, acc lse, acc out, acc g, acc& gx, acc& gl) {
  const acc w = lexp(l - lse) * g;
  gx += w;
  gl += w * (x - out);
}

}  // namespace lip
}  // namespace mmlocalrel
