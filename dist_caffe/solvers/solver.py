"""Solver: builds the train and test nets from a SolverParameter and runs Caffe's training loop.

One iteration (`step`), as Caffe's Solver::Step: clear param diffs; test when due; call
`on_iteration_start`; iter_size forward/backward passes accumulate gradients (loss averaged
over them); display; call `on_gradients_ready` (a data-parallel reducer waits for its
all-reduces there); `apply_update`: clip by the global L2 norm, divide by iter_size, weight
decay (L2 or L1, weight_decay x decay_mult), the update rule with rate x lr_mult, data -= diff;
then iter += 1, snapshot when due or asked, stop when asked. The update itself, on the net's
flat buffers, is in update.py; the rules in rules.py.

Reads the loop's SolverParameter fields: iter_size, average_loss, display, max_iter,
test_iter, test_interval, test_initialization, test_compute_loss, snapshot, snapshot_prefix,
snapshot_format, snapshot_diff, snapshot_after_train, random_seed, weights, and the net
fields (see nets.py).
"""
import logging
import os
import time

import numpy as np

from .. import backend, log as dlog
from ..errors import ConfigError
from ..layer import TEST, TRAIN
from ..net import Net
from ..rng import set_random_seed
from . import snapshot as snap
from .lr_policy import check_policy
from .nets import load_solver_param, test_net_params, train_net_param
from .update import Update, fmt

log = logging.getLogger("dist_caffe.solver")


