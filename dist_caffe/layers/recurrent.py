"""RNN and LSTM: recurrent layers over (T, N, ...) sequences, as Caffe unrolls them.

Caffe builds an internal net with one set of layers per time step (InnerProduct, Scale by the
continuation flag, Eltwise, TanH / LSTMUnit) sharing weights across steps. The same
computation is written here as one loop over time steps on whole (N, H) matrices, with the
learnable blobs in the order and shapes Caffe's unrolled net gives them, so caffemodels
interchange. Without expose_hidden the last hidden state is kept and starts the next batch
(as Caffe copies h_T into h_0); a continuation flag 0 resets it.
"""
import numpy as np

from ..backend import get_array_module
from ..filler import fill
from ..layer import TRAIN, Layer, register_layer
from .lstm_unit import lstm_unit_backward, lstm_unit_forward


def _matmul_acc(blob, a, b):
    """blob.diff += a^T b over every leading axis (a: (..., G), b: (..., K))."""
    blob.diff[...] += a.reshape(-1, a.shape[-1]).T @ b.reshape(-1, b.shape[-1])


class RecurrentLayer(Layer):
    """Shared set-up of RNN and LSTM. Bottoms: x (T, N, ...), cont (T, N), optional static
    input x_static (N, ...) added at every step, and with recurrent_param.expose_hidden the
    initial states (1, N, H) each; tops: the output (T, N, H) and with expose_hidden the final
    states (1, N, H). Reads recurrent_param.num_output (H), weight_filler, bias_filler and
    expose_hidden. The continuation input gets no gradient.
    """

    state_names = ("h",)     # the recurrent states, in Caffe's bottom/top order
    gate_factor = 1          # rows of the input weights per hidden unit (LSTM: 4 gates)

    def __init__(self, param, phase=TRAIN, dtype=np.float32):
        super().__init__(param, phase, dtype)
        exposed = len(self.state_names) if param.recurrent_param.expose_hidden else 0
        self.min_bottom, self.max_bottom = 2, 3 + exposed
        self.exact_num_top = 1 + exposed

    def allow_force_backward(self, bottom_index):
        return bottom_index != 1

    def layer_setup(self, bottom, top):
        p = self.param.recurrent_param
        if p.num_output < 1:
            raise self.error("recurrent_param.num_output", f"found {p.num_output}, expected > 0")
        if bottom[0].num_axes < 2:
            raise self.error("bottom", f"bottom[0] must be (T, N, ...) (time steps, streams), "
                                       f"found {bottom[0].shape}")
        self.hidden, self.expose = p.num_output, p.expose_hidden
        self.static = len(bottom) > 2 + (len(self.state_names) if self.expose else 0)
        self.state = None
        rows = self.gate_factor * self.hidden
        self.blobs = [fill(self.new_blob((rows, bottom[0].count_range(2))), p.weight_filler),
                      fill(self.new_blob((rows,)), p.bias_filler)]
        if self.static:
            if bottom[2].num_axes < 1:
                raise self.error("bottom", "the static input bottom[2] must be (N, ...)")
            self.blobs.append(fill(self.new_blob((rows, bottom[2].count_range(1))),
                                   p.weight_filler))
        self.add_recurrent_params(p)

    def add_recurrent_params(self, p):
        raise NotImplementedError

    @property
    def _first_recurrent(self):
        """Index of the first recurrent weight in self.blobs (after W_x, b, [W_static])."""
        return 3 if self.static else 2

    @property
    def _hidden_bottoms(self):
        """Index of the first initial-state bottom (after x, cont, [x_static])."""
        return 3 if self.static else 2

    def reshape(self, bottom, top):
        x, cont = bottom[0], bottom[1]
        t_steps, n = x.shape[:2]
        if cont.shape != (t_steps, n):
            raise self.error("bottom", f"bottom[1] (continuation flags) must be (T, N) = "
                                       f"{(t_steps, n)}, found {cont.shape}")
        if x.count_range(2) != self.blobs[0].shape[1]:
            raise self.error("bottom", f"bottom[0] {x.shape} has {x.count_range(2)} values per "
                                       f"step and stream; the layer was set up for "
                                       f"{self.blobs[0].shape[1]}")
        if self.static and bottom[2].shape[0] != n:
            raise self.error("bottom", f"the static input {bottom[2].shape} needs N = {n} items")
        state_shape = (1, n, self.hidden)
        if self.expose:
            for k, name in enumerate(self.state_names):
                b = bottom[self._hidden_bottoms + k]
                if b.shape != state_shape:
                    raise self.error("bottom", f"initial state {name}_0 must be {state_shape}, "
                                               f"found {b.shape}")
            for t in top[1:]:
                t.reshape(state_shape)
        elif self.state is None or self.state[0].shape != (n, self.hidden):
            xp = get_array_module(x.data)
            self.state = [xp.zeros((n, self.hidden), self.dtype) for _ in self.state_names]
        self.t_steps, self.n = t_steps, n
        top[0].reshape((t_steps, n, self.hidden))

    # -- pieces shared by RNN and LSTM ----------------------------------------
    def initial_states(self, bottom):
        if self.expose:
            return [bottom[self._hidden_bottoms + k].data.reshape(self.n, self.hidden)
                    for k in range(len(self.state_names))]
        return self.state

    def final_states(self, top, states):
        if self.expose:
            for t, s in zip(top[1:], states):
                t.data[...] = s.reshape(t.shape)
        else:
            self.state = [s.copy() for s in states]

    def final_state_diffs(self, top):
        if self.expose:
            return [t.diff.reshape(self.n, self.hidden) for t in top[1:]]
        return [0.0] * len(self.state_names)

    def project_inputs(self, bottom):
        """x W^T + b (+ x_static W_static^T at every step): (T, N, gate_factor * H)."""
        x = bottom[0].data.reshape(self.t_steps, self.n, -1)
        out = x @ self.blobs[0].data.T + self.blobs[1].data
        if self.static:
            out = out + (bottom[2].data.reshape(self.n, -1) @ self.blobs[2].data.T)[None]
        return out

    def project_backward(self, bottom, propagate_down, dpre, initial_diffs):
        """Gradients of the input projections from d(pre-activation) (T, N, G), and of the
        initial states."""
        x = bottom[0].data.reshape(self.t_steps, self.n, -1)
        if self.param_propagate_down[0]:
            _matmul_acc(self.blobs[0], dpre, x)
        if self.param_propagate_down[1]:
            self.blobs[1].diff[...] += dpre.sum(axis=(0, 1))
        if propagate_down[0]:
            bottom[0].diff[...] = (dpre @ self.blobs[0].data).reshape(bottom[0].shape)
        if propagate_down[1]:
            raise self.error("propagate_down", "cannot backpropagate to the continuation flags "
                                               "(bottom[1]); set propagate_down: false for it")
        if self.static:
            xs, ds = bottom[2].data.reshape(self.n, -1), dpre.sum(axis=0)
            if self.param_propagate_down[2]:
                _matmul_acc(self.blobs[2], ds, xs)
            if propagate_down[2]:
                bottom[2].diff[...] = (ds @ self.blobs[2].data).reshape(bottom[2].shape)
        if self.expose:
            for k, d in enumerate(initial_diffs):
                i = self._hidden_bottoms + k
                if propagate_down[i]:
                    bottom[i].diff[...] = d.reshape(bottom[i].shape)


