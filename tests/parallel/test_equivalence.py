"""Data parallelism is the same SGD: N steps of 2 replicas x batch b, each on its own shard,
give the parameters of 1 process with batch 2b over the same samples (SGD with momentum,
weight decay and a step policy; Adam) — under mpiexec -n 2 and in a 2-actor Ray cluster.

The replicas start from different parameters on purpose (rank 1 adds 1.0 before the start-up
broadcast), use several small buckets (so reductions start from different layers), compare
their parameter checksums every iteration, and the net has shared and frozen params.
"""
import json

import numpy as np
import pytest

from . import jobs
from .conftest import run_job

KINDS = ["sgd", "adam"]
RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture(scope="module")
def references():
    return {kind: jobs.reference(kind) for kind in KINDS}


def check(params_per_rank, reference):
    first = params_per_rank[0]
    for p in params_per_rank[1:]:
        np.testing.assert_array_equal(p, first)        # replicas bit-identical
    np.testing.assert_allclose(first, reference, rtol=RTOL, atol=ATOL)
    assert np.abs(first - reference).max() < 1e-5 * np.abs(reference).max() + ATOL


def test_reference_moves_and_differs_per_solver(references):
    """Guard against a vacuous comparison: training changes the params, differently per rule."""
    from dist_caffe.solvers import get_solver
    start = get_solver(jobs.solver_param("sgd", 8, 1)).net.param_data
    assert np.abs(references["sgd"] - start).max() > 1e-2
    assert np.abs(references["sgd"] - references["adam"]).max() > 1e-3


@pytest.mark.mpi
@pytest.mark.parametrize("kind", KINDS)
def test_mpi_two_ranks_equal_one_process_double_batch(tmp_path, references, kind):
    result = run_job("equivalence", tmp_path, kind)
    assert result.returncode == 0, result.stdout + result.stderr
    params = [np.load(tmp_path / f"params_{kind}_rank{r}.npy") for r in range(2)]
    check(params, references[kind])
    buckets = json.loads((tmp_path / f"buckets_{kind}.json").read_text())
    assert len(buckets) >= 3 and len({ready for _, _, ready in buckets}) >= 2


@pytest.mark.ray
def test_ray_two_actors_equal_one_process_double_batch(ray_cluster, references):
    ray = ray_cluster
    worker = ray.remote(num_cpus=1)(jobs.RayReplica)
    actors = [worker.remote() for _ in range(2)]
    try:
        for kind in KINDS:
            out = ray.get([a.run.remote(kind, r, 2) for r, a in enumerate(actors)], timeout=180)
            assert all(n >= 3 for _, n in out)
            check([p for p, _ in out], references[kind])
    finally:
        for a in actors:
            ray.kill(a)
