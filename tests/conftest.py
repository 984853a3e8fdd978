"""Shared fixtures: where ../shared/conformance lives, GPU skip, float tolerances."""
from pathlib import Path

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
