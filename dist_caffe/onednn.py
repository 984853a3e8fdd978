"""oneDNN as the CPU engine of float32 convolutions and pooling, through its C API (ctypes).

oneDNN (Intel's deep-learning primitives library, the one PyTorch's CPU convolutions and
Intel's Caffe fork run on) JIT-compiles direct convolutions for the CPU it finds: on this
project's AVX2 machines they run at the FMA peak, where numpy's im2col + OpenBLAS GEMMs reach
55-80% of it (CIFAR-10 quick's conv2: 51 ms forward+backward against 67); its pooling runs
vectorized across blocks of 8 channels (CIFAR's three pooling layers: 16 ms against 34). The
numpy paths (layers/convolution.py, layers/pooling.py) stay the reference and the fallback:
for float64, for other platforms, for what oneDNN would compute differently from Caffe, with
`engine: CAFFE` in convolution_param, or with DIST_CAFFE_ONEDNN=0.

The library comes from the `onednn-cpu-gomp` wheel (pinned in pyproject.toml, Linux x86-64),
which puts libdnnl.so.3 under <prefix>/lib. It is loaded at the first layer it runs, and its
OpenMP pool then takes the threads numpy's BLAS had (see assign_threads), unless
OMP_NUM_THREADS is set.

Constant values below are those of oneDNN 3.2's C headers (oneapi/dnnl/dnnl_types.h).
"""
import ctypes
import functools
import logging
import os
import site
import sys
import threading

import numpy as np

log = logging.getLogger("dist_caffe.onednn")

# dnnl_data_type_t, dnnl_format_tag_t, dnnl_prop_kind_t, dnnl_alg_kind_t, dnnl_query_t
F32 = 3
TAG_ANY, TAG_A = 1, 2
TAG_PLAIN = {3: 4, 4: 5, 5: 6}         # ncw / nchw / ncdhw (= oiw / oihw / oidhw) by ndims
TAG_GROUPED = {4: 5, 5: 6, 6: 7}       # goiw / goihw / goidhw by ndims
TAG_BLOCKED_8 = {3: 69, 4: 102, 5: 142}   # nCw8c / nChw8c / nCdhw8c: channels in blocks of 8
FORWARD_TRAINING, CONVOLUTION_AUTO = 64, 3
POOLING_MAX, POOLING_AVG_INCLUDE_PADDING, POOLING_AVG_EXCLUDE_PADDING = 511, 767, 1023
Q_IMPL_INFO = 8
Q_SRC, Q_DIFF_SRC, Q_WEIGHTS, Q_DIFF_WEIGHTS, Q_DST, Q_DIFF_DST = 129, 130, 131, 132, 133, 134
Q_WORKSPACE = 135
# DNNL_ARG_*
SRC, DST, WORKSPACE, WEIGHTS, BIAS = 1, 17, 64, 33, 41
DIFF_SRC, DIFF_DST, DIFF_WEIGHTS, DIFF_BIAS = 129, 145, 161, 169
CPU_ENGINE, STREAM_DEFAULT = 1, 1
MAX_NDIMS = 12

_void = ctypes.c_void_p
_Dims = ctypes.c_int64 * MAX_NDIMS


class _ExecArg(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_int), ("memory", _void)]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("patch", ctypes.c_int),
                ("hash", ctypes.c_char_p), ("cpu_runtime", ctypes.c_uint),
                ("gpu_runtime", ctypes.c_uint)]


STATUS = {1: "out of memory", 2: "invalid arguments", 3: "unimplemented",
          4: "last implementation reached", 5: "runtime error", 6: "not required"}


class OneDNNError(RuntimeError):
    """A oneDNN call returned an error status."""


def _candidates():
    """Where the wheel's data files land (venv or system prefix, --user), then the loader's
    own search (LD_LIBRARY_PATH, ldconfig)."""
    for base in dict.fromkeys((sys.prefix, site.getuserbase(), sys.base_prefix)):
        yield os.path.join(base, "lib", "libdnnl.so.3")
    yield "libdnnl.so.3"


