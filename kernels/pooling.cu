// Max / average / stochastic pooling, forward and backward: Caffe's pooling_layer.cu.
//
// Blobs are (num * channels) planes of height x width (bottom) and pooled_h x pooled_w (top);
// the layer computes pooled sizes with Caffe's ceil rule (and drops a last window that would
// start at or past height + pad). Max pooling records, per output, the in-plane index
// h * width + w of the first maximum (row-major scan, strict >), or -1 for an empty window.
// Average pooling divides by the window clipped to [-pad, height + pad) (padding counts, the
// part hanging past height + pad does not). Stochastic pooling has no padding (as Caffe).
#include "common.cuh"

// n = num * channels * pooled_h * pooled_w
DC_KERNEL_FD(pooling_max_forward, (const int n, const T* x, const int height, const int width,
                                   const int pooled_h, const int pooled_w, const int kernel_h,
                                   const int kernel_w, const int stride_h, const int stride_w,
                                   const int pad_h, const int pad_w, T* y, int* mask), {
  CUDA_KERNEL_LOOP(index, n) {
    const int pw = index % pooled_w;
    const int ph = (index / pooled_w) % pooled_h;
    const int plane = index / pooled_w / pooled_h;
    int hstart = ph * stride_h - pad_h;
    int wstart = pw * stride_w - pad_w;
    const int hend = min(hstart + kernel_h, height);
    const int wend = min(wstart + kernel_w, width);
    hstart = max(hstart, 0);
    wstart = max(wstart, 0);
    T maxval = -DC_FLT_MAX;
    int maxidx = -1;
    const T* slice = x + (long long)plane * height * width;
    for (int h = hstart; h < hend; ++h) {
      for (int w = wstart; w < wend; ++w) {
        if (slice[h * width + w] > maxval) {
          maxidx = h * width + w;
          maxval = slice[maxidx];
        }
      }
    }
    y[index] = maxval;
    mask[index] = maxidx;
  }
})

// n = num * channels * height * width: each bottom pixel sums dy of the outputs whose
// recorded maximum it is.
DC_KERNEL_FD(pooling_max_backward, (const int n, const T* dy, const int* mask, const int height,
                                    const int width, const int pooled_h, const int pooled_w,
                                    const int kernel_h, const int kernel_w, const int stride_h,
                                    const int stride_w, const int pad_h, const int pad_w, T* dx), {
  CUDA_KERNEL_LOOP(index, n) {
    const int w = index % width;
    const int h = (index / width) % height;
    const int plane = index / width / height;
    const int phstart = (h + pad_h < kernel_h) ? 0 : (h + pad_h - kernel_h) / stride_h + 1;
    const int phend = min((h + pad_h) / stride_h + 1, pooled_h);
    const int pwstart = (w + pad_w < kernel_w) ? 0 : (w + pad_w - kernel_w) / stride_w + 1;
    const int pwend = min((w + pad_w) / stride_w + 1, pooled_w);
    const long long offset = (long long)plane * pooled_h * pooled_w;
    const T* dy_slice = dy + offset;
    const int* mask_slice = mask + offset;
    T gradient = 0;
    for (int ph = phstart; ph < phend; ++ph) {
      for (int pw = pwstart; pw < pwend; ++pw) {
        if (mask_slice[ph * pooled_w + pw] == h * width + w) gradient += dy_slice[ph * pooled_w + pw];
      }
    }
    dx[index] = gradient;
  }
})

// n = num * channels * pooled_h * pooled_w
DC_KERNEL_FD(pooling_ave_forward, (const int n, const T* x, const int height, const int width,
                                   const int pooled_h, const int pooled_w, const int kernel_h,
                                   const int kernel_w, const int stride_h, const int stride_w,
                                   const int pad_h, const int pad_w, T* y), {
  CUDA_KERNEL_LOOP(index, n) {
    const int pw = index % pooled_w;
    const int ph = (index / pooled_w) % pooled_h;
    const int plane = index / pooled_w / pooled_h;
    int hstart = ph * stride_h - pad_h;
    int wstart = pw * stride_w - pad_w;
    int hend = min(hstart + kernel_h, height + pad_h);
    int wend = min(wstart + kernel_w, width + pad_w);
    const int pool_size = (hend - hstart) * (wend - wstart);
    hstart = max(hstart, 0);
    wstart = max(wstart, 0);
    hend = min(hend, height);
    wend = min(wend, width);
    T aveval = 0;
    const T* slice = x + (long long)plane * height * width;
    for (int h = hstart; h < hend; ++h) {
      for (int w = wstart; w < wend; ++w) aveval += slice[h * width + w];
    }
    y[index] = aveval / pool_size;
  }
})

