"""`dist-caffe upgrade_net_proto_text|upgrade_net_proto_binary|upgrade_solver_proto_text`.

    dist-caffe upgrade_net_proto_text   old_net.prototxt    new_net.prototxt
    dist-caffe upgrade_net_proto_binary old.caffemodel      new.caffemodel
    dist-caffe upgrade_solver_proto_text old_solver.prototxt new_solver.prototxt

Caffe's three upgrade tools: read a legacy file (V0 or V1 layers, data transformation fields
outside transform_param, net-level inputs, old BatchNorm param specs, the solver_type enum),
upgrade it as Caffe's upgrade_proto does (dist_caffe.proto.upgrade) and write the current
format. A file already current is written back unchanged, with a note, as Caffe does.
"""
import sys

from ..errors import ConfigError
from ..proto import (caffe_pb2, legacy_formats, parse_text, read_binary_proto, upgrade_net,
                     upgrade_solver, write_binary, write_text)
from .flags import Parser

VERBS = {
    # verb: (message class, binary?, what the file holds)
    "upgrade_net_proto_text": (caffe_pb2.NetParameter, False, "NetParameter text proto"),
    "upgrade_net_proto_binary": (caffe_pb2.NetParameter, True, "NetParameter binary proto"),
    "upgrade_solver_proto_text": (caffe_pb2.SolverParameter, False, "SolverParameter text proto"),
}


def _read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (IsADirectoryError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read it as a text prototxt ({type(e).__name__})") from None


def upgrade_file(verb, source, dest):
    """Upgrade `source` into `dest`; returns the legacy formats found (empty when current)."""
    cls, binary, _ = VERBS[verb]
    if binary:
        msg = read_binary_proto(source, cls, upgrade=False)
    else:
        msg = parse_text(_read_text(source), cls, source)
    legacy = legacy_formats(msg)
    if legacy:
        upgrade = upgrade_solver if cls is caffe_pb2.SolverParameter else upgrade_net
        msg = upgrade(msg, source)[0]
    (write_binary if binary else write_text)(msg, dest)
    return legacy


def main(argv):
    verb = argv[0] if argv and argv[0] in VERBS else "upgrade_net_proto_text"
    what = VERBS[verb][2]
    p = Parser(verb, f"Upgrade a legacy Caffe {what} to the current format.")
    p.add_argument("input", help=f"the legacy {what}")
    p.add_argument("output", help="where to write the upgraded file (may equal input)")
    args = p.parse(argv[1:])
    legacy = upgrade_file(verb, args.input, args.output)
    if legacy:
        print(f"Upgraded {args.input}: {', '.join(legacy)}", file=sys.stderr)
    else:
        print(f"File already in latest proto format: {args.input}", file=sys.stderr)
    print(f"Wrote upgraded {what} to {args.output}", file=sys.stderr)
    return 0
