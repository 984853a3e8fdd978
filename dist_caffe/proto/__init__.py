"""Caffe's schema (caffe_pb2) and reading/writing its text and binary files.

Readers of nets and solvers upgrade legacy formats (see upgrade.py) and log
one warning per file; writers replace the target atomically.
"""

import logging
import os
import re
import tempfile

from google.protobuf import text_format
from google.protobuf.message import DecodeError

from ..errors import ConfigError, DataError
from . import caffe_pb2
from .upgrade import legacy_formats, needs_upgrade, upgrade_net, upgrade_solver

__all__ = ["caffe_pb2", "read_net_param", "read_solver_param", "read_binary_proto",
           "write_text", "write_binary", "parse_text",
           "upgrade_net", "upgrade_solver", "needs_upgrade", "legacy_formats"]

log = logging.getLogger(__name__)
_warned = set()


def parse_text(text, message_cls, filename="<string>"):
    """Parse prototxt `text` into a new `message_cls`; ConfigError names file:line:column."""
    msg = message_cls()
    try:
        text_format.Parse(text, msg)
    except text_format.ParseError as e:
        line, column = e.GetLine(), e.GetColumn()
        detail = str(e)
        if line is not None:    # the message starts with "line:column : "
            detail = detail.split(" : ", 1)[-1]
            where = f"{filename}:{line}:{column}"
        else:
            where = filename
        raise ConfigError(f"{where}: {detail} (parsing a caffe.{message_cls.__name__} prototxt)"
                          ) from None
    if not msg.IsInitialized():
        missing = ", ".join(msg.FindInitializationErrors())
        raise ConfigError(f"{filename}: required field(s) not set: {missing}")
    return msg


def read_net_param(path_or_text):
    """A NetParameter from a prototxt path (or prototxt text), upgraded to the current format."""
    text, filename = _text_source(path_or_text)
    return _upgraded(parse_text(text, caffe_pb2.NetParameter, filename), filename)


def read_solver_param(path):
    """A SolverParameter from a solver prototxt path (or text), upgraded to the current format."""
    text, filename = _text_source(path)
    return _upgraded(parse_text(text, caffe_pb2.SolverParameter, filename), filename)


def read_binary_proto(path, message_cls, upgrade=True):
    """Parse a binary file (.caffemodel, .solverstate, .binaryproto) into `message_cls`.

    NetParameter and SolverParameter are upgraded unless upgrade=False (as Caffe
    does for caffemodels). A truncated or foreign file raises DataError.
    """
    data = _read(path, "rb")
    kind = f"caffe.{message_cls.__name__}"
    if not data:
        raise DataError(f"{path}: file is empty (0 bytes); expected a binary {kind}")
    msg = message_cls()
    try:
        msg.ParseFromString(data)
    except DecodeError as e:
        raise DataError(f"{path}: truncated or not a binary {kind} file ({len(data)} bytes; {e}); "
                        f"a text prototxt must be read with read_net_param/parse_text") from None
    return _upgraded(msg, str(path)) if upgrade else msg


def write_text(msg, path):
    """Write `msg` as prototxt, atomically (temp file in the same directory, then rename)."""
    _write_atomic(path, text_format.MessageToString(msg).encode())


def write_binary(msg, path):
    """Write `msg` in protobuf binary form, atomically."""
    _write_atomic(path, msg.SerializeToString())


def _upgraded(msg, filename):
    if not isinstance(msg, (caffe_pb2.NetParameter, caffe_pb2.SolverParameter)):
        return msg
    legacy = legacy_formats(msg)
    if legacy and (filename, tuple(legacy)) not in _warned:
        _warned.add((filename, tuple(legacy)))
        log.warning("%s uses legacy Caffe format (%s); upgraded in memory. Save the upgraded "
                    "file with dist_caffe.proto.write_text to silence this.",
                    filename, ", ".join(legacy))
    if isinstance(msg, caffe_pb2.SolverParameter):
        return upgrade_solver(msg, filename)[0]
    return upgrade_net(msg, filename)[0]


def _text_source(path_or_text):
    """(text, filename) from a path, or from prototxt text given directly."""
    if isinstance(path_or_text, str) and not os.path.exists(path_or_text) \
            and ("\n" in path_or_text or re.match(r"\s*(#|[A-Za-z_]\w*\s*[:{])", path_or_text)):
        return path_or_text, "<string>"
    return _read(path_or_text, "r"), str(path_or_text)


def _read(path, mode):
    try:
        with open(path, mode) as f:
            return f.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text prototxt (binary data); binary files are read "
                          f"with read_binary_proto") from None


def _write_atomic(path, data):
    """Write to a temp file beside `path`, fsync, then os.replace: readers never see half a file."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ConfigError(f"cannot write {path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
