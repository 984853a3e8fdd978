"""BatchNorm: normalise each channel to zero mean and unit variance (Caffe's three-blob form)."""
from .. import kernels
from ..backend import get_array_module
from ..layer import TEST, Layer, register_layer


@register_layer
class BatchNormLayer(Layer):
    """y = (x - mean) / sqrt(var + eps) per channel (axis 1; one channel for a 1-D bottom).

    Reads batch_norm_param: use_global_stats (default: phase == TEST), moving_average_fraction f
    (0.999), eps (1e-5).  Blobs (no gradient, lr_mult 0): [0] running sum of means, [1] running
    sum of unbiased variances, [2] their weight s, shape (1,).
    TRAIN statistics: mean and biased var of the batch over (N, spatial); forward then updates
    s = s*f + 1, blobs[0] = blobs[0]*f + mean, blobs[1] = blobs[1]*f + var*m/(m-1), m = N*spatial.
    Global statistics: mean = blobs[0]/s, var = blobs[1]/s (both 0 when s == 0).
    """
    type = "BatchNorm"
    exact_num_bottom = exact_num_top = 1

    def layer_setup(self, bottom, top):
        p = self.param.batch_norm_param
        self.use_global_stats = p.use_global_stats if p.HasField("use_global_stats") \
            else self.phase == TEST
        self.fraction, self.eps = p.moving_average_fraction, p.eps
        self.channels = bottom[0].shape[1] if bottom[0].num_axes > 1 else 1
        if not self.blobs:  # else blobs were given (loaded weights): keep them, as Caffe does
            self.blobs = [self.new_blob((self.channels,)), self.new_blob((self.channels,)),
                          self.new_blob((1,))]
            for b in self.blobs:
                b.data[...] = 0
        # The statistics are not learned: Caffe pins lr_mult to 0, adding the specs the
        # prototxt leaves out (the net reads self.param.param after setup).
        for j in range(len(self.blobs)):
            if j == len(self.param.param):
                self.param.param.add().lr_mult = 0
            elif self.param.param[j].lr_mult != 0:
                raise self.error(f"param[{j}].lr_mult",
                                 f"found {self.param.param[j].lr_mult}, expected 0: BatchNorm's "
                                 "blobs are running statistics, not learnable parameters (set "
                                 "lr_mult: 0 or drop the param block; learn scale and shift with "
                                 "a Scale layer with bias_term: true)")
        self.param_propagate_down = [False] * len(self.blobs)

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        channels = shape[1] if len(shape) > 1 else 1
        if channels != self.channels or self.blobs[0].count != channels:
            raise self.error("bottom", f"bottom shape {shape} has {channels} channels, the layer "
                                       f"was set up for {self.blobs[0].count}")
        top[0].reshape(shape)

    def _view(self, a):
        """(N, C, spatial) view of a bottom-shaped array."""
        return a.reshape(a.shape[0] if a.ndim else 1, self.channels, -1)

    def forward(self, bottom, top):
        x = self._view(bottom[0].data)
        xp = get_array_module(x)
        if self.use_global_stats:
            s = self.blobs[2].data.reshape(())
            factor = xp.where(s == 0, 0, 1 / xp.where(s == 0, 1, s))
            mean = self.blobs[0].data * factor
            var = self.blobs[1].data * factor
        else:
            mean = x.mean(axis=(0, 2))
            var = ((x - mean[:, None]) ** 2).mean(axis=(0, 2))
            m = x.shape[0] * x.shape[2]
            f = self.fraction
            self.blobs[2].data[...] = self.blobs[2].data * f + 1
            self.blobs[0].data[...] = self.blobs[0].data * f + mean
            self.blobs[1].data[...] = self.blobs[1].data * f + var * (m / (m - 1) if m > 1 else 1)
        self.std = xp.sqrt(var + self.eps)[:, None]
        # Cached for backward: a later in-place layer may overwrite the top.
        self.x_norm = (x - mean[:, None]) / self.std
        top[0].data[...] = self.x_norm.reshape(top[0].shape)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy = self._view(top[0].diff)
        if self.use_global_stats:
            dx = dy / self.std
        else:
            y = self.x_norm
            dx = (dy - dy.mean(axis=(0, 2), keepdims=True)
                  - (dy * y).mean(axis=(0, 2), keepdims=True) * y) / self.std
        bottom[0].diff[...] = dx.reshape(bottom[0].shape)

    def forward_gpu(self, bottom, top):
        x = bottom[0].data
        xp = get_array_module(x)
        num, c = self._view(x).shape[:2]
        spatial = x.size // max(num * c, 1)
        if self.use_global_stats:
            s = self.blobs[2].data.reshape(())
            factor = xp.where(s == 0, 0, 1 / xp.where(s == 0, 1, s))
            mean = xp.ascontiguousarray(self.blobs[0].data * factor, dtype=x.dtype)
            var = xp.ascontiguousarray(self.blobs[1].data * factor, dtype=x.dtype)
        else:
            mean, var = xp.empty(c, x.dtype), xp.empty(c, x.dtype)
            kernels.call("batch_norm.cu", "batch_norm_mean_var", c, x, num, c, spatial, mean, var)
            m, f = num * spatial, self.fraction
            self.blobs[2].data[...] = self.blobs[2].data * f + 1
            self.blobs[0].data[...] = self.blobs[0].data * f + mean
            self.blobs[1].data[...] = self.blobs[1].data * f + var * (m / (m - 1) if m > 1 else 1)
        self.var, self.dims = var, (num, c, spatial)
        # Cached for backward: a later in-place layer may overwrite the top.
        self.x_norm = xp.empty_like(x)
        kernels.call("batch_norm.cu", "batch_norm_normalize", x.size, x, mean, var, self.eps, c,
                     spatial, self.x_norm)
        top[0].data[...] = self.x_norm

    def backward_gpu(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy, (num, c, spatial) = top[0].diff, self.dims
        xp = get_array_module(dy)
        mean_dy, mean_dy_y = xp.zeros(c, dy.dtype), xp.zeros(c, dy.dtype)
        if not self.use_global_stats:   # the global-statistics backward reads neither
            kernels.call("batch_norm.cu", "batch_norm_backward_stats", c, dy, self.x_norm, num, c,
                         spatial, mean_dy, mean_dy_y)
        kernels.call("batch_norm.cu", "batch_norm_backward", dy.size, dy, self.x_norm, mean_dy,
                     mean_dy_y, self.var, self.eps, c, spatial, int(self.use_global_stats),
                     bottom[0].diff)
