"""Benchmarks of data-parallel training (figures for the docs, not tests).

    mpiexec -n 2 python -m dist_caffe.parallel.bench allreduce [--sizes 1,4,16,64,256]
        (1) all-reduce bus bandwidth of our mpi communicator vs raw mpi4py Allreduce, same bytes
            (ours: start_allreduce_sum + wait, the reducer's path during training)
    python -m dist_caffe.parallel.bench scaling [--nets lenet,cifar_quick,caffenet]
        (2) weak scaling: img/s of 2 ranks x 1 thread (mpiexec -n 2) vs 1 rank x 1 thread,
        (3) the fraction of all-reduce time hidden behind backward
    python -m dist_caffe.parallel.bench ray [--nets ...] [--sizes ...]
        (4) the same in a local 2-actor Ray cluster (gloo): all-reduce vs raw
            ray.util.collective, img/s and hidden fraction
    python -m dist_caffe.parallel.bench all          # the three above, one table each

Training runs use the configs/ nets with their Data layers swapped for Input layers (random
images, no data loading), SGD with momentum, the default buckets. "2 alone" is two single
processes running at once without talking — the most 2 x 1 thread can give on this machine
(memory bandwidth, caches, other load); "of ceiling" is data parallelism's share of it.
Bus bandwidth follows nccl-tests: algbw = bytes / time, busbw = algbw x 2(n-1)/n.
"hidden" = 1 - (all-reduce time left after the slowest rank's backward) / (time the same
buckets take to all-reduce alone); "wait" is what the solver waited, skew between the ranks
included.
Child processes get OMP/OPENBLAS/MKL_NUM_THREADS=1: one thread per rank.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
NETS = {  # name: (prototxt, stored C,H,W, batch per rank, timed iterations)
    "lenet": ("lenet_train_test.prototxt", (1, 28, 28), 64, 100),
    "cifar_quick": ("cifar10_quick_train_test.prototxt", (3, 32, 32), 100, 20),
    "caffenet": ("caffenet_train_val.prototxt", (3, 256, 256), 8, 4),
}
SIZES_MB = [1, 2, 4, 8, 16, 32, 64, 128, 256]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# -- (1) all-reduce bandwidth --------------------------------------------------------
def time_pair(ours, raw, buf, barrier, reps):
    """Median times of ours(buf) and raw(buf) after a barrier each, the two interleaved rep by
    rep, so a busy spell on a shared machine hits both alike."""
    ours(buf), raw(buf)  # warm-up: connections, page faults
    times = ([], [])
    for _ in range(reps):
        for fn, out in ((ours, times[0]), (raw, times[1])):
            barrier()
            t0 = time.perf_counter()
            fn(buf)
            out.append(time.perf_counter() - t0)
    return statistics.median(times[0]), statistics.median(times[1])


def allreduce_rows(comm, raw, barrier, sizes_mb, reps):
    """[(MB, ours s, raw s, our busbw GB/s, raw busbw GB/s)] with times maxed over ranks."""
    rows, n = [], comm.size
    for mb in sizes_mb:
        buf = np.ones(int(mb * (1 << 20)) // 4, np.float32)
        ours, theirs = time_pair(lambda b: comm.start_allreduce_sum(b).wait(), raw, buf,
                                 barrier, reps)
        ours, theirs = (max(t) for t in zip(*comm.allgather_object((ours, theirs))))
        nbytes, factor = buf.nbytes, 2 * (n - 1) / n
        rows.append((mb, ours, theirs, nbytes / ours * factor / 1e9,
                     nbytes / theirs * factor / 1e9))
    return rows


def print_allreduce(rows, ours_name, raw_name):
    print(f"{'MB':>6} {ours_name + ' ms':>12} {raw_name + ' ms':>14} {'busbw GB/s':>11} "
          f"{'raw GB/s':>9} {'ours/raw':>9}")
    for mb, t, r, bw, rbw in rows:
        print(f"{mb:>6} {t * 1e3:>12.2f} {r * 1e3:>14.2f} {bw:>11.2f} {rbw:>9.2f} "
              f"{bw / rbw:>8.0%}")


def run_mpi_allreduce(sizes_mb, reps):
    from mpi4py import MPI
    from .mpi import MpiCommunicator
    comm = MpiCommunicator()
    world = MPI.COMM_WORLD
    rows = allreduce_rows(comm, lambda b: world.Allreduce(MPI.IN_PLACE, b), world.Barrier,
                          sizes_mb, reps)
    if comm.rank == 0:
        print(f"(1) all-reduce, {comm.size} ranks, float32, in place (median of {reps}):")
        print_allreduce(rows, "mpi comm", "raw Allreduce")
    return rows


# -- (2)(3) training throughput and overlap ---------------------------------------------
def train_throughput(comm, name, iters=None, batch=None, warmup=2, bucket_mb=None):
    """Time `iters` SGD iterations of a configs/ net on this rank; a dict of figures."""
    from ..proto import caffe_pb2, read_net_param
    from ..solvers import get_solver
    from ..testing.nets import swap_data_for_input
    from .replica import Replica
    from .trainer import DataParallel, Options
    model, shape, default_batch, default_iters = NETS[name]
    batch, iters = batch or default_batch, iters or default_iters
    net = swap_data_for_input(read_net_param(str(CONFIGS / model)), shape, batch=batch)
    param = caffe_pb2.SolverParameter(base_lr=1e-5, momentum=0.9, weight_decay=5e-4,
                                      lr_policy="fixed", max_iter=10 ** 9, display=0,
                                      random_seed=1, snapshot_prefix="/tmp/dist_caffe_bench")
    param.net_param.CopyFrom(net)
    solver = get_solver(param, comm=comm)
    g = np.random.default_rng(comm.rank)
    for blob_name in solver.net.inputs:
        blob = solver.net.blobs[blob_name]
        blob.data[...] = g.standard_normal(blob.shape) if blob.num_axes > 1 else 0
    opts = Options(checksum_every=0)
    if bucket_mb:
        opts.bucket_mb = bucket_mb
    dp = DataParallel(Replica(comm, watchdog=False), opts).attach(solver)
    reducer = dp.reducer
    solver.step(warmup)
    comm.barrier()
    if reducer is not None:
        reducer.record = True
        reducer.clear_events()
    t0 = time.perf_counter()
    solver.step(iters)
    comm.barrier()
    seconds = time.perf_counter() - t0
    out = {"net": name, "ranks": comm.size, "batch": batch, "iters": iters,
           "img_s": comm.size * batch * iters / seconds, "ms_iter": seconds / iters * 1e3,
           "params_mb": solver.net.learnable_count * 4 / 2 ** 20, "wait_ms": 0.0,
           "exposed_ms": 0.0, "alone_ms": 0.0, "hidden": None, "buckets": 0}
    if reducer is not None:
        out.update(overlap(comm, reducer))
    return out


def overlap(comm, reducer):
    """How much all-reduce time backward hid. Per iteration: E = (when the slowest rank had
    its reduced gradients) - (when the slowest rank finished backward); nothing can be
    reduced before every rank has finished backward, so E is the communication left exposed,
    free of the ranks' skew. hidden = 1 - mean(E) / (the same buckets all-reduced alone).
    Ranks of one node share perf_counter's clock (CLOCK_MONOTONIC)."""
    mine, last_backward = [], None
    for ev in reducer.events:
        if ev[0] == "backward":
            last_backward = ev[2]
        elif ev[0] == "wait":
            mine.append((last_backward, ev[2], ev[3]))  # backward end, wait start, wait end
    table = comm.allgather_object(mine)
    exposed = [max(r[i][2] for r in table) - max(r[i][0] for r in table)
               for i in range(len(mine))]
    waits = [max(r[i][2] - r[i][1] for r in table) for i in range(len(mine))]
    alone = buckets_alone(comm, reducer)
    e = statistics.mean(exposed)
    return {"wait_ms": statistics.mean(waits) * 1e3, "exposed_ms": e * 1e3,
            "alone_ms": alone * 1e3, "hidden": min(1.0, max(0.0, 1.0 - e / alone)),
            "buckets": len(reducer.buckets)}


