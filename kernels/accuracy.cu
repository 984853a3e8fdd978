// Top-k accuracy per position (Caffe's accuracy_layer.cu, with the CPU layer's tie rule, the
// reference: scores sorted as (score, class) pairs in descending order, so among equal scores
// the higher class ranks first). The layer sums `hit` and `valid` (and bins them by label for
// the per-class top).
#include "common.cuh"

// n = outer * inner. hit = label among the top_k, valid = 1; ignored label: 0 and 0.
// A label outside [0, channels) that is not ignored reads nothing, gives 0 and 0 and sets
// bad[0] to its position + 1.
DC_KERNEL_FD(accuracy_forward, (const int n, const T* x, const T* label, const int channels,
                                const int inner, const int top_k, const int has_ignore,
                                const int ignore_label, T* hit, T* valid, int* bad), {
  CUDA_KERNEL_LOOP(index, n) {
    const int label_value = static_cast<int>(label[index]);
    const long long base = (long long)(index / inner) * channels * inner + index % inner;
    if (has_ignore && label_value == ignore_label) {
      hit[index] = 0;
      valid[index] = 0;
    } else if (label_value < 0 || label_value >= channels) {
      hit[index] = 0;
      valid[index] = 0;
      bad[0] = index + 1;
    } else {
      const T truth = x[base + (long long)label_value * inner];
      int ahead = 0;  // classes ranked before the label
      for (int c = 0; c < channels && ahead < top_k; ++c) {
        const T s = x[base + (long long)c * inner];
        ahead += (s > truth) || (s == truth && c > label_value);
      }
      hit[index] = ahead < top_k;
      valid[index] = 1;
    }
  }
})
