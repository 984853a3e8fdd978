"""What the converter tools share: gflags-style booleans, progress bars, writing records."""
import argparse
import logging
import sys

from tqdm import tqdm

from .lmdb_writer import LmdbWriter

log = logging.getLogger("dist_caffe.data")


def parse_bool(text):
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on", "t", "y"):
        return True
    if value in ("0", "false", "no", "off", "f", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, found '{text}'")


def add_bool(parser, name, help_):
    """A gflags boolean: `-name`, `-name=true` and `--name=false` all work."""
    parser.add_argument(f"--{name}", nargs="?", const=True, default=False, type=parse_bool,
                        metavar="BOOL", help=help_)


def check_backend(backend):
    from ..errors import ConfigError
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
