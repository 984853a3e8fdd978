"""Our solvers against BVLC Caffe's own runs (../shared/conformance/caffe_ref/solver_*).

Each case: build the solver from the case's solver.prototxt through the pycaffe API, load
Caffe's init.caffemodel, feed batch<k> before each step(1), and compare params, losses and
learning rates after every iteration with what Caffe recorded; then compare the .solverstate
we write with Caffe's (same history layout, iter, current_step), and continue from Caffe's own
snapshot files.
"""
import json
from pathlib import Path

import numpy as np
import pytest

import dist_caffe as caffe
from dist_caffe.solvers import snapshot as snap

REF = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "caffe_ref"
CASES = sorted(p.name for p in REF.glob("solver_*")) or ["solver_cases_absent"]


@pytest.fixture(params=CASES)
def case(request, conformance):
    folder = conformance / "caffe_ref" / request.param
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    meta = json.loads((folder / "case.json").read_text())
    return folder, meta, np.load(folder / "expected.npz"), np.load(folder / "inputs.npz")


def close(actual, expected, tol, what):
    atol = tol["atol_rel_to_maxabs"] * float(np.abs(expected).max())
    assert actual.shape == expected.shape, what
    ok = np.allclose(actual, expected, rtol=tol["rtol"], atol=atol)
    assert ok, f"{what}: max abs err {np.abs(actual - expected).max():.3g} (atol {atol:.3g})"


def feed(solver, inputs, k):
    for name in ("data", "label"):
        solver.net.blobs[name].data[...] = inputs[f"batch{k}/{name}"]


def check_params(solver, expected, k, tol):
    for layer, blobs in solver.net.params.items():
        for i, blob in enumerate(blobs):
            close(blob.data, expected[f"iter{k}/param/{layer}/{i}"], tol, f"iter{k} {layer}[{i}]")


def new_solver(folder, workdir, monkeypatch):
    monkeypatch.chdir(workdir)         # snapshots ("snap" prefix) land here, not in ../shared
    return caffe.get_solver(str(folder / "solver.prototxt"))


def test_steps_match_caffe(case, tmp_path, monkeypatch):
    folder, meta, expected, inputs = case
    tol = meta["tolerance"]
    solver = new_solver(folder, tmp_path, monkeypatch)
    assert solver.type == meta["solver_type"]
    solver.net.copy_from(str(folder / "init.caffemodel"))
    check_params(solver, expected, 0, tol)
    for k in range(meta["iterations"]):
        feed(solver, inputs, k)
        solver.step(1)
        assert solver.iter == k + 1
        assert float(solver.net.blobs["loss"].data) == pytest.approx(
            float(expected[f"loss/iter{k + 1}"]), rel=1e-5)
        assert solver.lr == pytest.approx(float(expected[f"lr/iter{k + 1}"]), rel=1e-6)
        check_params(solver, expected, k + 1, tol)

    # The .solverstate we wrote at the last iteration holds what Caffe's holds.
    last = meta["iterations"]
    ours = snap.read(tmp_path / f"snap_iter_{last}.solverstate")
    theirs = snap.read(folder / f"snap_iter_{last}.solverstate")
    assert (ours.iter, ours.current_step) == (theirs.iter, theirs.current_step)
    assert ours.learned_net == theirs.learned_net == f"snap_iter_{last}.caffemodel"
    assert [s for s, _ in ours.history] == [s for s, _ in theirs.history]
    for i, ((_, a), (_, b)) in enumerate(zip(ours.history, theirs.history)):
        close(a, b, tol, f"history blob {i}")


def test_continue_from_caffe_snapshot(case, tmp_path, monkeypatch):
    """Restore Caffe's own .solverstate (+ its .caffemodel) and continue to Caffe's end."""
    folder, meta, expected, inputs = case
    tol = meta["tolerance"]
    states = sorted(folder.glob("snap_iter_*.solverstate"),
                    key=lambda p: int(p.stem.split("_")[-1]))
    state = states[0]
    start = int(state.stem.split("_")[-1])
    solver = new_solver(folder, tmp_path, monkeypatch)
    solver.restore(str(state))         # learned_net is relative: found beside the solverstate
    assert solver.iter == start
    check_params(solver, expected, start, {"rtol": 0, "atol_rel_to_maxabs": 0})
    history = [v for views in solver.history_views() for v in views]
    for view, (_, values) in zip(history, snap.read(state).history, strict=True):
        np.testing.assert_array_equal(view, values)
    for k in range(start, meta["iterations"]):
        feed(solver, inputs, k)
        solver.step(1)
        check_params(solver, expected, k + 1, tol)
    if start < meta["iterations"]:      # solver_sgd_step: Caffe says this restore is exact
        assert meta["restore_from_iter3_solverstate"]["bit_identical"]