@functools.lru_cache(maxsize=None)
def library():
    """(the loaded library, None) or (None, why it is not used)."""
    if os.environ.get("DIST_CAFFE_ONEDNN", "1") == "0":
        return None, "DIST_CAFFE_ONEDNN=0"
    errors = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            errors.append(f"{path}: {e}")
            continue
        lib.dnnl_version.restype = ctypes.POINTER(_Version)
        version = lib.dnnl_version().contents
        if version.major != 3:   # the constants here are 3.x's
            errors.append(f"{path} is oneDNN {version.major}.{version.minor}, not 3.x")
            continue
        lib.dnnl_primitive_desc_query_md.restype = _void
        lib.dnnl_memory_desc_get_size.restype = ctypes.c_size_t
        lib.dnnl_memory_desc_equal.restype = ctypes.c_int
        _take_blas_threads()
        return lib, None
    why = "; ".join(errors) or (
        "libdnnl.so.3 not found (on Linux x86-64: pip install onednn-cpu-gomp==2023.2.0)")
    log.info("oneDNN not used, convolutions and pooling run on numpy: %s", why)
    return None, why


def available():
    return library()[0] is not None


def loaded():
    """True once library() has loaded oneDNN (without loading it)."""
    return library.cache_info().currsize > 0 and available()


_threads = {"openmp": 1}


def threads():
    """How many threads oneDNN's convolutions run on (after library() loaded it)."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return _threads["openmp"]


def assign_threads(threads):
    """Run oneDNN's OpenMP pool on `threads` threads and numpy's BLAS on one.

    Two pools of workers that spin between calls, on the same cores, slow each other down:
    CIFAR-10 quick on 2 cores took 177-217 ms per iteration with both pools at 2 threads,
    103-126 ms with OpenMP at 2 and the BLAS at 1 (whose GEMMs now only run the few layers
    oneDNN does not)."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(threads, user_api="openmp")
    _threads["openmp"] = threads
    if threads > 1:
        threadpool_limits(1, user_api="blas")


def _take_blas_threads():
    """At load: oneDNN takes the threads numpy's BLAS was given (OMP_NUM_THREADS, when set,
    is oneDNN's own count and leaves the BLAS alone)."""
    if os.environ.get("OMP_NUM_THREADS"):
        return
    from threadpoolctl import threadpool_info
    blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    if blas:
        assign_threads(min(blas))


def _check(status, what):
    if status != 0:
        raise OneDNNError(f"oneDNN {what} failed: {STATUS.get(status, 'status')} ({status})")


@functools.lru_cache(maxsize=None)
def _engine():
    engine = _void()
    _check(library()[0].dnnl_engine_create(ctypes.byref(engine), CPU_ENGINE, 0), "engine_create")
    return engine


_per_thread = threading.local()


def _stream():
    """This thread's stream (oneDNN streams are not to be shared between threads)."""
    stream = getattr(_per_thread, "stream", None)
    if stream is None:
        stream = _per_thread.stream = _void()
        _check(library()[0].dnnl_stream_create(ctypes.byref(stream), _engine(), STREAM_DEFAULT),
               "stream_create")
    return stream


class _Objects:
    """oneDNN handles owned by one plan, destroyed with it."""

    def __init__(self, lib):
        self.lib, self.owned = lib, []

    def new(self, create, destroy, *args):
        handle = _void()
        _check(getattr(self.lib, create)(ctypes.byref(handle), *args), create)
        self.owned.append((destroy, handle))
        return handle

    def md(self, shape, tag):
        return self.new("dnnl_memory_desc_create_with_tag", "dnnl_memory_desc_destroy",
                        len(shape), _Dims(*shape), F32, tag)

    def memory(self, md, array=None):
        """A memory object over `array`, or over nothing yet (pointed at one before use)."""
        return self.new("dnnl_memory_create", "dnnl_memory_destroy", md,
                        _engine(),
                        _void(None if array is None else array.ctypes.data))

    def primitive(self, pd):
        return self.new("dnnl_primitive_create", "dnnl_primitive_destroy", pd)

    def close(self):
        for destroy, handle in reversed(self.owned):
            getattr(self.lib, destroy)(handle)
        self.owned = []


def _arena(role, nbytes):
    """This thread's scratch buffer for `role` (64-byte aligned, grown as needed), shared by
    every plan: the library's layouts of an argument live only within one call, and layers run
    one at a time, so one buffer per role is enough for a whole net. (A buffer per plan made
    ResNet-50's peak memory 44% larger than numpy's.)"""
    buffers = _per_thread.__dict__.setdefault("buffers", {})
    buf = buffers.get(role)
    if buf is None or buf.nbytes < nbytes:
        raw = np.empty(nbytes + 64, np.uint8)
        start = -raw.ctypes.data % 64
        buf = buffers[role] = raw[start:start + nbytes]
    return buf


