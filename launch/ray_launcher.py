"""The Ray launcher: one actor per device in a placement group, logs streamed to the driver.

    dist-caffe train -solver s.prototxt --launcher ray --num-workers 4 [--address auto]
                     [--gpus-per-worker 1]

The driver (this process) connects to a Ray cluster (`--address`, e.g. `auto` for the one
`ray start` runs here) or starts a local one, reserves one bundle per worker (1 CPU, plus
`--gpus-per-worker` GPUs) in a PACK placement group, and starts one actor per bundle. Each
actor joins a `ray.util.collective` group (gloo on CPU, nccl on GPU) and trains one replica
with `trainer.run_replica`. Ray streams the actors' output to the driver (rank 0 logs; the
others print warnings only).

A dead actor fails the job cleanly: the driver notices it (Ray reports the actor's death
on its pending call), prints which rank was lost and where, kills the other actors (which
may be blocked in an all-reduce with the dead one) and exits non-zero. Paths in the solver
are read in the driver's working directory, so on a multi-node cluster they must be on a
shared file system (see cluster/README.md).
"""
import logging
import os
import sys
import time
from pathlib import Path

from dist_caffe.errors import ConfigError, DistCaffeError

log = logging.getLogger("dist_caffe.launch")
LOST_PEER_EXIT = 75
PLACEMENT_TIMEOUT_S = 120
LOG_DRAIN_S = 1.5   # Ray's log monitor streams worker output with a delay: let it catch up


def _ray():
    try:
        import ray
    except ImportError as e:
        raise DistCaffeError(f"--launcher ray needs Ray: pip install 'dist_caffe[ray]' ({e})") \
            from None
    return ray


def _runtime_env():
    """Workers import dist_caffe as the driver does: from a source checkout, through PYTHONPATH."""
    import dist_caffe
    root = str(Path(dist_caffe.__file__).resolve().parents[1])
    paths = [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "DIST_CAFFE_COMM_TIMEOUT"):
        if var in os.environ:
            env[var] = os.environ[var]
    return {"env_vars": env}


class ReplicaWorker:
    """One replica inside a Ray actor."""

    def where(self):
        import ray
        return ray.util.get_node_ip_address(), os.getpid()

    def train(self, args, opts, rank, size, intra_rank, intra_size, inter_rank, cwd):
        from dist_caffe import backend
        from dist_caffe.parallel import set_world, trainer
        from dist_caffe.parallel.ray_comm import RayCommunicator
        os.chdir(cwd)
        gpu = opts.gpus_per_worker > 0
        if gpu:
            backend.set_device(0)   # Ray gives each actor its GPU(s) through CUDA_VISIBLE_DEVICES
            backend.set_mode_gpu()
        comm = RayCommunicator(rank, size, "nccl" if gpu else "gloo", intra_rank=intra_rank,
                               intra_size=intra_size, inter_rank=inter_rank,
                               timeout_s=opts.comm_timeout)
        set_world(comm)
        try:
            return trainer.run_replica(args, comm, opts, hard_exit=False)
        finally:
            comm.close()


def _topology(places):
    """intra_rank, intra_size, inter_rank per rank from each actor's (node ip, pid)."""
    nodes = list(dict.fromkeys(ip for ip, _ in places))
    out = []
    for rank, (ip, _) in enumerate(places):
        same = [r for r, (other, _) in enumerate(places) if other == ip]
        out.append((same.index(rank), len(same), nodes.index(ip)))
    return out


