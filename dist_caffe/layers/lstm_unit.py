"""LSTMUnit: one time step of an LSTM cell, given the pre-activated gates."""
from ..backend import get_array_module
from ..layer import Layer, register_layer
from .swish import sigmoid


def lstm_unit_forward(c_prev, gates, cont):
    """c, h and the gate activations (i, f, o, g) of one step.

    c_prev (N, H); gates (N, 4H) pre-activations in the order input, forget, output, cell
    candidate; cont (N,) sequence continuation: the forget gate is multiplied by it, so
    cont 0 starts a new sequence.
    """
    hdim = c_prev.shape[-1]
    i = sigmoid(gates[:, :hdim])
    f = sigmoid(gates[:, hdim:2 * hdim]) * cont[:, None]
    o = sigmoid(gates[:, 2 * hdim:3 * hdim])
    g = get_array_module(gates).tanh(gates[:, 3 * hdim:])
    c = f * c_prev + i * g
    tanh_c = get_array_module(c).tanh(c)
    return c, o * tanh_c, (i, f, o, g, tanh_c)


def lstm_unit_backward(c_prev, acts, dc, dh):
    """(dc_prev, dgates) of one step from the gradients of c and h (Caffe's formulas)."""
    i, f, o, g, tanh_c = acts
    dc_total = dc + dh * o * (1 - tanh_c * tanh_c)
    dgates = get_array_module(c_prev).concatenate([dc_total * g * i * (1 - i),
                                                   dc_total * c_prev * f * (1 - f),
                                                   dh * tanh_c * o * (1 - o),
                                                   dc_total * i * (1 - g * g)], axis=1)
    return dc_total * f, dgates


@register_layer
class LSTMUnitLayer(Layer):
    """One LSTM step: bottoms c_prev (1, N, H), gates (1, N, 4H) in the order i, f, o, g, and
    cont (1, N); tops c (1, N, H) and h (1, N, H) with c = f * c_prev + i * g,
    h = o * tanh(c), i/f/o sigmoids (f times cont) and g a tanh. cont gets no gradient.
    """

    type = "LSTMUnit"
    exact_num_bottom, exact_num_top = 3, 2

    def allow_force_backward(self, bottom_index):
        return bottom_index != 2

    def reshape(self, bottom, top):
        c_prev, gates, cont = bottom
        n = c_prev.shape[1] if c_prev.num_axes == 3 else None
        ok = (c_prev.num_axes == 3 and gates.num_axes == 3 and cont.num_axes == 2
              and all(b.shape[0] == 1 and b.shape[1] == n for b in bottom)
              and gates.shape[2] == 4 * c_prev.shape[2])
        if not ok:
            raise self.error("bottom", f"expects c_prev (1, N, H), gates (1, N, 4H) and cont (1, N);"
                                       f" found {c_prev.shape}, {gates.shape}, {cont.shape}")
        self.n, self.hdim = n, c_prev.shape[2]
        top[0].reshape_like(c_prev)
        top[1].reshape_like(c_prev)

    def forward(self, bottom, top):
        c_prev = bottom[0].data.reshape(self.n, self.hdim)
        c, h, self.acts = lstm_unit_forward(c_prev, bottom[1].data.reshape(self.n, -1),
                                            bottom[2].data.reshape(self.n))
        top[0].data[...] = c.reshape(top[0].shape)
        top[1].data[...] = h.reshape(top[1].shape)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[2]:
            raise self.error("propagate_down", "cannot backpropagate to the sequence continuation "
                                               "indicators (bottom[2]); set propagate_down: false")
        c_prev = bottom[0].data.reshape(self.n, self.hdim)
        dc_prev, dgates = lstm_unit_backward(c_prev, self.acts, top[0].diff.reshape(self.n, -1),
                                             top[1].diff.reshape(self.n, -1))
        if propagate_down[0]:
            bottom[0].diff[...] = dc_prev.reshape(bottom[0].shape)
        if propagate_down[1]:
            bottom[1].diff[...] = dgates.reshape(bottom[1].shape)