class _Staged:
    """One argument of a primitive: the caller's plain (C-order) array, and the layout the
    primitive chose for it (often channels blocked by 8); a reorder runs between the two
    when they differ, into or out of this thread's scratch buffer for `role` (_arena): the
    arguments of one call need distinct roles."""

    def __init__(self, objects, plain_md, chosen_md, into_library, role):
        lib = objects.lib
        self.lib, self.into_library, self.role = lib, into_library, role
        self.plain = objects.memory(plain_md)
        self.same = bool(lib.dnnl_memory_desc_equal(plain_md, chosen_md))
        if self.same:
            self.memory, self.reorder = self.plain, None
            return
        self.nbytes = lib.dnnl_memory_desc_get_size(chosen_md)
        self.memory = objects.memory(chosen_md)
        engine = _engine()
        src, dst = (plain_md, chosen_md) if into_library else (chosen_md, plain_md)
        pd = objects.new("dnnl_reorder_primitive_desc_create", "dnnl_primitive_desc_destroy",
                         src, engine, dst, engine, None)
        self.reorder = objects.primitive(pd)

    def bind(self, array):
        """Point the plain side at `array` (C-contiguous float32 of the plain shape), and the
        library's side at the scratch buffer."""
        _set_handle(self.lib, self.plain, array)
        if not self.same:
            _set_handle(self.lib, self.memory, _arena(self.role, self.nbytes))

    def convert(self):
        if self.reorder is not None:
            a, b = (self.plain, self.memory) if self.into_library else (self.memory, self.plain)
            _execute(self.lib, self.reorder, {SRC: a, DST: b})


def _set_handle(lib, memory, array):
    _check(lib.dnnl_memory_set_data_handle(memory, _void(array.ctypes.data)),
           "memory_set_data_handle")


def _chosen(lib, pd, what):
    """The memory descriptor a primitive descriptor chose for argument `what`."""
    return _void(lib.dnnl_primitive_desc_query_md(pd, what, 0))


def _impl(lib, pd):
    """The implementation a primitive descriptor picked, e.g. 'jit:avx2'."""
    name = ctypes.c_char_p()
    lib.dnnl_primitive_desc_query(pd, Q_IMPL_INFO, 0, ctypes.byref(name))
    return (name.value or b"?").decode()


def _execute(lib, primitive, args):
    array = (_ExecArg * len(args))(*(_ExecArg(k, v) for k, v in args.items()))
    _check(lib.dnnl_primitive_execute(primitive, _stream(), len(args), array),
           "primitive_execute")


def layer_plan(layer, key, build):
    """`layer`'s plan for `key` (its input shape and whatever else the plan depends on): the
    one it holds in layer._plan, or build() on a new key; None, logged on the layer's module
    logger, when the library has no implementation (the layer then runs on numpy)."""
    if layer._plan_key != key:
        layer._plan_key, layer._plan = key, None
        try:
            layer._plan = build()
        except OneDNNError as e:
            logging.getLogger(type(layer).__module__).info("layer %s runs on numpy: %s",
                                                           layer.name, e)
    return layer._plan


class _Plan:
    """The oneDNN objects of one layer's primitives, built by the subclass's _build and
    destroyed with the plan; run() executes a primitive on numpy arrays."""

    def __init__(self, *build_args):
        self.lib = library()[0]
        self.objects = _Objects(self.lib)
        try:
            self._build(self.objects, *build_args)
        except Exception:
            self.objects.close()
            raise

    def _build(self, obj, *build_args):
        raise NotImplementedError

    def run(self, primitive, inputs=(), outputs=(), memories=None):
        """Execute `primitive`. inputs/outputs: (argument, _Staged, numpy array) triples:
        inputs are reordered into the library's layouts first, outputs out of them after;
        memories: {argument: memory object} passed as they are."""
        args = dict(memories or {})
        for arg, stage, array in inputs:
            stage.bind(array)
            stage.convert()
            args[arg] = stage.memory
        for arg, stage, array in outputs:
            stage.bind(array)
            args[arg] = stage.memory
        _execute(self.lib, primitive, args)
        for _, stage, _ in outputs:
            stage.convert()

    def __del__(self):
        objects = getattr(self, "objects", None)
        if objects is not None and sys is not None and not sys.is_finalizing():
            objects.close()


