"""Every kernels/*.cu compiles for the GPU with `nvcc -ptx` (catches code only g++ accepts),
exactly as NVRTC receives it (headers inlined by kernels.kernel_source), without warnings,
and exports each declared kernel under its plain extern "C" name."""
import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from dist_caffe import kernels

NVCC = shutil.which("nvcc")
FLAGS = ["-ptx", "-arch=sm_80", "-std=c++17"]
FILES = sorted(p.name for p in kernels.kernel_dir().glob("*.cu"))
pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH (no CUDA toolkit here)")


def compile_ptx(filename):
    """(ptx text, nvcc's messages), cached per source hash across runs."""
    source = kernels.kernel_source(filename)
    key = hashlib.sha256("\0".join([source, NVCC, *FLAGS]).encode()).hexdigest()[:20]
    cache = Path(tempfile.gettempdir()) / "dist_caffe_nvcc"
    cache.mkdir(exist_ok=True)
    ptx, log = cache / f"{filename}-{key}.ptx", cache / f"{filename}-{key}.log"
    if not ptx.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / filename
            src.write_text(source)
            done = subprocess.run([NVCC, *FLAGS, str(src), "-o", str(Path(tmp) / "out.ptx")],
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, f"nvcc -ptx {filename} failed:\n{done.stderr}"
            log.write_text(done.stderr)
            shutil.move(str(Path(tmp) / "out.ptx"), ptx)
    return ptx.read_text(), log.read_text() if log.is_file() else ""


def test_every_kernel_file_is_tested():
    assert set(FILES) == {"accuracy.cu", "batch_norm.cu", "copy.cu", "dropout.cu", "eltwise.cu",
                          "im2col.cu", "lrn.cu", "neurons.cu", "pooling.cu", "softmax.cu",
                          "solver_updates.cu"}


@pytest.mark.parametrize("filename", FILES)
def test_nvcc_ptx(filename):
    ptx, messages = compile_ptx(filename)
    assert "warning" not in messages.lower(), messages
    entries = set(re.findall(r"^\.visible \.entry (\w+)\(", ptx, re.M))
    assert entries == set(kernels.signatures(filename)), (
        "the PTX entries and the DC_KERNEL declarations differ: "
        f"{sorted(entries ^ set(kernels.signatures(filename)))}")
