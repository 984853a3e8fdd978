"""Convolution: N-D, grouped, strided, padded, dilated; as patch matrices and GEMMs."""
import math

import numpy as np

from .. import filler, onednn
from ..backend import get_array_module
from ..im2col import ConvGeometry, as_tuple, col2im, im2col, im2row
from ..layer import Layer, register_layer
from ..proto import caffe_pb2

# Bound on one layer's im2col matrix: a batch whose matrix would be larger runs in chunks of
# images (and its backward then redoes im2col instead of keeping the forward's matrix).
COL_BUFFER_BYTES = 256 << 20
# Outputs at most this wide put the batch innermost in the im2col columns (see im2col.py):
# measured up to 2x faster for 8x8 to 16x16 outputs (LeNet, CIFAR, AlexNet's conv3-5), about
# even near 27x27, slower from 32x32 on.
BATCH_INNER_MAX_WIDTH = 16
# On the CPU a batch runs through im2row (channels-last patches, see im2col.py) a few images at
# a time, as many as fit this many bytes of patch matrix: the matrix then stays in cache
# between its copy and its GEMM. Measured on CIFAR-10 quick's conv2 (32x16x16, 5x5, batch
# 100): forward 31 -> 22 ms, backward 54 -> 43 ms against whole-batch im2col; 0.5-8 MB
# chunks tried on conv2 and conv3, 4 MB best for both.
ROW_CHUNK_BYTES = 4 << 20
# ... when a group has at least this many channels (im2row copies runs of kernel width x
# channels floats, im2col runs of output width: CIFAR's 3-channel conv1 took 24 ms backward
# through im2row, 12 through im2col) and the input gradient is a correlation (see reshape).
ROWS_MIN_CHANNELS = 16
# ... and when dy's patches (num_output / group x kernel positions per row, what the input
# gradient's correlation copies) are at most this wide. Measured (batch x C -> O, k, input):
# im2row ahead for 100x32->64 5x5 8x8 (1600 wide: 54 vs 63 ms fwd+bwd), 16x128->128 3x3 28x28
# (1152: 144 vs 154), even for 8x64->64 3x3 56x56 (576); behind for CaffeNet's 16x256->384 3x3
# 13x13 (3456: 179 vs 169) and 16x96->256 5x5 27x27 (6400: 550 vs 517).
ROWS_MAX_DY_COLUMNS = 2048
# oneDNN (see onednn.py) runs float32 CPU convolutions; on one thread only those with at least
# this many input channels per group, numpy the others. (On more threads it runs them all:
# numpy's BLAS is then down to one thread, see onednn.assign_threads; CIFAR-10 quick on 2
# threads, 110 ms against 138.) Measured ms (1 thread, oneDNN vs numpy) of forward / weight
# gradient / input gradient: LeNet conv1 (1 channel) 1.8 vs 2.3 / 8.8 vs 1.7 / -, conv2 (20)
# 4.7 vs 5.5 / 6.3 vs 4.2 / 7.7 vs 6.6 (numpy shares one im2col between its passes), CIFAR
# conv1 (3) 8.8 vs 16.4 / 14.3 vs 12.9 / -, conv2 (32) 16 vs 25 / 20 vs 26 / 16 vs 25, conv3
# (32) 9.5 vs 16.7 / 10.2 vs 14.7 / 9.2 vs 21.6, CaffeNet conv2 (48) 79 vs 113 / 97 vs 106 /
# 80 vs 157, conv4 (192) 49 vs 60 / 60 vs 65 / 50 vs 61; conv3 (256) is the exception left
# (62 vs 63 / 77 vs 58 / 60 vs 69).
ONEDNN_MIN_CHANNELS = 32


