"""InfogainLoss: multinomial logistic loss weighted by an information-gain matrix H."""
from ..backend import get_array_module
from ..blob import Blob
from ..errors import ConfigError, DataError
from ..layer import LossLayer, register_layer
from ..proto import caffe_pb2, read_binary_proto
from .embed import read_indices
from .multinomial_logistic_loss import LOG_THRESHOLD
from .softmax import softmax
from .softmax_with_loss import normalization_mode, normalizer
from .tile import canonical_axis


@register_layer
class InfogainLossLayer(LossLayer):
    """loss = -sum_i sum_k H[label_i, k] log(max(p_ik, 1e-20)) / normalizer, over every
    position i (items, and positions after the class axis); H = I gives the multinomial
    logistic loss.

    H (K x K) is bottom[2] when given, else the BlobProto file infogain_loss_param.source.
    Reads infogain_loss_param.axis (the class axis, default 1), loss_param.ignore_label and
    loss_param.normalization (default VALID: the number of non-ignored positions, which for
    (N, K) input is N). The labels and H get no gradient.

    p is bottom[0] itself: the input holds probabilities (put a Softmax layer before it), as
    in the BVLC Caffe 1.0.0-rc3 this project's reference outputs come from. Later BVLC
    master applies the softmax inside the layer (input = scores, optional top[1] = p); set
    `softmax_inside = True` on the class for that behaviour.
    """

    type = "InfogainLoss"
    min_bottom, max_bottom, exact_num_bottom, max_top = 2, 3, None, 2
    softmax_inside = False

    def allow_force_backward(self, bottom_index):
        return bottom_index == 0

    def layer_setup(self, bottom, top):
        lp = self.param.loss_param
        self.ignore_label = lp.ignore_label if lp.HasField("ignore_label") else None
        self.mode = normalization_mode(lp)
        self.infogain = None
        if len(bottom) < 3:
            self.infogain = self._read_matrix()

    def _read_matrix(self):
        source = self.param.infogain_loss_param.source
        if not source:
            raise self.error("infogain_loss_param.source", "no infogain matrix: give the path of "
                                                           "a BlobProto file, or H as bottom[2]")
        try:
            proto = read_binary_proto(source, caffe_pb2.BlobProto)
            blob = Blob((), self.dtype).from_proto(proto)
        except (ConfigError, DataError, ValueError) as e:
            raise self.error("infogain_loss_param.source", f"cannot read the infogain matrix: {e}")
        return blob

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        self.axis = canonical_axis(self, bottom[0], self.param.infogain_loss_param.axis,
                                   "infogain_loss_param.axis")
        self.outer = bottom[0].count_range(0, self.axis)
        self.inner = bottom[0].count_range(self.axis + 1)
        self.k = bottom[0].shape[self.axis]
        h = self.infogain if len(bottom) < 3 else bottom[2]
        if h.count != self.k * self.k:
            raise self.error("bottom" if len(bottom) > 2 else "infogain_loss_param.source",
                             f"the infogain matrix has {h.count} values {h.shape}; {self.k} classes "
                             f"on axis {self.axis} of {bottom[0].shape} need {self.k}x{self.k}")
        if bottom[1].count != self.outer * self.inner:
            raise self.error("bottom", f"needs {self.outer * self.inner} labels (one per position "
                                       f"outside the class axis), found {bottom[1].count}")
        if len(top) > 1:
            top[1].reshape_like(bottom[0])

    def _parts(self, bottom):
        """p (outer, K, inner), H (K, K), label and valid mask (outer, inner)."""
        x = bottom[0].data.reshape(self.outer, self.k, self.inner)
        xp = get_array_module(x)
        p = softmax(x, 1) if self.softmax_inside else x
        h_blob = self.infogain if len(bottom) < 3 else bottom[2]
        h = xp.asarray(h_blob.data).reshape(self.k, self.k)
        labels = bottom[1].data.reshape(self.outer, self.inner)
        valid = xp.ones(labels.shape, bool)
        if self.ignore_label is not None:
            valid = labels.astype("int64") != self.ignore_label
        label = xp.where(valid, labels, 0)
        label = read_indices(self, label.reshape(-1), self.k, "label").reshape(labels.shape)
        return xp, p, h, label, valid

    def forward(self, bottom, top):
        xp, p, h, label, valid = self._parts(bottom)
        weights = xp.moveaxis(h[label], -1, 1)  # (outer, K, inner): H[label_i, k]
        logp = xp.log(xp.maximum(p, LOG_THRESHOLD))
        loss = -(weights * logp * valid[:, None, :]).sum()
        top[0].data[...] = loss / normalizer(self.mode, self.outer, self.inner, valid.sum())
        if len(top) > 1:
            top[1].data[...] = p.reshape(bottom[0].shape)

    def backward(self, top, propagate_down, bottom):
        if any(propagate_down[1:]):
            raise self.error("propagate_down", "cannot backpropagate to the labels or the infogain "
                                               "matrix; set propagate_down: false for them")
        if not propagate_down[0]:
            return
        xp, p, h, label, valid = self._parts(bottom)
        weights = xp.moveaxis(h[label], -1, 1)
        if self.softmax_inside:
            grad = p * h.sum(axis=1)[label][:, None, :] - weights
        else:
            grad = -weights / xp.maximum(p, LOG_THRESHOLD)
        scale = top[0].diff / normalizer(self.mode, self.outer, self.inner, valid.sum())
        bottom[0].diff[...] = (grad * valid[:, None, :] * scale).reshape(bottom[0].shape)
