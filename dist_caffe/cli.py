"""The `dist-caffe` command: Caffe's tool verbs plus dataset and log tools.

Each verb lives in its own module with `main(argv) -> int`; flags are accepted in Caffe's
form (`-solver s.prototxt`) and GNU form (`--solver=s.prototxt`).
"""
import importlib
import sys

from .errors import DistCaffeError

COMMANDS = {
    "train": ("dist_caffe.tools.train", "train a net from a solver prototxt"),
    "test": ("dist_caffe.tools.train", "score a model over -iterations batches"),
    "time": ("dist_caffe.tools.time", "time forward/backward per layer"),
    "device_query": ("dist_caffe.tools.device_query", "show the GPU(s)"),
    "parse_log": ("dist_caffe.tools.parse_log", "CSV of train/test outputs from a log"),
    "plot": ("dist_caffe.tools.parse_log", "PNG of the training curves in a log"),
    "convert_imageset": ("dist_caffe.tools.convert_imageset", "image list -> LMDB of Datum"),
    "compute_image_mean": ("dist_caffe.tools.compute_image_mean", "LMDB -> mean binaryproto"),
    "convert_mnist": ("dist_caffe.tools.convert_mnist", "MNIST/Fashion-MNIST IDX -> LMDB"),
    "convert_cifar10": ("dist_caffe.tools.convert_cifar10", "CIFAR-10 binary batches -> LMDB"),
    "data": ("dist_caffe.tools.datasets", "build an embedded data set (data digits)"),
    "upgrade_net_proto_text": ("dist_caffe.tools.upgrade", "legacy net prototxt -> current"),
    "upgrade_net_proto_binary": ("dist_caffe.tools.upgrade", "legacy caffemodel -> current"),
    "upgrade_solver_proto_text": ("dist_caffe.tools.upgrade", "legacy solver -> current"),
}


def usage():
    lines = ["usage: dist-caffe <command> [flags]", "", "commands:"]
    lines += [f"  {name:<26} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 1
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"dist-caffe: unknown command '{command}'\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    try:
        return int(module.main([command] + rest) or 0)
    except DistCaffeError as e:
        print(f"dist-caffe {command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
