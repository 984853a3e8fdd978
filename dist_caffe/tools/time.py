"""`dist-caffe time`: per-layer forward/backward timing, like `caffe time`.

    dist-caffe time -model net.prototxt [-iterations 50] [-batch 64] [-input_shape 3,32,32]
                    [-phase TRAIN] [-gpu 0] [--trace timeline.json]

Data layers with no database to read are replaced by Input layers of the same shape
(`-input_shape C,H,W` gives the stored image size); inputs are Gaussian, labels 0.
`--trace` writes a Chrome trace (chrome://tracing, Perfetto) of every layer's passes; under
`mpirun -n N` every rank times together and the trace gathers all ranks' rows on rank 0,
with each gradient bucket's all-reduce and the waits for them.
"""
import json
import logging
import time

import numpy as np

from .. import backend, onednn
from ..layer import TEST, TRAIN
from ..net import Net
from ..proto import read_net_param
from ..testing.nets import DATA_TYPES, swap_data_for_input
from .flags import Parser

log = logging.getLogger("dist_caffe.time")


class Timeline:
    """Chrome-trace events (complete events, microseconds) for one process/rank."""

    def __init__(self, rank=0):
        self.rank, self.events, self.t0 = rank, [], time.perf_counter()

    def add(self, name, category, start, end, **args):
        self.events.append({"name": name, "cat": category, "ph": "X", "pid": self.rank,
                            "tid": category, "ts": (start - self.t0) * 1e6,
                            "dur": (end - start) * 1e6, "args": args})

    def dump(self, path):
        with open(path, "w") as f:
            json.dump({"traceEvents": self.events, "displayTimeUnit": "ms"}, f)


def build_net(model, phase, batch=None, input_shape=None, gpu=False):
    param = read_net_param(model)
    if any(l.type in DATA_TYPES for l in param.layer):
        param = swap_data_for_input(param, input_shape or (3, 32, 32), batch=batch)
    elif batch:
        for layer in param.layer:
            if layer.type == "Input":
                for shape in layer.input_param.shape:
                    shape.dim[0] = batch
    if gpu:
        backend.set_mode_gpu()
    net = Net(param, phase)
    g = np.random.default_rng(0)
    for name in net.inputs:
        blob = net.blobs[name]
        blob.data[...] = g.standard_normal(blob.shape) if blob.num_axes > 1 else 0
    return net


def _sync():
    if backend.mode() == backend.GPU:
        backend.require_cupy().cuda.Device().synchronize()


def time_net(net, iterations, timeline=None, reducer=None):
    """Per-layer mean forward/backward ms and the mean forward-backward ms per iteration.

    With a reducer (under mpirun), its bucket all-reduces start from the backward hooks as in
    training and each iteration waits for them, so the figures include communication."""
    n = len(net.layers)
    fwd, bwd, total = np.zeros(n), np.zeros(n), 0.0
    net.forward_backward()  # warm-up: allocations, kernel compilation
    if reducer is not None:
        reducer.wait()
        reducer.clear_events()
    for _ in range(iterations):
        start = time.perf_counter()
        for i, layer in enumerate(net.layers):
            t = time.perf_counter()
            layer.reshape(net.bottom_vecs[i], net.top_vecs[i])
            layer.run_forward(net.bottom_vecs[i], net.top_vecs[i])
            _sync()
            e = time.perf_counter()
            fwd[i] += e - t
            if timeline:
                timeline.add(layer.name, "forward", t, e)
        for i in reversed(range(n)):
            t = time.perf_counter()
            if net.layer_need_backward[i]:
                layer = net.layers[i]
                layer.run_backward(net.top_vecs[i], net.bottom_need_backward[i], net.bottom_vecs[i])
            _sync()
            e = time.perf_counter()
            bwd[i] += e - t
            if timeline and net.layer_need_backward[i]:
                timeline.add(net.layers[i].name, "backward", t, e)
            for hook in net.after_backward:
                hook(i)
        if reducer is not None:
            reducer.wait()
        total += time.perf_counter() - start
    k = 1e3 / iterations
    return fwd * k, bwd * k, total * k


def main(argv):
    p = Parser("time", "Time a net's forward and backward passes, layer by layer.")
    p.add_argument("--model", required=True, help="net prototxt")
    p.add_argument("--iterations", type=int, default=50)
    p.add_argument("--batch", type=int, help="override the batch size")
    p.add_argument("--input_shape", help="C,H,W of the stored images when data layers are swapped")
    p.add_argument("--phase", choices=["TRAIN", "TEST"], default="TRAIN")
    p.add_argument("--gpu", help="device id (time on the GPU)")
    p.add_argument("--trace", help="write a Chrome trace JSON of the timed passes here")
    args = p.parse(argv[1:])
    shape = tuple(int(d) for d in args.input_shape.split(",")) if args.input_shape else None
    if args.gpu is not None:
        backend.set_device(int(args.gpu.split(",")[0]))
    net = build_net(args.model, TRAIN if args.phase == "TRAIN" else TEST, args.batch, shape,
                    gpu=args.gpu is not None)
    from ..parallel.trainer import gather_timeline, timing_reducer
    reducer = timing_reducer(net)  # None on one process; under mpirun all ranks time together
    rank = reducer.comm.rank if reducer else 0
    timeline = Timeline(rank) if args.trace else None
    fwd, bwd, total = time_net(net, args.iterations, timeline, reducer)
    if timeline and gather_timeline(timeline, reducer):
        timeline.dump(args.trace)
        print(f"Wrote Chrome trace {args.trace} ({'all ranks' if reducer else 'one process'})")
    if rank != 0:
        return 0
    print(f"Performing Forward/Backward: {args.iterations} iterations, batch "
          f"{net.blobs[net.inputs[0]].shape[0] if net.inputs else '?'}")
    for layer, f, b in zip(net.layers, fwd, bwd):
        print(f"{layer.name:>24}\tforward: {f:9.3f} ms.")
        print(f"{layer.name:>24}\tbackward: {b:9.3f} ms.")
    print(f"Average Forward pass: {fwd.sum():.3f} ms.")
    print(f"Average Backward pass: {bwd.sum():.3f} ms.")
    print(f"Average Forward-Backward: {total:.3f} ms.")
    if net.inputs:
        print(f"Images per second: {net.blobs[net.inputs[0]].shape[0] * 1e3 / total:.1f}")
    # convolution and pooling layers hold their oneDNN plan when oneDNN ran them
    by_onednn = [layer.name for layer in net.layers if getattr(layer, "_plan", None)]
    if by_onednn:
        print(f"oneDNN ({onednn.threads()} threads) ran: {', '.join(by_onednn)}")
    return 0
