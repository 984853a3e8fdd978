// Local response normalisation across channels: Caffe's lrn_layer.cu.
//
//   scale[n,c,h,w] = k + alpha / size * sum of x[n,c',h,w]^2 over c' in [c - pre, c + post]
//   y = x * scale^-beta,  pre = (size - 1) / 2, post = size - pre - 1  (size is odd in Caffe)
// (WITHIN_CHANNEL LRN is built by Caffe from Split/Power/Pooling/Eltwise layers: no kernel.)
#include "common.cuh"

// n = num * height * width: one thread slides the window down the channels of one pixel.
DC_KERNEL_FD(lrn_fill_scale, (const int n, const T* x, const int channels, const int height,
                              const int width, const int size, const T alpha_over_size, const T k,
                              T* scale), {
  CUDA_KERNEL_LOOP(index, n) {
    const int w = index % width;
    const int h = (index / width) % height;
    const int num = index / width / height;
    const long long offset = ((long long)num * channels * height + h) * width + w;
    const int step = height * width;
    const T* in = x + offset;
    T* out = scale + offset;
    const int pre_pad = (size - 1) / 2;
    const int post_pad = size - pre_pad - 1;
    T accum = 0;
    int head = 0;
    while (head < post_pad && head < channels) {  // fill the window
      accum += in[head * step] * in[head * step];
      ++head;
    }
    while (head < channels + post_pad) {  // slide: add the head, drop the tail
      if (head < channels) accum += in[head * step] * in[head * step];
      if (head - size >= 0) accum -= in[(head - size) * step] * in[(head - size) * step];
      if (head - post_pad >= 0) out[(head - post_pad) * step] = k + accum * alpha_over_size;
      ++head;
    }
  }
})

// n = count: y = x * scale^negative_beta
DC_KERNEL_FD(lrn_compute_output, (const int n, const T* x, const T* scale, const T negative_beta,
                                  T* y), {
  CUDA_KERNEL_LOOP(i, n) { y[i] = x[i] * pow(scale[i], negative_beta); }
})

// n = num * height * width:
//   dx = dy * scale^-beta - cache_ratio * x * sum over the window of dy * y / scale,
//   cache_ratio = 2 alpha beta / size.
DC_KERNEL_FD(lrn_compute_diff, (const int n, const T* x, const T* y, const T* scale, const T* dy,
                                const int channels, const int height, const int width,
                                const int size, const T negative_beta, const T cache_ratio,
                                T* dx), {
  CUDA_KERNEL_LOOP(index, n) {
    const int w = index % width;
    const int h = (index / width) % height;
    const int num = index / width / height;
    const long long offset = ((long long)num * channels * height + h) * width + w;
    const int step = height * width;
    const T* x_off = x + offset;
    const T* y_off = y + offset;
    const T* scale_off = scale + offset;
    const T* dy_off = dy + offset;
    T* dx_off = dx + offset;
    const int pre_pad = size - (size + 1) / 2;
    const int post_pad = size - pre_pad - 1;
    T accum = 0;
    int head = 0;
    while (head < post_pad && head < channels) {
      accum += dy_off[head * step] * y_off[head * step] / scale_off[head * step];
      ++head;
    }
    while (head < channels + post_pad) {
      if (head < channels) {
        accum += dy_off[head * step] * y_off[head * step] / scale_off[head * step];
      }
      if (head - size >= 0) {
        accum -= dy_off[(head - size) * step] * y_off[(head - size) * step]
                 / scale_off[(head - size) * step];
      }
      const int c = head - post_pad;
      if (c >= 0) {
        dx_off[c * step] = dy_off[c * step] * pow(scale_off[c * step], negative_beta)
                           - cache_ratio * x_off[c * step] * accum;
      }
      ++head;
    }
  }
})