def buckets_alone(comm, reducer, reps=3):
    """Median time to all-reduce every bucket back to back, with no backward to hide behind."""
    diff, times = reducer.net.param_diff, []
    for _ in range(reps + 1):
        comm.barrier()
        t0 = time.perf_counter()
        handles = [comm.start_allreduce_sum(diff[b.start:b.end]) for b in reducer.buckets]
        for h in handles:
            h.wait()
        times.append(time.perf_counter() - t0)
    return max(comm.allgather_object(statistics.median(times[1:])))


def run_worker(name, iters, batch, bucket_mb=None):
    """One rank of a scaling run (under mpiexec, or alone); rank 0 prints a JSON line."""
    from .mpi import in_mpi_job
    if in_mpi_job():
        from .mpi import MpiCommunicator
        comm = MpiCommunicator()
    else:
        from .communicator import LocalCommunicator
        comm = LocalCommunicator()
    out = train_throughput(comm, name, iters, batch, bucket_mb=bucket_mb)
    if comm.rank == 0:
        print("RESULT " + json.dumps(out), flush=True)


def _child(cmd, timeout=3600):
    env = dict(os.environ, **ONE_THREAD)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(
        os.pathsep) if p])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def _flags(iters, batch, bucket_mb):
    return [f"--{k}={v}" for k, v in (("iters", iters), ("batch", batch),
                                       ("bucket-mb", bucket_mb)) if v]


