"""Write an LMDB of records the way Caffe's convert tools do, without leaving half a DB behind.

Records go into a temporary directory beside the target, committed every `commit_every`
puts (Caffe commits every 1000); the map grows by doubling when full; `close()` renames
the finished DB into place. An exception inside the `with` block removes the temporary
DB, so a crashed conversion never leaves something that looks like a DB.
"""
import os
import shutil
import tempfile

import lmdb

from ..errors import DataError


def record_key(index: int, name: str = "", width: int = 8) -> bytes:
    """Caffe's key: the index zero-padded (`%08d`), then `_name` when a file name is given."""
    key = f"{index:0{width}d}"
    return (f"{key}_{name}" if name else key).encode()


class LmdbWriter:
    """`with LmdbWriter(path) as db: db.put(key, datum.SerializeToString())`."""

    def __init__(self, path, commit_every=1000, map_size=1 << 26):
        self.path = os.fspath(path).rstrip("/")
        if os.path.exists(self.path):
            raise DataError(f"cannot write LMDB '{self.path}': it already exists; remove it or "
                            "choose another name")
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        self.tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(self.path)}.")
        self.env = lmdb.open(self.tmp, map_size=map_size, subdir=True, lock=False)
        self.txn, self.pending, self.count = self.env.begin(write=True), [], 0
        self.commit_every = commit_every

    def put(self, key: bytes, value: bytes):
        self.pending.append((key, value))
        self.count += 1
        try:
            self.txn.put(key, value)
        except lmdb.MapFullError:
            self._grow()
        if len(self.pending) >= self.commit_every:
            self.commit()

    def commit(self):
        while True:
            try:
                self.txn.commit()
                break
            except lmdb.MapFullError:
                self._grow()
        self.txn, self.pending = self.env.begin(write=True), []

    def _grow(self):
        """A full map loses the open txn: abort it, double the map, redo its puts."""
        while True:
            self.txn.abort()
            self.env.set_mapsize(self.env.info()["map_size"] * 2)
            self.txn = self.env.begin(write=True)
            try:
                for k, v in self.pending:
                    self.txn.put(k, v)
                return
            except lmdb.MapFullError:
                continue

    def close(self):
        self.commit()
        self.txn.abort()
        self.env.close()
        os.replace(self.tmp, self.path)

    def abort(self):
        self.txn.abort()
        self.env.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close() if exc_type is None else self.abort()
