// Shared by every kernels/*.cu: Caffe's grid-stride loop, the export macros, constants.
//
// Each .cu file is compiled three ways from the same text:
//   * NVRTC at run time (cupy.RawModule), by dist_caffe/kernels.py, which inlines this header;
//   * `nvcc -ptx` in tests/kernels/test_nvcc.py;
//   * g++ with kernels/cpu_shim.h force-included (one block of one thread), so CI checks every
//     kernel's logic against numpy without a GPU.
// So: no standard headers here (NVRTC has none), no CUDA-only intrinsics the shim lacks.
#pragma once

#define DC_FLT_MAX 3.402823466e+38F
#define DC_FLT_MIN 1.175494351e-38F

// Threads per block of the DC_BLOCK_KERNEL kernels (one block per item, a shared-memory
// reduction across the block). Must be a power of two; kernels.REDUCE_THREADS mirrors it.
#define DC_REDUCE_THREADS 256

// Caffe's CUDA_KERNEL_LOOP, with a step that cannot overflow `int` near n = 2^31
// (Caffe's `i += stride` can). One thread of one block (the shim) walks every index.
#define CUDA_KERNEL_LOOP(i, n)                                                         \
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < (n);                         \
       i = (i < (n) - (int)(blockDim.x * gridDim.x)) ? i + (int)(blockDim.x * gridDim.x) \
                                                      : (n))

// Kernels are declared with these macros so that dist_caffe/kernels.py can read each
// kernel's parameter list from the source and check every argument before a launch:
//   DC_KERNEL_FD(name, (const int n, const T* x, T* y, const T a), { body })
// defines extern "C" kernels name_f (T = float) and name_d (T = double);
// DC_KERNEL defines `name` with T = float only. Parameter types allowed: int, T, T*, int*
// (const and __restrict__ are fine); the first one is always the work count n.
// The BLOCK variants mark kernels launched with one block of DC_REDUCE_THREADS threads per
// item of n (per-channel reductions), instead of Caffe's one thread per item.
#define DC_KERNEL_AS(NAME, T_, PARAMS, ...) \
  namespace dc_##NAME {                     \
  typedef T_ T;                             \
  extern "C" __global__ void NAME PARAMS __VA_ARGS__ }

#define DC_KERNEL(NAME, PARAMS, ...) DC_KERNEL_AS(NAME, float, PARAMS, __VA_ARGS__)
#define DC_KERNEL_FD(NAME, PARAMS, ...)                \
  DC_KERNEL_AS(NAME##_f, float, PARAMS, __VA_ARGS__) \
  DC_KERNEL_AS(NAME##_d, double, PARAMS, __VA_ARGS__)
#define DC_BLOCK_KERNEL(NAME, PARAMS, ...) DC_KERNEL(NAME, PARAMS, __VA_ARGS__)
#define DC_BLOCK_KERNEL_FD(NAME, PARAMS, ...) DC_KERNEL_FD(NAME, PARAMS, __VA_ARGS__)

// Items of a BLOCK kernel: block b takes items b, b + gridDim.x, ...; its threads split the
// work of one item with DC_BLOCK_LOOP and combine it with dc_block_sum.
#define DC_ITEM_LOOP(c, n) for (int c = blockIdx.x; c < (n); c += gridDim.x)
#define DC_BLOCK_LOOP(j, m) for (int j = threadIdx.x; j < (m); j += blockDim.x)

// Sum of `v` over the block's threads (blockDim.x a power of two <= DC_REDUCE_THREADS);
// every thread gets the total. `buf` is a __shared__ array of DC_REDUCE_THREADS elements.
template <typename T>
__device__ __forceinline__ T dc_block_sum(T v, T* buf) {
  buf[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if ((int)threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
    __syncthreads();
  }
  T total = buf[0];
  __syncthreads();  // buf is reused by the next call: nobody may write it before all have read
  return total;
}

// Caffe's caffe_gpu_sign: -1, 0 or 1.
template <typename T>
__device__ __forceinline__ T dc_sign(T x) {
  return (T(0) < x) - (x < T(0));
}

// Caffe's GPU sigmoid, 0.5 tanh(x/2) + 0.5: no overflow of exp(-x) for very negative x.
template <typename T>
__device__ __forceinline__ T dc_sigmoid(T x) {
  return T(0.5) * tanh(T(0.5) * x) + T(0.5);
}
