"""Python layers written as pycaffe users write them (`import dist_caffe as caffe`)."""
import sys
import textwrap

import numpy as np
import pytest

import dist_caffe as caffe
from dist_caffe import backend
from dist_caffe.errors import ConfigError
from dist_caffe.testing import check_gradient, make_layer, setup_layer

# The seed's pycaffe example loss layer, exactly as a pycaffe user writes it; only
# `import caffe` became `import dist_caffe as caffe`.
PYLOSS = '''
import dist_caffe as caffe
import numpy as np


class EuclideanLossLayer(caffe.Layer):
    """
    Compute the Euclidean Loss in the same manner as the C++ EuclideanLossLayer
    to demonstrate the class interface for developing layers in Python.
    """

    def setup(self, bottom, top):
        # check input pair
        if len(bottom) != 2:
            raise Exception("Need two inputs to compute distance.")

    def reshape(self, bottom, top):
        # check input dimensions match
        if bottom[0].count != bottom[1].count:
            raise Exception("Inputs must have the same dimension.")
        # difference is shape of inputs
        self.diff = np.zeros_like(bottom[0].data, dtype=np.float32)
        # loss output is scalar
        top[0].reshape(1)

    def forward(self, bottom, top):
        self.diff[...] = bottom[0].data - bottom[1].data
        top[0].data[...] = np.sum(self.diff**2) / bottom[0].num / 2.

    def backward(self, top, propagate_down, bottom):
        for i in range(2):
            if not propagate_down[i]:
                continue
            if i == 0:
                sign = 1
            elif i == 1:
                sign = -1
            bottom[i].diff[...] = sign * self.diff / bottom[i].num
'''

# A layer with a learnable blob (y = a * x, one a per channel) and the pycaffe blob API.
PYSCALE = '''
import dist_caffe as caffe
import numpy as np


class ScaleLayer(caffe.Layer):
    def setup(self, bottom, top):
        self.factor = float(self.param_str or 1)
        self.blobs.add_blob(bottom[0].channels)
        self.blobs[0].data[...] = self.factor
        self.seen = (bottom[0].num, bottom[0].channels, bottom[0].height, bottom[0].width,
                     bottom[0].count, tuple(bottom[0].shape), self.phase)

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].shape)

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data * self.blobs[0].data[None, :, None, None]

    def backward(self, top, propagate_down, bottom):
        self.blobs[0].diff[...] += (top[0].diff * bottom[0].data).sum(axis=(0, 2, 3))
        if propagate_down[0]:
            bottom[0].diff[...] = top[0].diff * self.blobs[0].data[None, :, None, None]


class Broken(caffe.Layer):
    def setup(self, bottom, top):
        raise ValueError("param_str must name a mode")

    def reshape(self, bottom, top):
        pass
'''


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """pyloss.py and pyscale.py importable, as PYTHONPATH makes them for pycaffe."""
    (tmp_path / "pyloss.py").write_text(PYLOSS)
    (tmp_path / "pyscale.py").write_text(PYSCALE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("pyloss", "pyscale"):
        sys.modules.pop(name, None)


NET = """
name: 'linreg'
layer { name: 'data' type: 'Input' top: 'x' top: 'y'
        input_param { shape { dim: 64 dim: 3 } shape { dim: 64 dim: 1 } } }
layer { name: 'ip' type: 'InnerProduct' bottom: 'x' top: 'pred'
        inner_product_param { num_output: 1 weight_filler { type: 'gaussian' std: 0.1 } } }
layer { name: 'loss' type: 'Python' bottom: 'pred' bottom: 'y' top: 'loss'
        python_param { module: 'pyloss' layer: 'EuclideanLossLayer' } loss_weight: 1 }
"""


def test_python_euclidean_loss_trains_linear_regression_to_closed_form(modules):
    g = np.random.default_rng(0)
    x = g.standard_normal((64, 3)).astype(np.float32)
    y = (x @ np.array([1.5, -2.0, 0.5]) + 0.7 + 0.1 * g.standard_normal(64)).astype(np.float32)
    (modules / "net.prototxt").write_text(NET)
    (modules / "solver.prototxt").write_text(textwrap.dedent(f"""
        net: "{modules / 'net.prototxt'}"
        base_lr: 0.2 momentum: 0.9 lr_policy: "fixed" max_iter: 400
        display: 0 snapshot_after_train: false random_seed: 1
        """))
    caffe.set_mode_cpu()
    solver = caffe.SGDSolver(str(modules / "solver.prototxt"))
    solver.net.blobs["x"].data[...] = x
    solver.net.blobs["y"].data[...] = y[:, None]
    solver.step(400)
    design = np.hstack([x, np.ones((64, 1))]).astype(np.float64)
    closed_form, *_ = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)
    learned = np.append(solver.net.params["ip"][0].data.ravel(), solver.net.params["ip"][1].data)
    np.testing.assert_allclose(learned, closed_form, atol=2e-4)
    out = solver.net.forward()
    residual = design @ closed_form - y
    np.testing.assert_allclose(out["loss"], (residual ** 2).sum() / 64 / 2, rtol=1e-3)


