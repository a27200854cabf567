"""The strategies file on disk, reloaded when it changes.

Why an mtime poll and not inotify: it works the same on every filesystem (a ConfigMap volume
swaps a symlink, NFS has no events), costs one ``stat`` per interval, and needs no thread of
its own (the caller polls from its timer). A change is recognised by (mtime_ns, size, inode);
a file that fails to parse at reload keeps the last good strategies in service, counts
``reload_errors`` and keeps the error text for /metrics and the log, because an SDK fleet
falling back to defaults on a typo is worse than serving yesterday's strategies. At start a
bad file is an error: the operator is there to see it.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from query.sampling_strategies import (
    Strategies,
    StrategyFileError,
    default_strategies,
    parse_strategies,
)

# A strategies file larger than this is refused (a fleet's file is a few KB).
MAX_FILE_BYTES = 16 * 1024 * 1024
log = logging.getLogger("query.sampling")


def read_strategies(path: Path, default_probability: float) -> Strategies:
    """Parse one file; raises StrategyFileError (naming the file) on any problem."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StrategyFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise StrategyFileError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise StrategyFileError(f"{path}: not JSON: {exc}") from None
    try:
        return parse_strategies(doc, default_probability)
    except StrategyFileError as exc:
        raise StrategyFileError(f"{path}: {exc}") from None


class StrategiesFile:
    """The current strategies of one file (or the defaults when ``path`` is empty)."""

    def __init__(self, path: str, default_probability: float) -> None:
        self._path = Path(path) if path else None
        self._default_probability = default_probability
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self.reloads = 0
        self.reload_errors = 0
        self.last_error = ""
        if self._path is None:
            self._current = default_strategies(default_probability)
        else:
            self._stamp = self._stat()
            self._current = read_strategies(self._path, default_probability)

    @property
    def current(self) -> Strategies:
        return self._current

    def _stat(self) -> tuple[int, int, int] | None:
        assert self._path is not None
        try:
            st = self._path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def poll(self) -> bool:
        """Reload if the file changed; True when new strategies are in service."""
        if self._path is None:
            return False
        with self._lock:
            stamp = self._stat()
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            try:
                fresh = read_strategies(self._path, self._default_probability)
            except StrategyFileError as exc:
                self.reload_errors += 1
                self.last_error = str(exc)
                log.error("sampling strategies not reloaded, keeping the last good ones: %s", exc)
                return False
            self._current = fresh
            self.reloads += 1
            self.last_error = ""
            log.info("sampling strategies reloaded from %s", self._path)
            return True