class ConvPlan(_Plan):
    """Forward, backward-data and backward-weights primitives of one float32 convolution.

    x: (N, C, *spatial), weights (O, C/G, *kernel), y: (N, O, *out); stride, pad, dilation in
    Caffe's terms, one per spatial axis (1 to 3 axes). Raises OneDNNError when the library
    has no implementation for the geometry (the caller falls back to numpy).
    """

    def __init__(self, x_shape, w_shape, y_shape, group, stride, pad, dilation, bias_term):
        self.bias_term = bias_term
        super().__init__(x_shape, w_shape, y_shape, group, stride, pad, dilation)
        self.dw = np.empty(w_shape, np.float32)   # weight and bias gradients land here
        self.db = np.empty(w_shape[0], np.float32)

    def _build(self, obj, x_shape, w_shape, y_shape, group, stride, pad, dilation):
        nd = len(x_shape) - 2
        if group > 1:
            o, cg = w_shape[:2]
            w_dims = (group, o // group, cg) + tuple(w_shape[2:])
            w_plain = obj.md(w_dims, TAG_GROUPED[len(w_dims)])
        else:
            w_dims, w_plain = w_shape, obj.md(w_shape, TAG_PLAIN[len(w_shape)])
        x_plain, y_plain = obj.md(x_shape, TAG_PLAIN[nd + 2]), obj.md(y_shape, TAG_PLAIN[nd + 2])
        x_any, y_any, w_any = obj.md(x_shape, TAG_ANY), obj.md(y_shape, TAG_ANY), \
            obj.md(w_dims, TAG_ANY)
        b_md = obj.md((w_shape[0],), TAG_A)
        pad_r = [(o - 1) * s + d * (k - 1) + 1 - n - p for n, o, k, s, p, d in
                 zip(x_shape[2:], y_shape[2:], w_shape[2:], stride, pad, dilation)]
        geometry = (_Dims(*stride), _Dims(*(d - 1 for d in dilation)), _Dims(*pad),
                    _Dims(*pad_r))
        engine = _engine()
        bias = b_md if self.bias_term else None
        fwd = obj.new("dnnl_convolution_forward_primitive_desc_create",
                      "dnnl_primitive_desc_destroy", engine, FORWARD_TRAINING, CONVOLUTION_AUTO,
                      x_any, w_any, bias, y_any, *geometry, None)
        bwd_data = obj.new("dnnl_convolution_backward_data_primitive_desc_create",
                           "dnnl_primitive_desc_destroy", engine, CONVOLUTION_AUTO, x_any, w_any,
                           y_any, *geometry, fwd, None)
        bwd_w = obj.new("dnnl_convolution_backward_weights_primitive_desc_create",
                        "dnnl_primitive_desc_destroy", engine, CONVOLUTION_AUTO, x_any, w_any,
                        bias, y_any, *geometry, fwd, None)

        def chosen(pd, what):
            return _chosen(self.lib, pd, what)

        self.fwd_x = _Staged(obj, x_plain, chosen(fwd, Q_SRC), True, "src")
        self.fwd_w = _Staged(obj, w_plain, chosen(fwd, Q_WEIGHTS), True, "weights")
        self.fwd_y = _Staged(obj, y_plain, chosen(fwd, Q_DST), False, "dst")
        self.bwd_dy = _Staged(obj, y_plain, chosen(bwd_data, Q_DIFF_DST), True, "diff_dst")
        self.bwd_w = _Staged(obj, w_plain, chosen(bwd_data, Q_WEIGHTS), True, "weights")
        self.bwd_dx = _Staged(obj, x_plain, chosen(bwd_data, Q_DIFF_SRC), False, "diff_src")
        self.wgt_x = _Staged(obj, x_plain, chosen(bwd_w, Q_SRC), True, "src")
        # backward-weights reads dy in backward-data's layout (usually), else its own copy
        wdy = chosen(bwd_w, Q_DIFF_DST)
        self.wgt_dy = (self.bwd_dy if self.lib.dnnl_memory_desc_equal(
            wdy, chosen(bwd_data, Q_DIFF_DST)) else _Staged(obj, y_plain, wdy, True, "diff_dst2"))
        self.wgt_dw = _Staged(obj, w_plain, chosen(bwd_w, Q_DIFF_WEIGHTS), False,
                              "diff_weights")
        self.b = obj.memory(b_md)
        self.impl = [_impl(self.lib, pd) for pd in (fwd, bwd_data, bwd_w)]
        self.fwd, self.bwd_data, self.bwd_weights = (obj.primitive(pd) for pd in
                                                     (fwd, bwd_data, bwd_w))


    def forward(self, x, w, b, y):
        """y = conv(x, w) (+ b). All C-contiguous float32; y is overwritten."""
        bias = {}
        if self.bias_term:
            _set_handle(self.lib, self.b, b)
            bias = {BIAS: self.b}
        self.run(self.fwd, [(SRC, self.fwd_x, x), (WEIGHTS, self.fwd_w, w)],
                 [(DST, self.fwd_y, y)], bias)

    def backward(self, x, w, dy, need_weights, dx=None):
        """Gradients of one bottom: with need_weights, fill self.dw (and self.db) with dL/dW
        (dL/db) for this bottom alone; with dx, overwrite it with dL/dx."""
        dy_ready = False   # bwd_dy holds dy in the library's layout
        if need_weights:
            bias = {}
            if self.bias_term:
                _set_handle(self.lib, self.b, self.db)
                bias = {DIFF_BIAS: self.b}
            self.run(self.bwd_weights, [(SRC, self.wgt_x, x), (DIFF_DST, self.wgt_dy, dy)],
                     [(DIFF_WEIGHTS, self.wgt_dw, self.dw)], bias)
            dy_ready = self.wgt_dy is self.bwd_dy
        if dx is not None:
            inputs = [(WEIGHTS, self.bwd_w, w)]
            if dy_ready:   # reordered once for both passes
                memories = {DIFF_DST: self.bwd_dy.memory}
            else:
                inputs.append((DIFF_DST, self.bwd_dy, dy))
                memories = None
            self.run(self.bwd_data, inputs, [(DIFF_SRC, self.bwd_dx, dx)], memories)


class PoolPlan(_Plan):
    """Forward and backward of one float32 pooling: max, or average whose divisor counts
    padding (`include_padding`) or not.

    x: (N, C, *spatial), y: (N, C, *out), 1 to 3 spatial axes; kernel, stride, pad (before)
    and pad_after per axis. x is reordered into channel blocks of 8, where the library's
    pooling runs vectorized across channels. Max pooling keeps the place of each window's
    maximum in a workspace between forward and backward (the first maximum in scan order on
    ties, as Caffe). Raises OneDNNError when the library has no implementation.
    """

    def _build(self, obj, x_shape, y_shape, kernel, stride, pad, pad_after, method):
        nd = len(x_shape)
        x_plain, y_plain = obj.md(x_shape, TAG_PLAIN[nd]), obj.md(y_shape, TAG_PLAIN[nd])
        x_blocked, y_any = obj.md(x_shape, TAG_BLOCKED_8[nd]), obj.md(y_shape, TAG_ANY)
        geometry = (_Dims(*stride), _Dims(*kernel), _Dims(*(0 for _ in kernel)), _Dims(*pad),
                    _Dims(*pad_after))
        engine = _engine()
        fwd = obj.new("dnnl_pooling_forward_primitive_desc_create",
                      "dnnl_primitive_desc_destroy", engine, FORWARD_TRAINING, method,
                      x_blocked, y_any, *geometry, None)
        y_chosen = _chosen(self.lib, fwd, Q_DST)
        bwd = obj.new("dnnl_pooling_backward_primitive_desc_create",
                      "dnnl_primitive_desc_destroy", engine, method, x_blocked, y_chosen,
                      *geometry, fwd, None)
        self.x = _Staged(obj, x_plain, x_blocked, True, "src")
        self.y = _Staged(obj, y_plain, y_chosen, False, "dst")
        self.dy = _Staged(obj, y_plain, _chosen(self.lib, bwd, Q_DIFF_DST), True, "diff_dst")
        self.dx = _Staged(obj, x_plain, _chosen(self.lib, bwd, Q_DIFF_SRC), False, "diff_src")
        self.workspace = {}   # the {WORKSPACE: memory} both passes take, for max pooling
        if method == POOLING_MAX:
            md = _chosen(self.lib, fwd, Q_WORKSPACE)
            size = self.lib.dnnl_memory_desc_get_size(md)
            self._workspace_buffer = np.empty(max(size, 1), np.uint8)
            self.workspace = {WORKSPACE: obj.memory(md, self._workspace_buffer)}
        self.impl = [_impl(self.lib, pd) for pd in (fwd, bwd)]
        self.fwd, self.bwd = obj.primitive(fwd), obj.primitive(bwd)

    def forward(self, x, y):
        """y = the pooled x (C-contiguous float32); y is overwritten."""
        self.run(self.fwd, [(SRC, self.x, x)], [(DST, self.y, y)], self.workspace)

    def backward(self, dy, dx):
        """dx = dL/dx from dy, overwritten; max pooling routes through the last forward's
        maxima."""
        self.run(self.bwd, [(DIFF_DST, self.dy, dy)], [(DIFF_SRC, self.dx, dx)], self.workspace)