def test_python_layer_matches_the_builtin_euclidean_loss(modules):
    g = np.random.default_rng(1)
    a, b = g.standard_normal((4, 3)), g.standard_normal((4, 3))
    py = make_layer("type: 'Python' python_param { module: 'pyloss' layer: 'EuclideanLossLayer' }"
                    " loss_weight: 1", dtype=np.float32)
    builtin = make_layer("type: 'EuclideanLoss'", dtype=np.float32)
    for layer in (py, builtin):
        bottom, top = setup_layer(layer, [a, b])
        layer.forward(bottom, top)
        layer.backward(top, [True, True], bottom)
        layer.result = (top[0].data.copy(), bottom[0].diff.copy(), bottom[1].diff.copy())
    for got, want in zip(py.result, builtin.result):
        np.testing.assert_allclose(got.ravel(), want.ravel(), rtol=1e-6)


def test_python_layer_learnable_blob_gradient_and_blob_api(modules):
    layer = make_layer("type: 'Python' python_param { module: 'pyscale' layer: 'ScaleLayer' "
                       "param_str: '0.5' }")
    check_gradient(layer, bottom_shapes=[(2, 3, 4, 5)])
    assert len(layer.blobs) == 1 and layer.blobs[0].shape == (3,)
    assert layer.impl.factor == 0.5
    assert layer.impl.seen == (2, 3, 4, 5, 120, (2, 3, 4, 5), caffe.TRAIN)


def test_python_layer_blobs_are_learned_by_the_net(modules):
    net = caffe.Net("""
        layer { name: 'in' type: 'Input' top: 'x' input_param { shape { dim: 2 dim: 3 dim: 1 dim: 1 } } }
        layer { name: 's' type: 'Python' bottom: 'x' top: 'y' loss_weight: 1
                python_param { module: 'pyscale' layer: 'ScaleLayer' param_str: '2' } }
        """, caffe.TRAIN)
    net.blobs["x"].data[...] = np.arange(6.0).reshape(2, 3, 1, 1)
    net.forward()
    net.backward()
    np.testing.assert_allclose(net.params["s"][0].data, 2.0)
    np.testing.assert_allclose(net.params["s"][0].diff, [3.0, 5.0, 7.0])


@pytest.mark.parametrize("python_param, match", [
    ("module: 'no_such_module_xyz' layer: 'L'", r"'s'.*no_such_module_xyz.*ModuleNotFoundError"),
    ("module: 'pyscale' layer: 'Missing'", r"'s'.*python_param.layer.*Missing"),
    ("module: 'pyscale' layer: 'Broken'", r"'s'.*setup\(\).*ValueError: param_str must name a mode"),
    ("module: 'pyscale'", r"'s'.*python_param"),
])
def test_python_layer_errors_name_the_layer_and_the_python_error(modules, python_param, match):
    with pytest.raises(ConfigError, match=match):
        caffe.Net(f"""
            layer {{ name: 'in' type: 'Input' top: 'x' input_param {{ shape {{ dim: 2 dim: 3 dim: 1 dim: 1 }} }} }}
            layer {{ name: 's' type: 'Python' bottom: 'x' top: 'y' python_param {{ {python_param} }} }}
            """, caffe.TRAIN)


def test_python_layer_reshape_error_is_a_config_error(modules):
    layer = make_layer("type: 'Python' python_param { module: 'pyloss' layer: 'EuclideanLossLayer' }")
    with pytest.raises(ConfigError, match="Inputs must have the same dimension"):
        setup_layer(layer, [np.ones((2, 3)), np.ones((2, 4))])


@pytest.mark.gpu
def test_python_layer_sees_host_arrays_on_the_gpu(modules):
    backend.set_mode_gpu()
    try:
        layer = make_layer("type: 'Python' python_param { module: 'pyscale' layer: 'ScaleLayer' "
                           "param_str: '3' }")
        bottom, top = setup_layer(layer, [np.ones((2, 3, 1, 1))])
        layer.run_forward(bottom, top)
        np.testing.assert_allclose(backend.to_cpu(top[0].data), 3.0)
    finally:
        backend.set_mode_cpu()
