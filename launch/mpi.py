"""The MPI launcher: replicas started by `mpirun -n N`, `mpiexec`, or Slurm's `srun`.

    mpirun -n 4 dist-caffe train -solver s.prototxt [-gpu all]
    srun --mpi=pmix -n 8 dist-caffe train -solver s.prototxt -gpu all      # in an allocation
    mpirun -n 4 python -m dist_caffe.launch.mpi -solver s.prototxt         # same, explicitly

Every process is one replica: `init` builds its communicator (nccl when -gpu is given, else
mpi; `--comm` overrides), checks that MPI sees as many ranks as the launcher started, and
makes it `world()` so data layers read their shard. The device is the node-local rank.
"""
import logging
import os
import sys

from dist_caffe import backend
from dist_caffe.errors import ConfigError
from dist_caffe.parallel import factory, set_world
from dist_caffe.parallel.mpi import launcher_size

log = logging.getLogger("dist_caffe.launch")


LOCAL_RANK_VARS = ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "MV2_COMM_WORLD_LOCAL_RANK",
                   "PMIX_LOCAL_RANK", "SLURM_LOCALID")


def local_rank_from_env():
    """This process's index on its node, as the launcher announced it (0 when none did)."""
    for var in LOCAL_RANK_VARS:
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def init(opts, gpus=()):
    """The communicator of this replica (LocalCommunicator when no MPI launcher started us).

    With `gpus` (the -gpu list), the device is gpus[local rank % len(gpus)], set *before* the
    communicator exists: NCCL binds its communicator to the current device."""
    size, who = launcher_size()
    gpu = bool(gpus)
    if gpu:
        backend.set_device(gpus[local_rank_from_env() % len(gpus)])
        backend.set_mode_gpu()
    name = factory.resolve(opts.comm, gpu)
    if size == 1 and name in ("local", "ray"):
        if opts.launcher == "mpi":
            log.warning("--launcher mpi, but no MPI launcher started this process: training on "
                        "one process (start it as: mpirun -n 4 dist-caffe train ...)")
        comm = factory.create("local")
    else:
        if name in ("local", "ray"):
            raise ConfigError(f"--comm {opts.comm}: {who} started {size} ranks; use --comm mpi "
                              "or nccl (or auto) under mpirun/srun")
        comm = factory.create(name, gpu=gpu, timeout_s=opts.comm_timeout,
                              device=backend.device() if gpu else None)
        if comm.size != size:
            raise ConfigError(
                f"{who} started {size} processes but MPI sees a world of {comm.size}: mpi4py is "
                "linked against another MPI than the launcher's (or srun has no PMI plugin). "
                "Use the mpiexec of the MPI mpi4py was built with (python -c 'import mpi4py; "
                "print(mpi4py.get_config())'), or srun --mpi=pmix / --mpi=pmi2")
    if opts.num_workers and opts.num_workers != comm.size:
        raise ConfigError(f"--num-workers {opts.num_workers}, but {who or 'this launch'} started "
                          f"{comm.size} process(es); under mpirun the count is mpirun's -n")
    set_world(comm)
    return comm


def main(argv=None):
    """`python -m dist_caffe.launch.mpi <train flags>`: the same as `dist-caffe train`."""
    from dist_caffe import cli
    argv = sys.argv[1:] if argv is None else list(argv)
    return cli.main(["train"] + argv)


if __name__ == "__main__":
    sys.exit(main())
