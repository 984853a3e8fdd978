"""What the converter tools share: a parser with gflags booleans, progress bars, writing."""
import argparse
import logging
import sys

from tqdm import tqdm

from ..errors import ConfigError
from ..tools.flags import Parser, normalize
from .lmdb_writer import LmdbWriter

log = logging.getLogger("dist_caffe.data")


class ToolParser(Parser):
    """flags.Parser plus gflags booleans: `-name`, `-name=true`, `--name=false`, `-noname`."""

    def __init__(self, prog, description=None):
        super().__init__(prog, description)
        self.bools = set()

    def add_bool(self, name, help_):
        self.bools.add(name)
        self.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=False,
                          help=help_)

    def parse(self, argv):
        out = []
        for token in normalize(argv):
            name, _, value = token.lstrip("-").partition("=")
            if token.startswith("--") and name in self.bools and value:
                token = f"--{name}" if _truth(value, token) else f"--no-{name}"
            elif token.startswith("--no") and name[2:] in self.bools:
                token = f"--no-{name[2:]}"
            out.append(token)
        return self.parse_args(out)


def _truth(value, token):
    value = value.strip().lower()
    if value in ("1", "true", "yes", "on", "t", "y"):
        return True
    if value in ("0", "false", "no", "off", "f", "n"):
        return False
    raise ConfigError(f"{token}: expected true or false")


def check_backend(backend):
    if backend.lower() != "lmdb":
        raise ConfigError(f"-backend {backend}: only lmdb is supported (LevelDB is not); "
                          "pass -backend lmdb")


def progress(iterable, total=None, desc=""):
    """A tqdm progress bar on a terminal; silent when stderr is not one."""
    return tqdm(iterable, total=total, desc=desc, unit="img", disable=not sys.stderr.isatty(),
                leave=False, dynamic_ncols=True)


def write_records(path, records, total=None, desc=""):
    """Write (key, Datum) pairs into a new LMDB at `path`; returns how many were written."""
    with LmdbWriter(path) as db:
        for key, datum in progress(records, total, desc or f"writing {path}"):
            db.put(key, datum.SerializeToString())
        count = db.count
    log.info("wrote %d records to %s", count, path)
    return count
