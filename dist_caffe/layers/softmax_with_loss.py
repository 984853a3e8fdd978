"""Softmax followed by the multinomial logistic loss, in one numerically stable layer."""
import numpy as np

from .. import kernels
from ..backend import get_array_module
from ..errors import DataError
from ..layer import LossLayer, register_layer
from ..proto import caffe_pb2
from .softmax import canonical_axis, softmax

FLT_MIN = float(np.finfo(np.float32).tiny)  # Caffe clamps p at FLT_MIN whatever the dtype
Norm = caffe_pb2.LossParameter


def normalization_mode(loss_param):
    """loss_param.normalization, or the legacy `normalize` bool (true: VALID, false: BATCH_SIZE)."""
    if not loss_param.HasField("normalization") and loss_param.HasField("normalize"):
        return Norm.VALID if loss_param.normalize else Norm.BATCH_SIZE
    return loss_param.normalization


def normalizer(mode, outer, inner, valid_count):
    """What the summed loss is divided by: FULL outer*inner, VALID the non-ignored count,
    BATCH_SIZE outer, NONE 1; never below 1. `valid_count` may be a device scalar."""
    value = {Norm.FULL: outer * inner, Norm.VALID: valid_count,
             Norm.BATCH_SIZE: outer, Norm.NONE: 1}[mode]
    return get_array_module(value).maximum(value, 1)


def check_label_count(layer, bottom, axis, outer, inner):
    """ConfigError unless bottom[1] holds one label per position outside the class axis."""
    if bottom[1].count != outer * inner:
        raise layer.error("bottom", f"labels {bottom[1].shape} hold {bottom[1].count} values but "
                                    f"scores {bottom[0].shape} with class axis {axis} need "
                                    f"{outer * inner}: one per position outside that axis, e.g. "
                                    "N*H*W labels for (N, C, H, W) scores and axis 1")


def read_labels(layer, labels, outer, inner, num_classes, ignore_label=None):
    """Labels as ints shaped (outer, inner), 0 where ignored, and the mask of those kept.

    Labels are truncated to int as Caffe's static_cast does; a kept label outside
    [0, num_classes) is a DataError naming the value.
    """
    xp = get_array_module(labels)
    label = labels.reshape(outer, inner).astype(np.int64)
    valid = xp.ones(label.shape, bool) if ignore_label is None else label != ignore_label
    bad = valid & ((label < 0) | (label >= num_classes))
    if bool(bad.any()):
        value = float(labels.reshape(outer, inner)[bad].ravel()[0])
        raise DataError(f"layer '{layer.name}' (type {layer.type}): label {value:g} is out of "
                        f"range: labels must be integers in [0, {num_classes - 1}] (the size of "
                        "the class axis of bottom[0]) or the ignore_label")
    return xp.where(valid, label, 0), valid


def ignore_args(layer):
    """(has_ignore, ignore_label): how the softmax-loss and accuracy kernels take ignore_label."""
    return (0, 0) if layer.ignore_label is None else (1, int(layer.ignore_label))


def check_flagged_labels(layer, labels, bad):
    """After a kernel set bad[0] (the position + 1 of a label out of range, 0 when none): raise
    read_labels' DataError, which names the first bad label as the xp path does."""
    where = int(bad[0])   # one device-to-host read, as read_labels' own check
    if where:
        read_labels(layer, labels, layer.outer, layer.inner, layer.num_classes, layer.ignore_label)
        # Reached only if the kernel and read_labels disagree: never pass a flagged batch.
        raise DataError(f"layer '{layer.name}' (type {layer.type}): label "
                        f"{float(labels.reshape(-1)[where - 1]):g} at position {where - 1} is out "
                        f"of range [0, {layer.num_classes - 1}]")


