"""Run-wide switches of the input pipeline that Caffe's prototxt has no field for.

Each is read from an environment variable (so it reaches every rank under mpirun/srun/Ray),
and `configure(...)` overrides it from Python or a command-line flag:

| option         | environment variable        | default                                      |
|----------------|-----------------------------|----------------------------------------------|
| skip_corrupt   | DIST_CAFFE_SKIP_CORRUPT=1   | off: a corrupt record stops with a DataError |
| shuffle        | DIST_CAFFE_SHUFFLE=1        | off: key order, as Caffe (TRAIN nets only)   |
| shuffle_seed   | DIST_CAFFE_SHUFFLE_SEED=N   | 1 (must be equal on every rank)              |
| decode_workers | DIST_CAFFE_DECODE_WORKERS=N | min(4, CPUs / ranks on the node)             |

decode_workers is per data layer reading encoded images; 0 decodes in the prefetch thread.
"""
import dataclasses
import os

_overrides = {}


@dataclasses.dataclass(frozen=True)
class DataOptions:
    skip_corrupt: bool = False
    shuffle: bool = False
    shuffle_seed: int = 1
    decode_workers: int = None  # None: auto_workers()


def _flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def options() -> DataOptions:
    """The current options: environment, then `configure` overrides."""
    env = DataOptions(
        skip_corrupt=_flag("DIST_CAFFE_SKIP_CORRUPT"),
        shuffle=_flag("DIST_CAFFE_SHUFFLE"),
        shuffle_seed=int(os.environ.get("DIST_CAFFE_SHUFFLE_SEED", 1)),
        decode_workers=int(os.environ["DIST_CAFFE_DECODE_WORKERS"])
        if os.environ.get("DIST_CAFFE_DECODE_WORKERS") else None)
    return dataclasses.replace(env, **_overrides)


def decode_workers(ranks_on_node=1) -> int:
    """The decode_workers option, or by default min(4, this rank's share of the CPUs)."""
    n = options().decode_workers
    return n if n is not None else max(1, min(4, (os.cpu_count() or 1) // max(1, ranks_on_node)))


def configure(**values):
    """Override options for this process, e.g. configure(skip_corrupt=True); None resets one."""
    names = {f.name for f in dataclasses.fields(DataOptions)}
    for name, value in values.items():
        if name not in names:
            raise ValueError(f"unknown data option '{name}' (known: {', '.join(sorted(names))})")
        if value is None:
            _overrides.pop(name, None)
        else:
            _overrides[name] = value
