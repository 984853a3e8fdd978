"""Helpers of the data-parallel tests: child processes under `mpiexec -n 2`, a local Ray cluster.

Multi-process tests start their ranks themselves (so one `python -m pytest` runs everything)
with one BLAS/OpenMP thread per rank and a timeout, and assert on the files and output.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
JOBS = Path(__file__).resolve().parent / "jobs.py"


def child_env(**extra):
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in
                                                       env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.update(extra)
    return env


def mpiexec_cmd(n=2, flags=()):
    exe = shutil.which("mpiexec")
    if exe is None:
        pytest.skip("mpiexec not found (pip install 'dist_caffe[mpi]')")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
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
