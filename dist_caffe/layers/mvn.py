"""MVN: mean-variance normalization of each item (and channel)."""
from ..layer import NeuronLayer, register_layer


@register_layer
class MVNLayer(NeuronLayer):
    """y = (x - mean) / (std + eps), or y = x - mean when normalize_variance is false.

    Statistics run over each (item, channel)'s values, or over each item's when
    across_channels. Reads mvn_param.normalize_variance (default true), across_channels
    (default false) and eps (default 1e-9; added to the standard deviation, as in Caffe).
    Backward uses Caffe's formula dx = (dy - mean(dy) - y * mean(y * dy)) / (std + eps).
    """

    type = "MVN"

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        shape = bottom[0].shape
        num = shape[0] if shape else 1
        if not self.param.mvn_param.across_channels and len(shape) > 1:
            num *= shape[1]
        self.num = num
        self.dim = bottom[0].count // max(num, 1)

    def forward(self, bottom, top):
        p = self.param.mvn_param
        x = bottom[0].data.reshape(self.num, self.dim)
        centered = x - x.mean(axis=1, keepdims=True)
        if p.normalize_variance:
            self.std = (centered * centered).mean(axis=1, keepdims=True) ** 0.5 + p.eps
            centered = centered / self.std
        top[0].data[...] = centered.reshape(top[0].shape)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy = top[0].diff.reshape(self.num, self.dim)
        g = dy - dy.mean(axis=1, keepdims=True)
        if self.param.mvn_param.normalize_variance:
            y = top[0].data.reshape(self.num, self.dim)
            g = (g - y * (y * dy).mean(axis=1, keepdims=True)) / self.std
        bottom[0].diff[...] = g.reshape(bottom[0].shape)
