"""The large-batch recipe and the data-parallel options: linear lr scaling, gradual warm-up,
LARS against a numpy reimplementation, and the `# dist_caffe:` solver lines / flags."""
import argparse

import numpy as np
import pytest

from dist_caffe import ConfigError
from dist_caffe.parallel.communicator import Handle, LocalCommunicator
from dist_caffe.parallel.replica import Replica
from dist_caffe.parallel.trainer import DataParallel, Options, options_from, warmup_factor
from dist_caffe.solvers import get_solver

from . import jobs


class IdenticalReplicas(LocalCommunicator):
    """A world of `size` replicas that all hold the same values: every mean is the identity."""

    def __init__(self, size):
        self.size, self.intra_size = size, size

    def start_allreduce_mean(self, buf):
        return Handle()


def solver_with(opts, size=1, kind="sgd", lr_policy=None):
    comm = IdenticalReplicas(size) if size > 1 else LocalCommunicator()
    param = jobs.solver_param(kind, jobs.BATCH, jobs.STEPS)
    if lr_policy:
        param.lr_policy = lr_policy
    solver = get_solver(param, comm=comm)
    DataParallel(Replica(comm, watchdog=False), opts).attach(solver)
    jobs.feeder(solver, jobs.shard_batches(0, 1))
    return solver


def test_warmup_factor_closed_form():
    assert [warmup_factor(t, 4, 0.25) for t in range(6)] == \
        [0.25 + 0.75 * (t + 1) / 4 for t in range(4)] + [1.0, 1.0]
    assert warmup_factor(0, 0, 0.0) == 1.0


def test_linear_scaling_and_warmup_wrap_the_policy():
    solver = solver_with(Options(lr_scaling="linear", warmup_iters=4), size=4,
                         lr_policy="fixed")
    base = solver.param.base_lr
    rates = []
    for t in range(6):
        solver.iter = t
        rates.append(solver.rate())
    # from base_lr (= 4 x base_lr / 4) up to 4 x base_lr over 4 iterations, then flat
    expected = [4 * base * (0.25 + 0.75 * (t + 1) / 4) for t in range(4)] + [4 * base] * 2
    np.testing.assert_allclose(rates, expected, rtol=1e-12)


def test_scaling_is_opt_in():
    solver = solver_with(Options(), size=4, lr_policy="fixed")
    assert solver.rate() == pytest.approx(solver.param.base_lr)


def lars_reference(solver, coeff):
    """One SGD step from zero history with LARS, in numpy, blob by blob."""
    net, p = solver.net, solver.param
    solver.on_iteration_start[-1]()          # feed the first batch
    net.clear_param_diffs()
    net.forward_backward()
    expected = net.param_data.copy()
    for e in net.param_layout:
        if e.lr_mult == 0:
            continue
        w, g = e.blob.data.astype(np.float64).ravel(), e.blob.diff.astype(np.float64).ravel()
        beta = p.weight_decay * e.decay_mult
        rate = p.base_lr * e.lr_mult
        if e.blob.num_axes > 1:              # weights get the trust ratio; biases do not
            rate *= coeff * np.linalg.norm(w) / (np.linalg.norm(g) + beta * np.linalg.norm(w))
        expected[e.offset:e.offset + e.count] = w - rate * (g + beta * w)
    return expected


def test_lars_matches_a_numpy_reimplementation():
    coeff = 0.02
    reference_solver = solver_with(Options(), lr_policy="fixed")
    expected = lars_reference(reference_solver, coeff)
    solver = solver_with(Options(lars_coeff=coeff), lr_policy="fixed")
    solver.step(1)
    np.testing.assert_allclose(solver.net.param_data, expected, rtol=2e-5, atol=1e-7)
    # and the trust ratio mattered: plain SGD lands elsewhere
    plain = solver_with(Options(), lr_policy="fixed")
    plain.step(1)
    assert np.abs(plain.net.param_data - solver.net.param_data).max() > 1e-3


def args(**flags):
    base = {k: None for k in Options.__dataclass_fields__}
    base.update(flags)
    return argparse.Namespace(solver=None, **base)


def test_solver_comment_lines_and_flags(tmp_path):
    solver = tmp_path / "s.prototxt"
    solver.write_text('net: "n.prototxt"\n# dist_caffe: lr_scaling=linear warmup-iters=500\n'
                      "#dist_caffe: lars_coeff=0.001 bucket_mb=4\n")
    opts = options_from(args(warmup_iters="100"), solver)
    assert (opts.lr_scaling, opts.warmup_iters, opts.lars_coeff, opts.bucket_mb) == \
        ("linear", 100, 0.001, 4.0)                    # the flag wins over the file
    solver.write_text("# dist_caffe: lr_scale=linear\n")
    with pytest.raises(ConfigError, match=r"s.prototxt: '# dist_caffe:' line: cannot read "
                                          r"'lr_scale=linear' \(expected key=value with key one "
                                          r"of .*lr_scaling"):
        options_from(args(), solver)


@pytest.mark.parametrize("flag, value, message", [
    ("lr_scaling", "sqrt", r"--lr-scaling: unknown value 'sqrt' \(known: none, linear\)"),
    ("comm", "gloo", r"--comm: unknown value 'gloo' \(known: auto, local, mpi, nccl, ray\)"),
    ("bucket_mb", "0", r"--bucket-mb: found 0.0, expected > 0"),
    ("checksum_every", "ten", r"--checksum-every: found 'ten', expected an integer"),
    ("launcher", "slurm", r"--launcher: unknown value 'slurm' \(known: auto, mpi, ray\)"),
])
def test_bad_flags_name_the_flag(flag, value, message):
    with pytest.raises(ConfigError, match=message):
        options_from(args(**{flag: value}))
