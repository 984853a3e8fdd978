"""Sigmoid followed by the cross-entropy loss, in one numerically stable layer."""
from ..backend import get_array_module
from ..layer import LossLayer, register_layer
from .softmax_with_loss import Norm, normalization_mode, normalizer
from .swish import sigmoid


@register_layer
class SigmoidCrossEntropyLossLayer(LossLayer):
    """loss = -sum(t log p + (1 - t) log(1 - p)) / normalizer, p = sigmoid(x), x = bottom[0],
    targets t = bottom[1] (same count, values in [0, 1]).

    Reads loss_param.ignore_label (targets equal to it add nothing and get zero gradient) and
    loss_param.normalization or the legacy normalize; with neither set it divides by the batch
    size N (Caffe's default for this layer). Optional top[1] = p. Backward:
    dx = (p - t) * w / normalizer; the targets get no gradient.
    """

    type = "SigmoidCrossEntropyLoss"
    max_top = 2

    def layer_setup(self, bottom, top):
        lp = self.param.loss_param
        self.ignore_label = lp.ignore_label if lp.HasField("ignore_label") else None
        if lp.HasField("normalization") or lp.HasField("normalize"):
            self.mode = normalization_mode(lp)
        else:
            self.mode = Norm.BATCH_SIZE

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        if bottom[0].count != bottom[1].count:
            raise self.error("bottom", f"scores {bottom[0].shape} and targets {bottom[1].shape} "
                                       "need the same number of values")
        self.outer, self.inner = bottom[0].shape[0], bottom[0].count_range(1)
        if len(top) > 1:
            top[1].reshape_like(bottom[0])

    def _valid(self, t):
        xp = get_array_module(t)
        if self.ignore_label is None:
            return xp.ones(t.shape, bool)
        return t.astype("int64") != self.ignore_label

    def forward(self, bottom, top):
        x, t = bottom[0].data, bottom[1].data.reshape(bottom[0].shape)
        xp = get_array_module(x)
        valid = self._valid(t)
        loss = xp.maximum(x, 0) - x * t + xp.log1p(xp.exp(-xp.abs(x)))
        top[0].data[...] = xp.where(valid, loss, 0).sum() / normalizer(
            self.mode, self.outer, self.inner, valid.sum())
        if len(top) > 1:
            top[1].data[...] = sigmoid(x)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.error("propagate_down", "cannot backpropagate to the targets (bottom[1]); "
                                               "set propagate_down: false for it")
        if propagate_down[0]:
            x, t = bottom[0].data, bottom[1].data.reshape(bottom[0].shape)
            valid = self._valid(t)
            scale = top[0].diff / normalizer(self.mode, self.outer, self.inner, valid.sum())
            bottom[0].diff[...] = (sigmoid(x) - t) * valid * scale
