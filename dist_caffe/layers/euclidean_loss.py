"""Sum-of-squares loss between two inputs of the same size."""
from ..layer import LossLayer, register_layer


@register_layer
class EuclideanLossLayer(LossLayer):
    """loss = sum((a - b)^2) / N / 2, N = the first axis of a (bottom[0]); b is bottom[1].

    Both inputs get gradients: da = w (a - b) / N and db = -da, w the loss weight.
    Reads no layer-specific params.
    """

    type = "EuclideanLoss"

    def allow_force_backward(self, bottom_index):
        return True  # both inputs may be learned, unlike a label input

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        if bottom[0].count_range(1) != bottom[1].count_range(1):
            raise self.error("bottom", f"the inputs {bottom[0].shape} and {bottom[1].shape} need "
                                       "the same number of values per item (axes after the first)")

    def forward(self, bottom, top):
        self.delta = bottom[0].data - bottom[1].data.reshape(bottom[0].shape)
        top[0].data[...] = (self.delta * self.delta).sum() / bottom[0].shape[0] / 2

    def backward(self, top, propagate_down, bottom):
        for i, sign in ((0, 1.0), (1, -1.0)):
            if propagate_down[i]:
                scale = top[0].diff * (sign / bottom[0].shape[0])
                bottom[i].diff[...] = (self.delta * scale).reshape(bottom[i].shape)
