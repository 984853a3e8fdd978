// Elementwise neurons, forward and backward, as Caffe's *_layer.cu.
// Backward kernels write dx (they do not accumulate). Those that read x are safe in place
// only where Caffe's are (ReLU, AbsVal sign, ELU, Clip read values whose sign/range survives);
// the layer keeps a copy of x otherwise.
#include "common.cuh"

// ReLU: y = x > 0 ? x : slope * x.
DC_KERNEL_FD(neurons_relu_forward, (const int n, const T* x, T* y, const T slope), {
  CUDA_KERNEL_LOOP(i, n) { y[i] = x[i] > 0 ? x[i] : x[i] * slope; }
})
DC_KERNEL_FD(neurons_relu_backward, (const int n, const T* x, const T* dy, T* dx, const T slope), {
  CUDA_KERNEL_LOOP(i, n) { dx[i] = dy[i] * ((x[i] > 0) + (x[i] <= 0) * slope); }
})

// PReLU: slope per channel c = (i / dim) % channels / div (div = channels when shared).
DC_KERNEL_FD(neurons_prelu_forward, (const int n, const T* x, const T* slope, T* y,
                                     const int channels, const int dim, const int div), {
  CUDA_KERNEL_LOOP(i, n) {
    const int c = (i / dim) % channels / div;
    y[i] = x[i] > 0 ? x[i] : x[i] * slope[c];
  }
})
DC_KERNEL_FD(neurons_prelu_backward, (const int n, const T* x, const T* dy, const T* slope, T* dx,
                                      const int channels, const int dim, const int div), {
  CUDA_KERNEL_LOOP(i, n) {
    const int c = (i / dim) % channels / div;
    dx[i] = dy[i] * ((x[i] > 0) + (x[i] <= 0) * slope[c]);
  }
})
// d slope[c] += sum of dy * x over x <= 0 of channel c (all channels when shared: n = 1).
// One block per slope; x and dy are (num, channels, dim).
DC_BLOCK_KERNEL_FD(neurons_prelu_slope_backward, (const int n, const T* x, const T* dy, T* dslope,
                                                  const int num, const int channels, const int dim), {
  __shared__ T buf[DC_REDUCE_THREADS];
  DC_ITEM_LOOP(c, n) {
    const int per = n == 1 ? channels * dim : dim;  // elements of this slope in one item
    T acc = 0;
    for (int b = 0; b < num; ++b) {
      const T* xb = x + (b * channels + (n == 1 ? 0 : c)) * dim;
      const T* db = dy + (b * channels + (n == 1 ? 0 : c)) * dim;
      DC_BLOCK_LOOP(j, per) { acc += xb[j] <= 0 ? db[j] * xb[j] : T(0); }
    }
    acc = dc_block_sum(acc, buf);
    if (threadIdx.x == 0) dslope[c] += acc;
  }
})

// ELU: y = x > 0 ? x : alpha (exp(x) - 1); dx = x > 0 ? dy : dy (y + alpha).
DC_KERNEL_FD(neurons_elu_forward, (const int n, const T* x, T* y, const T alpha), {
  CUDA_KERNEL_LOOP(i, n) { y[i] = x[i] > 0 ? x[i] : alpha * (exp(x[i]) - 1); }
})
DC_KERNEL_FD(neurons_elu_backward, (const int n, const T* x, const T* y, const T* dy, T* dx,
                                    const T alpha), {
  CUDA_KERNEL_LOOP(i, n) { dx[i] = x[i] > 0 ? dy[i] : dy[i] * (y[i] + alpha); }
})

// Sigmoid: y = 1 / (1 + exp(-x)) (as 0.5 tanh(x/2) + 0.5); dx = dy y (1 - y).
DC_KERNEL_FD(neurons_sigmoid_forward, (const int n, const T* x, T* y), {
  CUDA_KERNEL_LOOP(i, n) { y[i] = dc_sigmoid(x[i]); }
})
DC_KERNEL_FD(neurons_sigmoid_backward, (const int n, const T* y, const T* dy, T* dx), {
  CUDA_KERNEL_LOOP(i, n) { dx[i] = dy[i] * y[i] * (1 - y[i]); }
})

// TanH: y = tanh(x); dx = dy (1 - y^2).
DC_KERNEL_FD(neurons_tanh_forward, (const int n, const T* x, T* y), {
  CUDA_KERNEL_LOOP(i, n) { y[i] = tanh(x[i]); }
})
DC_KERNEL_FD(neurons_tanh_backward, (const int n, const T* y, const T* dy, T* dx), {
  CUDA_KERNEL_LOOP(i, n) { dx[i] = dy[i] * (1 - y[i] * y[i]); }
})

// AbsVal: y = |x|; dx = dy sign(x).
DC_KERNEL_FD(neurons_absval_forward, (const int n, const T* x, T* y), {
  CUDA_KERNEL_LOOP(i, n) { y[i] = fabs(x[i]); }
})
DC_KERNEL_FD(neurons_absval_backward, (const int n, const T* x, const T* dy, T* dx), {
  CUDA_KERNEL_LOOP(i, n) { dx[i] = dy[i] * dc_sign(x[i]); }
})

