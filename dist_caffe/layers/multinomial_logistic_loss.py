"""MultinomialLogisticLoss: -log p[label] of probabilities computed elsewhere."""
from ..backend import get_array_module
from ..layer import LossLayer, register_layer
from .embed import read_indices

LOG_THRESHOLD = 1e-20  # Caffe's kLOG_THRESHOLD: probabilities are clamped here before log


@register_layer
class MultinomialLogisticLossLayer(LossLayer):
    """loss = -sum_n log(max(p[n, label_n], 1e-20)) / N, p = bottom[0] as (N, K), bottom[1]
    the N labels. Backward: -w / (N max(p, 1e-20)) at each label, 0 elsewhere; labels get none.
    Prefer SoftmaxWithLoss on scores: it is the same loss, numerically stable.
    """

    type = "MultinomialLogisticLoss"

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        self.num = bottom[0].shape[0]
        self.dim = bottom[0].count // max(self.num, 1)
        if bottom[1].count != self.num:
            raise self.error("bottom", f"needs one label per item: {self.num} for probabilities "
                                       f"{bottom[0].shape}, found {bottom[1].count}")

    def _picked(self, bottom):
        p = bottom[0].data.reshape(self.num, self.dim)
        xp = get_array_module(p)
        label = read_indices(self, bottom[1].data.reshape(-1), self.dim, "label")
        return label, xp.maximum(xp.take_along_axis(p, label[:, None], axis=1), LOG_THRESHOLD)

    def forward(self, bottom, top):
        _, picked = self._picked(bottom)
        top[0].data[...] = -get_array_module(picked).log(picked).sum() / self.num

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.error("propagate_down", "cannot backpropagate to the labels (bottom[1]); "
                                               "set propagate_down: false for it")
        if propagate_down[0]:
            label, picked = self._picked(bottom)
            xp = get_array_module(picked)
            onehot = xp.arange(self.dim)[None, :] == label[:, None]
            grad = xp.where(onehot, -(top[0].diff / self.num) / picked, 0)
            bottom[0].diff[...] = grad.reshape(bottom[0].shape)
