"""Data-parallel `dist-caffe train`: wires a Solver to a communicator, the bucketed reducer,
the replica checksum, the failure detector and the large-batch recipe.

    mpirun -n 4 dist-caffe train -solver s.prototxt [--comm mpi|nccl] [--bucket-mb 25]
    dist-caffe train -solver s.prototxt --launcher ray --num-workers 4 [--address auto]
    ... [--lr-scaling linear] [--warmup-iters N] [--lars-coeff 0.001] [--checksum-every K]

What happens on every replica (tools/train.py builds the solver; `DataParallel.attach` runs
between restore and solve): rank 0's parameters and solver history are broadcast; the
reducer hooks the train net's after-backward and the solver's `on_iteration_start` /
`on_gradients_ready`; every K iterations the replicas' parameter CRCs are compared.

The large-batch options have no SolverParameter field, so they come from flags, or from
`# dist_caffe:` comment lines in the solver prototxt (flags win), e.g.

    # dist_caffe: lr_scaling=linear warmup_iters=2500 lars_coeff=0.001

* lr_scaling=linear — multiply every iteration's rate by the world size (Goyal et al.).
* warmup_iters=N [warmup_start=F] — ramp the rate linearly from F x rate to rate over the
  first N iterations. F defaults to 1/world size — the rate of one replica's batch, where
  Goyal et al. start — and to 0 on a single process.
* lars_coeff=eta — LARS (You et al.): each weight blob's local rate is multiplied by
  eta * |w| / (|g| + weight_decay * |w|); biases (1-D blobs) and BatchNorm/Scale/Bias layers
  keep the plain rate. Composes with the policy, scaling and warm-up above.
"""
import importlib
import importlib.util
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

from .. import backend
from ..errors import ConfigError, DistCaffeError
from . import factory
from .reducer import DEFAULT_BUCKET_MB, DEFAULT_FIRST_BUCKET_MB, Reducer
from .replica import Replica, share_cpu_threads

log = logging.getLogger("dist_caffe.parallel")
LARS_EXCLUDED_TYPES = ("BatchNorm", "Scale", "Bias")


@dataclass
class Options:
    """The data-parallel settings (flags of `dist-caffe train`, or `# dist_caffe:` lines)."""
    launcher: str = "auto"        # auto | mpi | ray
    num_workers: int = 0          # ray: actors to start (mpirun -n gives it under MPI)
    address: str = ""             # ray: cluster address ("auto": the running cluster)
    gpus_per_worker: float = 0.0  # ray: GPUs per actor
    comm: str = "auto"            # auto | local | mpi | nccl | ray
    bucket_mb: float = DEFAULT_BUCKET_MB
    first_bucket_mb: float = DEFAULT_FIRST_BUCKET_MB
    checksum_every: int = 1000    # 0: never
    lr_scaling: str = "none"      # none | linear
    warmup_iters: int = 0
    warmup_start: float = -1.0    # -1: 1/world size (one replica's rate), 0 on one process
    lars_coeff: float = 0.0       # 0: LARS off
    heartbeat_timeout: float = 30.0
    comm_timeout: float = 1800.0
    timeline: str = ""            # write a Chrome trace of every rank here


FLAGS = {f.name: "--" + f.name.replace("_", "-") for f in fields(Options)}
HELP = {
    "launcher": "how replicas start: auto (mpirun/srun if it started us), mpi, ray",
    "num_workers": "ray: number of replicas (actors) to start",
    "address": "ray: cluster address (default: a local cluster; 'auto': the running one)",
    "gpus_per_worker": "ray: GPUs per replica (0: CPU training)",
    "comm": "communicator: auto, local, mpi, nccl, ray",
    "bucket_mb": "gradient bucket size in MB (default 25)",
    "first_bucket_mb": "size of the first, early-starting bucket in MB (default 1)",
    "checksum_every": "compare parameter checksums across ranks every K iterations (0: never)",
    "lr_scaling": "none, or linear: multiply the learning rate by the world size",
    "warmup_iters": "ramp the learning rate up linearly over N iterations",
    "warmup_start": "warm-up starts at this fraction of the rate (default 1/world size)",
    "lars_coeff": "LARS trust coefficient eta (0: off); biases and BatchNorm/Scale excluded",
    "heartbeat_timeout": "seconds of silence after which a rank counts as lost",
    "comm_timeout": "seconds a single collective may take before the job stops",
    "timeline": "write a per-rank Chrome trace (all-reduce, wait, update) to this JSON file",
}


def add_arguments(group):
    """Register the data-parallel flags on an argparse group (tools/train.py calls this)."""
    for name, flag in FLAGS.items():
        group.add_argument(flag, dest=name, default=None, help=HELP.get(name))