// BNLL: y = log(1 + exp(x)), stably (log1p, where Caffe's log(1 + .) rounds small tails to 0);
// dx = dy e / (1 + e), e = exp(min(x, 50)) (Caffe's).
DC_KERNEL_FD(neurons_bnll_forward, (const int n, const T* x, T* y), {
  CUDA_KERNEL_LOOP(i, n) {
    y[i] = x[i] > 0 ? x[i] + log1p(exp(-x[i])) : log1p(exp(x[i]));
  }
})
DC_KERNEL_FD(neurons_bnll_backward, (const int n, const T* x, const T* dy, T* dx), {
  CUDA_KERNEL_LOOP(i, n) {
    const T e = exp(min(x[i], T(50)));
    dx[i] = dy[i] * e / (e + 1);
  }
})

// Power: y = (shift + scale x)^power; dx = dy power scale (shift + scale x)^(power - 1).
DC_KERNEL_FD(neurons_power_forward, (const int n, const T* x, T* y, const T power, const T scale,
                                     const T shift), {
  CUDA_KERNEL_LOOP(i, n) { y[i] = power == 1 ? shift + scale * x[i] : pow(shift + scale * x[i], power); }
})
DC_KERNEL_FD(neurons_power_backward, (const int n, const T* x, const T* dy, T* dx, const T power,
                                      const T scale, const T shift), {
  CUDA_KERNEL_LOOP(i, n) {
    const T diff_scale = power * scale;
    if (diff_scale == 0) {
      dx[i] = 0;
    } else if (power == 1) {
      dx[i] = dy[i] * diff_scale;
    } else if (power == 2) {
      dx[i] = dy[i] * diff_scale * (shift + scale * x[i]);
    } else {
      dx[i] = dy[i] * diff_scale * pow(shift + scale * x[i], power - 1);
    }
  }
})

// Exp: y = outer_scale exp(inner_scale x) (= base^(shift + scale x)); dx = dy y inner_scale.
DC_KERNEL_FD(neurons_exp_forward, (const int n, const T* x, T* y, const T inner_scale,
                                   const T outer_scale), {
  CUDA_KERNEL_LOOP(i, n) { y[i] = outer_scale * exp(inner_scale * x[i]); }
})
DC_KERNEL_FD(neurons_exp_backward, (const int n, const T* y, const T* dy, T* dx,
                                    const T inner_scale), {
  CUDA_KERNEL_LOOP(i, n) { dx[i] = dy[i] * y[i] * inner_scale; }
})

// Log: y = base_scale log(shift + scale x) (base_scale = 1 / ln(base));
// dx = dy scale base_scale / (shift + scale x).
DC_KERNEL_FD(neurons_log_forward, (const int n, const T* x, T* y, const T scale, const T shift,
                                   const T base_scale), {
  CUDA_KERNEL_LOOP(i, n) { y[i] = base_scale * log(shift + scale * x[i]); }
})
DC_KERNEL_FD(neurons_log_backward, (const int n, const T* x, const T* dy, T* dx, const T scale,
                                    const T shift, const T base_scale), {
  CUDA_KERNEL_LOOP(i, n) { dx[i] = dy[i] * scale * base_scale / (shift + scale * x[i]); }
})

// Threshold: y = x > threshold ? 1 : 0 (no backward, as Caffe).
DC_KERNEL_FD(neurons_threshold_forward, (const int n, const T* x, T* y, const T threshold), {
  CUDA_KERNEL_LOOP(i, n) { y[i] = x[i] > threshold ? 1 : 0; }
})

// Clip: y = min(max(x, lo), hi); dx = dy where lo <= x <= hi, else 0.
DC_KERNEL_FD(neurons_clip_forward, (const int n, const T* x, T* y, const T lo, const T hi), {
  CUDA_KERNEL_LOOP(i, n) { y[i] = min(max(x[i], lo), hi); }
})
DC_KERNEL_FD(neurons_clip_backward, (const int n, const T* x, const T* dy, T* dx, const T lo,
                                     const T hi), {
  CUDA_KERNEL_LOOP(i, n) { dx[i] = dy[i] * (x[i] >= lo && x[i] <= hi); }
})

// Swish: y = x sigmoid(beta x); dx = dy (beta y + s (1 - beta y)), s = sigmoid(beta x).
DC_KERNEL_FD(neurons_swish_forward, (const int n, const T* x, T* y, const T beta), {
  CUDA_KERNEL_LOOP(i, n) { y[i] = x[i] * dc_sigmoid(beta * x[i]); }
})
DC_KERNEL_FD(neurons_swish_backward, (const int n, const T* x, const T* dy, T* dx, const T beta), {
  CUDA_KERNEL_LOOP(i, n) {
    const T s = dc_sigmoid(beta * x[i]);
    const T y = x[i] * s;
    dx[i] = dy[i] * (beta * y + s * (1 - beta * y));
  }
})
