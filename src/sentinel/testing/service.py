"""The service for tests: a :class:`~sentinel.app.Sentinel` on a given database, its HTTP API on a free loopback
port, running in a background thread (:class:`~sentinel.threaded.SentinelThread`).

Tests stay synchronous (httpx, schemathesis, psycopg) while the service runs its own event loop, as in production.
The test kit's defaults are overrides of the one root (no engine runner, no webhook delivery, no upkeep loop),
never a second assembly; pass ``engine=True`` and the like to get them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sentinel.app import Sentinel, prepare_catalogue
from sentinel.collect.mqtt import CollectorConfig
from sentinel.ingest.admission import Admission
from sentinel.ingest.dedup import DuplicateFilter
from sentinel.ingest.sink import IngestSink
from sentinel.observability import IngestMetrics
from sentinel.registry.repository import RegistryView
from sentinel.settings import Settings
from sentinel.store.database import connect
from sentinel.store.ingest_writer import IngestWriter
from sentinel.store.spool import Spool
from sentinel.threaded import SentinelThread

ServiceThread = SentinelThread
TEST_DEFAULTS: dict[str, Any] = {"engine": False, "webhooks": False, "upkeep": False, "dialect": "native"}


def settings_for_tests(conninfo: str, data_dir: Path, **values: Any) -> Settings:
    """Settings for a Sentinel on ``conninfo`` with its state under ``data_dir`` and a free HTTP port."""
    return Settings(database_url=conninfo, data_dir=data_dir, http_port=0, **values)


def sentinel_for_tests(
    conninfo: str, spool_dir: Path, *, settings: dict[str, Any] | None = None, **overrides: Any
) -> Sentinel:
    """The one root with the test kit's defaults; ``overrides`` win over them."""
    return Sentinel.from_settings(
        settings_for_tests(conninfo, spool_dir.parent, **(settings or {})),
        spool_dir=spool_dir,
        **{**TEST_DEFAULTS, **overrides},
    )


def start_service(conninfo: str, spool_dir: Path, **overrides: Any) -> SentinelThread:
    """A started service thread (stop it with ``.stop()``); ``overrides`` as for :func:`sentinel_for_tests`."""
    return SentinelThread(sentinel_for_tests(conninfo, spool_dir, **overrides)).start()


@contextmanager
def running_service(
    conninfo: str,
    spool_dir: Path,
    *,
    mqtt: CollectorConfig | None = None,
    queue_max_batches: int = 8,
    **overrides: Any,
) -> Iterator[SentinelThread]:
    sentinel = sentinel_for_tests(
        conninfo, spool_dir, settings={"queue_max_batches": queue_max_batches}, mqtt=mqtt, **overrides
    )
    service = SentinelThread(sentinel).start()
    try:
        yield service
    finally:
        service.stop()


def sink_for_tests(conninfo: str, spool: Spool | Path, writer: IngestWriter) -> IngestSink:
    """A bare ingest sink on the registry in ``conninfo`` (no collectors, no API), for tests of the sink itself;
    spool replays retry fast."""
    prepare_catalogue(conninfo)
    with connect(conninfo) as conn:
        view = RegistryView.load(conn)
    return IngestSink(
        writer,
        spool if isinstance(spool, Spool) else Spool(spool),
        Admission(view, DuplicateFilter()),
        IngestMetrics(),
        replay_backoff_s=(0.05, 0.2),
    )
