"""Benchmark: our forward+backward against PyTorch CPU running the same net, same threads.

    OPENBLAS_NUM_THREADS=1 python -m dist_caffe.tools.bench_torch -model configs/x.prototxt \
        -batch 64 -input_shape 1,28,28 [-iterations 20]

The PyTorch side is built from the same NetParameter (conv, pooling in ceil mode, LRN, inner
product, ReLU, dropout, softmax loss) with our initial weights, and uses as many threads as
OPENBLAS_NUM_THREADS gives numpy. The two alternate step by step (one iteration of each per
round) and the medians are compared: on a shared host, load that comes and goes then falls
on both sides alike instead of on whichever ran during it.
"""
import os
import time

import numpy as np

from ..layer import TRAIN
from .flags import Parser
from .time import build_net


def _torch_forward(net, torch, F, tensors, params):
    """Run the net's layers with torch ops; returns the summed loss tensor."""
    loss = 0
    for lp, layer in zip(net.param.layer, net.layers):
        x = [tensors[b] for b in lp.bottom]
        t = lp.type
        if t == "Input":
            continue
        if t == "Convolution":
            c = layer.param.convolution_param
            w = params[lp.name]
            y = F.conv2d(x[0], w[0], w[1] if len(w) > 1 else None, stride=layer.stride,
                         padding=layer.pad, dilation=layer.dilation, groups=c.group)
        elif t == "Pooling":
            p = layer.param.pooling_param
            k, s, pad = layer.kernel, layer.stride, layer.pad
            if p.pool == 0:
                y = F.max_pool2d(x[0], k, s, pad, ceil_mode=True)
            else:
                y = F.avg_pool2d(x[0], k, s, pad, ceil_mode=True)
        elif t == "LRN":
            p = layer.param.lrn_param
            y = F.local_response_norm(x[0], p.local_size, p.alpha, p.beta, p.k)
        elif t == "InnerProduct":
            w = params[lp.name]
            y = F.linear(x[0].flatten(1), w[0], w[1] if len(w) > 1 else None)
        elif t == "ReLU":
            y = F.relu(x[0])
        elif t == "Dropout":
            y = F.dropout(x[0], layer.param.dropout_param.dropout_ratio, training=True)
        elif t == "Split":
            for top in lp.top:
                tensors[top] = x[0]
            continue
        elif t == "SoftmaxWithLoss":
            y = F.cross_entropy(x[0], x[1].long().view(-1))
            loss = loss + y
        elif t in ("Accuracy", "Silence"):
            continue
        else:
            raise NotImplementedError(f"bench_torch: no PyTorch mapping for layer type {t}")
        tensors[lp.top[0]] = y
    return loss


def torch_step(net):
    """One PyTorch forward+backward of `net`'s layers with its current weights, as a callable."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(int(os.environ.get("OPENBLAS_NUM_THREADS", "1")))
    tensors = {n: torch.from_numpy(np.array(net.blobs[n].data)) for n in net.inputs}
    params = {name: [torch.from_numpy(np.array(b.data)).requires_grad_() for b in blobs]
              for name, blobs in net.params.items()}

    def step():
        for ps in params.values():
            for p in ps:
                p.grad = None
        _torch_forward(net, torch, F, dict(tensors), params).backward()
    return step


def alternate(steps, rounds):
    """Seconds per call of each callable in `steps`, calling them in turn `rounds` times
    (after one warm-up call each)."""
    times = [[] for _ in steps]
    for step in steps:
        step()
    for _ in range(rounds):
        for k, step in enumerate(steps):
            start = time.perf_counter()
            step()
            times[k].append(time.perf_counter() - start)
    return times


def main(argv=None):
    import sys
    argv = sys.argv[1:] if argv is None else argv
    p = Parser("bench_torch", "forward+backward ms: dist_caffe vs PyTorch CPU")
    p.add_argument("--model", required=True)
    p.add_argument("--batch", type=int)
    p.add_argument("--input_shape")
    p.add_argument("--iterations", type=int, default=20)
    args = p.parse(argv)
    shape = tuple(int(d) for d in args.input_shape.split(",")) if args.input_shape else None
    net = build_net(args.model, TRAIN, args.batch, shape)

    def ours():
        net.clear_param_diffs()
        net.forward_backward()
    mine, theirs = alternate([ours, torch_step(net)], args.iterations)
    n = net.blobs[net.inputs[0]].shape[0]
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "?")
    a, b = np.median(mine) * 1e3, np.median(theirs) * 1e3
    print(f"{os.path.basename(args.model)} batch {n} threads {threads}, median of "
          f"{args.iterations}: dist_caffe {a:.1f} ms ({n * 1e3 / a:.0f} img/s), PyTorch "
          f"{b:.1f} ms ({n * 1e3 / b:.0f} img/s), ratio {a / b:.2f} (fastest: "
          f"{min(mine) * 1e3:.1f} vs {min(theirs) * 1e3:.1f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
