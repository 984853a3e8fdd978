"""SPP: spatial pyramid pooling (He et al.) to a fixed-length vector."""
import math

from ..blob import Blob
from ..layer import Layer, register_layer
from ..proto import caffe_pb2
from .stochastic_pooling import make_pooling_layer


def level_param(level, height, width, pool):
    """Caffe's pooling set-up for pyramid level `level` (2^level bins per axis): kernel
    ceil(size / bins), stride = kernel, pad (kernel * bins - size + 1) // 2."""
    bins = 2 ** level
    param = caffe_pb2.LayerParameter(name=f"spp_level{level}", type="Pooling")
    p = param.pooling_param
    p.pool = pool
    for axis, size in (("h", height), ("w", width)):
        kernel = math.ceil(size / bins)
        setattr(p, f"kernel_{axis}", kernel)
        setattr(p, f"stride_{axis}", kernel)
        setattr(p, f"pad_{axis}", (kernel * bins - size + 1) // 2)
    return param


@register_layer
class SPPLayer(Layer):
    """Pools a (N, C, H, W) input over a pyramid of 1x1, 2x2, 4x4 ... bins (spp_param.
    pyramid_height levels) with spp_param.pool (MAX, AVE or STOCHASTIC), flattens every level
    and concatenates them: top (N, C * sum_l 4^l). With pyramid_height 1 the top is the single
    (N, C, 1, 1) pooling. Each level is a Pooling layer set up as Caffe's SPP does.
    """

    type = "SPP"
    exact_num_bottom = exact_num_top = 1

    def layer_setup(self, bottom, top):
        p = self.param.spp_param
        if p.pyramid_height < 1:
            raise self.error("spp_param.pyramid_height", f"found {p.pyramid_height}, expected >= 1")
        self.size = None

    def _build(self, bottom):
        n, c, h, w = bottom[0].shape
        p = self.param.spp_param
        gpu = bottom[0].gpu
        self.src = Blob(bottom[0].shape, self.dtype, gpu=gpu)  # bottom's data, its own diff
        self.src.share_data(bottom[0])
        self.levels = []
        for level in range(p.pyramid_height):
            layer = make_pooling_layer(level_param(level, h, w, p.pool), self.phase, self.dtype)
            out = Blob((), self.dtype, gpu=gpu)
            try:
                layer.setup([self.src], [out])
            except Exception as e:
                raise self.error("spp_param.pyramid_height",
                                 f"level {level} ({2 ** level}x{2 ** level} bins) cannot pool the "
                                 f"{h}x{w} input: {e}; use fewer levels or a larger input") from None
            self.levels.append((layer, out))
        self.size = (h, w)

    def reshape(self, bottom, top):
        if bottom[0].num_axes != 4:
            raise self.error("bottom", f"needs (num, channels, height, width), found {bottom[0].shape}")
        if self.size != bottom[0].shape[2:] or self.src.gpu != bottom[0].gpu:
            self._build(bottom)
        self.src.reshape_like(bottom[0])
        self.src.share_data(bottom[0])
        for layer, out in self.levels:
            layer.reshape([self.src], [out])
        n, c = bottom[0].shape[:2]
        if len(self.levels) == 1:
            top[0].reshape(self.levels[0][1].shape)
        else:
            top[0].reshape((n, sum(out.count // n for _, out in self.levels)))

    def forward(self, bottom, top):
        self.src.share_data(bottom[0])
        n = bottom[0].shape[0]
        start = 0
        for layer, out in self.levels:
            layer.run_forward([self.src], [out])
            width = out.count // n
            top[0].data.reshape(n, -1)[:, start:start + width] = out.data.reshape(n, width)
            start += width

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        n = bottom[0].shape[0]
        dy = top[0].diff.reshape(n, -1)
        start, total = 0, None
        for layer, out in self.levels:
            width = out.count // n
            out.diff[...] = dy[:, start:start + width].reshape(out.shape)
            start += width
            layer.run_backward([out], [True], [self.src])
            total = self.src.diff.copy() if total is None else total + self.src.diff
        bottom[0].diff[...] = total