def single_process(name, iters=None, batch=None):
    return _child([sys.executable, "-m", "dist_caffe.parallel.bench", "_worker", name]
                  + _flags(iters, batch, None))


def independent_pair(name, iters=None, batch=None):
    """Two single processes at once, not talking: what 2 x 1 thread can do on this machine
    at best (shared memory bandwidth, caches, other load), the ceiling of data parallelism."""
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: single_process(name, iters, batch), range(2)))
    return {"img_s": sum(r["img_s"] for r in runs)}


def two_ranks(name, iters=None, batch=None, bucket_mb=None):
    return _child(["mpiexec", "-n", "2", sys.executable, "-m", "dist_caffe.parallel.bench",
                   "_worker", name] + _flags(iters, batch, bucket_mb))


def print_scaling(pairs, title):
    print(title)
    print(f"{'net':>12} {'batch/rank':>10} {'1x1 img/s':>10} {'2 alone':>8} {'2x1 img/s':>10} "
          f"{'speed-up':>9} {'of ceiling':>10} {'grad MB':>8} {'wait ms':>8} {'exposed ms':>11} "
          f"{'alone ms':>9} {'hidden':>7}")
    for one, two in pairs:
        ceiling = one.get("pair_img_s")
        print(f"{two['net']:>12} {two['batch']:>10} {one['img_s']:>10.1f} "
              f"{ceiling or float('nan'):>8.1f} {two['img_s']:>10.1f} "
              f"{two['img_s'] / one['img_s']:>8.2f}x "
              f"{(two['img_s'] / ceiling if ceiling else float('nan')):>10.0%} "
              f"{two['params_mb']:>8.1f} "
              f"{two['wait_ms']:>8.1f} {two['exposed_ms']:>11.2f} {two['alone_ms']:>9.1f} "
              f"{two['hidden']:>7.0%}")


