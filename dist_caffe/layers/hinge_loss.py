"""HingeLoss: one-vs-all hinge loss (L1 or squared L2) for classification."""
from ..backend import get_array_module
from ..layer import LossLayer, register_layer
from ..proto import caffe_pb2
from .embed import read_indices

L1, L2 = caffe_pb2.HingeLossParameter.L1, caffe_pb2.HingeLossParameter.L2


@register_layer
class HingeLossLayer(LossLayer):
    """loss = sum_{n,k} max(0, 1 - d_nk x_nk)^p / N, with d_nk = 1 for k = label_n else -1,
    x = bottom[0] as (N, K) and bottom[1] the N labels. Reads hinge_loss_param.norm (L1: p = 1,
    default; L2: p = 2). Backward: -d * w / N where the margin is violated (L1), or
    -2 d max(0, 1 - d x) w / N (L2); the labels get no gradient.
    """

    type = "HingeLoss"

    def layer_setup(self, bottom, top):
        self.norm = self.param.hinge_loss_param.norm
        if self.norm not in (L1, L2):
            raise self.error("hinge_loss_param.norm", f"unknown norm {self.norm}; use L1 or L2")

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        self.num = bottom[0].shape[0]
        self.dim = bottom[0].count // max(self.num, 1)
        if bottom[1].count != self.num:
            raise self.error("bottom", f"needs one label per item: {self.num} for scores "
                                       f"{bottom[0].shape}, found {bottom[1].count}")

    def _signed(self, bottom):
        """d (+1 at the label, -1 elsewhere) and max(0, 1 - d x), both (N, K)."""
        x = bottom[0].data.reshape(self.num, self.dim)
        xp = get_array_module(x)
        label = read_indices(self, bottom[1].data.reshape(-1), self.dim, "label")
        d = xp.where(xp.arange(self.dim)[None, :] == label[:, None], 1.0, -1.0)
        return d, xp.maximum(0, 1 - d * x)

    def forward(self, bottom, top):
        _, margin = self._signed(bottom)
        total = margin.sum() if self.norm == L1 else (margin * margin).sum()
        top[0].data[...] = total / self.num

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.error("propagate_down", "cannot backpropagate to the labels (bottom[1]); "
                                               "set propagate_down: false for it")
        if propagate_down[0]:
            d, margin = self._signed(bottom)
            xp = get_array_module(margin)
            g = -d * (xp.sign(margin) if self.norm == L1 else 2 * margin)
            bottom[0].diff[...] = (g * (top[0].diff / self.num)).reshape(bottom[0].shape)
