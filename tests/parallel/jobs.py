"""What the multi-process tests run on every rank: `mpiexec -n 2 python tests/parallel/jobs.py
<job> <out dir> [args]`, or the same functions inside Ray actors.

The equivalence job trains a small conv net (Input layers, fed from a fixed data set) with 2
replicas x batch b, each on its own shard (dist_caffe.data.sharding); `reference` trains one
process with batch 2b over the same samples, step by step; the test compares the two.
"""
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

NET = """
name: "tiny"
layer {{ name: "in" type: "Input" top: "data" top: "label"
        input_param {{ shape {{ dim: {b} dim: 2 dim: 8 dim: 8 }} shape {{ dim: {b} }} }} }}
layer {{ name: "conv1" type: "Convolution" bottom: "data" top: "c1"
        convolution_param {{ num_output: 6 kernel_size: 3
                            weight_filler {{ type: "gaussian" std: 0.3 }}
                            bias_filler {{ type: "constant" value: 0.1 }} }} }}
layer {{ name: "relu" type: "ReLU" bottom: "c1" top: "c1" }}
layer {{ name: "conv2" type: "Convolution" bottom: "c1" top: "c2"
        param {{ name: "shared_w" }} param {{ lr_mult: 2 }}
        convolution_param {{ num_output: 6 kernel_size: 1
                            weight_filler {{ type: "gaussian" std: 0.3 }} }} }}
layer {{ name: "conv3" type: "Convolution" bottom: "c2" top: "c3"
        param {{ name: "shared_w" }} param {{ lr_mult: 0 }}
        convolution_param {{ num_output: 6 kernel_size: 1 }} }}
layer {{ name: "fc" type: "Convolution" bottom: "c3" top: "fc"
        convolution_param {{ num_output: 5 kernel_size: 6
                            weight_filler {{ type: "gaussian" std: 0.1 }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }}
"""

SOLVERS = {
    "sgd": 'type: "SGD" base_lr: 0.05 momentum: 0.9 weight_decay: 0.001 lr_policy: "step" '
           'gamma: 0.5 stepsize: 3',
    "adam": 'type: "Adam" base_lr: 0.01 momentum: 0.9 momentum2: 0.999 delta: 1e-8 '
            'weight_decay: 0.0005 lr_policy: "fixed"',
}
RECORDS, BATCH, STEPS = 48, 4, 6   # each of 2 ranks reads 24 records: 6 steps of 4


def dataset(n=RECORDS, seed=3):
    g = np.random.default_rng(seed)
    return g.standard_normal((n, 2, 8, 8)).astype(np.float32), g.integers(0, 5, n)


def solver_param(kind, batch, steps, iter_size=1):
    from dist_caffe.proto import caffe_pb2, parse_text
    text = (f'{SOLVERS[kind]} max_iter: {steps} display: 0 snapshot: 0 random_seed: 7 '
            f'iter_size: {iter_size} snapshot_prefix: "/tmp/dist_caffe_unused"')
    param = parse_text(text, caffe_pb2.SolverParameter)
    param.net_param.CopyFrom(parse_text(NET.format(b=batch), caffe_pb2.NetParameter))
    return param


def shard_batches(rank, size, batch=BATCH, steps=STEPS, n=RECORDS):
    """Record indices of rank's batch at each step: consecutive records of its shard."""
    from dist_caffe.data.sharding import shard_indices
    shard = shard_indices(n, rank, size)
    return [shard[t * batch:(t + 1) * batch] for t in range(steps)]


def feeder(solver, batches):
    x, y = dataset()

    def feed():
        idx = batches[solver.iter]
        solver.net.blobs["data"].data[...] = x[idx]
        solver.net.blobs["label"].data[...] = y[idx]
    solver.on_iteration_start.append(feed)