def median_run(runs):
    """The run with the median img/s (the machine may be shared: one run can be unlucky)."""
    return sorted(runs, key=lambda r: r["img_s"])[len(runs) // 2]


def run_scaling(nets, iters=None, batch=None, bucket_mb=None, repeat=3):
    pairs = []
    for name in nets:
        ones, pairs_, twos = [], [], []
        for _ in range(repeat):  # interleaved, so a busy spell hits every side alike
            ones.append(single_process(name, iters, batch))
            pairs_.append(independent_pair(name, iters, batch))
            twos.append(two_ranks(name, iters, batch, bucket_mb))
        one = dict(median_run(ones), pair_img_s=median_run(pairs_)["img_s"])
        pairs.append((one, median_run(twos)))
    print_scaling(pairs, "(2)(3) weak scaling, mpi: 2 ranks x 1 thread vs 1 rank x 1 thread")
    return pairs


# -- (4) Ray -----------------------------------------------------------------------------
class _RayBench:
    def setup(self, rank, size):
        from .ray_comm import RayCommunicator
        self.comm = RayCommunicator(rank, size, "gloo", group="bench")
        return rank

    def allreduce(self, sizes_mb, reps):
        import ray.util.collective as col
        comm = self.comm
        return allreduce_rows(comm, lambda b: col.allreduce(b, group_name=comm.group),
                              comm.barrier, sizes_mb, reps)

    def train(self, name, iters, batch, bucket_mb):
        return train_throughput(self.comm, name, iters, batch, bucket_mb=bucket_mb)


def run_ray(nets, sizes_mb, reps, iters=None, batch=None, bucket_mb=None, baselines=None,
            repeat=3):
    import ray
    env = dict(ONE_THREAD)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": env})
    try:
        worker = ray.remote(num_cpus=1)(_RayBench)
        actors = [worker.remote() for _ in range(2)]
        ray.get([a.setup.remote(r, 2) for r, a in enumerate(actors)])
        rows = ray.get([a.allreduce.remote(sizes_mb, reps) for a in actors])[0]
        print("(4) Ray (2 actors, gloo through torch): all-reduce, float32:")
        print_allreduce(rows, "ray comm", "raw collective")
        pairs = []
        for name in nets:
            ones, twos = [], []
            for _ in range(repeat):  # interleaved, as run_scaling; the median run of each
                twos.append(ray.get([a.train.remote(name, iters, batch, bucket_mb)
                                     for a in actors])[0])
                if not (baselines or {}).get(name):
                    ones.append(single_process(name, iters, batch))
            one = (baselines or {}).get(name) or median_run(ones)
            pairs.append((one, median_run(twos)))
        print_scaling(pairs, "(4) weak scaling, ray: 2 actors x 1 thread vs 1 process x 1 thread")
        return rows, pairs
    finally:
        ray.shutdown()


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m dist_caffe.parallel.bench",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["allreduce", "scaling", "ray", "all", "_worker"])
    p.add_argument("net", nargs="?", help=argparse.SUPPRESS)
    p.add_argument("--sizes", default=",".join(map(str, SIZES_MB)), help="MB, comma-separated")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--nets", default=",".join(NETS), help=f"of {', '.join(NETS)}")
    p.add_argument("--iters", type=int, help="timed iterations per net (default: per net)")
    p.add_argument("--batch", type=int, help="batch per rank (default: per net)")
    p.add_argument("--bucket-mb", type=float, help="gradient bucket size (default: trainer's)")
    p.add_argument("--repeat", type=int, default=3, help="runs per configuration (median)")
    a = p.parse_args(argv)
    sizes = [float(s) if "." in s else int(s) for s in a.sizes.split(",")]
    nets = [n for n in a.nets.split(",") if n]
    for n in nets:
        if n not in NETS:
            p.error(f"unknown net '{n}' (known: {', '.join(NETS)})")
    if a.what == "_worker":
        return run_worker(a.net, a.iters, a.batch, a.bucket_mb)
    if a.what == "allreduce":
        from .mpi import in_mpi_job
        if not in_mpi_job():
            p.error("run it under MPI: mpiexec -n 2 python -m dist_caffe.parallel.bench allreduce")
        run_mpi_allreduce(sizes, a.reps)
    if a.what == "scaling":
        run_scaling(nets, a.iters, a.batch, a.bucket_mb, a.repeat)
    if a.what == "ray":
        run_ray(nets, sizes, a.reps, a.iters, a.batch, a.bucket_mb, repeat=a.repeat)
    if a.what == "all":
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, **ONE_THREAD, PYTHONPATH=root)
        subprocess.run(["mpiexec", "-n", "2", sys.executable, "-m", "dist_caffe.parallel.bench",
                        "allreduce", f"--sizes={a.sizes}", f"--reps={a.reps}"], env=env,
                       check=True)
        pairs = run_scaling(nets, a.iters, a.batch, a.bucket_mb, a.repeat)
        run_ray(nets, sizes, a.reps, a.iters, a.batch, a.bucket_mb,
                {one["net"]: one for one, _ in pairs}, repeat=a.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
