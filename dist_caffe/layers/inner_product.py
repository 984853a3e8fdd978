"""InnerProduct: a fully connected layer, one GEMM over the batch."""
import math

import numpy as np
from scipy.linalg import blas

from .. import filler
from ..backend import get_array_module
from ..layer import Layer, register_layer


@register_layer
class InnerProductLayer(Layer):
    """y = x W^T + b, with x flattened to (M, K): M = the product of the axes before `axis`,
    K = the product of the axes from `axis` on; top shape = bottom.shape[:axis] + (num_output,).

    Reads inner_product_param: num_output, bias_term, axis (default 1), transpose (weights
    stored (K, num_output) instead of (num_output, K)), weight_filler, bias_filler.
    """
    type = "InnerProduct"
    in_place = False
    exact_num_bottom = exact_num_top = 1

    def layer_setup(self, bottom, top):
        p = self.param.inner_product_param
        self.num_output, self.bias_term, self.transpose = p.num_output, p.bias_term, p.transpose
        if self.num_output < 1:
            raise self.error("num_output", f"must be positive, found {self.num_output}")
        self.axis = self._axis(bottom[0])
        self.K = math.prod(bottom[0].shape[self.axis:])
        shape = (self.K, self.num_output) if self.transpose else (self.num_output, self.K)
        self.blobs = [filler.fill(self.new_blob(shape), p.weight_filler)]
        if self.bias_term:
            self.blobs.append(filler.fill(self.new_blob((self.num_output,)), p.bias_filler))

    def _axis(self, blob):
        axis = self.param.inner_product_param.axis
        try:
            return blob.canonical_axis_index(axis)
        except IndexError:
            raise self.error("axis", f"{axis} is out of range for the {blob.num_axes}-D input "
                                     f"{blob.shape}") from None

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        axis = self._axis(bottom[0])
        k = math.prod(shape[axis:])
        if k != self.K:
            raise self.error("bottom", f"input {shape} flattens from axis {axis} to {k} values, "
                                       f"but the weights were set up for {self.K}; the input "
                                       "size cannot change after set-up")
        self.M = math.prod(shape[:axis])
        top[0].reshape(shape[:axis] + (self.num_output,))

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(self.M, self.K)
        w = self.blobs[0].data
        y = top[0].data.reshape(self.M, self.num_output)
        get_array_module(x).matmul(x, w if self.transpose else w.T, out=y)
        if self.bias_term:
            y += self.blobs[1].data

    def backward(self, top, propagate_down, bottom):
        x = bottom[0].data.reshape(self.M, self.K)
        dy = top[0].diff.reshape(self.M, self.num_output)
        w = self.blobs[0].data
        if self.param_propagate_down[0]:
            wdiff = self.blobs[0].diff
            a, b = (x.T, dy) if self.transpose else (dy.T, x)
            if get_array_module(x) is np and wdiff.dtype in (np.float32, np.float64):
                accumulate_product(a, b, wdiff)
            else:
                wdiff += a @ b
        if self.bias_term and self.param_propagate_down[1]:
            bdiff = self.blobs[1].diff
            bdiff += dy.sum(axis=0)
        if propagate_down[0]:
            get_array_module(x).matmul(dy, w.T if self.transpose else w,
                                       out=bottom[0].diff.reshape(self.M, self.K))


def accumulate_product(a, b, c):
    """c += a @ b in place, as the BLAS's beta = 1 (numpy's `c += a @ b` makes and adds a
    temporary the size of c: CaffeNet's fc6 weight gradient, 4096 x 9216, took 57-97 ms
    that way and 24 ms in place). c: C-contiguous float32/float64."""
    gemm = blas.sgemm if c.dtype == np.float32 else blas.dgemm
    # The Fortran routine sees c's memory as c.T (column-major): c.T += b.T @ a.T.
    out = gemm(1.0, b.T, a.T, beta=1.0, c=c.T, overwrite_c=True)
    if not np.shares_memory(out, c):   # a copy was made after all: write it back
        c.T[...] = out
