"""Top-k classification accuracy (a metric: it has no backward)."""
import numpy as np

from .. import kernels
from ..backend import get_array_module
from ..layer import Layer, register_layer
from .softmax import canonical_axis
from .softmax_with_loss import check_flagged_labels, check_label_count, ignore_args, read_labels


@register_layer
class AccuracyLayer(Layer):
    """The fraction of positions whose label is among the top_k scores along accuracy_param.axis
    (default 1); bottom[1] holds one label per position outside that axis. Reads
    accuracy_param.top_k (default 1), .axis and .ignore_label (those positions are not counted).
    Optional top[1]: per-class accuracy, shape (num_classes,), 0 for a class absent from the
    batch. top[0] is 0 when every label is ignored (Caffe 1.0's CPU code divides 0 by 0 there).

    Ties follow Caffe 1.0's CPU layer, which sorts (score, class) pairs in descending order:
    among equal scores the higher class index ranks first, so the label counts as correct when
    #{c: s_c > s_label} + #{c > label: s_c == s_label} < top_k.
    """

    type = "Accuracy"
    exact_num_bottom, min_top, max_top = 2, 1, 2
    has_backward = False

    def layer_setup(self, bottom, top):
        ap = self.param.accuracy_param
        self.top_k = ap.top_k
        self.ignore_label = ap.ignore_label if ap.HasField("ignore_label") else None

    def reshape(self, bottom, top):
        self.axis = canonical_axis(self, bottom[0], "accuracy_param.axis",
                                   self.param.accuracy_param.axis)
        self.outer = bottom[0].count_range(0, self.axis)
        self.inner = bottom[0].count_range(self.axis + 1)
        self.num_classes = n = bottom[0].shape[self.axis]
        if not 1 <= self.top_k <= n:
            raise self.error("accuracy_param.top_k", f"top_k is {self.top_k} but there are {n} "
                                                     f"classes (axis {self.axis} of "
                                                     f"{bottom[0].shape}); give 1 <= top_k <= {n}")
        check_label_count(self, bottom, self.axis, self.outer, self.inner)
        top[0].reshape(())
        if len(top) > 1:
            top[1].reshape((n,))

    def forward(self, bottom, top):
        xp = get_array_module(bottom[0].data)
        n = self.num_classes
        scores = bottom[0].data.reshape(self.outer, n, self.inner)
        label, valid = read_labels(self, bottom[1].data, self.outer, self.inner, n,
                                   self.ignore_label)
        true_score = xp.take_along_axis(scores, label[:, None, :], axis=1)
        after = xp.arange(n)[None, :, None] > label[:, None, :]
        ahead = (scores > true_score) | ((scores == true_score) & after)
        hit = (ahead.sum(axis=1) < self.top_k) & valid
        top[0].data[...] = hit.sum() / xp.maximum(valid.sum(), 1)
        if len(top) > 1:
            labels = label.ravel()
            seen = xp.bincount(labels, valid.ravel().astype(np.float64), minlength=n)
            right = xp.bincount(labels, hit.ravel().astype(np.float64), minlength=n)
            top[1].data[...] = right / xp.maximum(seen, 1)

    def forward_gpu(self, bottom, top):
        x = bottom[0].data
        xp = get_array_module(x)
        n, c = self.outer * self.inner, self.num_classes
        hit, valid, bad = xp.empty(n, x.dtype), xp.empty(n, x.dtype), xp.zeros(1, xp.int32)
        kernels.call("accuracy.cu", "accuracy_forward", n, x, bottom[1].data, c, self.inner,
                     self.top_k, *ignore_args(self), hit, valid, bad)
        check_flagged_labels(self, bottom[1].data, bad)
        hit, valid = hit.astype(np.float64), valid.astype(np.float64)   # exact counts, as xp
        top[0].data[...] = hit.sum() / xp.maximum(valid.sum(), 1)
        if len(top) > 1:
            labels = xp.where(valid > 0, bottom[1].data.reshape(-1).astype(np.int64), 0)
            seen = xp.bincount(labels, valid, minlength=c)
            right = xp.bincount(labels, hit, minlength=c)
            top[1].data[...] = right / xp.maximum(seen, 1)

    def backward(self, top, propagate_down, bottom):
        if any(propagate_down):
            raise self.error("propagate_down", "Accuracy has no backward; use its output for "
                                               "reporting only, or set propagate_down: false")