def reference(kind, size=2):
    """One process, batch size*BATCH: the union of the ranks' batches at every step."""
    from dist_caffe.parallel.communicator import LocalCommunicator
    from dist_caffe.solvers import get_solver
    per_rank = [shard_batches(r, size) for r in range(size)]
    batches = [np.concatenate([p[t] for p in per_rank]) for t in range(STEPS)]
    solver = get_solver(solver_param(kind, size * BATCH, STEPS), comm=LocalCommunicator())
    feeder(solver, batches)
    solver.step(STEPS)
    return solver.net.param_data.copy()


def data_parallel(kind, comm, checksum_every=1, bucket_mb=25.0, first_bucket_mb=1.0):
    """This rank's replica, trained STEPS steps on its shard; returns (params, reducer)."""
    from dist_caffe.parallel.replica import Replica
    from dist_caffe.parallel.trainer import DataParallel, Options
    from dist_caffe.solvers import get_solver
    replica = Replica(comm, heartbeat_timeout_s=30)
    solver = get_solver(solver_param(kind, BATCH, STEPS), comm=comm)
    if comm.rank:  # a different start on rank 1: the broadcast from rank 0 must fix it
        solver.net.param_data[...] += 1.0
    dp = DataParallel(replica, Options(checksum_every=checksum_every, bucket_mb=bucket_mb,
                                       first_bucket_mb=first_bucket_mb)).attach(solver)
    feeder(solver, shard_batches(comm.rank, comm.size))
    solver.step(STEPS)
    dp.finish()
    replica.shutdown()
    return solver.net.param_data.copy(), dp.reducer


# -- jobs run under mpiexec -------------------------------------------------------------
def job_equivalence(out, kind):
    from dist_caffe.parallel.mpi import MpiCommunicator
    comm = MpiCommunicator(timeout_s=60)
    # tiny buckets: several of them, started at different layers
    params, reducer = data_parallel(kind, comm, first_bucket_mb=0.0005, bucket_mb=0.002)
    np.save(out / f"params_{kind}_rank{comm.rank}.npy", params)
    if comm.rank == 0:
        (out / f"buckets_{kind}.json").write_text(json.dumps(
            [(b.start, b.end, b.ready_layer) for b in reducer.buckets]))


def job_overlap(out):
    """Record the reducer's events over a few iterations of a deeper net (events.json)."""
    from dist_caffe.parallel.mpi import MpiCommunicator
    from dist_caffe.parallel.reducer import Reducer
    from dist_caffe.tools.time import build_net
    comm = MpiCommunicator(timeout_s=60)
    net = build_net(str(REPO / "tests" / "parallel" / "overlap_net.prototxt"), 0)
    reducer = Reducer(net, comm, bucket_mb=0.25, first_bucket_mb=0.05)
    for _ in range(3):
        net.clear_param_diffs()
        net.forward_backward()
        reducer.wait()
    names = [layer.name for layer in net.layers]
    if comm.rank == 0:
        (out / "events.json").write_text(json.dumps({
            "events": [list(e) for e in reducer.events], "layers": names,
            "buckets": [(b.start, b.end, b.ready_layer) for b in reducer.buckets]}))
    comm.barrier()


def job_diverge(out):
    """Rank 1 nudges one weight after iteration 2: the checksum at iteration 3 must stop both."""
    from dist_caffe.errors import DistCaffeError
    from dist_caffe.parallel.mpi import MpiCommunicator
    comm = MpiCommunicator(timeout_s=60)
    from dist_caffe.parallel.replica import Replica
    from dist_caffe.parallel.trainer import DataParallel, Options
    from dist_caffe.solvers import get_solver
    replica = Replica(comm, heartbeat_timeout_s=30)
    solver = get_solver(solver_param("sgd", BATCH, STEPS), comm=comm)
    DataParallel(replica, Options(checksum_every=1)).attach(solver)
    feeder(solver, shard_batches(comm.rank, comm.size))

    def nudge():
        if comm.rank == 1 and solver.iter == 2:
            solver.net.params["fc"][0].data.flat[0] += 1e-3
    solver.on_gradients_ready.append(nudge)
    try:
        solver.step(STEPS)
    except DistCaffeError as e:
        (out / f"error_rank{comm.rank}.txt").write_text(f"{solver.iter}\n{e}")
        replica.shutdown()
        sys.exit(3)


