"""Pick a communicator by name: `create("mpi")`, or `create("auto")` from how we were started.

auto: nccl under MPI with GPUs in use, mpi under MPI, ray inside a Ray actor, local otherwise.
An unknown name fails with the list of known ones (ChainerMN's factory habit).
"""
import importlib
import inspect

from .. import backend
from ..errors import ConfigError
from .communicator import LocalCommunicator
from .mpi import in_mpi_job
from .ray_comm import in_ray_actor

# name -> (module, class); modules load on first use, so a missing engine only matters if chosen.
ENGINES = {
    "local": ("dist_caffe.parallel.communicator", "LocalCommunicator"),
    "mpi": ("dist_caffe.parallel.mpi", "MpiCommunicator"),
    "nccl": ("dist_caffe.parallel.nccl", "NcclCommunicator"),
    "ray": ("dist_caffe.parallel.ray_comm", "RayCommunicator"),
}


def names():
    return ["auto"] + list(ENGINES)


def resolve(name="auto", gpu=None):
    """The engine `auto` stands for here (`gpu`: GPUs in use; default: the current mode)."""
    name = (name or "auto").lower()
    if name != "auto":
        if name not in ENGINES:
            raise ConfigError(f"--comm: unknown communicator '{name}' "
                              f"(known: {', '.join(names())})")
        return name
    gpu = backend.mode() == backend.GPU if gpu is None else gpu
    if in_mpi_job():
        return "nccl" if gpu else "mpi"
    if in_ray_actor():
        return "ray"
    return "local"


def create(name="auto", gpu=None, **kwargs):
    """A communicator for this process. kwargs go to the engine's constructor when it takes
    them (the ray engine's rank/size, timeout_s); a name that needs a missing package raises
    a DistCaffeError saying what to install."""
    name = resolve(name, gpu)
    if name == "local":
        return LocalCommunicator()
    module, cls = ENGINES[name]
    try:
        engine = getattr(importlib.import_module(module), cls)
    except ImportError as e:
        raise ConfigError(f"--comm {name}: the engine could not be loaded ({e}); "
                          f"known: {', '.join(names())}") from None
    accepted = inspect.signature(engine).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in accepted.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in accepted}  # engines differ in options
    return engine(**kwargs)