def comment_options(path):
    """{name: text} from `# dist_caffe: key=value ...` lines of a solver prototxt."""
    found = {}
    try:
        text = Path(path).read_text()
    except (OSError, TypeError):
        return found
    for line in text.splitlines():
        m = re.match(r"\s*#\s*dist_caffe\s*:(.*)", line)
        for item in (m.group(1).split() if m else []):
            key, sep, value = item.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in FLAGS:
                raise ConfigError(f"{path}: '# dist_caffe:' line: cannot read '{item}' (expected "
                                  f"key=value with key one of {', '.join(FLAGS)})")
            found[key] = value
    return found


def options_from(args, solver_path=None):
    """Options from the solver's `# dist_caffe:` lines, overridden by the flags in args."""
    raw = comment_options(solver_path or getattr(args, "solver", None))
    raw.update({k: v for k in FLAGS if (v := getattr(args, k, None)) is not None})
    opts, where = Options(), {k: ("flag " + FLAGS[k]) for k in FLAGS}
    for f in fields(Options):
        if f.name not in raw:
            continue
        text = raw[f.name]
        try:
            setattr(opts, f.name, type(f.default)(text))
        except ValueError:
            kind = {int: "an integer", float: "a number"}.get(type(f.default), "a string")
            raise ConfigError(f"{where[f.name]}: found '{text}', expected {kind}") from None
    choices = {"launcher": ("auto", "mpi", "ray"), "lr_scaling": ("none", "linear"),
               "comm": tuple(factory.names())}
    for name, allowed in choices.items():
        if getattr(opts, name) not in allowed:
            raise ConfigError(f"{where[name]}: unknown value '{getattr(opts, name)}' "
                              f"(known: {', '.join(allowed)})")
    for name in ("bucket_mb", "first_bucket_mb", "heartbeat_timeout", "comm_timeout"):
        if getattr(opts, name) <= 0:
            raise ConfigError(f"{where[name]}: found {getattr(opts, name)}, expected > 0")
    for name in ("checksum_every", "warmup_iters", "num_workers", "lars_coeff",
                 "gpus_per_worker"):
        if getattr(opts, name) < 0:
            raise ConfigError(f"{where[name]}: found {getattr(opts, name)}, expected >= 0")
    return opts


def wanted(args):
    """True when `dist-caffe train` should go through this module: a launcher or
    data-parallel option was given, or mpirun/srun/Ray started this process."""
    from .mpi import in_mpi_job
    from .ray_comm import in_ray_actor
    given = any(getattr(args, k, None) is not None for k in FLAGS)
    return given or in_mpi_job() or in_ray_actor() or bool(comment_options(args.solver))


# -- the large-batch recipe ----------------------------------------------------------
def warmup_factor(iteration, warmup_iters, start):
    """Multiplier of the rate at `iteration`: start -> 1 linearly over warmup_iters."""
    if iteration >= warmup_iters:
        return 1.0
    return start + (1.0 - start) * (iteration + 1) / warmup_iters


class LARS:
    """Layer-wise trust ratios over the flat learnable prefix (see module doc)."""

    def __init__(self, solver, coeff):
        net = solver.net
        self.solver, self.coeff, self.segments = solver, float(coeff), []
        for e in net.param_layout:
            if e.lr_mult == 0:
                continue
            layer_type = net.layer_dict[e.layer_name].type
            if e.blob.num_axes <= 1 or layer_type in LARS_EXCLUDED_TYPES:
                continue  # biases and normalisation parameters keep the plain rate
            decay = solver.param.weight_decay * e.decay_mult
            self.segments.append((e.offset, e.offset + e.count, decay))

    def scale(self, rates):
        """rates (rate x lr_mult per element) times each weight blob's trust ratio; called
        after regularisation, so the gradient is diff - decay * w (L2)."""
        net, xp = self.solver.net, backend.get_array_module(rates)
        l2 = self.solver.param.regularization_type == "L2"
        for start, end, decay in self.segments:
            w, d = net.param_data[start:end], net.param_diff[start:end]
            w_norm = float(xp.sqrt(xp.vdot(w, w)))
            g = d - w * d.dtype.type(decay) if (decay and l2) else d
            g_norm = float(xp.sqrt(xp.vdot(g, g)))
            if w_norm > 0 and g_norm > 0:
                rates[start:end] *= rates.dtype.type(
                    self.coeff * w_norm / (g_norm + decay * w_norm))
        return rates


