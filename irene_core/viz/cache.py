"""The embedded SQLite cache of computed answers (JSON bytes keyed by a hash of the request)."""

from __future__ import annotations

import gzip
import hashlib
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from irene_core.errors import IreneError

CACHE_SCHEMA_VERSION = 4
_APP_ID = 0x1E4E7715  # marks the file as an IrEne-viz cache (PRAGMA application_id)
#: Answers at least this long are also stored gzip-compressed (compressed once, when cached).
GZIP_MIN_BYTES = 1024


@dataclass(frozen=True)
class Entry:
    """A cached answer, its HTTP entity tag and status (200, or 422 for a refusal such as a too-large model),
    and its gzip-compressed body when it is long enough to be worth compressing."""

    body: bytes
    etag: str
    status: int = 200
    gzipped: bytes | None = None

    @classmethod
    def of(cls, body: bytes, status: int = 200) -> Entry:
        packed = gzip.compress(body, compresslevel=6, mtime=0) if len(body) >= GZIP_MIN_BYTES else None
        return cls(body, f'"{hashlib.sha256(body).hexdigest()[:32]}"', status, packed)

    @property
    def gzip_etag(self) -> str:
        """The entity tag of the gzip-encoded representation (a strong tag differs per encoding)."""
        return f'{self.etag[:-1]}-gz"'


class ResultCache:
    """Thread-safe get/put of answers; keeps at most ``max_entries`` (oldest evicted first).

    The ``memory_entries`` most recently used answers are also kept in memory, so hot answers cost
    no database read. A file at ``path`` that is not an IrEne-viz cache is refused (never
    overwritten); a cache of an older schema version is emptied.
    """

    def __init__(self, path: str | Path, max_entries: int = 5000, memory_entries: int = 64):
        self.path = Path(path)
        self.max_entries = max_entries
        self.memory_entries = memory_entries
        self.hits = 0
        self.misses = 0
        self._memory: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._open()
        except sqlite3.DatabaseError as exc:
            raise IreneError(f"--cache {self.path}: not a usable IrEne-viz cache ({exc})") from None

    def _open(self) -> None:
        db = self._db
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if app_id != _APP_ID and tables:
            raise IreneError(f"--cache {self.path}: an SQLite file that is not an IrEne-viz cache; choose another path")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA application_id={_APP_ID}")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version != CACHE_SCHEMA_VERSION:
            db.execute("DROP TABLE IF EXISTS results")
            db.execute(f"PRAGMA user_version={CACHE_SCHEMA_VERSION}")
        db.execute(
            "CREATE TABLE IF NOT EXISTS results "
            "(key TEXT PRIMARY KEY, value BLOB NOT NULL, etag TEXT NOT NULL, status INTEGER NOT NULL, "
            "created REAL NOT NULL, gzipped BLOB)"
        )
        db.execute("CREATE INDEX IF NOT EXISTS results_created ON results(created)")

    def get(self, key: str, count_miss: bool = True) -> Entry | None:
        with self._lock:
            entry = self._memory.get(key)
            if entry is None:
                row = self._db.execute(
                    "SELECT value, etag, status, gzipped FROM results WHERE key=?", (key,)
                ).fetchone()
                if row is None:
                    self.misses += count_miss
                    return None
                entry = Entry(bytes(row[0]), row[1], row[2], None if row[3] is None else bytes(row[3]))
                self._remember(key, entry)
            else:
                self._memory.move_to_end(key)
            self.hits += 1
            return entry

    def _remember(self, key: str, entry: Entry) -> None:
        self._memory[key] = entry
        while len(self._memory) > self.memory_entries:
            self._memory.popitem(last=False)

    def put(self, key: str, value: bytes, status: int = 200) -> Entry:
        entry = Entry.of(value, status)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO results (key, value, etag, status, created, gzipped) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (key, value, entry.etag, status, time.time(), entry.gzipped),
                )
                excess = self._count() - self.max_entries
                if excess > 0:
                    old = [
                        r[0]
                        for r in self._db.execute("SELECT key FROM results ORDER BY created, rowid LIMIT ?", (excess,))
                    ]
                    self._db.executemany("DELETE FROM results WHERE key=?", [(k,) for k in old])
                    for k in old:
                        self._memory.pop(k, None)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._remember(key, entry)
        return entry

    def _count(self) -> int:
        count: int = self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        return count

    def __len__(self) -> int:
        with self._lock:
            return self._count()

    def close(self) -> None:
        with self._lock:
            self._db.close()
