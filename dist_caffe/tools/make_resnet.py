"""Write configs/resnet50_train_val.prototxt: ResNet-50 (He et al. 2015) as a Caffe train_val net.

    python -m dist_caffe.tools.make_resnet [-o configs/resnet50_train_val.prototxt] [--check]
                                           [--train-batch 32] [--test-batch 50]

The topology and names are those of the widely used Caffe ResNet-50 (KaimingHe/deep-residual-
networks): conv1 7x7/2 + BatchNorm + Scale + ReLU, max pool 3/2, bottleneck stages res2..res5
of [3, 4, 6, 3] blocks (1x1 reduce, 3x3, 1x1 expand; the first block of a stage has a projection
shortcut `branch1`, and stages 3-5 stride 2 in branch1 and branch2a), global average pool 7,
fc1000. Every convolution has no bias (the Scale after its BatchNorm carries it); BatchNorm's
use_global_stats and its lr_mult-0 statistics are left to the layer defaults (batch statistics
in TRAIN, running ones in TEST). Plain text out, no imports from the package: the file in
configs/ is exactly what `render()` returns, and a test keeps it that way.
"""
import argparse
import sys
from pathlib import Path

# (stage, blocks, bottleneck width, output channels, stride of the stage's first block)
STAGES = ((2, 3, 64, 256, 1), (3, 4, 128, 512, 2), (4, 6, 256, 1024, 2), (5, 3, 512, 2048, 2))
MEAN_VALUES = (104, 117, 123)  # BGR, as Caffe's ImageNet models
DEFAULT_OUT = Path("configs") / "resnet50_train_val.prototxt"


def _layer(name, type_, bottoms, tops, *body, include=None):
    lines = ["layer {", f'  name: "{name}"', f'  type: "{type_}"']
    lines += [f'  bottom: "{b}"' for b in bottoms]
    lines += [f'  top: "{t}"' for t in tops]
    if include:
        lines.append(f"  include {{ phase: {include} }}")
    lines += [f"  {line}" for line in body]
    return "\n".join(lines + ["}"])


def _data(phase, source, batch, mirror):
    return _layer("data", "Data", [], ["data", "label"],
                  "transform_param {",
                  f"  mirror: {'true' if mirror else 'false'}",
                  "  crop_size: 224",
                  *(f"  mean_value: {v}" for v in MEAN_VALUES),
                  "}",
                  f'data_param {{ source: "{source}" batch_size: {batch} backend: LMDB }}',
                  include=phase)


def _conv_bn(name, bottom, num_output, kernel, stride, relu):
    """Convolution (no bias) + BatchNorm + Scale(bias) [+ ReLU], all in place on `name`."""
    suffix = "_conv1" if name == "conv1" else name[len("res"):]
    pad = kernel // 2
    conv = _layer(name, "Convolution", [bottom], [name],
                  "param { lr_mult: 1 decay_mult: 1 }",
                  "convolution_param {",
                  f"  num_output: {num_output}",
                  f"  kernel_size: {kernel}",
                  *([f"  pad: {pad}"] if pad else []),
                  *([f"  stride: {stride}"] if stride > 1 else []),
                  "  bias_term: false",
                  '  weight_filler { type: "msra" }',
                  "}")
    bn = _layer(f"bn{suffix}", "BatchNorm", [name], [name])
    # No weight decay on the BatchNorm scale and shift (Goyal et al. 2017, section 5.1).
    scale = _layer(f"scale{suffix}", "Scale", [name], [name],
                   "param { lr_mult: 1 decay_mult: 0 }",
                   "param { lr_mult: 1 decay_mult: 0 }",
                   "scale_param { bias_term: true }")
    parts = [conv, bn, scale]
    if relu:
        parts.append(_layer(f"{name}_relu", "ReLU", [name], [name]))
    return parts


