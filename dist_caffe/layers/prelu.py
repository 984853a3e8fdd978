"""PReLU: ReLU with a learned negative slope per channel (or one for all)."""
from .. import kernels
from ..filler import fill
from ..layer import register_layer
from ..proto import caffe_pb2
from .abs_val import KeepInputNeuronLayer


@register_layer
class PReLULayer(KeepInputNeuronLayer):
    """y = max(x, 0) + a_c * min(x, 0), a_c learned per channel (axis 1).

    Reads prelu_param.channel_shared (one slope, a 0-D blob, for every channel) and
    prelu_param.filler (default constant 0.25). blobs[0] holds the slopes: shape (C,) or ().
    Backward: dx = dy * (1 if x > 0 else a_c); da_c += sum of dy * x over x <= 0.
    """

    type = "PReLU"

    def layer_setup(self, bottom, top):
        p = self.param.prelu_param
        if bottom[0].num_axes < 2:
            raise self.error("bottom", f"needs an input with a channel axis (at least 2-D), "
                                       f"found shape {bottom[0].shape}")
        self.channel_shared = p.channel_shared
        self.blobs = [self.new_blob(() if self.channel_shared else (bottom[0].shape[1],))]
        filler = p.filler if p.HasField("filler") else caffe_pb2.FillerParameter(
            type="constant", value=0.25)
        fill(self.blobs[0], filler)

    def reshape(self, bottom, top):
        if bottom[0].num_axes < 2 or (not self.channel_shared
                                      and bottom[0].shape[1] != self.blobs[0].count):
            raise self.error("bottom", f"input shape {bottom[0].shape} does not have the "
                                       f"{self.blobs[0].count} channels (axis 1) the slopes were "
                                       "made for")
        super().reshape(bottom, top)

    def _slopes(self, ndim):
        a = self.blobs[0].data
        return a if self.channel_shared else a.reshape((1, -1) + (1,) * (ndim - 2))

    def forward(self, bottom, top):
        x = self.forward_input(bottom, top)
        top[0].data[...] = (x > 0) * x + (x <= 0) * x * self._slopes(x.ndim)

    def backward(self, top, propagate_down, bottom):
        x, dy = self.backward_input(bottom), top[0].diff
        if self.param_propagate_down[0]:
            g = dy * x * (x <= 0)
            axes = None if self.channel_shared else (0,) + tuple(range(2, x.ndim))
            self.blobs[0].diff[...] += g.sum(axis=axes)
        if propagate_down[0]:
            bottom[0].diff[...] = dy * ((x > 0) + (x <= 0) * self._slopes(x.ndim))

    def _dims(self, x):
        """(num, channels, dim) of x seen as (N, C, everything after the channel axis)."""
        num, channels = x.shape[0], x.shape[1]
        return num, channels, x.size // max(num * channels, 1)

    def forward_gpu(self, bottom, top):
        x = self.forward_input(bottom, top)
        num, c, dim = self._dims(x)
        kernels.call("neurons.cu", "neurons_prelu_forward", x.size, x, self.blobs[0].data,
                     top[0].data, c, dim, c if self.channel_shared else 1)

    def backward_gpu(self, top, propagate_down, bottom):
        x, dy = self.backward_input(bottom), top[0].diff
        num, c, dim = self._dims(x)
        # The slope gradient first: in place, dx below overwrites dy.
        if self.param_propagate_down[0]:   # accumulates into blobs[0].diff
            kernels.call("neurons.cu", "neurons_prelu_slope_backward",
                         1 if self.channel_shared else c, x, dy, self.blobs[0].diff, num, c, dim)
        if propagate_down[0]:
            kernels.call("neurons.cu", "neurons_prelu_backward", x.size, x, dy, self.blobs[0].data,
                         bottom[0].diff, c, dim, c if self.channel_shared else 1)
