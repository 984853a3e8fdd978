// Fused solver updates over the net's flat parameter buffer: one pass does Caffe's
// Normalize (and gradient clipping), Regularize, ComputeUpdateValue and Update
// (sgd_solver.cpp and the *_solver.cu kernels):
//
//   g  = diff * grad_scale                 grad_scale = clip factor / iter_size
//   g += decay * w   (L2)  or  decay * sign(w)   (l1 = 1)     decay = weight_decay * decay_mult
//   the rule below with local_rate = rate * lr_mult, which leaves the update value u
//   diff = u;  w -= u                      (Caffe leaves the update value in diff too)
//
// The buffer holds one segment per parameter blob: segment s covers
// [seg_offsets[s], seg_offsets[s + 1]) and has seg_lr[s] (lr_mult) and seg_decay[s]
// (decay_mult); seg_offsets has num_segs + 1 entries, starting at 0 and ending at n.
// History buffers (h, h2 / m, v) are laid out like the parameters.
#include "common.cuh"

// The segment holding element i: the last s with seg_offsets[s] <= i (empty segments skipped).
__device__ __forceinline__ int dc_segment(const int i, const int* seg_offsets, const int num_segs) {
  int lo = 0, hi = num_segs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (seg_offsets[mid] <= i) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

template <typename T>
__device__ __forceinline__ T dc_regularized(const T w, const T diff, const T grad_scale,
                                            const T decay, const int l1) {
  const T g = diff * grad_scale;
  if (decay == 0) return g;
  return g + decay * (l1 ? dc_sign(w) : w);
}

// Each kernel's leading lines: segment, local rate, regularised gradient gi.
#define DC_UPDATE_PROLOGUE                                                     \
  const int s = dc_segment(i, seg_offsets, num_segs);                          \
  const T local_rate = rate * seg_lr[s];                                       \
  const T gi = dc_regularized(w[i], g[i], grad_scale, weight_decay * seg_decay[s], l1);

// SGD with momentum: h = momentum h + local_rate g; u = h.
DC_KERNEL_FD(solver_updates_sgd, (const int n, T* w, T* g, T* h, const T rate, const T momentum,
                                  const T grad_scale, const T weight_decay, const int l1,
                                  const int num_segs, const int* seg_offsets, const T* seg_lr,
                                  const T* seg_decay), {
  CUDA_KERNEL_LOOP(i, n) {
    DC_UPDATE_PROLOGUE
    const T u = h[i] = momentum * h[i] + local_rate * gi;
    g[i] = u;
    w[i] -= u;
  }
})

// Nesterov: h_new = momentum h + local_rate g; u = (1 + momentum) h_new - momentum h.
DC_KERNEL_FD(solver_updates_nesterov, (const int n, T* w, T* g, T* h, const T rate,
                                       const T momentum, const T grad_scale, const T weight_decay,
                                       const int l1, const int num_segs, const int* seg_offsets,
                                       const T* seg_lr, const T* seg_decay), {
  CUDA_KERNEL_LOOP(i, n) {
    DC_UPDATE_PROLOGUE
    const T h_old = h[i];
    const T h_new = h[i] = momentum * h_old + local_rate * gi;
    const T u = (1 + momentum) * h_new - momentum * h_old;
    g[i] = u;
    w[i] -= u;
  }
})

// AdaGrad: h += g^2; u = local_rate g / (sqrt(h) + delta).
DC_KERNEL_FD(solver_updates_adagrad, (const int n, T* w, T* g, T* h, const T rate, const T delta,
                                      const T grad_scale, const T weight_decay, const int l1,
                                      const int num_segs, const int* seg_offsets, const T* seg_lr,
                                      const T* seg_decay), {
  CUDA_KERNEL_LOOP(i, n) {
    DC_UPDATE_PROLOGUE
    const T hi = h[i] = h[i] + gi * gi;
    const T u = local_rate * gi / (sqrt(hi) + delta);
    g[i] = u;
    w[i] -= u;
  }
})

// RMSProp: h = rms_decay h + (1 - rms_decay) g^2; u = local_rate g / (sqrt(h) + delta).
DC_KERNEL_FD(solver_updates_rmsprop, (const int n, T* w, T* g, T* h, const T rate,
                                      const T rms_decay, const T delta, const T grad_scale,
                                      const T weight_decay, const int l1, const int num_segs,
                                      const int* seg_offsets, const T* seg_lr, const T* seg_decay), {
  CUDA_KERNEL_LOOP(i, n) {
    DC_UPDATE_PROLOGUE
    const T hi = h[i] = rms_decay * h[i] + (1 - rms_decay) * gi * gi;
    const T u = local_rate * gi / (sqrt(hi) + delta);
    g[i] = u;
    w[i] -= u;
  }
})

// AdaDelta (decay = momentum, delta inside both roots, times the learning rate):
//   h = m h + (1 - m) g^2;  d = g sqrt((h2 + delta) / (h + delta));  h2 = m h2 + (1 - m) d^2;
//   u = local_rate d.
DC_KERNEL_FD(solver_updates_adadelta, (const int n, T* w, T* g, T* h, T* h2, const T rate,
                                       const T momentum, const T delta, const T grad_scale,
                                       const T weight_decay, const int l1, const int num_segs,
                                       const int* seg_offsets, const T* seg_lr,
                                       const T* seg_decay), {
  CUDA_KERNEL_LOOP(i, n) {
    DC_UPDATE_PROLOGUE
    const T hi = h[i] = momentum * h[i] + (1 - momentum) * gi * gi;
    const T d = gi * sqrt((h2[i] + delta) / (hi + delta));
    h2[i] = momentum * h2[i] + (1 - momentum) * d * d;
    const T u = local_rate * d;
    g[i] = u;
    w[i] -= u;
  }
})

// Adam: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; u = local_rate m / (sqrt(v) + eps),
// where `rate` already carries the bias correction sqrt(1 - b2^t) / (1 - b1^t), t = iter + 1.
DC_KERNEL_FD(solver_updates_adam, (const int n, T* w, T* g, T* m, T* v, const T rate,
                                   const T beta1, const T beta2, const T eps, const T grad_scale,
                                   const T weight_decay, const int l1, const int num_segs,
                                   const int* seg_offsets, const T* seg_lr, const T* seg_decay), {
  CUDA_KERNEL_LOOP(i, n) {
    DC_UPDATE_PROLOGUE
    const T mi = m[i] = m[i] * beta1 + gi * (1 - beta1);
    const T vi = v[i] = v[i] * beta2 + gi * gi * (1 - beta2);
    const T u = local_rate * mi / (sqrt(vi) + eps);
    g[i] = u;
    w[i] -= u;
  }
})
