"""LRN: local response normalisation across channels or within each channel."""
from .. import kernels
from ..backend import get_array_module
from ..im2col import pad_spatial, pool_divisor
from ..layer import Layer, register_layer
from ..proto import caffe_pb2

ACROSS_CHANNELS = caffe_pb2.LRNParameter.ACROSS_CHANNELS
WITHIN_CHANNEL = caffe_pb2.LRNParameter.WITHIN_CHANNEL


def window_sum(a, size, axes):
    """Sum of `a` over a centred window of odd `size` along each of `axes`, zero-padded:
    out[.., i, ..] = sum of a[.., i - (size-1)/2 .. i + (size-1)/2, ..] (a sliding sum)."""
    pre = (size - 1) // 2
    for axis in axes:
        padded = pad_spatial(a, (pre,), (pre,), first_axis=axis)
        n = a.shape[axis]
        idx = [slice(None)] * a.ndim
        idx[axis] = slice(0, n)
        out = padded[tuple(idx)].copy()
        for o in range(1, size):
            idx[axis] = slice(o, o + n)
            out += padded[tuple(idx)]
        a = out
    return a


@register_layer
class LRNLayer(Layer):
    """y = x * scale^-beta for (N, C, H, W) inputs.

    ACROSS_CHANNELS: scale = k + alpha / local_size * (sum of x^2 over local_size channels
    centred on the channel, zero beyond the edges).
    WITHIN_CHANNEL (as Caffe builds it, from AVE pooling with pad (local_size - 1) / 2 and a
    Power layer; k is not used): scale = 1 + alpha * (sum of x^2 over the local_size x
    local_size window) / (the window's AVE-pooling divisor, local_size^2).
    Reads lrn_param: local_size (odd), alpha, beta, k, norm_region.
    """
    type = "LRN"
    in_place = False
    exact_num_bottom = exact_num_top = 1

    def layer_setup(self, bottom, top):
        p = self.param.lrn_param
        self.size, self.alpha, self.beta, self.k = p.local_size, p.alpha, p.beta, p.k
        self.region = p.norm_region
        if self.size < 1 or self.size % 2 == 0:
            raise self.error("local_size", f"must be a positive odd number, found {self.size}")
        self.divisor = None

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        if len(shape) != 4:
            raise self.error("bottom", "needs 4 axes (num, channels, height, width), "
                                       f"found {shape}")
        top[0].reshape(shape)
        if self.divisor is not None and self.divisor.shape != shape[2:]:
            self.divisor = None

    def _divisor(self, a):
        """Caffe's AVE-pooling divisor of each WITHIN_CHANNEL window (local_size^2 throughout)."""
        xp = get_array_module(a)
        if (self.divisor is None or self.divisor.dtype != a.dtype
                or get_array_module(self.divisor) is not xp):
            pre = (self.size - 1) // 2
            self.divisor = pool_divisor(a.shape[2:], (self.size,) * 2, (1, 1), (pre, pre),
                                        a.shape[2:], xp, a.dtype)
        return self.divisor

    def forward(self, bottom, top):
        x = bottom[0].data
        if self.region == ACROSS_CHANNELS:
            scale = window_sum(x * x, self.size, (1,))
            scale *= self.alpha / self.size
            scale += self.k
        else:
            scale = window_sum(x * x, self.size, (2, 3)) / self._divisor(x)
            scale *= self.alpha
            scale += 1
        self.scale, self.scale_pow = scale, scale ** -self.beta
        top[0].data[...] = x * self.scale_pow

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        x, y, dy = bottom[0].data, top[0].data, top[0].diff
        ratio = dy * y / self.scale     # dL/dscale = -beta * ratio
        if self.region == ACROSS_CHANNELS:
            spread = window_sum(ratio, self.size, (1,))
            coeff = 2 * self.alpha * self.beta / self.size
        else:   # the windows are centred, so AVE pooling's backward is again a window sum
            spread = window_sum(ratio / self._divisor(x), self.size, (2, 3))
            coeff = 2 * self.alpha * self.beta
        bottom[0].diff[...] = dy * self.scale_pow - coeff * x * spread

    def forward_gpu(self, bottom, top):
        if self.region != ACROSS_CHANNELS:  # Caffe has no kernel for it either
            return self.forward(bottom, top)
        x = bottom[0].data
        n, c, h, w = x.shape
        self.scale = get_array_module(x).empty_like(x)
        kernels.call("lrn.cu", "lrn_fill_scale", n * h * w, x, c, h, w, self.size,
                     self.alpha / self.size, self.k, self.scale)
        kernels.call("lrn.cu", "lrn_compute_output", x.size, x, self.scale, -self.beta, top[0].data)

    def backward_gpu(self, top, propagate_down, bottom):
        if self.region != ACROSS_CHANNELS:
            return self.backward(top, propagate_down, bottom)
        if propagate_down[0]:
            x = bottom[0].data
            n, c, h, w = x.shape
            kernels.call("lrn.cu", "lrn_compute_diff", n * h * w, x, top[0].data, self.scale,
                         top[0].diff, c, h, w, self.size, -self.beta,
                         2 * self.alpha * self.beta / self.size, bottom[0].diff)
