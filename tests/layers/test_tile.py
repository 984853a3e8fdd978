"""Tile: copies along one axis."""
import numpy as np
import pytest

from dist_caffe import backend
from dist_caffe.errors import ConfigError
from dist_caffe.testing import check_gradient, make_layer, run_layer, setup_layer


def assert_cpu_gpu_parity(text, bottoms, down=None, seed=0):
    """Forward and backward of the layer `text` (float64) agree on the CPU and the GPU."""
    def run():
        layer = make_layer(text)
        bottom, top = setup_layer(layer, bottoms, seed=seed)
        layer.reshape(bottom, top)
        layer.run_forward(bottom, top)
        for k, t in enumerate(top):
            t.diff = np.random.default_rng(k).standard_normal(t.shape)
        flags = [True] * len(bottom) if down is None else down
        layer.run_backward(top, flags, bottom)
        arrays = [t.data for t in top] + [b.diff for b, f in zip(bottom, flags) if f]
        return [backend.to_cpu(a) for a in arrays + [b.diff for b in layer.blobs]]

    cpu = run()
    backend.set_mode_gpu()
    try:
        gpu = run()
    finally:
        backend.set_mode_cpu()
    for a, b in zip(cpu, gpu, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


def tile_text(axis, tiles):
    return f"type: 'Tile' tile_param {{ axis: {axis} tiles: {tiles} }}"


@pytest.mark.parametrize("axis, tiles", [(0, 2), (1, 3), (2, 2), (-1, 4)])
def test_tile_forward_matches_numpy(axis, tiles):
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    (y,) = run_layer(make_layer(tile_text(axis, tiles)), [x])
    a = axis % 3
    reps = [1] * 3
    reps[a] = tiles
    # Caffe tiles the whole block of axes from the tiled axis on: np.tile, not np.repeat.
    np.testing.assert_array_equal(y, np.tile(x, reps))


@pytest.mark.parametrize("axis, tiles", [(0, 2), (1, 3), (-1, 2)])
def test_tile_gradient(axis, tiles):
    check_gradient(make_layer(tile_text(axis, tiles)), bottom_shapes=[(2, 3, 4)])


@pytest.mark.parametrize("text, field", [(tile_text(3, 2), "tile_param.axis"),
                                         (tile_text(-4, 2), "tile_param.axis"),
                                         (tile_text(1, 0), "tile_param.tiles"),
                                         ("type: 'Tile'", "tile_param.tiles")])
def test_tile_bad_config_names_field(text, field):
    with pytest.raises(ConfigError, match=field):
        setup_layer(make_layer(text), [np.ones((2, 3, 4))])


@pytest.mark.gpu
def test_tile_cpu_gpu_parity():
    assert_cpu_gpu_parity(tile_text(1, 3), [np.random.default_rng(2).standard_normal((2, 3, 4))])
