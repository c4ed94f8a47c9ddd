// Shared by the CPU loops and the CUDA kernels: per-element math is written once as HOST_DEVICE inline functions.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define HOST_DEVICE __host__ __device__
#define HOST_DEVICE_INLINE __host__ __device__ __forceinline__
#else
#define HOST_DEVICE
#define HOST_DEVICE_INLINE inline
#endif

#include <cmath>

namespace mmlocalrel {

// Accumulation type: fp16/bf16 inputs accumulate in fp32; float and double in themselves.
template <typename T> struct acc_type { using type = float; };
template <> struct acc_type<double> { using type = double; };
template <typename T> using acc_t = typename acc_type<T>::type;

}  // namespace mmlocalrel
