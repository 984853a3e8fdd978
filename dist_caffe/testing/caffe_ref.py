"""Run a forward/backward case written by BVLC Caffe (../shared/conformance/caffe_ref/<case>).

A case holds net.prototxt, weights.caffemodel, inputs.npz, expected.npz and case.json (phase,
where backward starts, tolerance); see that folder's README for the comparison rule.
"""
import json
import re
from pathlib import Path

import numpy as np

from .. import backend
from ..layer import TEST, TRAIN
from ..net import Net


def load_case(case_dir):
    case_dir = Path(case_dir)
    return json.loads((case_dir / "case.json").read_text())


def backward_start(case):
    """The layer name of `net.backward(start='...')` in the case's pycaffe calls, or None."""
    for call in case.get("pycaffe_calls", []):
        m = re.search(r"net\.backward\(start='([^']+)'\)", call)
        if m:
            return m.group(1)
    return None




def compare(actual, expected, case):
    """Mismatch messages for every key of expected (empty when everything matches)."""
    tol = case.get("tolerance", {})
    rtol = tol.get("rtol", 1e-4)
    problems = []
    for key in expected.files if hasattr(expected, "files") else expected:
        exp = np.asarray(expected[key], dtype=np.float64)
        if key not in actual:
            problems.append(f"{key}: missing")
            continue
        got = np.asarray(actual[key], dtype=np.float64)
        if got.shape != exp.shape:
            problems.append(f"{key}: shape {got.shape} != expected {exp.shape}")
            continue
        maxabs = float(np.abs(exp).max()) if exp.size else 0.0
        if "atol_rel_to_maxabs" in tol:
            atol = tol["atol_rel_to_maxabs"] * maxabs + 1e-7
        elif key.startswith(("diff/", "param_diff/")) and "1e-4 * max" in tol.get("rule", ""):
            atol = 1e-4 * maxabs
        elif key.startswith("param_diff/"):
            atol = 1e-5 * maxabs
        else:
            atol = tol.get("atol", 1e-5)
        if not np.allclose(got, exp, rtol=rtol, atol=atol):
            err = np.abs(got - exp).max()
            problems.append(f"{key}: max abs error {err:.3g} (max|expected| {maxabs:.3g}, atol {atol:.3g})")
    return problems


def run_forward_backward(case_dir, net_file="net.prototxt", weights="weights.caffemodel"):
    """Build, load, feed, forward, backward as the case did (on the current device: call
    set_mode_gpu() first for the GPU); returns (actual dict of numpy arrays, case, net)."""
    case_dir = Path(case_dir)
    case = load_case(case_dir)
    phase = TRAIN if case.get("phase", "TRAIN") == "TRAIN" else TEST
    net = Net(str(case_dir / net_file), phase, weights=str(case_dir / weights))
    inputs = np.load(case_dir / "inputs.npz")
    for name in inputs.files:
        net.blobs[name].reshape(inputs[name].shape)
        net.blobs[name].data[...] = inputs[name]
    net.clear_param_diffs()
    net.forward()
    net.backward(start=backward_start(case))
    actual = {}
    for name, blob in net.blobs.items():
        actual[f"data/{name}"] = backend.to_cpu(blob.data).copy()
        actual[f"diff/{name}"] = backend.to_cpu(blob.diff).copy()
    for lname, blobs in net.params.items():
        for i, blob in enumerate(blobs):
            actual[f"param/{lname}/{i}"] = backend.to_cpu(blob.data).copy()
            actual[f"param_diff/{lname}/{i}"] = backend.to_cpu(blob.diff).copy()
    return actual, case, net
