"""Silence: swallows bottoms, no tops, zero diffs where asked."""
import numpy as np
import pytest

from dist_caffe import backend
from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.testing import check_gradient, make_layer, setup_layer


def test_no_tops_and_zero_diffs_where_asked():
    layer = make_layer("type: 'Silence'")
    bottom, top = setup_layer(layer, [np.ones((2, 3)), np.ones(4), np.ones((1, 2, 3))], num_top=0)
    assert top == []
    layer.forward(bottom, top)
    for b in bottom:
        b.diff[...] = 5
    layer.backward(top, [True, False, True], bottom)
    assert np.all(bottom[0].diff == 0) and np.all(bottom[1].diff == 5) and np.all(bottom[2].diff == 0)
    assert all(np.all(b.data == 1) for b in bottom)  # forward leaves the data alone


def test_gradient_is_zero():
    check_gradient(make_layer("type: 'Silence'"), bottom_shapes=[(2, 3), (4,)], num_top=0)


def test_blob_counts_are_checked():
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'Silence'"), [], num_top=0)
    with pytest.raises(ConfigError, match="top"):
        setup_layer(make_layer("type: 'Silence'"), [np.ones(2)], num_top=1)


@pytest.mark.gpu
@pytest.mark.skipif(not backend.has_gpu(), reason="no CUDA GPU")
def test_gpu_diffs_are_zeroed():
    backend.set_mode_gpu()
    try:
        layer = make_layer("type: 'Silence'")
        bottom = [Blob((2, 3), np.float64)]
        bottom[0].diff = np.full((2, 3), 4.0)
        layer.setup(bottom, [])
        layer.run_forward(bottom, [])
        layer.run_backward([], [True], bottom)
        assert np.all(backend.to_cpu(bottom[0].diff) == 0)
    finally:
        backend.set_mode_cpu()
