"""`dist-caffe train` and `dist-caffe test`, with the flags of Caffe's `caffe` tool.

    dist-caffe train -solver S [-weights a.caffemodel[,b.caffemodel] | -snapshot s.solverstate]
                     [-gpu 0|0,1|all] [-iterations N] [-level N] [-stage a,b]
                     [-sigint_effect stop|snapshot|none] [-sighup_effect stop|snapshot|none]
    dist-caffe test -model M -weights W [-iterations 50] [-gpu ...] [-level N] [-stage a,b]

`run_training(args, comm, prepare)` is the whole of one replica's training. When a
data-parallel flag is given (--launcher, --num-workers, --comm, --bucket-mb, ...; the list and
their meaning are in dist_caffe.parallel.trainer), or mpirun/srun/Ray started this process,
`train` hands over to dist_caffe.parallel.trainer, which starts or joins the replicas, builds
`comm` and calls run_training with its reducer as `prepare`.
"""
import logging

from .. import backend, log as dlog
from ..errors import ConfigError
from ..layer import TEST
from ..net import Net
from ..solvers import get_solver, load_solver_param
from ..solvers.signals import EFFECTS, SignalHandler
from ..solvers.solver import fmt
from .flags import Parser

log = logging.getLogger("dist_caffe.tools.train")


def build_parser(verb):
    p = Parser(verb, "train a net from a solver prototxt" if verb == "train"
               else "score a trained model over -iterations batches")
    if verb == "train":
        p.add_argument("--solver", default="", help="solver prototxt (required)")
        p.add_argument("--snapshot", default="", help="resume from this .solverstate")
    else:
        p.add_argument("--model", default="", help="net prototxt to score (required)")
    p.add_argument("--weights", default="", help="caffemodel(s), comma-separated")
    p.add_argument("--gpu", default="", help="GPU ids: 0 | 0,1 | all (default: CPU)")
    p.add_argument("--iterations", type=int, default=None if verb == "train" else 50,
                   help="train: overrides max_iter; test: batches to score (default 50)")
    p.add_argument("--level", type=int, default=0, help="NetState level")
    p.add_argument("--stage", default="", help="NetState stages, comma-separated")
    data = p.add_argument_group("input pipeline (see dist_caffe/data/options.py)")
    data.add_argument("--decode_workers", type=int, help="decode processes per data layer")
    data.add_argument("--shuffle", action="store_true", help="shuffle every epoch, then shard")
    data.add_argument("--shuffle_seed", type=int, help="shuffle seed (equal on every rank)")
    data.add_argument("--skip_corrupt", action="store_true",
                      help="skip and count corrupt records instead of stopping")
    if verb == "train":
        p.add_argument("--sigint_effect", default="stop", choices=EFFECTS)
        p.add_argument("--sighup_effect", default="snapshot", choices=EFFECTS)
        from ..parallel import trainer
        trainer.add_arguments(p.add_argument_group("data parallel (dist_caffe.parallel.trainer)"))
    return p


def parse_gpus(spec):
    """[] for the CPU, else the device ids of '0', '0,1' or 'all'."""
    if not spec:
        return []
    cp = backend.require_cupy()   # KernelError with the install hint when there is no GPU
    if spec == "all":
        return list(range(cp.cuda.runtime.getDeviceCount()))
    try:
        return [int(g) for g in spec.split(",")]
    except ValueError:
        raise ConfigError(f"-gpu: found '{spec}', expected device ids like 0 or 0,1, "
                          "or all") from None


def select_device(gpus, comm, solver_param=None):
    """Set the mode: the CPU, or GPU gpus[intra_rank % len(gpus)] of this replica."""
    if not gpus and solver_param is not None and solver_param.HasField("solver_mode") \
            and solver_param.solver_mode == solver_param.GPU:
        if backend.has_gpu():
            gpus = [solver_param.device_id]
        else:
            log.warning("the solver says solver_mode: GPU but no GPU was found; training on the "
                        "CPU (pass -gpu to insist on a GPU)")
    if not gpus:
        log.info("Use CPU.")
        backend.set_mode_cpu()
        return None
    if len(gpus) > comm.size:
        log.warning("-gpu %s names %d GPUs but this is one process; only GPU %d is used (start "
                    "one process per GPU with the data-parallel launcher)",
                    ",".join(map(str, gpus)), len(gpus), gpus[comm.intra_rank % len(gpus)])
    device = gpus[comm.intra_rank % len(gpus)]
    log.info("Using GPUs %s", ", ".join(map(str, gpus)))
    backend.set_device(device)
    backend.set_mode_gpu()
    return device


