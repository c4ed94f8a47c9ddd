// Local relation (Hu et al., ICCV 2019): per-element math shared by the CPU loops and the CUDA kernels.
//
// Output pixel p' of a (stride, dilation) window of k x k taps looks at input pixels
//   p = p' * stride + (tap - k / 2) * dilation            (per axis),
// and only those inside the image take part. For each channel group g:
//   logit(tap) = A(query[g, p'], key[g, p]) + geo_prior[g, tap]
//   w(tap)     = softmax over the in-image taps (fp32 or better, max-subtracted; stored as log-sum-exp)
//   out[c, p'] = sum_tap w(tap) * value[c, p]              (c in group g)
// Backward, with grad_w(tap) = sum_{c in g} grad_out[c, p'] * value[c, p] and
// delta(p') = sum_tap w * grad_w = sum_{c in g} grad_out[c, p'] * out[c, p']:
//   grad_logit(tap) = w * (grad_w - delta)
#pragma once

#include "macros.h"

namespace mmlocalrel {

// Composability forms of the paper (the appearance term A(q, k)).
enum LocalRelationForm : int { kSquaredDiff = 0, kAbsDiff = 1, kDot = 2 };

HOST_DEVICE_INLINE float lr_exp(float x) { return expf(x); }
HOST_DEVICE_INLINE double lr_exp(double x) { return exp(x); }
HOST_DEVICE_INLINE float lr_log(float x) { return logf(x); }
HOST_DEVICE_INLINE double lr_log(double x) { return log(x); }

template <typename T>
HOST_DEVICE_INLINE T lr_appearance(int form, T q, T k) {
  const T d = q - k;
  switch (form) {
    case kSquaredDiff: return -d * d;
    case kAbsDiff: return d < T(0) ? d : -d;
    default: return q * k;
  }
}

template <typename T>
HOST_DEVICE_INLINE T lr_logit(int form, T q, T k, T geo) {
  return lr_appearance(form, q, k) + geo;
}

// d logit / d q
template <typename T>
HOST_DEVICE_INLINE T lr_dlogit_dq(int form, T q, T k) {
  const T d = q - k;
  switch (form) {
    case kSquaredDiff: return T(-2) * d;
    case kAbsDiff: return d > T(0) ? T(-1) : (d < T(0) ? T(1) : T(0));
    default: return k;
  }
}

// d logit / d k
template <typename T>
HOST_DEVICE_INLINE T lr_dlogit_dk(int form, T q, T k) {
  const T d = q - k;
  switch (form) {
    case kSquaredDiff: return T(2) * d;
    case kAbsDiff: return d > T(0) ? T(1) : (d < T(0) ? T(-1) : T(0));
    default: return q;
  }
}

// Softmax weight of one tap from its logit and the window's log-sum-exp.
template <typename T>
HOST_DEVICE_INLINE T lr_weight(T logit, T lse) {
  return lr_exp(logit - lse);
}

// Softmax backward for one tap: d loss / d logit.
template <typename T>
HOST_DEVICE_INLINE T lr_grad_logit(T w, T grad_w, T delta) {
  return w * (grad_w - delta);
}

// Input coordinate (one axis) that tap `t` of output coordinate `o` reads.
HOST_DEVICE_INLINE int lr_input_coord(int o, int t, int half, int stride, int dilation) {
  return o * stride + (t - half) * dilation;
}

// Inverse: the output coordinate whose tap `t` reads input coordinate `i`, or -1 when there is none
// (not on the stride grid, or outside [0, out_size)). Used by the gathering backward passes.
HOST_DEVICE_INLINE int lr_output_coord(int i, int t, int half, int stride, int dilation, int out_size) {
  const int num = i - (t - half) * dilation;
  if (num < 0 || num % stride != 0) return -1;
  const int o = num / stride;
  return o < out_size ? o : -1;
}

// Output coordinates [*lo, *hi) for which tap `t` reads inside [0, in_size) (one axis).
HOST_DEVICE_INLINE void lr_valid_range(int t, int half, int stride, int dilation, int in_size, int out_size,
                                       int* lo, int* hi) {
  const int off = (t - half) * dilation;
  int a = off >= 0 ? 0 : (-off + stride - 1) / stride;
  int b = (in_size - 1 - off) >= 0 ? (in_size - 1 - off) / stride + 1 : 0;
  if (b > out_size) b = out_size;
  if (a > b) a = b;
  *lo = a;
  *hi = b;
}

// Output size of one axis: windows are centred on p' * stride, so H_out = ceil(H / stride).
HOST_DEVICE_INLINE int lr_out_size(int in_size, int stride) {
  return (in_size - 1) / stride + 1;
}

}  // namespace mmlocalrel
