"""Embed: a learned lookup table (one-hot input times a weight matrix, without the one-hot)."""
from ..backend import get_array_module
from ..errors import DataError
from ..filler import fill
from ..layer import Layer, register_layer
from ..proto import caffe_pb2


def scatter_add_rows(target, idx, rows):
    """target[idx[i]] += rows[i] for every i, repeated indices summed (numpy's add.at, written
    with bincount so that it runs on numpy and cupy alike). target (V, ...), rows (len(idx), ...)."""
    xp = get_array_module(target)
    width = int(target.size // max(target.shape[0], 1))
    flat = (idx.reshape(-1, 1) * width + xp.arange(width)).ravel()
    sums = xp.bincount(flat, weights=rows.reshape(-1), minlength=target.size)
    target += sums.reshape(target.shape).astype(target.dtype, copy=False)


def read_indices(layer, values, limit, what):
    """values truncated to int (Caffe's static_cast); DataError naming the first one outside
    [0, limit)."""
    idx = values.astype("int64")
    bad = (idx < 0) | (idx >= limit)
    if bool(bad.any()):
        raise DataError(f"layer '{layer.name}' (type {layer.type}): {what} "
                        f"{float(values[bad].ravel()[0]):g} is out of range [0, {limit - 1}]")
    return idx


@register_layer
class EmbedLayer(Layer):
    """top[..., :] = W[index] + b for every index in the bottom (any shape, integer values
    stored as floats); the top has the bottom's shape plus a last axis of num_output.

    Reads embed_param.num_output, input_dim (the vocabulary size), bias_term (default true),
    weight_filler and bias_filler. blobs: W (input_dim, num_output), b (num_output,).
    The indices get no gradient; W's rows gather the gradients of their lookups.
    """

    type = "Embed"
    exact_num_bottom = exact_num_top = 1

    def allow_force_backward(self, bottom_index):
        return False

    def layer_setup(self, bottom, top):
        p = self.param.embed_param
        for field in ("num_output", "input_dim"):
            if getattr(p, field) < 1:
                raise self.error(f"embed_param.{field}", f"found {getattr(p, field)}, expected > 0")
        self.num_output, self.input_dim, self.bias_term = p.num_output, p.input_dim, p.bias_term
        constant = caffe_pb2.FillerParameter(type="constant")
        self.blobs = [fill(self.new_blob((self.input_dim, self.num_output)),
                           p.weight_filler if p.HasField("weight_filler") else constant)]
        if self.bias_term:
            self.blobs.append(fill(self.new_blob((self.num_output,)),
                                   p.bias_filler if p.HasField("bias_filler") else constant))

    def reshape(self, bottom, top):
        top[0].reshape(bottom[0].shape + (self.num_output,))

    def forward(self, bottom, top):
        self.idx = read_indices(self, bottom[0].data.ravel(), self.input_dim, "index")
        out = self.blobs[0].data[self.idx]
        if self.bias_term:
            out = out + self.blobs[1].data
        top[0].data[...] = out.reshape(top[0].shape)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            raise self.error("propagate_down", "cannot backpropagate to the indices (bottom[0]); "
                                               "set propagate_down: false for it")
        dy = top[0].diff.reshape(-1, self.num_output)
        if self.param_propagate_down[0]:
            scatter_add_rows(self.blobs[0].diff, self.idx, dy)
        if self.bias_term and self.param_propagate_down[1]:
            self.blobs[1].diff[...] += dy.sum(axis=0)
