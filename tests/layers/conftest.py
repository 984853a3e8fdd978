"""Helpers the layer tests share (imported as `from .conftest import ...`): a layer of a BVLC
Caffe fixture net and the tolerance for comparing with it, one in-place pass, broadcasting."""
import numpy as np

from dist_caffe.blob import Blob
from dist_caffe.layer import TRAIN, create_layer
from dist_caffe.proto import read_net_param
from dist_caffe.testing import make_layer


def caffe_layer(conformance, case, name):
    """Layer `name` of a BVLC Caffe fixture net (float32, TRAIN) and the arrays Caffe wrote."""
    folder = conformance / "caffe_ref" / case
    lp = next(lp for lp in read_net_param(str(folder / "net.prototxt")).layer if lp.name == name)
    return create_layer(lp, phase=TRAIN, dtype=np.float32), np.load(folder / "expected.npz")


def assert_caffe_close(actual, expected):
    """Agreement with a float32 BVLC Caffe array: rtol 1e-4, atol 1e-5 of its largest value."""
    atol = 1e-5 * np.abs(expected).max() + 1e-7
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=atol)


def check_against_caffe(layer, ref, name):
    """Feed `layer` Caffe's input, params and top diff for layer `name`; its top and param
    diffs must match Caffe's. Returns the bottom blobs (their diffs for the caller to check)."""
    from dist_caffe.testing import setup_layer
    bottom, top = setup_layer(layer, [ref[f"data/{layer.param.bottom[0]}"]])
    for j, blob in enumerate(layer.blobs):
        blob.data[...] = ref[f"param/{name}/{j}"]
    layer.forward(bottom, top)
    top[0].diff[...] = ref[f"diff/{name}"]
    layer.backward(top, [True], bottom)
    assert_caffe_close(top[0].data, ref[f"data/{name}"])
    for j, blob in enumerate(layer.blobs):
        assert_caffe_close(blob.diff, ref[f"param_diff/{name}/{j}"])
    return bottom


def run_in_place(text, x, dy):
    """Set the layer `text` up with top[0] = bottom[0], one float64 blob holding x; forward,
    then backward from top diff dy. Returns the blob: its data is the top, its diff the bottom
    gradient."""
    blob, layer = Blob(np.shape(x), np.float64), make_layer(text)
    blob.data[...] = x
    layer.setup([blob], [blob])
    layer.forward([blob], [blob])
    blob.diff[...] = dy
    layer.backward([blob], [True], [blob])
    return blob


def spread(operand, ndim, axis):
    """operand reshaped to broadcast over an ndim array from `axis`."""
    operand = np.asarray(operand)
    return operand.reshape((1,) * axis + operand.shape + (1,) * (ndim - axis - operand.ndim))


def onednn_refuses(call):
    """A stand-in for a oneDNN plan class that fails as the library does when it has no
    implementation (status 3) for `call`."""
    from dist_caffe import onednn

    def refuse(*args, **kwargs):
        raise onednn.OneDNNError(f"oneDNN {call} failed: unimplemented (3)")
    return refuse
