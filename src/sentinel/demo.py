"""``sentinel demo``: the whole of Sentinel on one machine with no configuration, and a county to watch.

Starts, in order: the database (the embedded PostgreSQL when no ``SENTINEL_DATABASE_URL`` is set), the schema, the
demo county's registry (``simulators/demo-county.yaml``), a private Mosquitto on a free loopback port when the
binary is installed (otherwise devices publish over HTTP, and the screen says so), the ingest pipeline with the
rule engine on its durable batches and the HTTP API, and the county simulation in real time. A live terminal view
shows the ingest rate, alerts by sector and grade, the latest alerts and the URLs to open. Ctrl-C (or
``--duration``) stops the simulation, then the service, then the broker, then the database.

Alerts shown are read from the database as the alert lifecycle writes them (the engine stage on the pipeline's
durable batches, as ``sentinel serve`` runs it), with the hazard register's open items.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from sentinel.alerts.stage import EngineStage
from sentinel.collect.mqtt import CollectorConfig
from sentinel.pipeline import IngestPipeline
from sentinel.registry.repository import create_api_key, upsert_registry
from sentinel.resources import data_dir
from sentinel.settings import Settings
from sentinel.sim.publish import HttpSender, Progress, paced_steps, send_mqtt
from sentinel.sim.scenario import SECTORS, load_scenario
from sentinel.sim.simulation import Simulation
from sentinel.store import migrations
from sentinel.store.database import Database, connect
from sentinel.testing.broker import BrokerUnavailable, PrivateMosquitto
from sentinel.testing.service import ServiceThread

GRADES = ("red", "orange", "yellow", "blue")
GRADE_STYLE = {"red": "bold red", "orange": "bold dark_orange", "yellow": "yellow", "blue": "blue"}


def demo_scenario_path() -> Path:
    return data_dir("simulators") / "demo-county.yaml"


@dataclass
class DemoRun:
    """What a finished (or interrupted) demo leaves behind, for tests and the closing summary."""

    conninfo: str = ""
    transport: str = ""
    api_url: str = ""
    officer_key: str = ""  # a duty officer's API key for the console's sign-in
    sent: int = 0
    since: datetime | None = None  # when this run's simulation began
    board: Board = field(default_factory=lambda: Board({}, [], {}))


@dataclass
class Board:
    """What the live view shows, read from the database."""

    by_sector_grade: dict[tuple[str, str], int]  # every alert raised, by its sector and current grade
    latest: list[tuple[datetime, str, str, str, str, str]]  # raised_at, sector, rule, subject, grade, state
    open_hazards: dict[str, int]  # open hazard-register items by sector

    def sectors(self) -> set[str]:
        return {sector for sector, _ in self.by_sector_grade}


def board(conninfo: str, since: datetime | None = None) -> Board:
    """Alerts raised since ``since`` (device time; a database reused from earlier runs keeps theirs) and the open
    hazard-register items."""
    since = since or datetime.fromtimestamp(0, UTC)
    with connect(conninfo) as conn:
        counts = conn.execute(
            "SELECT sector, grade, count(*) FROM alerts WHERE raised_at >= %s GROUP BY 1, 2", (since,)
        ).fetchall()
        latest = conn.execute(
            """SELECT raised_at, sector, rule_id, subject, grade, state FROM alerts WHERE raised_at >= %s
               ORDER BY alert_id DESC LIMIT 10""",
            (since,),
        ).fetchall()
        hazards = conn.execute("SELECT sector, count(*) FROM hazards WHERE state <> 'closed' GROUP BY 1").fetchall()
    return Board(
        {(str(s), str(g)): int(n) for s, g, n in counts},
        [(r[0], str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5])) for r in latest],
        {str(s): int(n) for s, n in hazards},
    )


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a service manager, `kill`) and SIGHUP (the terminal closed) stop the demo as cleanly as Ctrl-C:
    broker and database included. Without SIGHUP, closing the terminal left the embedded PostgreSQL running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    stops = (signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, interrupt) for sig in stops}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_demo(
    settings: Settings,
    *,
    duration_s: float | None = None,
    headless: bool = False,
    scenario_path: Path | None = None,
    console: Console | None = None,
    keep: DemoRun | None = None,
    before_stop: Callable[[DemoRun], None] | None = None,
    via: str = "auto",
) -> DemoRun:
    """``via``: "auto" (MQTT through a private Mosquitto when installed, else HTTP) or "http"."""
    with _sigterm_as_interrupt():
        return _run_demo(settings, duration_s, headless, scenario_path, console or Console(), keep, before_stop, via)


def _run_demo(
    settings: Settings,
    duration_s: float | None,
    headless: bool,
    scenario_path: Path | None,
    console: Console,
    keep: DemoRun | None,
    before_stop: Callable[[DemoRun], None] | None,
    via: str,
) -> DemoRun:
    run = keep or DemoRun()
    scenario = load_scenario(scenario_path or demo_scenario_path())
    now = time.time()
    run.since = datetime.fromtimestamp(now, UTC)
    sim = Simulation(scenario, start_us=int(now * 1e6), seq_base=int(now) * 1000)
    say = console.print
    say(
        f"[bold]Sentinel demo[/]: {scenario.county.name}, {len(sim.registry.sites)} sites, "
        f"{len(sim.registry.devices)} devices in {', '.join(SECTORS)}"
    )
    with Database.open(settings) as db:
        say(f"database: {'embedded PostgreSQL' if db.embedded else 'SENTINEL_DATABASE_URL'} · applying migrations")
        migrations.upgrade(db.conninfo)
        with db.connect() as conn:
            upsert_registry(conn, sim.registry)
            run.officer_key = create_api_key(conn, "demo-officer", "officer")
        run.conninfo = db.conninfo
        with _broker(use_mqtt=via != "http") as broker:
            mqtt = None
            if broker is not None:
                mqtt = CollectorConfig.from_url(broker.url, client_id="sentinel-demo-collector")
            stage = EngineStage(
                db.conninfo, lateness_s=settings.lateness_s, rewind_max_readings=settings.rewind_max_readings
            )
            pipeline = IngestPipeline(db.conninfo, db.dialect, settings.spool_dir, mqtt=mqtt, stage=stage)
            service = ServiceThread(pipeline).start()
            run.api_url = service.url
            say(f"[bold]值班台 duty console[/]: {service.url}/ · sign in with the officer key {run.officer_key}")
            run.transport = f"MQTT {broker.url}" if broker else f"HTTP {service.url}/v1/telemetry"
            if broker is None and via != "http":
                say(
                    "[yellow]mosquitto is not installed: the simulated devices publish over HTTP instead of MQTT "
                    "(install mosquitto to see the MQTT path)[/]"
                )
            stop = threading.Event()
            progress = Progress()
            publisher = threading.Thread(
                target=_publish, args=(sim, broker, service.url, stop, progress), name="demo-publisher", daemon=True
            )
            publisher.start()
            started = time.monotonic()
            try:
                _watch(
                    console, db.conninfo, progress, run, started, duration_s, headless, ZoneInfo(settings.display_tz)
                )
            except KeyboardInterrupt:
                say("stopping…")
            finally:
                stop.set()
                publisher.join(30)
                run.sent = progress.sent
                if before_stop is not None:
                    before_stop(run)
                service.stop()
                run.board = board(db.conninfo, run.since)
    say(
        f"demo stopped: {run.sent} messages sent, {sum(run.board.by_sector_grade.values())} alerts, "
        f"sectors alerted: {', '.join(sorted(run.board.sectors())) or 'none'}"
    )
    return run


@contextlib.contextmanager
def _broker(*, use_mqtt: bool) -> Iterator[PrivateMosquitto | None]:
    if not use_mqtt:
        yield None
        return
    try:
        broker = PrivateMosquitto()
        broker.start()
    except BrokerUnavailable:
        yield None
        return
    try:
        yield broker
    finally:
        broker.close()


def _publish(
    sim: Simulation, broker: PrivateMosquitto | None, api_url: str, stop: threading.Event, progress: Progress
) -> None:
    steps = paced_steps(sim, 1.0, step_s=0.5, stop=stop, progress=progress, endless=True)
    if broker is not None:
        send_mqtt(broker.host, broker.port, steps)
        return
    sender = HttpSender(api_url, sim.registry, {gw.id: gw.secret or "" for gw in sim.registry.gateways})
    try:
        for step in steps:
            sender.send(step)
    finally:
        sender.close()


def _watch(
    console: Console,
    conninfo: str,
    progress: Progress,
    run: DemoRun,
    started: float,
    duration_s: float | None,
    headless: bool,
    tz: ZoneInfo,
) -> None:
    def expired() -> bool:
        return duration_s is not None and time.monotonic() - started >= duration_s

    if headless:
        while not expired():
            time.sleep(0.5)
        return

    def view() -> Group:
        return _view(board(conninfo, run.since), progress, run, started, tz)

    with Live(view(), console=console, refresh_per_second=2) as live:
        while not expired():
            time.sleep(1.0)
            live.update(view())


def _view(b: Board, progress: Progress, run: DemoRun, started: float, tz: ZoneInfo) -> Group:
    elapsed = time.monotonic() - started
    head = Table.grid(padding=(0, 2))
    head.add_row("running", f"{elapsed:.0f} s", "messages", f"{progress.sent:,}", "rate", f"{progress.rate:,.0f} msg/s")
    head.add_row("devices send over", run.transport, "API", f"{run.api_url}/docs", "metrics", f"{run.api_url}/metrics")
    head.add_row("值班台 console", f"{run.api_url}/", "officer key", run.officer_key, "", "")
    counts = Table(title="alerts by sector and grade · open hazard-register items")
    counts.add_column("sector")
    for g in GRADES:
        counts.add_column(g, justify="right", style=GRADE_STYLE[g])
    counts.add_column("open hazards", justify="right")
    for sector in SECTORS:
        counts.add_row(
            sector, *(str(b.by_sector_grade.get((sector, g), 0)) for g in GRADES), str(b.open_hazards.get(sector, 0))
        )
    recent = Table(title="latest alerts")
    for name in (f"raised (device time, {tz.key})", "sector", "rule", "subject", "grade", "state"):
        recent.add_column(name)
    for raised_at, where, rule, subject, grade, state in b.latest:
        recent.add_row(
            raised_at.astimezone(tz).strftime("%H:%M:%S"),
            where,
            rule,
            subject,
            f"[{GRADE_STYLE.get(grade, '')}]{grade}[/]",
            state,
        )
    return Group(Panel(head, title="Sentinel demo · Ctrl-C to stop"), counts, recent)
