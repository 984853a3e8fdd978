"""Dropout: random zeroing in TRAIN, identity in TEST."""
from ..backend import get_array_module
from ..layer import TRAIN, NeuronLayer, register_layer


@register_layer
class DropoutLayer(NeuronLayer):
    """TRAIN: y = x * mask / (1 - dropout_ratio), mask ~ Bernoulli(1 - dropout_ratio) drawn from
    dist_caffe.rng; TEST: y = x (Caffe 1.0 scales at train time).  Reads dropout_param.dropout_ratio
    (default 0.5, must lie in [0, 1)).
    """
    type = "Dropout"

    def layer_setup(self, bottom, top):
        ratio = self.param.dropout_param.dropout_ratio
        if not 0 <= ratio < 1:
            raise self.error("dropout_param.dropout_ratio",
                             f"found {ratio}, expected a value in [0, 1) (the fraction dropped)")
        self.scale = 1.0 / (1.0 - ratio)
        self.mask = None

    def forward(self, bottom, top):
        x = bottom[0].data
        if self.phase != TRAIN:
            top[0].data[...] = x
            return
        keep = 1.0 - self.param.dropout_param.dropout_ratio
        # Drawn on the host from the one seeded generator, so CPU and GPU runs drop alike.
        # (No forward_gpu through kernels/dropout.cu: it would need these draws uploaded as T,
        # 4x the bytes of this bool mask, and rounding a draw to float32 can flip `u < keep`.)
        draw = self.rng.random(x.shape) < keep
        self.mask = get_array_module(x).asarray(draw).astype(x.dtype) * self.scale
        top[0].data[...] = x * self.mask

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy = top[0].diff
        bottom[0].diff[...] = dy * self.mask if self.phase == TRAIN else dy