class Solver(Update):
    """Base of the solvers; a subclass sets `type`, `num_history` and `compute_update`.

    pycaffe surface: net, test_nets, iter, step(n), solve(resume_file), snapshot(),
    restore(path), apply_update(), add_callback(on_start, on_gradients_ready), param.
    Data-parallel hooks: comm/rank, on_iteration_start, on_gradients_ready, micro_batch,
    action_request, rate(), param_rates(rate).
    """

    type = ""

    def __init__(self, param_or_path, comm=None, source=None):
        from ..parallel import world
        self.comm = comm if comm is not None else world()
        self.rank = self.comm.rank
        self.param, self.source = load_solver_param(param_or_path, source)
        self.check_param()
        p = self.param
        if p.random_seed >= 0:
            set_random_seed(p.random_seed)
        self._info("Initializing solver from parameters: %s", self.source)
        self._info("Creating training net")
        self.net = self._build_net(*train_net_param(p, self.source), TRAIN)
        self.test_nets = []
        for i, (net_param, name) in enumerate(test_net_params(p, self.source)):
            self._info("Creating test net (#%d)", i)
            self.test_nets.append(self._build_net(net_param, name, TEST))
        for weights in p.weights:
            for net in [self.net] + self.test_nets:
                net.copy_from(weights)
        for net in self.test_nets:
            net.share_with(self.net)
        self.iter, self.current_step, self.lr = 0, 0, None   # lr: rate of the last update
        self.on_iteration_start, self.on_gradients_ready = [], []
        self.micro_batch = 0           # index of the forward/backward pass in progress
        self.action_request = None     # callable -> "none" | "snapshot" | "stop" (signals)
        self.requested_early_exit = False
        self.losses, self.smoothed_loss, self.test_scores = [], 0.0, {}
        self._progress = None          # the tqdm bar while solve() runs
        self._build_update_vectors()

    # -- set-up --------------------------------------------------------------
    def _where(self, field):
        return f"{self.source}: {field}"

    def check_param(self):
        """ConfigError for solver fields out of range; subclasses add their own checks."""
        p = self.param
        check_policy(p, self.source)
        for field, minimum in (("iter_size", 1), ("average_loss", 1), ("display", 0),
                               ("max_iter", 0), ("snapshot", 0), ("test_interval", 0)):
            if getattr(p, field) < minimum:
                raise ConfigError(f"{self._where(field)}: found {getattr(p, field)}, expected >= "
                                  f"{minimum}")
        if p.regularization_type not in ("L1", "L2"):
            raise ConfigError(f"{self._where('regularization_type')}: unknown type "
                              f"'{p.regularization_type}' (known: L1, L2)")
        if p.snapshot:
            self._check_snapshot_folder()

    def _check_snapshot_folder(self):
        """ConfigError now, rather than after training, when snapshots cannot be written."""
        prefix = self.param.snapshot_prefix
        folder = os.path.dirname(os.path.abspath(prefix))
        if self.rank == 0 and not (os.path.isdir(folder) and os.access(folder, os.W_OK)):
            raise ConfigError(f"{self._where('snapshot_prefix')}: cannot write snapshots to "
                              f"'{prefix}': folder {folder} does not exist or is not writable; "
                              "create it or change snapshot_prefix")

    @staticmethod
    def _build_net(net_param, name, phase):
        """A Net whose messages name its file."""
        return Net(net_param, phase=phase, source=name)

    def add_callback(self, on_start, on_gradients_ready):
        """pycaffe's Solver.add_callback: on_start() before each iteration's passes,
        on_gradients_ready() after them and before the update."""
        self.on_iteration_start.append(on_start)
        self.on_gradients_ready.append(on_gradients_ready)

    def _info(self, msg, *args):
        if self.rank == 0:
            log.info(msg, *args, stacklevel=2)

    # -- the loop ------------------------------------------------------------
    def step(self, iters):
        """Run `iters` iterations (fewer when a stop is requested)."""
        p = self.param
        start_iter, stop_iter = self.iter, self.iter + int(iters)
        self.losses, self.smoothed_loss = [], 0.0
        self._tick, self._iter_last = time.perf_counter(), self.iter
        while self.iter < stop_iter:
            self.net.clear_param_diffs()
            if p.test_interval and self.iter % p.test_interval == 0 and \
                    (self.iter > 0 or p.test_initialization):
                self.test_all()
                if self.requested_early_exit:
                    break
            for callback in self.on_iteration_start:
                callback()
            loss = 0.0
            self.net.debug_info = p.debug_info and self._display_due()  # Caffe logs on display
            for self.micro_batch in range(p.iter_size):
                loss += self.net.forward_backward()
            loss /= p.iter_size
            self.update_smoothed_loss(loss, start_iter)
            if self._display_due():
                self.display()
            for callback in self.on_gradients_ready:
                callback()
            self.apply_update()
            self.iter += 1
            if self._progress is not None:
                self._progress.update(1)
            request = self.requested_action()
            if (p.snapshot and self.iter % p.snapshot == 0) or request == "snapshot":
                self.snapshot()
            if request == "stop":
                self.requested_early_exit = True
                break

    def solve(self, resume_file=None):
        """Train to max_iter (Caffe's Solver::Solve), restoring `resume_file` first if given."""
        p = self.param
        self._info("Solving %s", self.net.name)
        self._info("Learning Rate Policy: %s", p.lr_policy)
        self.requested_early_exit = False
        if p.snapshot_after_train:
            self._check_snapshot_folder()
        if resume_file:
            self._info("Restoring previous solver status from %s", resume_file)
            self.restore(resume_file)
        start_iter = self.iter
        bar = dlog.progress(p.max_iter, self.iter) if self.rank == 0 else None
        self._progress = bar
        try:
            self.step(p.max_iter - self.iter)
        finally:
            self._progress = None
            if bar is not None:
                bar.close()
        if p.snapshot_after_train and (not p.snapshot or self.iter % p.snapshot != 0):
            self.snapshot()
        if self.requested_early_exit:
            self._info("Optimization stopped early.")
            return
        if p.display and self.iter % p.display == 0:
            loss = self.net.forward_from_to()
            self.update_smoothed_loss(loss, start_iter)
            self._info("Iteration %d, loss = %s", self.iter, fmt(self.smoothed_loss))
        if p.test_interval and self.iter % p.test_interval == 0:
            self.test_all()
        self._info("Optimization Done.")

    def requested_action(self):
        return self.action_request() if self.action_request is not None else "none"

    def update_smoothed_loss(self, loss, start_iter):
        """Running mean of the last average_loss iteration losses (Caffe's ring buffer)."""
        n = self.param.average_loss
        if len(self.losses) < n:
            self.losses.append(loss)
            size = len(self.losses)
            self.smoothed_loss = (self.smoothed_loss * (size - 1) + loss) / size
        else:
            k = (self.iter - start_iter) % n
            self.smoothed_loss += (loss - self.losses[k]) / n
            self.losses[k] = loss

    def _display_due(self):
        return self.param.display and self.iter % self.param.display == 0

    def display(self):
        """The `Iteration N (x iter/s, ys/D iters), loss = L` line and the train net outputs."""
        now = time.perf_counter()
        lapse = now - self._tick
        per_s = (self.iter - self._iter_last) / (lapse or 1)
        self._tick, self._iter_last = now, self.iter
        self._info("Iteration %d (%s iter/s, %ss/%d iters), loss = %s", self.iter, fmt(per_s),
                   fmt(lapse), self.param.display, fmt(self.smoothed_loss))
        for k, (name, value, weight) in enumerate(self._outputs(self.net)):
            self._info("    Train net output #%d: %s = %s%s", k, name, fmt(value),
                       f" (* {fmt(weight)} = {fmt(weight * value)} loss)" if weight else "")

    @staticmethod
    def _outputs(net):
        """(name, value, loss weight) of every element of the net's output blobs."""
        out = []
        for name in net.outputs:
            weight = net.blob_loss_weights.get(name, 0.0)
            out += [(name, float(v), weight) for v in backend.to_cpu(net.blobs[name].data).ravel()]
        return out

    # -- testing ---------------------------------------------------------------
    def test_all(self):
        for i in range(len(self.test_nets)):
            if self.requested_early_exit:
                break
            self.test(i)

    def test(self, i=0):
        """Score test net i over test_iter[i] batches; rank r runs batches r, r+size, ...; the
        per-output sums and batch counts are averaged over ranks, so the result is the mean
        over all batches. Returns {output name: mean value} (a list for multi-element tops)."""
        p, net = self.param, self.test_nets[i]
        self._info("Iteration %d, Testing net (#%d)", self.iter, i)
        net.share_with(self.net)
        names = [(n, w) for n, _, w in self._outputs(net)]
        sums, loss, done = np.zeros(len(names)), 0.0, 0
        for _ in range(self.rank, p.test_iter[i], self.comm.size):
            request = self.requested_action()
            while request != "none":
                if request == "snapshot":
                    self.snapshot()
                elif request == "stop":
                    self.requested_early_exit = True
                request = self.requested_action()
            if self.requested_early_exit:
                self._info("Test interrupted.")
                return None
            batch_loss = net.forward_from_to()
            sums += [v for _, v, _ in self._outputs(net)]
            loss, done = loss + batch_loss, done + 1
        totals = np.concatenate([sums, [loss, done]]).astype(np.float64)
        self.comm.allreduce_mean(totals)
        count = totals[-1] or 1.0
        means, loss = totals[:-2] / count, totals[-2] / count
        if p.test_compute_loss:
            self._info("Test loss: %s", fmt(loss))
        scores = {}
        for k, ((name, weight), value) in enumerate(zip(names, means)):
            self._info("    Test net output #%d: %s = %s%s", k, name, fmt(value),
                       f" (* {fmt(weight)} = {fmt(weight * value)} loss)" if weight else "")
            scores.setdefault(name, []).append(float(value))
        self.test_scores[i] = {n: v[0] if len(v) == 1 else v for n, v in scores.items()}
        return self.test_scores[i]

    # -- snapshots ---------------------------------------------------------------
    def snapshot(self):
        """Write <prefix>_iter_<iter>.caffemodel and .solverstate (rank 0 only); returns the
        two paths (None on other ranks)."""
        if self.rank != 0:
            return None
        return snap.write(self)

    def restore(self, path):
        """Continue from a .solverstate (or .solverstate.h5) written by us or by BVLC Caffe."""
        snap.restore(self, path)
        for net in self.test_nets:
            net.share_with(self.net)