class DataParallel:
    """Everything one replica adds to a Solver (see module doc). `attach(solver)` wires it."""

    def __init__(self, replica, opts):
        self.replica, self.opts, self.comm = replica, opts, replica.comm
        self.solver = self.reducer = self.timeline = None
        self.spans = []

    def attach(self, solver):
        opts, comm, net = self.opts, self.comm, solver.net
        self.solver, self.start_iter = solver, solver.iter
        if solver.comm is not comm:
            raise DistCaffeError("the solver was built with another communicator than the "
                                 "replica's; pass comm= to get_solver")
        if comm.size > 1:
            self.reducer = Reducer(net, comm, opts.bucket_mb, opts.first_bucket_mb,
                                   iter_size=solver.param.iter_size, record=bool(opts.timeline),
                                   mean=False)
            solver.grad_scale = 1.0 / comm.size   # the buckets hold sums; see reducer.py
            self._check_same_layout()
            solver.on_iteration_start.append(self.reducer.start_iteration)
            solver.on_gradients_ready.append(self.reducer.wait)
            log.info("Gradient buckets: %d (first %.3g MB, then up to %.3g MB), %d learnable "
                     "params in %d blobs", len(self.reducer.buckets), opts.first_bucket_mb,
                     opts.bucket_mb, net.learnable_count, len(net.param_layout))
        self.replica.broadcast_params(net, solver)
        self.replica.seed(solver.param.random_seed if solver.param.HasField("random_seed")
                          else None)
        solver.on_iteration_start.append(self._on_iteration_start)
        self._large_batch(solver)
        if opts.timeline:
            from ..tools.time import Timeline
            self.timeline = Timeline(comm.rank)
            self.timeline.t0 = comm.bcast_object(self.timeline.t0, root=0)
        return self

    def _check_same_layout(self):
        mine = [(b.start, b.end) for b in self.reducer.buckets]
        layouts = self.comm.allgather_object(mine)
        for r, theirs in enumerate(layouts):
            if theirs != layouts[0]:
                raise ConfigError(f"rank {r} cut its gradients into different buckets than rank 0 "
                                  f"({len(theirs)} vs {len(layouts[0])} buckets): every rank must "
                                  "run the same net prototxt and --bucket-mb")

    def _on_iteration_start(self):
        solver, k = self.solver, self.opts.checksum_every
        if self.timeline is not None:
            now = time.perf_counter()
            if self.spans:
                self.spans[-1].append(now)
            self.spans.append([solver.iter, now])
        if k and solver.iter % k == 0 and solver.iter != self.start_iter:
            self.replica.check_replicas(solver.net, solver.iter)

    def _large_batch(self, solver):
        opts, size = self.opts, self.comm.size
        scale = float(size) if opts.lr_scaling == "linear" else 1.0
        start = opts.warmup_start if opts.warmup_start >= 0 else (1.0 / size if size > 1 else 0.0)
        if scale != 1.0 or opts.warmup_iters:
            base_rate = solver.rate

            def rate():
                factor = scale * warmup_factor(solver.iter, opts.warmup_iters, start)
                return base_rate() * factor
            solver.rate = rate  # the Solver's rate hook (an instance attribute shadows the method)
            log.info("Large batch: learning rate x %g%s", scale,
                     f", warm-up from x {start:g} over {opts.warmup_iters} iterations"
                     if opts.warmup_iters else "")
        if opts.lars_coeff:
            lars, base_param_rates = LARS(solver, opts.lars_coeff), solver.param_rates
            solver.param_rates = lambda rate: lars.scale(base_param_rates(rate))
            log.info("LARS: coefficient %g on %d weight blobs (biases, %s excluded)",
                     opts.lars_coeff, len(lars.segments), "/".join(LARS_EXCLUDED_TYPES))

    def finish(self):
        """After solve: a last checksum, and the timeline file (gathered on rank 0)."""
        if self.solver is None:
            return
        if self.opts.checksum_every and self.solver.iter != self.start_iter:
            self.replica.check_replicas(self.solver.net, self.solver.iter)
        if self.timeline is not None:
            self._write_timeline()

    def _write_timeline(self):
        tl, end = self.timeline, time.perf_counter()
        if self.spans and len(self.spans[-1]) == 2:
            self.spans[-1].append(end)
        if self.reducer is not None:
            self.reducer.trace(tl)
        for it, t0, t1 in self.spans:
            tl.add(f"iteration {it}", "iteration", t0, t1)
        events = self.comm.allgather_object(tl.events)
        if self.comm.rank == 0:
            tl.events = [e for rank_events in events for e in rank_events]
            tl.dump(self.opts.timeline)
            log.info("Wrote the per-rank timeline (Chrome trace) %s", self.opts.timeline)


