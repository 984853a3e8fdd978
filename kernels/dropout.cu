// Dropout with the draws made by the caller (cupy.random on the device, or the host's seeded
// generator uploaded, so CPU and GPU runs drop alike), Caffe's dropout_layer.cu otherwise:
// keep x where u < keep (keep = 1 - dropout_ratio, the DropoutLayer's rule) and scale by
// 1 / keep. The draws u are kept by the layer for backward: no separate mask is stored.
#include "common.cuh"

DC_KERNEL_FD(dropout_forward, (const int n, const T* x, const T* u, const T keep, const T scale,
                               T* y), {
  CUDA_KERNEL_LOOP(i, n) { y[i] = u[i] < keep ? x[i] * scale : T(0); }
})

DC_KERNEL_FD(dropout_backward, (const int n, const T* dy, const T* u, const T keep, const T scale,
                                T* dx), {
  CUDA_KERNEL_LOOP(i, n) { dx[i] = u[i] < keep ? dy[i] * scale : T(0); }
})
