"""`dist-caffe device_query`: Caffe's lines from the device properties, device selection,
and the clean error without a GPU."""
import types

import pytest

from dist_caffe import backend, cli
from dist_caffe.tools import device_query

PROPS = {"name": b"NVIDIA Test GPU", "major": 8, "minor": 0, "totalGlobalMem": 42_949_672_960,
         "sharedMemPerBlock": 49152, "regsPerBlock": 65536, "warpSize": 32, "memPitch": 2147483647,
         "maxThreadsPerBlock": 1024, "maxThreadsDim": (1024, 1024, 64),
         "maxGridSize": (2147483647, 65535, 65535), "totalConstMem": 65536, "textureAlignment": 512,
         "multiProcessorCount": 108}  # CUDA 13 style: no clockRate / deviceOverlap / timeout fields


class FakeDevice:
    def __init__(self, i):
        self.i = i

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def fake_cupy(count=2):
    runtime = types.SimpleNamespace(
        getDeviceCount=lambda: count,
        getDeviceProperties=lambda i: dict(PROPS, name=f"NVIDIA Test GPU {i}".encode()),
        deviceGetAttribute=lambda attr, i: {13: 1410000, 15: 1, 17: 0, 36: 1215000}[attr],
        memGetInfo=lambda: (40_000_000_000, 42_949_672_960),
        driverGetVersion=lambda: 13000, runtimeGetVersion=lambda: 12080)
    return types.SimpleNamespace(__version__="14.2.0", cuda=types.SimpleNamespace(runtime=runtime, Device=FakeDevice))


@pytest.fixture
def fake_gpu(monkeypatch):
    monkeypatch.setattr(backend, "require_cupy", lambda: fake_cupy())


def test_prints_caffes_lines_in_caffes_order(fake_gpu, capsys):
    assert device_query.main(["device_query", "-gpu", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Querying GPUs 1"
    labels = [line.split(":")[0] for line in out[1:19]]
    assert labels == ["Device id", "Major revision number", "Minor revision number", "Name",
                      "Total global memory", "Total shared memory per block",
                      "Total registers per block", "Warp size", "Maximum memory pitch",
                      "Maximum threads per block", "Maximum dimension of block",
                      "Maximum dimension of grid", "Clock rate", "Total constant memory",
                      "Texture alignment", "Concurrent copy and execution",
                      "Number of multiprocessors", "Kernel execution timeout"]
    text = "\n".join(out)
    assert "Device id:                     1" in text  # Caffe's column: values start at 31
    assert "Name:                          NVIDIA Test GPU 1" in text
    assert "Maximum dimension of block:    1024, 1024, 64" in text
    assert "Clock rate:                    1410000" in text  # from the attribute CUDA 13 kept
    assert "Concurrent copy and execution: Yes" in text
    assert "Kernel execution timeout:      No" in text
    assert "Compute capability:            8.0" in text
    assert "CUDA runtime version:          12.8" in text


def test_all_devices_by_default(fake_gpu, capsys):
    assert device_query.main(["device_query"]) == 0
    out = capsys.readouterr().out
    assert "NVIDIA Test GPU 0" in out and "NVIDIA Test GPU 1" in out


@pytest.mark.parametrize("spec,message", [("5", "there is no device 5; this machine has 2 GPU"),
                                          ("zero", "give device ids separated by commas")])
def test_bad_device_ids(fake_gpu, capsys, spec, message):
    assert device_query.main(["device_query", "--gpu", spec]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.skipif(backend.has_gpu(), reason="checks the message given without a GPU")
def test_without_a_gpu_exits_1_with_the_kernel_error(capsys):
    assert device_query.main(["device_query"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dist-caffe device_query: error: GPU mode needs CuPy and a CUDA device")
    assert "Traceback" not in err
    assert cli.main(["device_query", "-gpu", "0"]) == 1


@pytest.mark.gpu
def test_real_gpu(capsys):
    assert device_query.main(["device_query", "-gpu", "0"]) == 0
    out = capsys.readouterr().out
    cp = backend.require_cupy()
    name = cp.cuda.runtime.getDeviceProperties(0)["name"]
    assert (name.decode() if isinstance(name, bytes) else name) in out
