"""The update of one iteration, on the net's flat buffers (Caffe's SGDSolver::ApplyUpdate).

The learnable params (lr_mult != 0) are the prefix `net.param_data[:net.learnable_count]`;
per-element lr_mult and weight_decay x decay_mult vectors are built once, and the history of
the rule is one flat buffer per history set (rows of `history`, covering every param, so
each param's history is a view into it). Frozen params (lr_mult 0) are never touched.

Order, as Caffe: rate from the lr policy (iteration before the update); clip by the global L2
norm of the accumulated gradient; divide by iter_size; weight decay (L2: + decay * w, L1:
+ decay * sign(w)); the rule with rate x lr_mult leaves the update in diff; data -= diff.
On the GPU the last three steps are one fused kernel (kernels/solver_updates.cu).
Reads base_lr, lr_policy and its fields, weight_decay, regularization_type, clip_gradients,
iter_size.
"""
import math

import numpy as np

from .. import backend
from . import snapshot as snap
from .lr_policy import learning_rate


def fmt(x):
    """A number as C++ streams print it by default (6 significant digits)."""
    return f"{x:.6g}"


class Update:
    """The update half of a Solver: subclasses (the rules) give `compute_update`, `kernel`,
    `kernel_args` and `num_history`; the Solver gives net, param, iter, current_step."""

    num_history = 1

    def _build_update_vectors(self):
        """Per-element lr_mult and weight_decay*decay_mult over the learnable prefix, and the
        flat history buffers (one row per history set, covering every param)."""
        net, dt = self.net, self.net.dtype
        xp = backend.get_array_module(net.param_data)
        learnable = [e for e in net.param_layout if e.lr_mult != 0]
        lr = [np.full(e.count, e.lr_mult, dt) for e in learnable]
        wd = dt.type(self.param.weight_decay)
        decay = [np.full(e.count, wd * dt.type(e.decay_mult), dt) for e in learnable]
        empty = np.zeros(0, dt)
        self.lr_mult = xp.asarray(np.concatenate(lr) if lr else empty)
        decay = np.concatenate(decay) if decay else empty
        self.decay = xp.asarray(decay) if decay.any() else None
        self.history = xp.zeros((self.num_history, net.param_data.size), dt)
        # The same multipliers per param blob (segment), for the fused kernels.
        offsets = np.cumsum([0] + [e.count for e in learnable]).astype(np.int32)
        self.segments = (len(learnable), xp.asarray(offsets),
                         xp.asarray(np.array([e.lr_mult for e in learnable], dt)),
                         xp.asarray(np.array([e.decay_mult for e in learnable], dt)))

    def history_views(self):
        """For each history set, the flat view of every param's history, in Caffe's order."""
        order = snap.caffe_order(self.net)
        return [[row[e.offset:e.offset + e.count] for e in order] for row in self.history]

    def rate(self):
        """The learning rate of this iteration's update (advances multistep's current_step).
        Large-batch recipes (linear scaling, warm-up) override or wrap this."""
        rate, step = learning_rate(self.param, self.iter, self.current_step)
        if self.param.lr_policy == "multistep" and step != self.current_step:
            self._info("MultiStep Status: Iteration %d, step = %d", self.iter, step)
        self.current_step = step
        return rate

    def scratch(self, name):
        """A learnable-prefix-sized work array kept between iterations: the update of a large
        net would otherwise allocate (and page-fault in) several such temporaries each step."""
        bufs = self.__dict__.setdefault("_scratch", {})
        if name not in bufs:
            bufs[name] = backend.get_array_module(self.lr_mult).empty_like(self.lr_mult)
        return bufs[name]

    def param_rates(self, rate):
        """Per-element local learning rate over the learnable prefix: rate x lr_mult.
        Layer-wise schemes (LARS) override this."""
        xp = backend.get_array_module(self.lr_mult)
        return xp.multiply(self.lr_mult, self.net.dtype.type(rate), out=self.scratch("rates"))

    def apply_update(self):
        """Clip, normalise, regularise, compute the rule's update into diff, data -= diff."""
        rate = self.lr = self.rate()
        if self._display_due():
            self._info("Iteration %d, lr = %s", self.iter, fmt(rate))
        n = self.net.learnable_count
        diff, data = self.net.param_diff[:n], self.net.param_data[:n]
        scale = self.clip_scale(self.net.param_diff) * self.grad_scale / self.param.iter_size
        library = self._fused_library()
        if library is not None and n:
            self._fused_update(library, n, rate, scale)
            return
        if scale != 1:
            diff *= self.net.dtype.type(scale)
        self.regularize(diff, data)
        self.compute_update(diff, self.param_rates(rate), [row[:n] for row in self.history])
        data -= diff

    # Multiplies the learnable gradients before the update: a data-parallel trainer whose
    # reducer leaves sums over N replicas sets 1/N (parallel/reducer.py).
    grad_scale = 1.0

    def clip_scale(self, diff):
        """clip_gradients / (global L2 norm of the gradient) when the norm exceeds it, else 1.
        As Caffe, the norm spans every param's diff: frozen ones are zero unless the net
        has force_backward, and then Caffe counts them too. The learnable part counts times
        grad_scale (frozen diffs are never reduced: they are this replica's own)."""
        clip = self.param.clip_gradients
        if clip < 0 or diff.size == 0:
            return 1.0
        xp, n = backend.get_array_module(diff), self.net.learnable_count
        learnable, frozen = diff[:n], diff[n:]
        norm = math.sqrt(float(xp.vdot(learnable, learnable)) * self.grad_scale ** 2
                         + float(xp.vdot(frozen, frozen)))
        if norm <= clip:
            return 1.0
        self._info("Gradient clipping: scaling down gradients (L2 norm %s > %s) by scale "
                   "factor %s", fmt(norm), fmt(clip), fmt(clip / norm))
        return clip / norm

    # The fused kernels (kernels/solver_updates.cu) do scale, decay, rule and data -= update
    # in one pass on the GPU. They take one rate per param blob, so a per-element
    # `param_rates` override (LARS) keeps the xp path.
    kernel = None            # the rule's name in solver_updates_<kernel>
    kernel_library = None    # None: kernels.GPU when the params are on the GPU (tests: the shim)

    def _fused_library(self):
        default_rates = "param_rates" not in self.__dict__ and \
            type(self).param_rates is Update.param_rates
        if self.kernel is None or not default_rates:
            return None
        if self.kernel_library is not None:
            return self.kernel_library
        if backend.is_gpu_array(self.net.param_data):
            from .. import kernels
            return kernels.GPU
        return None

    def _fused_update(self, library, n, rate, scale):
        rate, *hyper = self.kernel_args(rate)
        rows = [row[:n] for row in self.history]
        library.call("solver_updates.cu", f"solver_updates_{self.kernel}", n,
                     self.net.param_data[:n], self.net.param_diff[:n], *rows, rate, *hyper, scale,
                     self.param.weight_decay, int(self.param.regularization_type == "L1"),
                     *self.segments)

    def kernel_args(self, rate):
        """(rate, rule hyper-parameters...) as the rule's fused kernel takes them."""
        raise NotImplementedError

    def regularize(self, diff, data):
        if self.decay is None:
            return
        xp = backend.get_array_module(diff)
        term = self.scratch("work")
        if self.param.regularization_type == "L2":
            xp.multiply(self.decay, data, out=term)
        else:
            xp.multiply(self.decay, xp.sign(data, out=term), out=term)
        diff += term

    def compute_update(self, diff, rate, history):
        """Turn the regularised gradient `diff` into the update (in place); `rate` is the
        per-element local rate, `history` this solver's flat history sets (learnable prefix)."""
        raise NotImplementedError