def _bottleneck(stage, letter, bottom, width, out, stride, project):
    """One residual block res<stage><letter>; returns (layers, top)."""
    res = f"res{stage}{letter}"
    parts = [f"# ---- {res}: 1x1 {width}{f'/{stride}' if stride > 1 else ''}, 3x3 {width}, "
             f"1x1 {out}, {'projection' if project else 'identity'} shortcut"]
    if project:
        parts += _conv_bn(f"{res}_branch1", bottom, out, 1, stride, relu=False)
        shortcut = f"{res}_branch1"
    else:
        shortcut = bottom
    parts += _conv_bn(f"{res}_branch2a", bottom, width, 1, stride, relu=True)
    parts += _conv_bn(f"{res}_branch2b", f"{res}_branch2a", width, 3, 1, relu=True)
    parts += _conv_bn(f"{res}_branch2c", f"{res}_branch2b", out, 1, 1, relu=False)
    parts.append(_layer(res, "Eltwise", [shortcut, f"{res}_branch2c"], [res],
                        "eltwise_param { operation: SUM }"))
    parts.append(_layer(f"{res}_relu", "ReLU", [res], [res]))
    return parts, res


def render(train_batch=32, test_batch=50, train_source="data/ilsvrc12_train_lmdb",
           test_source="data/ilsvrc12_val_lmdb"):
    """The whole train_val prototxt as text."""
    parts = [
        "# ResNet-50 (He, Zhang, Ren, Sun: Deep Residual Learning for Image Recognition, 2015),",
        "# Caffe layer naming. Written by dist_caffe/tools/make_resnet.py; edit that, not this.",
        "# 25,557,032 learnable parameters; BatchNorm running statistics are not learned.",
        'name: "ResNet-50"',
        _data("TRAIN", train_source, train_batch, mirror=True),
        _data("TEST", test_source, test_batch, mirror=False),
        "# ---- stem: 224 -> 112 -> 56",
        *_conv_bn("conv1", "data", 64, 7, 2, relu=True),
        _layer("pool1", "Pooling", ["conv1"], ["pool1"],
               "pooling_param { pool: MAX kernel_size: 3 stride: 2 }"),
    ]
    bottom = "pool1"
    for stage, blocks, width, out, stride in STAGES:
        for b in range(blocks):
            block, bottom = _bottleneck(stage, "abcdef"[b], bottom, width, out,
                                        stride if b == 0 else 1, project=b == 0)
            parts += block
    parts += [
        "# ---- head: global average pool 7x7 -> fc1000",
        _layer("pool5", "Pooling", [bottom], ["pool5"],
               "pooling_param { pool: AVE kernel_size: 7 stride: 1 }"),
        _layer("fc1000", "InnerProduct", ["pool5"], ["fc1000"],
               "param { lr_mult: 1 decay_mult: 1 }",
               "param { lr_mult: 1 decay_mult: 0 }",
               "inner_product_param {",
               "  num_output: 1000",
               '  weight_filler { type: "gaussian" std: 0.01 }',
               '  bias_filler { type: "constant" value: 0 }',
               "}"),
        _layer("loss", "SoftmaxWithLoss", ["fc1000", "label"], ["loss"]),
        _layer("accuracy/top-1", "Accuracy", ["fc1000", "label"], ["accuracy/top-1"],
               include="TEST"),
        _layer("accuracy/top-5", "Accuracy", ["fc1000", "label"], ["accuracy/top-5"],
               "accuracy_param { top_k: 5 }", include="TEST"),
    ]
    return "\n".join(parts) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m dist_caffe.tools.make_resnet",
                                description="Write the ResNet-50 train_val prototxt.")
    p.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT, help=f"(default {DEFAULT_OUT})")
    p.add_argument("--train-batch", type=int, default=32, help="per-replica TRAIN batch (32)")
    p.add_argument("--test-batch", type=int, default=50, help="per-replica TEST batch (50)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 when --out differs from what would be written")
    args = p.parse_args(argv)
    text = render(args.train_batch, args.test_batch)
    if args.check:
        current = args.out.read_text() if args.out.is_file() else None
        if current != text:
            print(f"{args.out} is out of date; run python -m dist_caffe.tools.make_resnet",
                  file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"Wrote {args.out} ({text.count('layer {')} layers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
