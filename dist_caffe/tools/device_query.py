"""`dist-caffe device_query [-gpu 0,1|all]`: print each GPU as `caffe device_query` does.

Caffe's lines first (same labels, same order), then what a multi-GPU user also wants: free
memory, memory clock, the driver/runtime/CuPy versions and whether NCCL is usable. Without
a GPU (or CuPy) it prints the KernelError that says how to get one and exits 1.
"""
import sys

from .. import backend
from ..errors import KernelError
from .flags import Parser

# cudaDeviceAttr values, for fields CUDA 13 dropped from cudaDeviceProp
_ATTR = {"clockRate": 13, "deviceOverlap": 15, "kernelExecTimeoutEnabled": 17, "memoryClockRate": 36}


def _prop(cp, props, key, device):
    if key in props:
        return props[key]
    try:
        return cp.cuda.runtime.deviceGetAttribute(_ATTR[key], device)
    except Exception:  # an attribute this driver no longer reports
        return "n/a"


def _yes(value):
    return "n/a" if value == "n/a" else ("Yes" if value else "No")


def _version(v):
    return f"{v // 1000}.{v % 1000 // 10}"


def describe(cp, device):
    """Caffe's DeviceQuery lines (and a few more) for one device, as (label, value) pairs."""
    p = cp.cuda.runtime.getDeviceProperties(device)
    name = p["name"].decode() if isinstance(p["name"], bytes) else str(p["name"])
    with cp.cuda.Device(device):
        free, total = cp.cuda.runtime.memGetInfo()
    try:
        from cupy.cuda import nccl
        has_nccl = bool(getattr(nccl, "available", True))
    except Exception:
        has_nccl = False
    return [
        ("Device id", device),
        ("Major revision number", p["major"]),
        ("Minor revision number", p["minor"]),
        ("Name", name),
        ("Total global memory", p["totalGlobalMem"]),
        ("Total shared memory per block", p["sharedMemPerBlock"]),
        ("Total registers per block", p["regsPerBlock"]),
        ("Warp size", p["warpSize"]),
        ("Maximum memory pitch", p["memPitch"]),
        ("Maximum threads per block", p["maxThreadsPerBlock"]),
        ("Maximum dimension of block", ", ".join(map(str, p["maxThreadsDim"]))),
        ("Maximum dimension of grid", ", ".join(map(str, p["maxGridSize"]))),
        ("Clock rate", _prop(cp, p, "clockRate", device)),
        ("Total constant memory", p["totalConstMem"]),
        ("Texture alignment", p["textureAlignment"]),
        ("Concurrent copy and execution", _yes(_prop(cp, p, "deviceOverlap", device))),
        ("Number of multiprocessors", p["multiProcessorCount"]),
        ("Kernel execution timeout", _yes(_prop(cp, p, "kernelExecTimeoutEnabled", device))),
        # beyond Caffe's list
        ("Compute capability", f"{p['major']}.{p['minor']}"),
        ("Free global memory", free),
        ("Memory clock rate", _prop(cp, p, "memoryClockRate", device)),
        ("CUDA driver version", _version(cp.cuda.runtime.driverGetVersion())),
        ("CUDA runtime version", _version(cp.cuda.runtime.runtimeGetVersion())),
        ("CuPy version", cp.__version__),
        ("NCCL available", "Yes" if has_nccl else "No"),
    ]


def select(spec, count):
    """Device ids from -gpu: 'all' or a comma-separated list, each in [0, count)."""
    if spec == "all":
        return list(range(count))
    try:
        ids = [int(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        raise KernelError(f"-gpu '{spec}': give device ids separated by commas (e.g. 0,1) "
                          "or 'all'") from None
    for i in ids:
        if not 0 <= i < count:
            raise KernelError(f"-gpu {spec}: there is no device {i}; this machine has {count} "
                              f"GPU(s), ids 0 to {count - 1} (try -gpu all)")
    return ids


def main(argv):
    parser = Parser("device_query", "show the properties of the GPU(s), as caffe device_query")
    parser.add_argument("--gpu", default="all", help="device ids, e.g. 0 or 0,1, or 'all' (default)")
    args = parser.parse(argv[1:])
    try:
        cp = backend.require_cupy()
        devices = select(args.gpu, cp.cuda.runtime.getDeviceCount())
        print(f"Querying GPUs {args.gpu}")
        for i, device in enumerate(devices):
            if i:
                print()
            for label, value in describe(cp, device):
                print(f"{label + ':':<31}{value}")
    except KernelError as e:
        print(f"dist-caffe device_query: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(["device_query"] + sys.argv[1:]))