def launch(args, opts):
    """Start `--num-workers` replicas on Ray and wait for them; returns the exit status."""
    ray = _ray()
    n = opts.num_workers or 1
    if opts.comm not in ("auto", "ray"):
        raise ConfigError(f"--comm {opts.comm}: under --launcher ray the communicator is 'ray' "
                          "(ray.util.collective: gloo on CPU, nccl on GPU)")
    if opts.gpus_per_worker > 0 and not args.gpu:
        args.gpu = "all"      # each actor sees only its own GPU(s)
    started = not ray.is_initialized()
    if started:
        kwargs = dict(include_dashboard=False, log_to_driver=True, runtime_env=_runtime_env())
        if opts.address:
            kwargs["address"] = opts.address
        else:
            kwargs["num_cpus"] = max(n, os.cpu_count() or 1)
        ray.init(**kwargs)
    try:
        return _run(ray, args, opts, n)
    finally:
        if started:
            ray.shutdown()


def _run(ray, args, opts, n):
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
    bundle = {"CPU": 1.0}
    if opts.gpus_per_worker:
        bundle["GPU"] = float(opts.gpus_per_worker)
    pg = placement_group([dict(bundle) for _ in range(n)], strategy="PACK")
    try:
        ray.get(pg.ready(), timeout=PLACEMENT_TIMEOUT_S)
    except Exception:  # noqa: BLE001 — GetTimeoutError
        remove_placement_group(pg)
        raise ConfigError(
            f"--num-workers {n}: the Ray cluster cannot place {n} workers of {bundle} each "
            f"within {PLACEMENT_TIMEOUT_S} s (cluster: {ray.cluster_resources()}); lower "
            "--num-workers or --gpus-per-worker, or add nodes") from None
    # By value: in a source checkout the workers cannot import dist_caffe.launch by name.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    worker = ray.remote(ReplicaWorker)
    actors = [worker.options(
        num_cpus=1, num_gpus=opts.gpus_per_worker or 0, max_restarts=0,
        scheduling_strategy=PlacementGroupSchedulingStrategy(
            placement_group=pg, placement_group_bundle_index=i)).remote() for i in range(n)]
    try:
        places = ray.get([a.where.remote() for a in actors])
        log.info("Ray: %d replicas (%s)", n, "; ".join(
            f"rank {r}: pid {pid} on {ip}" for r, (ip, pid) in enumerate(places)))
        cwd = os.getcwd()
        refs = {actors[r].train.remote(args, opts, r, n, *topo, cwd): r
                for r, topo in enumerate(_topology(places))}
        return _wait(ray, refs, places)
    finally:
        for a in actors:
            ray.kill(a, no_restart=True)
        remove_placement_group(pg)
        time.sleep(LOG_DRAIN_S)


def _wait(ray, refs, places):
    """Wait for every replica; on the first failure name the lost or failing rank(s)."""
    from ray.exceptions import RayActorError, RayTaskError
    pending = dict(refs)
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        failures = []
        for ref in done:
            rank = pending.pop(ref)
            try:
                status = ray.get(ref)
            except (RayActorError, RayTaskError) as e:
                failures.append((rank, e))
                continue
            if status:
                failures.append((rank, f"exit status {status}"))
        if not failures:
            continue
        # A peer blocked in an all-reduce with a dead actor may fail first: give the others a
        # moment to report, then name dead actors before the ranks that merely lost them.
        more = ray.wait(list(pending), num_returns=len(pending), timeout=3.0)[0] if pending else []
        for ref in more:
            rank = pending.pop(ref)
            try:
                ray.get(ref)
            except (RayActorError, RayTaskError) as e:
                failures.append((rank, e))
        dead = [(r, e) for r, e in failures if isinstance(e, RayActorError)]
        for rank, e in dead:
            ip, pid = places[rank]
            log.error("dist-caffe: lost rank %d (Ray actor pid %s on %s): the actor died (%s). "
                      "Stopping the job; resume from the last snapshot with -snapshot "
                      "(any --num-workers).", rank, pid, ip, _short(e))
        if dead:
            return LOST_PEER_EXIT
        for rank, e in failures:
            log.error("dist-caffe: rank %d failed: %s", rank, _short(e))
        return 1
    return 0


def _short(e):
    cause = getattr(e, "cause", None)
    text = str(cause if cause is not None else e).strip()
    return text.splitlines()[-1] if text else type(e).__name__