def read_spatial(layer, param, field, nd, default, hw=None):
    """One value per spatial axis from a repeated field (one value for all axes, or one per
    axis) or from its 2-D-only `<name>_h`/`<name>_w` pair; `default` when neither is set."""
    values = list(getattr(param, field))
    if hw and any(param.HasField(f) for f in hw):
        if nd != 2:
            raise layer.error("/".join(hw), f"only for 2-D inputs, this one has {nd} spatial axes; "
                                            f"use the repeated field {field} instead")
        if values:
            raise layer.error(field, f"set either {field} or {'/'.join(hw)}, not both")
        if default is None and not all(param.HasField(f) for f in hw):
            raise layer.error("/".join(hw), "a non-square kernel needs both kernel_h and kernel_w")
        return tuple(int(getattr(param, f)) for f in hw)
    if not values:
        if default is None:
            raise layer.error(field, f"is required (found none); set {field} "
                                     f"(or {'/'.join(hw)} for 2-D)")
        return (default,) * nd
    if len(values) not in (1, nd):
        raise layer.error(field, f"{len(values)} values for {nd} spatial axes; give one value "
                                 f"for all axes or one per axis")
    return as_tuple(values, nd)


def read_conv_geometry(layer, bottom, field_prefix=""):
    """Set layer.axis, .kernel, .stride, .pad, .dilation from convolution_param for `bottom`
    (Convolution, Deconvolution and Im2col read them alike); errors name field_prefix+field."""
    p, shape = layer.param.convolution_param, bottom.shape
    try:
        layer.axis = bottom.canonical_axis_index(p.axis)
    except IndexError:
        raise layer.error(field_prefix + "axis", f"{p.axis} is out of range for a "
                                                 f"{len(shape)}-D input {shape}") from None
    nd = len(shape) - layer.axis - 1
    if nd < 1:
        raise layer.error(field_prefix + "axis", f"{p.axis} leaves no spatial axis in the input "
                                                 f"{shape}; the channel axis must come before "
                                                 "the spatial ones")
    layer.kernel = read_spatial(layer, p, "kernel_size", nd, None, ("kernel_h", "kernel_w"))
    layer.stride = read_spatial(layer, p, "stride", nd, 1, ("stride_h", "stride_w"))
    layer.pad = read_spatial(layer, p, "pad", nd, 0, ("pad_h", "pad_w"))
    layer.dilation = read_spatial(layer, p, "dilation", nd, 1)
    for field, values in (("kernel_size", layer.kernel), ("stride", layer.stride),
                          ("dilation", layer.dilation)):
        if min(values) < 1:
            raise layer.error(field_prefix + field,
                              f"must be positive on every axis, found {values}")


