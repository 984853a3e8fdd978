"""Shared fixtures: where ../shared/conformance lives, GPU skip, float tolerances."""
import os

# One BLAS thread per test process: CI's 2 cores are shared with the ranks and workers that
# tests start, and oversubscribed OpenBLAS threads slow everything several-fold.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir():
    """../shared beside the repo (CI copies it there); skip when absent."""
    if not (SHARED / "conformance").is_dir():
        pytest.skip("../shared/conformance is absent (CI copies it beside the repo)")
    return SHARED


@pytest.fixture(scope="session")
def conformance(shared_dir):
    return shared_dir / "conformance"


def pytest_collection_modifyitems(config, items):
    from dist_caffe import backend
    if backend.has_gpu():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
