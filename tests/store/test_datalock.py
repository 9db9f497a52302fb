"""One Sentinel per data folder (store/datalock.py), with real processes on one embedded PostgreSQL: a second
owner (`sentinel serve`) is refused at once with one line naming the folder and the first process, exit 2, and
touches nothing; a short command shares the first one's server and leaves it running; the first keeps working."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel.store.datalock import DataLock
from sentinel.testing.postgres import scratch_dir

OWNER = """
import sys
from sentinel.settings import load_settings
from sentinel.store.database import Database

with Database.open(load_settings(data_dir=sys.argv[1])) as db:
    with db.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS mine (n int)")
        conn.execute("INSERT INTO mine VALUES (1)")
        conn.commit()
    print("ready", db.embedded.server_pid() if db.embedded else None, flush=True)
    sys.stdin.read()  # until the test closes our stdin
    with db.connect() as conn:
        print("still fine", conn.execute("SELECT count(*) FROM mine").fetchone()[0], flush=True)
"""


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = scratch_dir("sentinel-lock-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    env.update(SENTINEL_DATA_DIR=str(data_dir), SENTINEL_HTTP_PORT="0", COLUMNS="200")
    return env


def _sentinel(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentinel", *args],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file in the folder the second process could have touched, with size and mtime (not the server's)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file() and "postgres/data/" not in str(p) and p.name != "server.log"
    }


def test_a_second_owner_is_refused_and_a_command_shares_while_the_first_runs(data_dir: Path) -> None:
    first = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(data_dir)],
        env=_env(data_dir),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout is not None
        assert first.stdin is not None
        line = first.stdout.readline()
        assert line.startswith("ready"), line + (first.stderr.read() if first.stderr else "")
        server_pid = int(line.split()[1])
        before = _snapshot(data_dir)

        second = _sentinel(data_dir, "serve")
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert str(data_dir) in lines[0]
        assert f"pid {first.pid}" in lines[0]
        assert "SENTINEL_DATA_DIR" in lines[0]
        assert _snapshot(data_dir) == before  # nothing touched

        shared = _sentinel(data_dir, "db", "status")
        assert shared.returncode == 0, shared.stderr
        # Every short command shares the running server: keys and the duty roster are what an operator changes
        # while serve runs (they were refused like a second owner).
        for command in (("db", "upgrade"), ("keys", "list"), ("keys", "revoke", "nobody"), ("duty", "now")):
            ran = _sentinel(data_dir, *command)
            assert "in use by pid" not in ran.stderr, (command, ran.stderr)
        assert first.poll() is None

        out, err = first.communicate(input="", timeout=60)  # closes its stdin: it queries once more and ends
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    assert "still fine 1" in out  # the first process's server and data survived both
    assert not Path(f"/proc/{server_pid}").exists() or "postgres" not in Path(f"/proc/{server_pid}/cmdline").read_text()
    assert not DataLock(data_dir).holder()  # released: the file names nobody


def test_the_lock_is_released_when_its_holder_dies(data_dir: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from sentinel.store.datalock import DataLock; "
            "lock = DataLock(Path(sys.argv[1])); lock.acquire_owner(); print('held', flush=True); sys.stdin.read()",
            str(data_dir),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    lock = DataLock(data_dir)
    with pytest.raises(Exception, match=f"pid {holder.pid}"):
        lock.acquire_owner()
    holder.kill()
    holder.wait(timeout=30)
    lock.acquire_owner()  # the kernel dropped the dead process's lock: no stale lock file to clean by hand
    assert lock.holder()["pid"] == os.getpid()
    lock.release()


def test_a_server_orphaned_by_a_killed_owner_is_adopted_and_stopped(data_dir: Path) -> None:
    first = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(data_dir)],
        env=_env(data_dir),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert first.stdout is not None
    line = first.stdout.readline()
    assert line.startswith("ready"), line
    server_pid = int(line.split()[1])
    first.kill()  # SIGKILL: no chance to stop its server
    first.wait(30)
    assert Path(f"/proc/{server_pid}").exists()  # the orphan runs on
    status = _sentinel(data_dir, "db", "status")  # nobody holds the folder: this command adopts the orphan
    assert status.returncode == 0, status.stderr
    pid_file = data_dir / "postgres" / "data" / "postmaster.pid"
    assert not pid_file.exists()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert str(data_dir) not in ps
