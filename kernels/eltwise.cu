// Eltwise SUM / PROD / MAX, one bottom per launch (as Caffe's eltwise_layer.cu).
// MAX follows Caffe's CPU layer (the reference): bottom 1 wins a tie with bottom 0, and a later
// bottom replaces the running maximum only when strictly greater. (Caffe's GPU kernel lets
// later bottoms win ties; the two differ only on exact ties.)
#include "common.cuh"

// y = coeff * x, or y += coeff * x when accumulate.
DC_KERNEL_FD(eltwise_sum_forward, (const int n, const T* x, const T coeff, const int accumulate,
                                   T* y), {
  CUDA_KERNEL_LOOP(i, n) { y[i] = accumulate ? y[i] + coeff * x[i] : coeff * x[i]; }
})

// y = x, or y *= x when accumulate. Also builds PROD's stable gradient prod_{j != i} x_j.
DC_KERNEL_FD(eltwise_prod_forward, (const int n, const T* x, const int accumulate, T* y), {
  CUDA_KERNEL_LOOP(i, n) { y[i] = accumulate ? y[i] * x[i] : x[i]; }
})

// PROD, stable_prod_grad false: dx = dy * y / x.
DC_KERNEL_FD(eltwise_prod_backward, (const int n, const T* dy, const T* y, const T* x, T* dx), {
  CUDA_KERNEL_LOOP(i, n) { dx[i] = dy[i] * y[i] / x[i]; }
})

// MAX: call with bottom 0, 1, 2, ... in turn (index = the bottom's position).
DC_KERNEL_FD(eltwise_max_forward, (const int n, const T* x, const int index, T* y, int* mask), {
  CUDA_KERNEL_LOOP(i, n) {
    if (index == 0 || (index == 1 && !(y[i] > x[i])) || (index > 1 && x[i] > y[i])) {
      y[i] = x[i];
      mask[i] = index;
    }
  }
})

// dx of bottom `index` = dy where it was the maximum, else 0.
DC_KERNEL_FD(eltwise_max_backward, (const int n, const T* dy, const int* mask, const int index,
                                    T* dx), {
  CUDA_KERNEL_LOOP(i, n) { dx[i] = mask[i] == index ? dy[i] : T(0); }
})