@register_layer
class RNNLayer(RecurrentLayer):
    """Elman RNN: h_t = tanh(W_hh (cont_t h_{t-1}) + W_xh x_t + b_h [+ W_xh_static x_static]),
    o_t = tanh(W_ho h_t + b_o); the top is o (T, N, H). blobs, in Caffe's order: W_xh (H, X),
    b_h (H), [W_xh_static (H, S)], W_hh (H, H), W_ho (H, H), b_o (H). States: h.
    """

    type = "RNN"

    def add_recurrent_params(self, p):
        h = self.hidden
        self.blobs += [fill(self.new_blob((h, h)), p.weight_filler),
                       fill(self.new_blob((h, h)), p.weight_filler),
                       fill(self.new_blob((h,)), p.bias_filler)]

    def forward(self, bottom, top):
        xw = self.project_inputs(bottom)
        xp = get_array_module(xw)
        k = self._first_recurrent
        w_hh, w_ho, b_o = (b.data for b in self.blobs[k:k + 3])
        cont = bottom[1].data[:, :, None]
        self.hs = xp.empty((self.t_steps + 1, self.n, self.hidden), xw.dtype)
        self.hs[0] = self.initial_states(bottom)[0]
        self.hc = xp.empty(self.hs[1:].shape, xw.dtype)
        for t in range(self.t_steps):
            self.hc[t] = cont[t] * self.hs[t]
            self.hs[t + 1] = xp.tanh(self.hc[t] @ w_hh.T + xw[t])
        top[0].data[...] = xp.tanh(self.hs[1:] @ w_ho.T + b_o)
        self.final_states(top, [self.hs[-1]])

    def backward(self, top, propagate_down, bottom):
        k = self._first_recurrent
        blob_hh, blob_ho, blob_bo = self.blobs[k:k + 3]
        o = top[0].data
        dpo = top[0].diff * (1 - o * o)
        if self.param_propagate_down[k + 1]:
            _matmul_acc(blob_ho, dpo, self.hs[1:])
        if self.param_propagate_down[k + 2]:
            blob_bo.diff[...] += dpo.sum(axis=(0, 1))
        dh = dpo @ blob_ho.data
        da = get_array_module(dh).empty_like(dh)
        cont = bottom[1].data[:, :, None]
        carry = self.final_state_diffs(top)[0]
        for t in reversed(range(self.t_steps)):
            da[t] = (dh[t] + carry) * (1 - self.hs[t + 1] * self.hs[t + 1])
            carry = (da[t] @ blob_hh.data) * cont[t]
        if self.param_propagate_down[k]:
            _matmul_acc(blob_hh, da, self.hc)
        self.project_backward(bottom, propagate_down, da, [carry])


