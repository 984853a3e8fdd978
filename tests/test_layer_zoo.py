"""BVLC Caffe's layer_zoo fixtures: outputs, diffs and param diffs of every layer reproduced."""
import json

import numpy as np
import pytest

import dist_caffe
from dist_caffe.testing.caffe_ref import compare, run_forward_backward

CASES = ["layer_zoo_a", "layer_zoo_b", "layer_zoo_c", "layer_zoo_d"]


@pytest.mark.parametrize("case", CASES)
def test_layer_zoo_matches_bvlc_caffe(conformance, case):
    case_dir = conformance / "caffe_ref" / case
    if not case_dir.is_dir():
        pytest.skip(f"{case} is not in {conformance / 'caffe_ref'}")
    meta = json.loads((case_dir / "case.json").read_text())
    missing = sorted(set(meta["layer_types"]) - set(dist_caffe.layer_types()))
    assert not missing, f"{case} needs layer types not registered: {', '.join(missing)}"
    actual, meta, net = run_forward_backward(case_dir)
    expected = np.load(case_dir / "expected.npz")
    problems = compare(actual, expected, meta)
    assert not problems, f"{case}: {len(problems)} of {len(expected.files)} arrays differ:\n" + \
        "\n".join(problems)
    assert net.loss == pytest.approx(meta["total_loss"], rel=1e-5, abs=1e-6)


def test_every_layer_zoo_case_is_listed(conformance):
    found = sorted(p.name for p in (conformance / "caffe_ref").glob("layer_zoo*") if p.is_dir())
    assert found == CASES, f"new layer_zoo cases to add to CASES: {sorted(set(found) - set(CASES))}"
