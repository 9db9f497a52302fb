"""One Sentinel per data folder: an advisory lock file held for the life of the process that runs on it.

``serve`` and ``demo`` (and every other long-running owner) take the folder *exclusively*: the embedded PostgreSQL
they start, the spool and the models there are theirs until they exit. A second owner pointed at the same folder is
refused at once, before anything in the folder is touched, with one line naming the folder and the other process::

    sentinel: data folder /var/lib/sentinel is in use by pid 4711 (sentinel demo, since 2026-12-05 12:40:12 +0800);
    stop it, or give this one its own folder: SENTINEL_DATA_DIR=/path/to/other sentinel demo

Short commands (``sentinel alerts list``, ``db upgrade``, …) *share*: when an owner holds the folder they use its
running server and never stop it; when nobody does, they hold the lock themselves while they run, so that a
``demo`` started meanwhile does not adopt a server about to be stopped under it (it waits for them a few seconds).

The lock is ``fcntl.flock`` on ``<data dir>/sentinel.lock``: the kernel releases it when the process ends however
it ends (a crash or SIGKILL leaves no stale lock); the file's text (pid, command, start time) only names the holder.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from sentinel.errors import DataDirInUse, StoreError

LOCK_NAME = "sentinel.lock"
COMMAND_WAIT_S = 15.0  # how long an owner waits for a short command that holds the folder


def _command_line() -> str:
    argv = [Path(sys.argv[0]).name if sys.argv else "python", *sys.argv[1:]]
    if argv[0] in ("__main__.py", "-m", "-c"):
        argv[0] = "sentinel" if argv[0] == "__main__.py" else "python"
    return " ".join(argv)[:200]


class DataLock:
    """The lock on one data folder. ``acquire`` then ``release`` (or use it as a context manager)."""

    def __init__(self, data_dir: Path, display_tz: str = "Asia/Shanghai") -> None:
        self.data_dir = data_dir
        self.display_tz = display_tz  # the refusal names the holder's start time in it (a person reads it)
        self.path = data_dir / LOCK_NAME
        self._file: IO[str] | None = None
        self.role: str | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def holder(self) -> dict[str, Any]:
        """What the lock file says about the process holding it (empty when unreadable)."""
        try:
            value = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def _open(self) -> IO[str]:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return open(self.path, "a+", encoding="utf-8")
        except OSError as exc:
            raise StoreError(f"cannot open the lock file {self.path}: {exc.strerror}") from exc

    def _try(self, file: IO[str]) -> bool:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _write(self, file: IO[str], role: str) -> None:
        record = {
            "pid": os.getpid(),
            "command": _command_line(),
            "role": role,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        file.seek(0)
        file.truncate()
        file.write(json.dumps(record) + "\n")
        file.flush()

    def acquire_owner(self) -> None:
        """Hold the folder for this process's lifetime, or raise DataDirInUse naming the other process."""
        file = self._open()
        deadline = time.monotonic() + COMMAND_WAIT_S
        while not self._try(file):
            holder = self.holder()
            if holder.get("role") != "command" or time.monotonic() >= deadline:
                file.close()
                raise DataDirInUse(self.data_dir, self._shown(holder))
            time.sleep(0.2)
        self._write(file, "owner")
        self._file, self.role = file, "owner"

    def _shown(self, holder: dict[str, Any]) -> dict[str, Any]:
        """The holder with its start time (stored in UTC) in the display zone."""
        try:
            since = datetime.fromisoformat(str(holder["since"])).astimezone(ZoneInfo(self.display_tz))
        except (KeyError, ValueError):
            return holder
        return {**holder, "since": since.strftime("%Y-%m-%d %H:%M:%S %z")}

    def acquire_shared(self) -> bool:
        """For a short command: True when this process now holds the folder (nobody else runs on it), False when
        an owner holds it (use its server, never stop it)."""
        file = self._open()
        if not self._try(file):
            file.close()
            return False
        self._write(file, "command")
        self._file, self.role = file, "command"
        return True

    def release(self) -> None:
        if self._file is None:
            return
        try:
            self._file.seek(0)
            self._file.truncate()
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        finally:
            self._file.close()
            self._file, self.role = None, None
