"""The update rules: SGD, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam (Caffe's forms).

Each `compute_update(diff, rate, history)` turns the regularised gradient g (= diff) into the
update in place, elementwise over the flat learnable prefix; `rate` is the per-element
local rate (rate x lr_mult). Arithmetic stays in the net's dtype, operation by operation as
Caffe does it, so results agree with BVLC Caffe to float rounding. As in Caffe, every
solver class derives from SGDSolver.
"""
import math

from .. import backend
from ..errors import ConfigError
from .solver import Solver


class SGDSolver(Solver):
    """h = rate*g + momentum*h; update = h. Reads momentum."""

    type = "SGD"
    kernel = "sgd"

    def kernel_args(self, rate):
        return rate, self.param.momentum

    def compute_update(self, diff, rate, history):
        h, xp = history[0], backend.get_array_module(diff)
        h *= self.net.dtype.type(self.param.momentum)
        h += xp.multiply(rate, diff, out=self.scratch("work"))
        diff[...] = h


class NesterovSolver(SGDSolver):
    """h' = momentum*h + rate*g; update = (1+momentum)*h' - momentum*h. Reads momentum."""

    type = "Nesterov"
    kernel = "nesterov"

    def compute_update(self, diff, rate, history):
        h, mu = history[0], self.net.dtype.type(self.param.momentum)
        previous = h.copy()
        h *= mu
        h += rate * diff
        diff[...] = (1 + mu) * h - mu * previous


def _no_momentum(solver):
    if solver.param.momentum != 0:
        raise ConfigError(f"{solver.source}: momentum: found {solver.param.momentum:g}, but "
                          f"momentum cannot be used with {solver.type}; remove it (expected 0)")


class AdaGradSolver(SGDSolver):
    """h += g^2; update = rate * g / (sqrt(h) + delta). Reads delta; momentum must be 0."""

    type = "AdaGrad"
    kernel = "adagrad"

    def kernel_args(self, rate):
        return rate, self.param.delta

    def check_param(self):
        super().check_param()
        _no_momentum(self)

    def compute_update(self, diff, rate, history):
        xp, h = backend.get_array_module(diff), history[0]
        h += diff * diff
        diff[...] = rate * (diff / (xp.sqrt(h) + self.net.dtype.type(self.param.delta)))


class RMSPropSolver(SGDSolver):
    """h = rms_decay*h + (1-rms_decay)*g^2; update = rate * g / (sqrt(h) + delta).
    Reads rms_decay, delta; momentum must be 0."""

    type = "RMSProp"
    kernel = "rmsprop"

    def kernel_args(self, rate):
        return rate, self.param.rms_decay, self.param.delta

    def check_param(self):
        super().check_param()
        _no_momentum(self)
        if not 0 <= self.param.rms_decay < 1:
            raise ConfigError(f"{self.source}: rms_decay: found {self.param.rms_decay:g}, expected "
                              "a value in [0, 1)")

    def compute_update(self, diff, rate, history):
        xp, h, dt = backend.get_array_module(diff), history[0], self.net.dtype.type
        decay = dt(self.param.rms_decay)
        h *= decay
        h += (dt(1) - decay) * (diff * diff)
        diff[...] = rate * (diff / (xp.sqrt(h) + dt(self.param.delta)))


class AdaDeltaSolver(SGDSolver):
    """Decay from `momentum`: h_g = m*h_g + (1-m)*g^2; u = g*sqrt((h_u+delta)/(h_g+delta));
    h_u = m*h_u + (1-m)*u^2; update = rate*u. Two history sets (h_g, then h_u)."""

    type = "AdaDelta"
    kernel = "adadelta"
    num_history = 2

    def kernel_args(self, rate):
        return rate, self.param.momentum, self.param.delta

    def compute_update(self, diff, rate, history):
        xp, dt = backend.get_array_module(diff), self.net.dtype.type
        (hg, hu), m, delta = history, dt(self.param.momentum), dt(self.param.delta)
        hg *= m
        hg += (dt(1) - m) * (diff * diff)
        diff *= xp.sqrt((hu + delta) / (hg + delta))
        hu *= m
        hu += (dt(1) - m) * (diff * diff)
        diff *= rate


class AdamSolver(SGDSolver):
    """m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; with t = iter+1,
    update = rate * sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + delta).
    Reads momentum (b1), momentum2 (b2), delta. Two history sets (m, then v)."""

    type = "Adam"
    kernel = "adam"
    num_history = 2

    def correction(self):
        """sqrt(1 - b2^t) / (1 - b1^t) with t = iter + 1."""
        b1, b2, t = self.param.momentum, self.param.momentum2, self.iter + 1
        return self.net.dtype.type(math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t))

    def kernel_args(self, rate):
        p = self.param
        return self.net.dtype.type(rate) * self.correction(), p.momentum, p.momentum2, p.delta

    def compute_update(self, diff, rate, history):
        xp, dt = backend.get_array_module(diff), self.net.dtype.type
        (m, v), b1, b2 = history, dt(self.param.momentum), dt(self.param.momentum2)
        correction = self.correction()
        m *= b1
        m += (dt(1) - b1) * diff
        v *= b2
        v += (dt(1) - b2) * (diff * diff)
        diff[...] = (rate * correction) * (m / (xp.sqrt(v) + dt(self.param.delta)))


SOLVERS = {cls.type: cls for cls in (SGDSolver, NesterovSolver, AdaGradSolver, RMSPropSolver,
                                     AdaDeltaSolver, AdamSolver)}