@register_layer
class SoftmaxWithLossLayer(LossLayer):
    """loss = -sum log(max(p[label], FLT_MIN)) / normalizer, p = softmax(bottom[0]) along
    softmax_param.axis (default 1); bottom[1] holds outer*inner class indices (outer: the axes
    before the class axis, inner: those after). Reads loss_param.ignore_label (those positions
    add nothing and get zero gradient), loss_param.normalization (default VALID) or the legacy
    loss_param.normalize. Optional top[1] = p. Backward: (p - onehot(label)) * w / normalizer,
    w the loss weight; labels get no gradient.
    """

    type = "SoftmaxWithLoss"
    max_top = 2

    def layer_setup(self, bottom, top):
        lp = self.param.loss_param
        self.mode = normalization_mode(lp)
        self.ignore_label = lp.ignore_label if lp.HasField("ignore_label") else None

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        self.axis = canonical_axis(self, bottom[0], "softmax_param.axis",
                                   self.param.softmax_param.axis)
        self.outer = bottom[0].count_range(0, self.axis)
        self.inner = bottom[0].count_range(self.axis + 1)
        self.num_classes = bottom[0].shape[self.axis]
        check_label_count(self, bottom, self.axis, self.outer, self.inner)
        if len(top) > 1:
            top[1].reshape_like(bottom[0])

    def _labels(self, bottom):
        return read_labels(self, bottom[1].data, self.outer, self.inner, self.num_classes,
                           self.ignore_label)

    def forward(self, bottom, top):
        xp = get_array_module(bottom[0].data)
        self.prob = softmax(bottom[0].data.reshape(self.outer, self.num_classes, self.inner), 1)
        label, valid = self._labels(bottom)
        p = xp.take_along_axis(self.prob, label[:, None, :], axis=1)[:, 0, :]
        loss = -xp.where(valid, xp.log(xp.maximum(p, FLT_MIN)), 0).sum()
        top[0].data[...] = loss / normalizer(self.mode, self.outer, self.inner, valid.sum())
        if len(top) > 1:
            top[1].data[...] = self.prob.reshape(bottom[0].shape)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.error("propagate_down", "cannot backpropagate to the label input "
                                               "(bottom[1]); set propagate_down: false for it")
        if not propagate_down[0]:
            return
        xp = get_array_module(self.prob)
        label, valid = self._labels(bottom)
        onehot = xp.arange(self.num_classes)[None, :, None] == label[:, None, :]
        grad = (self.prob - onehot) * valid[:, None, :]
        scale = top[0].diff / normalizer(self.mode, self.outer, self.inner, valid.sum())
        bottom[0].diff[...] = (grad * scale).reshape(bottom[0].shape)

    def forward_gpu(self, bottom, top):
        x = bottom[0].data
        xp = get_array_module(x)
        c, inner, n = self.num_classes, self.inner, self.outer * self.inner
        self.prob = xp.empty((self.outer, c, inner), x.dtype)
        kernels.call("softmax.cu", "softmax_forward", n, x, c, inner, self.prob)
        loss, counts, bad = xp.empty(n, x.dtype), xp.empty(n, x.dtype), xp.zeros(1, xp.int32)
        kernels.call("softmax.cu", "softmax_loss_forward", n, self.prob, bottom[1].data, c, inner,
                     *ignore_args(self), loss, counts, bad)
        check_flagged_labels(self, bottom[1].data, bad)
        self.valid_count = counts.sum(dtype=np.float64)   # exact: a sum of 0s and 1s
        top[0].data[...] = loss.sum() / normalizer(self.mode, self.outer, inner, self.valid_count)
        if len(top) > 1:
            top[1].data[...] = self.prob.reshape(bottom[0].shape)

    def backward_gpu(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.error("propagate_down", "cannot backpropagate to the label input "
                                               "(bottom[1]); set propagate_down: false for it")
        if not propagate_down[0]:
            return
        x = bottom[0].data
        xp = get_array_module(x)
        # The loss weight over the normaliser, as one device value: no host round trip.
        scale = top[0].diff / normalizer(self.mode, self.outer, self.inner, self.valid_count)
        scale = xp.asarray(scale, dtype=x.dtype).reshape(1)
        kernels.call("softmax.cu", "softmax_loss_backward", self.outer * self.inner, self.prob,
                     bottom[1].data, self.num_classes, self.inner, *ignore_args(self), scale,
                     bottom[0].diff)