# -- entry points --------------------------------------------------------------------
def launch_module(name):
    """dist_caffe.launch.<name>; in a source checkout, launch/ beside the package (the wheel
    maps that folder to dist_caffe.launch)."""
    try:
        return importlib.import_module(f"dist_caffe.launch.{name}")
    except ModuleNotFoundError as e:
        if e.name not in ("dist_caffe.launch", f"dist_caffe.launch.{name}"):
            raise
    root = Path(__file__).resolve().parents[2] / "launch"
    if "dist_caffe.launch" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "dist_caffe.launch", root / "__init__.py", submodule_search_locations=[str(root)])
        if spec is None:
            raise DistCaffeError(f"dist_caffe.launch is missing (looked in {root}); reinstall "
                                 "dist_caffe")
        module = importlib.util.module_from_spec(spec)
        sys.modules["dist_caffe.launch"] = module
        spec.loader.exec_module(module)
    return importlib.import_module(f"dist_caffe.launch.{name}")


def run_replica(args, comm, opts, hard_exit=True):
    """One replica's whole training with `comm`; returns the exit status.

    With peers and `hard_exit` (MPI), an error ends this replica with a message naming its
    rank, then leaves without MPI_Finalize (os._exit): a peer still inside a collective would
    make the finalize wait forever; the launcher or the peers' watchdogs stop the rest.
    Without (Ray), the error propagates to the driver, which stops the other actors.
    """
    from .. import log as dlog
    from ..tools import train
    dlog.setup(rank=comm.rank)
    replica = Replica(comm, heartbeat_timeout_s=opts.heartbeat_timeout,
                      resume_hint="Resume from the last snapshot with -snapshot (any world size)")
    dp = DataParallel(replica, opts)
    try:
        train.run_training(args, comm, prepare=dp.attach)
        dp.finish()
        replica.shutdown()
        return 0
    except DistCaffeError as e:
        if comm.size == 1 or not hard_exit:
            raise
        _die(f"dist-caffe train: error: rank {comm.rank}: {e}")
    except Exception:  # noqa: BLE001 — a bug: show it, and do not leave the peers hanging
        if comm.size == 1 or not hard_exit:
            raise
        import traceback
        _die(f"dist-caffe train: rank {comm.rank} failed:\n{traceback.format_exc()}")


def _die(message, status=1):
    sys.stdout.flush()
    sys.stderr.write(message.rstrip() + "\n")
    sys.stderr.flush()
    os._exit(status)


def main(args):
    """`dist-caffe train` when data-parallel (see `wanted`): start or join the replicas."""
    opts = options_from(args)
    from .mpi import in_mpi_job
    if opts.launcher == "ray" and not in_mpi_job():
        return launch_module("ray_launcher").launch(args, opts)
    if opts.launcher == "ray":
        raise ConfigError("--launcher ray: this process was started by mpirun/srun; start the "
                          "job either with mpirun (no --launcher) or with --launcher ray alone")
    from ..tools.train import parse_gpus
    comm = launch_module("mpi").init(opts, gpus=parse_gpus(getattr(args, "gpu", "")))
    return run_replica(args, comm, opts)


# -- `dist-caffe time` under mpirun ------------------------------------------------------
def timing_reducer(net, bucket_mb=DEFAULT_BUCKET_MB):
    """For `mpirun -n N dist-caffe time`: a Reducer on `net` over the launcher's world (its
    hooks then fire from time_net's backward loop; call `.wait()` once per iteration), or
    None on a single process."""
    gpus = [backend.device()] if backend.mode() == backend.GPU else []
    comm = launch_module("mpi").init(Options(), gpus=gpus)
    share_cpu_threads(comm.intra_size)   # as in training (Replica)
    return Reducer(net, comm, bucket_mb, mean=False) if comm.size > 1 else None


def gather_timeline(timeline, reducer):
    """Add the reducer's bucket all-reduces and waits to `timeline`, then give rank 0 every
    rank's events (one process row per rank, on rank 0's clock). Returns True on rank 0."""
    if reducer is None:
        return True
    comm = reducer.comm
    reducer.trace(timeline)
    t0 = comm.bcast_object(timeline.t0, root=0)
    shift = (timeline.t0 - t0) * 1e6     # perf_counter is one clock for all ranks of a node
    for event in timeline.events:
        event["ts"] += shift
    events = comm.allgather_object(timeline.events)
    timeline.events = [e for rank_events in events for e in rank_events]
    return comm.rank == 0


__all__ = ["DataParallel", "LARS", "Options", "add_arguments", "gather_timeline", "main",
           "options_from", "run_replica", "timing_reducer", "wanted", "warmup_factor"]