// n = num * channels * height * width
DC_KERNEL_FD(pooling_ave_backward, (const int n, const T* dy, const int height, const int width,
                                    const int pooled_h, const int pooled_w, const int kernel_h,
                                    const int kernel_w, const int stride_h, const int stride_w,
                                    const int pad_h, const int pad_w, T* dx), {
  CUDA_KERNEL_LOOP(index, n) {
    const int w = index % width + pad_w;  // position in the padded plane
    const int h = (index / width) % height + pad_h;
    const int plane = index / width / height;
    const int phstart = (h < kernel_h) ? 0 : (h - kernel_h) / stride_h + 1;
    const int phend = min(h / stride_h + 1, pooled_h);
    const int pwstart = (w < kernel_w) ? 0 : (w - kernel_w) / stride_w + 1;
    const int pwend = min(w / stride_w + 1, pooled_w);
    const T* dy_slice = dy + (long long)plane * pooled_h * pooled_w;
    T gradient = 0;
    for (int ph = phstart; ph < phend; ++ph) {
      for (int pw = pwstart; pw < pwend; ++pw) {
        const int hstart = ph * stride_h - pad_h;
        const int wstart = pw * stride_w - pad_w;
        const int hend = min(hstart + kernel_h, height + pad_h);
        const int wend = min(wstart + kernel_w, width + pad_w);
        const int pool_size = (hend - hstart) * (wend - wstart);
        gradient += dy_slice[ph * pooled_w + pw] / pool_size;
      }
    }
    dx[index] = gradient;
  }
})

// Stochastic pooling, TRAIN: pick the window element where the running sum first reaches
// rand * (window sum), rand uniform in [0, 1) per output; record its in-plane index.
// Inputs are expected non-negative (after a ReLU), as in Caffe.
DC_KERNEL_FD(pooling_sto_forward_train, (const int n, const T* x, const T* rand, const int height,
                                         const int width, const int pooled_h, const int pooled_w,
                                         const int kernel_h, const int kernel_w, const int stride_h,
                                         const int stride_w, T* y, int* index_out), {
  CUDA_KERNEL_LOOP(index, n) {
    const int pw = index % pooled_w;
    const int ph = (index / pooled_w) % pooled_h;
    const int plane = index / pooled_w / pooled_h;
    const int hstart = ph * stride_h;
    const int hend = min(hstart + kernel_h, height);
    const int wstart = pw * stride_w;
    const int wend = min(wstart + kernel_w, width);
    const T* slice = x + (long long)plane * height * width;
    T cumsum = 0;
    for (int h = hstart; h < hend; ++h) {
      for (int w = wstart; w < wend; ++w) cumsum += slice[h * width + w];
    }
    const T thres = rand[index] * cumsum;
    // Caffe returns from the kernel at the pick, which would skip this thread's later
    // grid-stride items; we leave the scan instead.
    int picked = -1;
    cumsum = 0;
    for (int h = hstart; h < hend && picked < 0; ++h) {
      for (int w = wstart; w < wend; ++w) {
        cumsum += slice[h * width + w];
        if (cumsum >= thres) {
          picked = h * width + w;
          break;
        }
      }
    }
    if (picked < 0 && hstart < hend && wstart < wend) {
      picked = (hend - 1) * width + (wend - 1);  // reached only through NaNs
    }
    y[index] = picked < 0 ? T(0) : slice[picked];  // an empty window picks nothing
    index_out[index] = picked;
  }
})

// Stochastic pooling, TEST: the probability-weighted mean sum(x^2) / sum(x) (0 when sum <= 0).
DC_KERNEL_FD(pooling_sto_forward_test, (const int n, const T* x, const int height, const int width,
                                        const int pooled_h, const int pooled_w, const int kernel_h,
                                        const int kernel_w, const int stride_h, const int stride_w,
                                        T* y), {
  CUDA_KERNEL_LOOP(index, n) {
    const int pw = index % pooled_w;
    const int ph = (index / pooled_w) % pooled_h;
    const int plane = index / pooled_w / pooled_h;
    const int hstart = ph * stride_h;
    const int hend = min(hstart + kernel_h, height);
    const int wstart = pw * stride_w;
    const int wend = min(wstart + kernel_w, width);
    const T* slice = x + (long long)plane * height * width;
    T cumsum = 0, cumvalues = 0;
    for (int h = hstart; h < hend; ++h) {
      for (int w = wstart; w < wend; ++w) {
        cumsum += slice[h * width + w];
        cumvalues += slice[h * width + w] * slice[h * width + w];
      }
    }
    y[index] = (cumsum > 0) ? cumvalues / cumsum : T(0);
  }
})

// n = num * channels * height * width: dy flows to the element each output picked.
DC_KERNEL_FD(pooling_sto_backward, (const int n, const T* dy, const int* index_in, const int height,
                                    const int width, const int pooled_h, const int pooled_w,
                                    const int kernel_h, const int kernel_w, const int stride_h,
                                    const int stride_w, T* dx), {
  CUDA_KERNEL_LOOP(index, n) {
    const int w = index % width;
    const int h = (index / width) % height;
    const int plane = index / width / height;
    const int phstart = (h < kernel_h) ? 0 : (h - kernel_h) / stride_h + 1;
    const int phend = min(h / stride_h + 1, pooled_h);
    const int pwstart = (w < kernel_w) ? 0 : (w - kernel_w) / stride_w + 1;
    const int pwend = min(w / stride_w + 1, pooled_w);
    const long long offset = (long long)plane * pooled_h * pooled_w;
    T gradient = 0;
    for (int ph = phstart; ph < phend; ++ph) {
      for (int pw = pwstart; pw < pwend; ++pw) {
        if (index_in[offset + ph * pooled_w + pw] == h * width + w) {
          gradient += dy[offset + ph * pooled_w + pw];
        }
      }
    }
    dx[index] = gradient;
  }
})
