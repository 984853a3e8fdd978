// BatchNorm: per-channel batch statistics, normalisation and its backward (Caffe's
// batch_norm_layer.cu does these with GEMVs; here one block reduces one channel).
//
// x is (num, channels, spatial); m = num * spatial values per channel. The running-average
// blobs (three small vectors) are updated by the layer with array ops.
#include "common.cuh"

// One block per channel: mean = sum(x) / m, then var = sum((x - mean)^2) / m (biased, two
// passes as Caffe: it subtracts the mean before squaring).
DC_BLOCK_KERNEL_FD(batch_norm_mean_var, (const int n, const T* x, const int num, const int channels,
                                         const int spatial, T* mean, T* var), {
  __shared__ T buf[DC_REDUCE_THREADS];
  const int m = num * spatial;
  DC_ITEM_LOOP(c, n) {
    T acc = 0;
    DC_BLOCK_LOOP(k, m) { acc += x[((long long)(k / spatial) * channels + c) * spatial + k % spatial]; }
    const T mu = dc_block_sum(acc, buf) / m;
    acc = 0;
    DC_BLOCK_LOOP(k, m) {
      const T d = x[((long long)(k / spatial) * channels + c) * spatial + k % spatial] - mu;
      acc += d * d;
    }
    const T v = dc_block_sum(acc, buf) / m;
    if (threadIdx.x == 0) {
      mean[c] = mu;
      var[c] = v;
    }
  }
})

// n = num * channels * spatial: y = (x - mean[c]) / sqrt(var[c] + eps). May run in place.
DC_KERNEL_FD(batch_norm_normalize, (const int n, const T* x, const T* mean, const T* var,
                                    const T eps, const int channels, const int spatial, T* y), {
  CUDA_KERNEL_LOOP(i, n) {
    const int c = (i / spatial) % channels;
    y[i] = (x[i] - mean[c]) / sqrt(var[c] + eps);
  }
})

// One block per channel: mean(dy) and mean(dy * y) over the channel's m values (y = the
// normalised output).
DC_BLOCK_KERNEL_FD(batch_norm_backward_stats, (const int n, const T* dy, const T* y, const int num,
                                               const int channels, const int spatial, T* mean_dy,
                                               T* mean_dy_y), {
  __shared__ T buf[DC_REDUCE_THREADS];
  const int m = num * spatial;
  DC_ITEM_LOOP(c, n) {
    T a = 0, b = 0;
    DC_BLOCK_LOOP(k, m) {
      const long long at = ((long long)(k / spatial) * channels + c) * spatial + k % spatial;
      a += dy[at];
      b += dy[at] * y[at];
    }
    a = dc_block_sum(a, buf);
    b = dc_block_sum(b, buf);
    if (threadIdx.x == 0) {
      mean_dy[c] = a / m;
      mean_dy_y[c] = b / m;
    }
  }
})

// n = num * channels * spatial:
//   batch statistics: dx = (dy - mean(dy) - mean(dy * y) * y) / sqrt(var + eps)
//   use_global_stats: dx = dy / sqrt(var + eps)  (mean_dy and mean_dy_y are not read)
DC_KERNEL_FD(batch_norm_backward, (const int n, const T* dy, const T* y, const T* mean_dy,
                                   const T* mean_dy_y, const T* var, const T eps,
                                   const int channels, const int spatial,
                                   const int use_global_stats, T* dx), {
  CUDA_KERNEL_LOOP(i, n) {
    const int c = (i / spatial) % channels;
    const T g = use_global_stats ? dy[i] : dy[i] - mean_dy[c] - mean_dy_y[c] * y[i];
    dx[i] = g / sqrt(var[c] + eps);
  }
})