def job_collectives(out):
    """Every collective of the mpi communicator against numpy (seeded alike: x * size)."""
    from dist_caffe.parallel.mpi import MpiCommunicator
    comm = MpiCommunicator(timeout_s=60)
    r, n = comm.rank, comm.size
    results = {"rank": r, "size": n, "intra": [comm.intra_rank, comm.intra_size],
               "inter": [comm.inter_rank, comm.inter_size]}
    x = np.arange(10, dtype=np.float32) * (r + 1)
    h = comm.start_allreduce_mean(x)
    h.wait()
    results["mean"] = x.tolist()
    x = np.arange(10, dtype=np.float32) * (r + 1)
    comm.start_allreduce_sum(x, what="sum test").wait()   # the gradient reducer's path
    results["start_sum"] = x.tolist()
    y = np.full(5, r + 1.0)
    comm.allreduce_sum(y)
    results["sum"] = y.tolist()
    z = np.full(3, float(r))
    comm.broadcast(z, root=1)
    results["bcast"] = z.tolist()
    results["gather"] = comm.allgather_object({"r": r})
    results["bcast_object"] = comm.bcast_object("from0" if r == 0 else None)
    strided = np.zeros((4, 4), np.float32)
    strided[:, 0] = r + 1
    comm.allreduce_mean(strided[:, 0])   # a non-contiguous view: copied and written back
    results["strided"] = strided[:, 0].tolist()
    comm.barrier()
    (out / f"collectives_rank{r}.json").write_text(json.dumps(results))


def job_hang(out):
    """Rank 1 skips the all-reduce: rank 0's bounded wait must raise, naming the operation."""
    from dist_caffe.errors import DistCaffeError
    from dist_caffe.parallel.mpi import MpiCommunicator
    comm = MpiCommunicator(timeout_s=2)
    t0 = time.monotonic()
    if comm.rank == 0:
        try:
            comm.start_allreduce_mean(np.ones(4, np.float32), what="bucket 0 all-reduce").wait()
        except DistCaffeError as e:
            (out / "hang.txt").write_text(f"{time.monotonic() - t0:.1f}\n{e}")
        os._exit(4)
    time.sleep(6)
    os._exit(0)


def job_timeline(out):
    """What `mpirun -n 2 dist-caffe time --trace` does: per-rank events gathered on rank 0."""
    from dist_caffe.parallel.trainer import gather_timeline, timing_reducer
    from dist_caffe.tools.time import Timeline, build_net
    net = build_net(str(REPO / "tests" / "parallel" / "overlap_net.prototxt"), 0)
    reducer = timing_reducer(net, bucket_mb=0.25)
    timeline = Timeline(reducer.comm.rank)
    for _ in range(2):
        t0 = time.perf_counter()
        net.forward_backward()
        t1 = time.perf_counter()
        reducer.wait()
        timeline.add("forward-backward", "compute", t0, t1)
        timeline.add("wait + update", "update", t1, time.perf_counter())
    if gather_timeline(timeline, reducer):
        timeline.dump(out / "trace.json")


if __name__ == "__main__":
    job, out = sys.argv[1], Path(sys.argv[2])
    globals()[f"job_{job}"](out, *sys.argv[3:])


class RayReplica:
    """One replica of the equivalence job inside a Ray actor (gloo over torch on the CPU)."""

    def run(self, kind, rank, size):
        from dist_caffe.parallel.ray_comm import RayCommunicator
        comm = RayCommunicator(rank, size, "gloo", group=f"equivalence_{kind}", timeout_s=60)
        try:
            params, reducer = data_parallel(kind, comm, first_bucket_mb=0.0005, bucket_mb=0.002)
            return params, len(reducer.buckets)
        finally:
            comm.close()