def run_training(args, comm=None, prepare=None):
    """Build the solver from args (a parsed `train` namespace), restore or fine-tune, call
    `prepare(solver)` (the data-parallel launcher attaches its reducer there), and solve.
    Returns the solver."""
    from ..parallel import world
    comm = comm if comm is not None else world()
    param, source = load_solver_param(args.solver)
    param.train_state.level = args.level
    param.train_state.stage.extend(s for s in args.stage.split(",") if s)
    if args.iterations is not None:
        param.max_iter = args.iterations
    select_device(parse_gpus(args.gpu), comm, param)
    del param.weights[:]
    if args.weights and not args.snapshot:
        param.weights.append(args.weights)
    solver = get_solver(param, comm=comm, source=source)
    handler = SignalHandler(args.sigint_effect, args.sighup_effect)
    solver.action_request = handler
    if args.snapshot:
        log.info("Resuming from %s", args.snapshot)
        solver.restore(args.snapshot)
    if prepare is not None:
        prepare(solver)
    log.info("Starting Optimization")
    with handler.installed():
        solver.solve()
    return solver


def run_test(args):
    """Caffe's `caffe test`: forward -iterations batches, log each and the mean of each output."""
    select_device(parse_gpus(args.gpu), _world())
    stages = [s for s in args.stage.split(",") if s]
    net = Net(args.model, phase=TEST, level=args.level, stages=stages)
    net.copy_from(args.weights)
    log.info("Running for %d iterations.", args.iterations)
    sums, loss = None, 0.0
    for i in range(args.iterations):
        loss += net.forward_from_to()
        outputs = [(name, float(v), net.blob_loss_weights.get(name, 0.0))
                   for name in net.outputs for v in backend.to_cpu(net.blobs[name].data).ravel()]
        for name, value, _ in outputs:
            log.info("Batch %d, %s = %s", i, name, fmt(value))
        values = [v for _, v, _ in outputs]
        sums = values if sums is None else [a + b for a, b in zip(sums, values)]
    log.info("Loss: %s", fmt(loss / max(args.iterations, 1)))
    for (name, _, weight), total in zip(outputs if sums else [], sums or []):
        mean = total / args.iterations
        extra = f" (* {fmt(weight)} = {fmt(weight * mean)} loss)" if weight else ""
        log.info("%s = %s%s", name, fmt(mean), extra)
    return net


def _world():
    from ..parallel import world
    return world()


def main(argv):
    verb, rest = argv[0], argv[1:]
    parser = build_parser(verb)
    args = parser.parse(rest)
    from ..data import options
    options.configure(decode_workers=args.decode_workers, shuffle=args.shuffle or None,
                      shuffle_seed=args.shuffle_seed, skip_corrupt=args.skip_corrupt or None)
    if verb == "train":
        if not args.solver:
            parser.error("need a solver definition to train: -solver solver.prototxt")
        if args.weights and args.snapshot:
            parser.error("give -snapshot to resume training or -weights to fine-tune, not both")
    else:
        if not args.model:
            parser.error("need a model definition to score: -model net.prototxt")
        if not args.weights:
            parser.error("need model weights to score: -weights net.caffemodel")
        if args.iterations < 1:
            parser.error(f"-iterations: found {args.iterations}, expected >= 1")
    if verb == "train":
        from ..parallel import trainer
        if trainer.wanted(args):        # a data-parallel flag, or mpirun/srun/Ray started us
            dlog.setup()
            return int(trainer.main(args) or 0)
    dlog.setup(rank=_world().rank)
    try:
        run_training(args) if verb == "train" else run_test(args)
    except KeyboardInterrupt:
        log.error("Interrupted (a second SIGINT); the last snapshot is the latest state kept")
        return 130
    return 0
