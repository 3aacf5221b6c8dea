"""The embedded SQLite cache of computed answers (JSON bytes keyed by a hash of the request)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from irene_core.errors import IreneError

CACHE_SCHEMA_VERSION = 1
_APP_ID = 0x1E4E7715  # marks the file as an IrEne-viz cache (PRAGMA application_id)


class ResultCache:
    """Thread-safe get/put of answers; keeps at most ``max_entries`` (oldest evicted first).

    A file at ``path`` that is not an IrEne-viz cache is refused (never overwritten); a cache of an
    older schema version is emptied.
    """

    def __init__(self, path: str | Path, max_entries: int = 5000):
        self.path = Path(path)
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
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
        db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value BLOB NOT NULL, created REAL NOT NULL)")
        db.execute("CREATE INDEX IF NOT EXISTS results_created ON results(created)")

    def get(self, key: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM results WHERE key=?", (key,)).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
            return bytes(row[0])

    def put(self, key: str, value: bytes) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO results (key, value, created) VALUES (?, ?, ?)", (key, value, time.time())
                )
                excess = self._count() - self.max_entries
                if excess > 0:
                    self._db.execute(
                        "DELETE FROM results WHERE key IN (SELECT key FROM results ORDER BY created, rowid LIMIT ?)", (excess,)
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def __len__(self) -> int:
        with self._lock:
            return self._count()

    def close(self) -> None:
        with self._lock:
            self._db.close()
