// Lets kernels/*.cu compile as plain C++ with g++ (-x c++ -include kernels/cpu_shim.h), so CI
// can test every kernel's logic without a GPU (dist_caffe/testing/kernel_shim.py).
//
// A kernel becomes an ordinary extern "C" function run as ONE block of ONE thread:
// threadIdx = blockIdx = 0 and blockDim = gridDim = 1, so Caffe-style grid-stride loops
// (CUDA_KERNEL_LOOP, DC_ITEM_LOOP, DC_BLOCK_LOOP) visit every index in order, __shared__
// arrays are function statics, __syncthreads() does nothing and atomics are plain
// read-modify-writes. Calls are not thread-safe (statics), which one thread never needs.
#pragma once
#define DC_CPU_SHIM 1

#include <algorithm>
#include <cmath>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

struct dc_shim_dim3 {
  unsigned int x, y, z;
};
static const dc_shim_dim3 threadIdx = {0, 0, 0};
static const dc_shim_dim3 blockIdx = {0, 0, 0};
static const dc_shim_dim3 blockDim = {1, 1, 1};
static const dc_shim_dim3 gridDim = {1, 1, 1};

inline void __syncthreads() {}

template <typename T>
inline T atomicAdd(T* address, T value) {
  T old = *address;
  *address = old + value;
  return old;
}

// CUDA declares these for float and double in the global namespace; <cmath> puts the float
// overloads in std::. Without the using-declarations a float argument would silently take the
// double path on the CPU and the shim would not test the float arithmetic the GPU does.
using std::abs;
using std::exp;
using std::fabs;
using std::log;
using std::log1p;
using std::max;
using std::min;
using std::pow;
using std::sqrt;
using std::tanh;
