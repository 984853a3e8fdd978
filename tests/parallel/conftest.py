"""Helpers of the data-parallel tests: child processes under `mpiexec -n 2`, a local Ray cluster.

Multi-process tests start their ranks themselves (so one `python -m pytest` runs everything)
with one BLAS/OpenMP thread per rank and a timeout, and assert on the files and output.
"""
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
JOBS = Path(__file__).resolve().parent / "jobs.py"


def child_env(**extra):
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONUNBUFFERED="1")
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + paths)
    env.update(extra)
    return env


def mpiexec_cmd(n=2, flags=()):
    exe = shutil.which("mpiexec")
    if exe is None:
        pytest.skip("mpiexec not found (pip install 'dist_caffe[mpi]')")
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py not installed (pip install 'dist_caffe[mpi]')")
    return [exe, *flags, "-n", str(n)]


def run_mpi(args, n=2, timeout=120, flags=(), cwd=None, **env):
    """`mpiexec -n n python <args>`; returns the CompletedProcess (text output)."""
    cmd = mpiexec_cmd(n, flags) + [sys.executable, *map(str, args)]
    return subprocess.run(cmd, cwd=cwd or REPO, env=child_env(**env), capture_output=True,
                          text=True, timeout=timeout)


def run_job(job, out, *args, n=2, timeout=120, flags=()):
    return run_mpi([JOBS, job, out, *args], n=n, timeout=timeout, flags=flags)


@pytest.fixture(scope="module")
def ray_cluster():
    """A local 2-CPU Ray cluster for the module's tests (workers import dist_caffe from here)."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("torch")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {k: v for k, v in child_env().items() if k in
                                       ("PYTHONPATH", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                        "MKL_NUM_THREADS")}})
    yield ray
    ray.shutdown()


# -- end-to-end training runs on the digits LMDBs -----------------------------------
NET = """
name: "digits_conv"
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TRAIN }
        transform_param { scale: 0.00390625 }
        data_param { source: "digits/digits_train_lmdb" batch_size: 16 backend: LMDB } }
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TEST }
        transform_param { scale: 0.00390625 }
        data_param { source: "digits/digits_test_lmdb" batch_size: 60 backend: LMDB } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 5 stride: 2
                            weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "fc" type: "Convolution" bottom: "conv1" top: "fc"
        convolution_param { num_output: 10 kernel_size: 12 weight_filler { type: "xavier" } } }
layer { name: "accuracy" type: "Accuracy" bottom: "fc" bottom: "label" top: "accuracy"
        include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
"""
SOLVER = """
net: "net.prototxt"
test_iter: 6
test_interval: {test_interval}
base_lr: 0.05
momentum: 0.9
weight_decay: 0.0005
lr_policy: "fixed"
display: 10
max_iter: {max_iter}
snapshot: 20
snapshot_prefix: "snap/digits"
random_seed: 1
"""
TRAIN = [sys.executable, "-m", "dist_caffe.cli", "train"]
DETECT_S = 15   # the bound on noticing a lost rank


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    """A run folder with the digits LMDBs, the net, and a long-running solver."""
    d = tmp_path_factory.mktemp("digits_run")
    subprocess.run([sys.executable, "-m", "dist_caffe.cli", "data", "digits", "--out",
                    "digits"], cwd=d, env=child_env(), check=True, capture_output=True,
                   timeout=120)
    (d / "snap").mkdir()
    (d / "net.prototxt").write_text(NET)
    (d / "solver.prototxt").write_text(SOLVER.format(max_iter=200000, test_interval=1000))
    (d / "short_solver.prototxt").write_text(SOLVER.format(max_iter=60, test_interval=30))
    return d


class Run:
    """A training job whose merged output is read line by line in the background."""

    def __init__(self, cmd, cwd):
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=child_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def text(self):
        return "".join(self.lines)

    def wait_for(self, pattern, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text)
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"never saw {pattern!r}; output:\n{self.text[-4000:]}")

    def finish(self, timeout):
        t0 = time.monotonic()
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the job did not end within {timeout} s of the kill (a hang):\n"
                        f"{self.text[-4000:]}")
        self.reader.join(timeout=10)
        return rc, time.monotonic() - t0

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
