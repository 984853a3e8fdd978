"""ContrastiveLoss: pull similar pairs together, push dissimilar ones past a margin."""
from ..backend import get_array_module
from ..layer import LossLayer, register_layer


@register_layer
class ContrastiveLossLayer(LossLayer):
    """loss = sum_n [y_n d_n^2 + (1 - y_n) max(margin - d_n, 0)^2] / (2N), d_n = ||a_n - b_n||,
    a = bottom[0], b = bottom[1] (N, C, ...), y = bottom[2] (N values, similar when non-zero
    after truncation to int). With contrastive_loss_param.legacy_version the dissimilar term
    is max(margin - d_n^2, 0). Reads contrastive_loss_param.margin (default 1).

    Backward to a and b (opposite signs); the dissimilar gradient divides by d_n + 1e-4 as
    Caffe does; y gets none.
    """

    type = "ContrastiveLoss"
    exact_num_bottom = 3

    def allow_force_backward(self, bottom_index):
        return bottom_index != 2

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        a, b, y = bottom
        self.num = a.shape[0]
        if a.shape != b.shape:
            raise self.error("bottom", f"the two feature inputs need the same shape, found "
                                       f"{a.shape} and {b.shape}")
        if y.count != self.num:
            raise self.error("bottom", f"bottom[2] needs one similarity label per pair ({self.num}),"
                                       f" found shape {y.shape}")

    def _terms(self, bottom):
        p = self.param.contrastive_loss_param
        a = bottom[0].data.reshape(self.num, -1)
        xp = get_array_module(a)
        diff = a - bottom[1].data.reshape(self.num, -1)
        dist_sq = (diff * diff).sum(axis=1)
        similar = bottom[2].data.reshape(-1).astype("int64") != 0
        return p, xp, diff, dist_sq, similar

    def forward(self, bottom, top):
        p, xp, _, dist_sq, similar = self._terms(bottom)
        if p.legacy_version:
            other = xp.maximum(p.margin - dist_sq, 0)
        else:
            other = xp.maximum(p.margin - xp.sqrt(dist_sq), 0) ** 2
        top[0].data[...] = xp.where(similar, dist_sq, other).sum() / self.num / 2

    def backward(self, top, propagate_down, bottom):
        if propagate_down[2]:
            raise self.error("propagate_down", "cannot backpropagate to the similarity labels "
                                               "(bottom[2]); set propagate_down: false for it")
        if not (propagate_down[0] or propagate_down[1]):
            return
        p, xp, diff, dist_sq, similar = self._terms(bottom)
        if p.legacy_version:
            beta = xp.where(p.margin - dist_sq > 0, -1.0, 0.0)
        else:
            dist = xp.sqrt(dist_sq)
            mdist = p.margin - dist
            beta = xp.where(mdist > 0, -mdist / (dist + 1e-4), 0.0)
        coeff = xp.where(similar, 1.0, beta)[:, None] * diff
        for i, sign in ((0, 1.0), (1, -1.0)):
            if propagate_down[i]:
                scale = top[0].diff * (sign / self.num)
                bottom[i].diff[...] = (coeff * scale).reshape(bottom[i].shape)
