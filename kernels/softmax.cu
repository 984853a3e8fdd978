// Softmax over the channel axis, and the softmax loss: Caffe's softmax_layer.cu and
// softmax_loss_layer.cu, with each of Caffe's channel passes fused into one thread per position.
//
// A blob is (outer, channels, inner): outer = the axes before the softmax axis, inner = those
// after. Labels are stored as T (Caffe's convention) and truncated to int.
#include "common.cuh"

// n = outer * inner: y = exp(x - max) / sum exp(x - max) over the channels of one position.
DC_KERNEL_FD(softmax_forward, (const int n, const T* x, const int channels, const int inner, T* y), {
  CUDA_KERNEL_LOOP(index, n) {
    const long long base = (long long)(index / inner) * channels * inner + index % inner;
    const T* in = x + base;
    T* out = y + base;
    T maxval = -DC_FLT_MAX;
    for (int c = 0; c < channels; ++c) maxval = max(maxval, in[c * inner]);
    T sum = 0;
    for (int c = 0; c < channels; ++c) {
      const T e = exp(in[c * inner] - maxval);
      out[c * inner] = e;  // y may be x (in place): each x is read before it is overwritten
      sum += e;
    }
    for (int c = 0; c < channels; ++c) out[c * inner] /= sum;
  }
})

// n = outer * inner: dx = (dy - sum(dy * y)) * y over the channels of one position.
DC_KERNEL_FD(softmax_backward, (const int n, const T* y, const T* dy, const int channels,
                                const int inner, T* dx), {
  CUDA_KERNEL_LOOP(index, n) {
    const long long base = (long long)(index / inner) * channels * inner + index % inner;
    T dot = 0;
    for (int c = 0; c < channels; ++c) dot += dy[base + c * inner] * y[base + c * inner];
    for (int c = 0; c < channels; ++c) {
      dx[base + c * inner] = (dy[base + c * inner] - dot) * y[base + c * inner];
    }
  }
})

// n = outer * inner, prob = softmax output. Per position: loss = -log(max(p[label], FLT_MIN)),
// count = 1; an ignored label (has_ignore) gives loss 0, count 0. A label outside
// [0, channels) that is not ignored reads nothing, gives 0 and 0, and sets bad[0] to its
// position + 1 (for the layer's error message; 0 means every label was fine).
DC_KERNEL_FD(softmax_loss_forward, (const int n, const T* prob, const T* label, const int channels,
                                    const int inner, const int has_ignore, const int ignore_label,
                                    T* loss, T* counts, int* bad), {
  CUDA_KERNEL_LOOP(index, n) {
    const int label_value = static_cast<int>(label[index]);
    if (has_ignore && label_value == ignore_label) {
      loss[index] = 0;
      counts[index] = 0;
    } else if (label_value < 0 || label_value >= channels) {
      loss[index] = 0;
      counts[index] = 0;
      bad[0] = index + 1;
    } else {
      const long long at = (long long)(index / inner) * channels * inner
                           + (long long)label_value * inner + index % inner;
      loss[index] = -log(max(prob[at], T(DC_FLT_MIN)));
      counts[index] = 1;
    }
  }
})

// n = outer * inner: dx = (p - onehot(label)) * scale[0] for every channel of a position,
// 0 where the label is ignored or out of range. scale is one device value: the loss weight
// (top diff) divided by the normaliser, so no host round trip is needed.
DC_KERNEL_FD(softmax_loss_backward, (const int n, const T* prob, const T* label, const int channels,
                                     const int inner, const int has_ignore, const int ignore_label,
                                     const T* scale, T* dx), {
  CUDA_KERNEL_LOOP(index, n) {
    const long long base = (long long)(index / inner) * channels * inner + index % inner;
    const int label_value = static_cast<int>(label[index]);
    const bool skip = (has_ignore && label_value == ignore_label) || label_value < 0
                      || label_value >= channels;
    const T s = scale[0];
    for (int c = 0; c < channels; ++c) {
      dx[base + c * inner] = skip ? T(0) : (prob[base + c * inner] - (c == label_value)) * s;
    }
  }
})