@register_layer
class ConvolutionLayer(Layer):
    """y = W * x + b (cross-correlation) over the spatial axes after `axis`, per group.

    Reads convolution_param: num_output, bias_term, kernel_size | kernel_h/kernel_w,
    stride | stride_h/stride_w (default 1), pad | pad_h/pad_w (default 0), dilation (default
    1), group, axis (the channel axis; earlier axes are the batch), weight_filler, bias_filler.
    Weights are (num_output, channels / group, *kernel), bias (num_output,). Output length
    per axis: (in + 2 pad - (dilation (k - 1) + 1)) / stride + 1. Each bottom gets its top.
    """
    type = "Convolution"
    in_place = False
    min_bottom = min_top = 1
    equal_num_bottom_top = True
    # "onednn": float32 numpy arrays go through oneDNN's convolutions (see onednn.py) unless
    # convolution_param says engine: CAFFE or the library is missing, and through "rows"
    # otherwise; "rows": numpy arrays go through im2row in cache-sized chunks; "cols": through
    # im2col over the whole batch, the layout the GPU kernels use (also selectable on the CPU).
    cpu_layout = "onednn"

    def layer_setup(self, bottom, top):
        p = self.param.convolution_param
        shape = bottom[0].shape
        read_conv_geometry(self, bottom[0])
        self.channels, self.num_output, self.group = shape[self.axis], p.num_output, p.group
        if self.num_output < 1:
            raise self.error("num_output", f"must be positive, found {self.num_output}")
        if self.group < 1 or self.channels % self.group or self.num_output % self.group:
            raise self.error("group", f"{self.group} must divide both the input channels "
                                      f"({self.channels}) and num_output ({self.num_output})")
        self.bias_term = p.bias_term
        self.blobs = [filler.fill(self.new_blob(self.weight_shape()), p.weight_filler)]
        if self.bias_term:
            self.blobs.append(filler.fill(self.new_blob((self.num_output,)), p.bias_filler))
        self._buffers = {}
        self._col_valid = False
        self._plan, self._plan_key = None, None

    def weight_shape(self):
        return (self.num_output, self.channels // self.group) + self.kernel

    def check_bottoms(self, bottom):
        """The bottoms share one shape that fits the channels and spatial axes set up for."""
        shape = bottom[0].shape
        if len(shape) != self.axis + 1 + len(self.kernel) or shape[self.axis] != self.channels:
            raise self.error("bottom", f"input shape {shape} does not fit this layer, set up for "
                                       f"{self.channels} channels at axis {self.axis} and "
                                       f"{len(self.kernel)} spatial axes")
        for b in bottom[1:]:
            if b.shape != shape:
                raise self.error("bottom", f"all bottoms need the same shape: {b.shape} vs {shape}")

    def reshape(self, bottom, top):
        self.check_bottoms(bottom)
        shape = bottom[0].shape
        self.num = math.prod(shape[:self.axis])
        self.geometry = g = ConvGeometry(shape[self.axis + 1:], self.kernel, self.stride,
                                         self.pad, self.dilation)
        if min(g.out) < 1:
            raise self.error("kernel_size", f"the (dilated) kernel {self.kernel} is larger than "
                                            f"the padded input {g.size} (pad {self.pad})")
        for t in top:
            t.reshape(shape[:self.axis] + (self.num_output,) + g.out)
        self.batch_inner = self.num > 1 and g.out[-1] <= BATCH_INNER_MAX_WIDTH
        # A 1x1 kernel at stride 1 without pad needs no im2col: x itself is the column matrix.
        self.is_1x1 = g.kernel_count == 1 and set(g.stride) == {1} and not any(g.pad)
        per_image = self.channels * g.kernel_count * g.out_count * bottom[0].dtype.itemsize

        def spans(budget):   # [n0, n1) runs of images whose patch matrix fits `budget` bytes
            step = max(1, min(self.num, budget // max(per_image, 1)))
            return [(n, min(n + step, self.num)) for n in range(0, self.num, step)]
        self.chunks, self.row_chunks = spans(COL_BUFFER_BYTES), spans(ROW_CHUNK_BYTES)
        # With stride 1 and pad <= d (k - 1) on every axis, the input gradient is itself a
        # convolution: of dy, padded by d (k - 1) - pad, with the flipped, transposed kernel.
        # It costs a GEMM per input position instead of per output position: worth it for
        # "same" convolutions (CIFAR's 5x5 pad 2), not for "valid" ones (LeNet's conv2, 12x12
        # -> 8x8: 2.3x the FLOPs; 13.6 ms backward against 9.6 through im2col + col2im).
        self.backward_by_correlation = g.out_count >= math.prod(g.size) and all(
            s == 1 and p <= d * (k - 1) for s, p, d, k in zip(g.stride, g.pad, g.dilation,
                                                              g.kernel))
        self._col_valid = False

    # -- helpers -------------------------------------------------------------
    def _buffer(self, name, shape, like):
        """A scratch array of `shape` kept between calls (grown when too small)."""
        xp, size = get_array_module(like), math.prod(shape)
        buf = self._buffers.get(name)
        if (buf is None or buf.size < size or buf.dtype != like.dtype
                or get_array_module(buf) is not xp):
            buf = self._buffers[name] = xp.empty(size, dtype=like.dtype)
        return buf[:size].reshape(shape)

    def _im2col(self, x):
        g = self.geometry
        col = self._buffer("col", g.col_shape(x.shape[0], self.channels), x)
        return im2col(x, g, self.batch_inner, out=col)

    def _to_images(self, mat, n):
        """View of a (O, columns) GEMM result as (n, O, P) in the layer's column order."""
        o, p = mat.shape[0], self.geometry.out_count
        if self.batch_inner:
            return mat.reshape(o, p, n).transpose(2, 0, 1)
        return mat.reshape(o, n, p).transpose(1, 0, 2)

    def _per_image(self, xp):
        """numpy, columns ordered (n, position): GEMMs run per image, reading and writing the
        images' own (O, P) blocks, with no transposed copy of y or dy (CIFAR conv1: 3 ms of
        its 26)."""
        return xp is np and not self.batch_inner

    def _use_rows(self, xp):
        return (xp is np and self.cpu_layout in ("rows", "onednn") and not self.is_1x1
                and self.backward_by_correlation
                and self.channels // self.group >= ROWS_MIN_CHANNELS
                and self.num_output // self.group * self.geometry.kernel_count
                <= ROWS_MAX_DY_COLUMNS)

    def _engine_plan(self, x):
        """The oneDNN plan of this layer's geometry when oneDNN runs it (float32 numpy
        arrays, cpu_layout "onednn", engine not CAFFE, the library loaded, and enough
        channels or more than one thread), else None."""
        if (self.cpu_layout != "onednn" or type(x) is not np.ndarray or x.dtype != np.float32
                or self.param.convolution_param.engine == caffe_pb2.ConvolutionParameter.CAFFE
                or not 1 <= self.geometry.nd <= 3 or not onednn.available()
                or self.channels // self.group < ONEDNN_MIN_CHANNELS and onednn.threads() == 1):
            return None
        g = self.geometry
        return onednn.layer_plan(self, (self.num, x.shape[self.axis:]), lambda: onednn.ConvPlan(
            (self.num, self.channels) + g.size, self.weight_shape(),
            (self.num, self.num_output) + g.out, self.group, g.stride, g.pad, g.dilation,
            self.bias_term))

    def _forward_engine(self, plan, bottom, top):
        g = self.geometry
        b = self.blobs[1].data if self.bias_term else None
        for bt, t in zip(bottom, top):
            plan.forward(bt.data.reshape((self.num, self.channels) + g.size),
                         self.blobs[0].data, b,
                         t.data.reshape((self.num, self.num_output) + g.out))
        self._col_valid = False

    def _backward_engine(self, plan, top, propagate_down, bottom):
        g = self.geometry
        need_w = self.param_propagate_down[0]
        need_b = self.bias_term and self.param_propagate_down[1]
        for i, (t, b) in enumerate(zip(top, bottom)):
            dx = b.diff.reshape((self.num, self.channels) + g.size) if propagate_down[i] else None
            if not (need_w or need_b or dx is not None):
                continue
            plan.backward(b.data.reshape((self.num, self.channels) + g.size),
                          self.blobs[0].data, t.diff.reshape((self.num, self.num_output) + g.out),
                          need_w or need_b, dx)
            if need_w:   # param diffs accumulate (shared weights, iter_size)
                self.blobs[0].diff[...] += plan.dw
            if need_b:
                self.blobs[1].diff[...] += plan.db

    # -- forward / backward --------------------------------------------------
    def forward(self, bottom, top):
        xp = get_array_module(bottom[0].data)
        plan = self._engine_plan(bottom[0].data)
        if plan is not None:
            return self._forward_engine(plan, bottom, top)
        if self._use_rows(xp):
            return self._forward_rows(bottom, top)
        g, G, O = self.geometry, self.group, self.num_output
        w = self.blobs[0].data.reshape(G, O // G, -1)
        for b, t in zip(bottom, top):
            x = b.data.reshape((self.num, self.channels) + g.size)
            y = t.data.reshape(self.num, O, g.out_count)
            if self.is_1x1:   # one batched GEMM straight from x into y
                xp.matmul(w, x.reshape(self.num, G, -1, g.out_count),
                          out=y.reshape(self.num, G, O // G, -1))
                if self.bias_term:
                    y += self.blobs[1].data.reshape(O, 1)
                continue
            for n0, n1 in self.chunks:
                col = self._im2col(x[n0:n1])
                if self._per_image(xp):
                    n = n1 - n0
                    xp.matmul(w, col.reshape(G, -1, n, g.out_count).transpose(2, 0, 1, 3),
                              out=y[n0:n1].reshape(n, G, O // G, -1))
                    if self.bias_term:
                        y[n0:n1] += self.blobs[1].data.reshape(O, 1)
                    continue
                ymat = self._buffer("y", (G, O // G, col.shape[1]), x)
                xp.matmul(w, col.reshape(G, -1, col.shape[1]), out=ymat)
                images = self._to_images(ymat.reshape(O, -1), n1 - n0)
                if self.bias_term:
                    xp.add(images, self.blobs[1].data.reshape(O, 1), out=y[n0:n1])
                else:
                    xp.copyto(y[n0:n1], images)
        self._col_valid = len(bottom) == 1 and len(self.chunks) == 1 and not self.is_1x1

    def backward(self, top, propagate_down, bottom):
        xp = get_array_module(top[0].diff)
        plan = self._engine_plan(bottom[0].data)
        if plan is not None:
            return self._backward_engine(plan, top, propagate_down, bottom)
        if self.bias_term and self.param_propagate_down[1]:   # the same in either layout
            for t in top:
                self.blobs[1].diff[...] += t.diff.reshape(self.num, self.num_output,
                                                          -1).sum(axis=2).sum(axis=0)
        if self._use_rows(xp):
            return self._backward_rows(top, propagate_down, bottom)
        g, G, O = self.geometry, self.group, self.num_output
        need_w = self.param_propagate_down[0]
        w = self.blobs[0].data.reshape(G, O // G, -1)
        for i, (t, b) in enumerate(zip(top, bottom)):
            need_x = propagate_down[i]
            dy = t.diff.reshape(self.num, O, g.out_count)
            x = b.data.reshape((self.num, self.channels) + g.size)
            dx = b.diff.reshape((self.num, self.channels) + g.size) if need_x else None
            if need_x and self.is_1x1:
                xp.matmul(w.transpose(0, 2, 1), dy.reshape(self.num, G, O // G, -1),
                          out=dx.reshape(self.num, G, -1, g.out_count))
                need_x = False
            if not (need_w or need_x):
                continue
            wdiff = self.blobs[0].diff.reshape(G, O // G, -1)
            for n0, n1 in self.chunks:
                n = n1 - n0
                col = None
                if need_w:
                    col = (self._buffer("col", g.col_shape(n, self.channels), x) if self._col_valid
                           else self._im2col(x[n0:n1]))
                if need_w and not need_x and self._per_image(xp):   # dW alone: per image
                    wdiff += xp.matmul(dy[n0:n1].reshape(n, G, O // G, -1),
                                       col.reshape(G, -1, n, g.out_count).transpose(2, 0, 3, 1)
                                       ).sum(axis=0)
                    continue
                dymat = self._buffer("y", (O, n * g.out_count), dy)
                xp.copyto(self._to_images(dymat, n), dy[n0:n1])
                dymat = dymat.reshape(G, O // G, -1)
                if need_w:
                    col = col.reshape(G, -1, col.shape[1])
                    wdiff += xp.matmul(dymat, col.transpose(0, 2, 1))
                if need_x:
                    dcol = self._buffer("col", g.col_shape(n, self.channels), dy)
                    self._col_valid = False
                    xp.matmul(w.transpose(0, 2, 1), dymat, out=dcol.reshape(G, -1, dcol.shape[1]))
                    col2im(dcol, g, n, self.channels, self.batch_inner, out=dx[n0:n1])

    # -- the CPU path: channels-last patches, a few images at a time -----------------------
    def _row_weights(self):
        """W as (G, K*Cg, Og): [g, (k, c), o] = W[g*Og + o, c, k], the im2row column order."""
        G, O, K = self.group, self.num_output, self.geometry.kernel_count
        w = self.blobs[0].data.reshape(G, O // G, -1, K)
        return np.ascontiguousarray(w.transpose(0, 3, 2, 1)).reshape(G, -1, O // G)

    def _grouped_matmul(self, a, b, out):
        """out[:, g block] = a[:, g block] @ b[g] for each group (a, out: 2-D, b: (G, ., .))."""
        G, ka, ko = self.group, a.shape[1] // self.group, out.shape[1] // self.group
        for i in range(G):
            np.matmul(a[:, i * ka:(i + 1) * ka], b[i], out=out[:, i * ko:(i + 1) * ko])
        return out

    def _forward_rows(self, bottom, top):
        g, O = self.geometry, self.num_output
        w = self._row_weights()
        for b, t in zip(bottom, top):
            x = b.data.reshape((self.num, self.channels) + g.size)
            y = t.data.reshape(self.num, O, g.out_count)
            for n0, n1 in self.row_chunks:
                n = n1 - n0
                shape = (n * g.out_count, self.channels * g.kernel_count)
                rows = im2row(x[n0:n1], g, self.group, out=self._buffer("rows", shape, x))
                yrows = self._grouped_matmul(rows, w, self._buffer("yrows", (len(rows), O), x))
                images = yrows.reshape(n, g.out_count, O).transpose(0, 2, 1)
                if self.bias_term:
                    np.add(images, self.blobs[1].data.reshape(O, 1), out=y[n0:n1])
                else:
                    np.copyto(y[n0:n1], images)

    def _backward_rows(self, top, propagate_down, bottom):
        g, G, O, C = self.geometry, self.group, self.num_output, self.channels
        Og, Cg, K = O // G, C // G, g.kernel_count
        need_w = self.param_propagate_down[0]
        # dx = dy correlated with the flipped kernel, input and output channels swapped:
        # w_back[g, (k, o), c] = W[g*Og + o, c, K - 1 - k] (the kernel flipped on every axis).
        flipped = self.blobs[0].data.reshape((G, Og, Cg) + self.kernel)[
            (Ellipsis,) + (slice(None, None, -1),) * g.nd]
        w_back = np.ascontiguousarray(flipped.reshape(G, Og, Cg, K).transpose(0, 3, 1, 2))
        w_back = w_back.reshape(G, K * Og, Cg)
        g_back = ConvGeometry(g.out, g.kernel, 1, [d * (k - 1) - p for d, k, p in
                                                   zip(g.dilation, g.kernel, g.pad)], g.dilation)
        dw = np.zeros((G, Og, K * Cg), self.blobs[0].dtype) if need_w else None
        for i, (t, b) in enumerate(zip(top, bottom)):
            x = b.data.reshape((self.num, C) + g.size)
            dy = t.diff.reshape((self.num, O) + g.out)
            for n0, n1 in self.row_chunks if need_w or propagate_down[i] else ():
                n, p = n1 - n0, g.out_count
                if need_w:   # dW[g] += dy[g]^T (Og, nP) @ patches[g] (nP, K*Cg)
                    dyrows = self._buffer("yrows", (n * p, O), x)
                    np.copyto(dyrows.reshape(n, p, O),
                              dy[n0:n1].reshape(n, O, p).transpose(0, 2, 1))
                    rows = im2row(x[n0:n1], g, G, out=self._buffer("rows", (n * p, C * K), x))
                    for j in range(G):
                        dw[j] += dyrows[:, j * Og:(j + 1) * Og].T @ rows[:, j * K * Cg:
                                                                         (j + 1) * K * Cg]
                if propagate_down[i]:
                    rows = im2row(dy[n0:n1], g_back, G, out=self._buffer(
                        "rows", (n * g_back.out_count, O * K), x))
                    dxrows = self._grouped_matmul(rows, w_back,
                                                  self._buffer("dxrows", (len(rows), C), x))
                    dx = b.diff.reshape((self.num, C, -1))[n0:n1]
                    np.copyto(dx, dxrows.reshape(n, -1, C).transpose(0, 2, 1))
        if need_w:   # (G, Og, (k, c)) -> (O, Cg, k)
            self.blobs[0].diff.reshape(G, Og, Cg, K)[...] += \
                dw.reshape(G, Og, K, Cg).transpose(0, 1, 3, 2)