@register_layer
class LSTMLayer(RecurrentLayer):
    """LSTM: gates_t = W_hc (cont_t h_{t-1}) + W_xc x_t + b_c [+ W_xc_static x_static], then an
    LSTMUnit step (input, forget, output gates and cell candidate, in that order) gives c_t and
    h_t; the top is h (T, N, H). blobs, in Caffe's order: W_xc (4H, X), b_c (4H),
    [W_xc_static (4H, S)], W_hc (4H, H). States: h, c (bottoms h_0, c_0; tops h_T, c_T).
    """

    type = "LSTM"
    state_names = ("h", "c")
    gate_factor = 4

    def add_recurrent_params(self, p):
        self.blobs.append(fill(self.new_blob((4 * self.hidden, self.hidden)), p.weight_filler))

    def forward(self, bottom, top):
        xw = self.project_inputs(bottom)
        xp = get_array_module(xw)
        w_hc = self.blobs[self._first_recurrent].data
        cont = bottom[1].data
        shape = (self.t_steps + 1, self.n, self.hidden)
        self.hs, self.cs = xp.empty(shape, xw.dtype), xp.empty(shape, xw.dtype)
        self.hs[0], self.cs[0] = self.initial_states(bottom)
        self.hc, self.acts = xp.empty(self.hs[1:].shape, xw.dtype), []
        for t in range(self.t_steps):
            self.hc[t] = cont[t][:, None] * self.hs[t]
            c, h, acts = lstm_unit_forward(self.cs[t], self.hc[t] @ w_hc.T + xw[t], cont[t])
            self.cs[t + 1], self.hs[t + 1] = c, h
            self.acts.append(acts)
        top[0].data[...] = self.hs[1:]
        self.final_states(top, [self.hs[-1], self.cs[-1]])

    def backward(self, top, propagate_down, bottom):
        k = self._first_recurrent
        w_hc = self.blobs[k].data
        dh_out, cont = top[0].diff, bottom[1].data
        carry_h, carry_c = self.final_state_diffs(top)
        dg = get_array_module(dh_out).empty((self.t_steps, self.n, 4 * self.hidden), dh_out.dtype)
        for t in reversed(range(self.t_steps)):
            carry_c, dg[t] = lstm_unit_backward(self.cs[t], self.acts[t], carry_c,
                                                dh_out[t] + carry_h)
            carry_h = (dg[t] @ w_hc) * cont[t][:, None]
        if self.param_propagate_down[k]:
            _matmul_acc(self.blobs[k], dg, self.hc)
        self.project_backward(bottom, propagate_down, dg, [carry_h, carry_c])
