"""Tile: copies along one axis."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


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
    assert_cpu_gpu_parity(tile_text(1, 3),
                          bottoms=[np.random.default_rng(2).standard_normal((2, 3, 4))])
