"""``sentinel demo``: the whole of Sentinel on one machine with no configuration, and a county to watch.

Starts, in order: the database (the embedded PostgreSQL when no ``SENTINEL_DATABASE_URL`` is set), the schema, the
demo county's registry (``simulators/demo-county.yaml``), a private Mosquitto on a free loopback port when the
binary is installed (otherwise devices publish over HTTP, and the screen says so), the service itself built by the
composition root exactly as ``sentinel serve`` builds it (:func:`demo_sentinel`: only the broker URL and a free
HTTP port differ), an officer API key with the commands to acknowledge an alert, and the county simulation in real
time. A live terminal view shows the ingest rate, the alerts open now by sector and grade, the latest alerts with
their ids and the URLs to open. Ctrl-C (or ``--duration``) stops the simulation, then the service, then the broker,
then the database.

Alerts shown are read from the database as the alert lifecycle writes them, with the hazard register's open items.
While the database is away the view says so (数据库暂不可用) and keeps the last board; it recovers by itself.
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

import psycopg
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from sentinel.app import Sentinel
from sentinel.collect.broker_process import BrokerUnavailable, PrivateMosquitto
from sentinel.errors import DatabaseUnavailable
from sentinel.registry.repository import create_api_key, upsert_registry
from sentinel.resources import data_dir
from sentinel.settings import Settings
from sentinel.sim.publish import HttpSender, Progress, paced_steps, send_mqtt
from sentinel.sim.scenario import SECTORS, load_scenario
from sentinel.sim.simulation import Simulation
from sentinel.store import migrations
from sentinel.store.database import Database, connect
from sentinel.threaded import SentinelThread

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
    officer_token: str = ""
    sent: int = 0
    since: datetime | None = None  # when this run's simulation began
    board: Board = field(default_factory=lambda: Board({}, {}, [], {}))
    database_outages: int = 0  # times the live view found the database away (and then back)


# Alerts an officer still has to deal with: not closed (normal), not hidden by hand (shelved) or by design.
OPEN_NOW = ("active_unack", "active_ack", "cleared_unack")


@dataclass
class Board:
    """What the live view shows, read from the database."""

    by_sector_grade: dict[tuple[str, str], int]  # alerts open now (OPEN_NOW), by sector and current grade
    raised_by_sector: dict[str, int]  # every alert raised since the run began, open or not
    latest: list[tuple[int, datetime, str, str, str, str, str]]  # id, raised_at, sector, rule, subject, grade, state
    open_hazards: dict[str, int]  # open hazard-register items by sector

    def sectors(self) -> set[str]:
        """Sectors with an alert raised this run."""
        return {sector for sector, n in self.raised_by_sector.items() if n}


def board(conninfo: str, since: datetime | None = None) -> Board:
    """Alerts raised since ``since`` (device time; a database reused from earlier runs keeps theirs) and the open
    hazard-register items. DatabaseUnavailable (or psycopg.OperationalError) while the database is away."""
    since = since or datetime.fromtimestamp(0, UTC)
    with connect(conninfo) as conn:
        counts = conn.execute(
            """SELECT sector, grade, count(*) FROM alerts WHERE raised_at >= %s AND state = ANY(%s)
               GROUP BY 1, 2""",
            (since, list(OPEN_NOW)),
        ).fetchall()
        raised = conn.execute(
            "SELECT sector, count(*) FROM alerts WHERE raised_at >= %s GROUP BY 1", (since,)
        ).fetchall()
        latest = conn.execute(
            """SELECT alert_id, raised_at, sector, rule_id, subject, grade, state FROM alerts WHERE raised_at >= %s
               ORDER BY alert_id DESC LIMIT 10""",
            (since,),
        ).fetchall()
        hazards = conn.execute("SELECT sector, count(*) FROM hazards WHERE state <> 'closed' GROUP BY 1").fetchall()
    return Board(
        {(str(s), str(g)): int(n) for s, g, n in counts},
        {str(s): int(n) for s, n in raised},
        [(int(r[0]), r[1], str(r[2]), str(r[3]), str(r[4]), str(r[5]), str(r[6])) for r in latest],
        {str(s): int(n) for s, n in hazards},
    )


def demo_sentinel(settings: Settings, db: Database, broker_url: str | None) -> Sentinel:
    """The demo's service: ``sentinel serve``'s, on the demo's database and broker with a free HTTP port."""
    overrides: dict[str, object] = {"http_port": 0, "mqtt_url": broker_url}
    if broker_url is not None:
        overrides["mqtt_client_id"] = "sentinel-demo-collector"
    return Sentinel.from_settings(settings.model_copy(update=overrides), database=db)


def sign_in_lines(api_url: str, token: str) -> list[str]:
    """How a newcomer acts on an alert they see: the officer key and the exact commands."""
    return [
        f"[bold]值班台 duty console[/]: {api_url}/  ← 浏览器打开，用下面的密钥登录 "
        "open it in a browser, sign in with the key below",
        "[bold]值班员登录 officer sign-in[/]: API key (Bearer token) "
        f"[bold green]{token}[/] (role officer, name demo-officer)",
        f"  当前告警 open alerts:  curl -H 'Authorization: Bearer {token}' '{api_url}/v1/alerts?state=active_unack'",
        f"  确认告警 acknowledge:  curl -X POST -H 'Authorization: Bearer {token}' {api_url}/v1/alerts/<告警id>/ack",
        "  或 or:                 sentinel alerts ack <告警id>   ·   API 文档 docs: " + f"{api_url}/docs",
    ]


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
            run.officer_token = create_api_key(conn, "demo-officer", "officer")
        run.conninfo = db.conninfo
        with _broker(use_mqtt=via != "http") as broker:
            service = SentinelThread(demo_sentinel(settings, db, broker.url if broker else None)).start()
            run.api_url = service.url
            for line in sign_in_lines(service.url, run.officer_token):
                say(line, soft_wrap=True)  # commands stay on one line, ready to copy
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
                try:
                    if before_stop is not None:
                        before_stop(run)
                finally:
                    service.stop()
                with contextlib.suppress(DatabaseUnavailable, psycopg.Error):
                    run.board = board(db.conninfo, run.since)
    say(
        f"demo stopped: {run.sent} messages sent, {sum(run.board.raised_by_sector.values())} alerts raised, "
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

    last = Board({}, {}, [], {})
    away = False

    def look() -> Board | None:
        """The board, or None while the database is away (said once when it goes, once when it is back)."""
        nonlocal last, away
        try:
            last = board(conninfo, run.since)
        except (DatabaseUnavailable, psycopg.Error):
            if not away:
                away = True
                run.database_outages += 1
                if headless:
                    console.print("数据库暂不可用 (database unavailable): ingest spools locally; retrying")
            return None
        if away:
            away = False
            if headless:
                console.print("数据库已恢复 (database back)")
        return last

    if headless:
        while not expired():
            look()
            time.sleep(1.0)
        return

    def view() -> Group:
        current = look()
        return _view(last, progress, run, started, tz, database_away=current is None)

    with Live(view(), console=console, refresh_per_second=2) as live:
        while not expired():
            time.sleep(1.0)
            live.update(view())


def _view(
    b: Board, progress: Progress, run: DemoRun, started: float, tz: ZoneInfo, *, database_away: bool = False
) -> Group:
    elapsed = time.monotonic() - started
    head = Table.grid(padding=(0, 2))
    head.add_row("running", f"{elapsed:.0f} s", "messages", f"{progress.sent:,}", "rate", f"{progress.rate:,.0f} msg/s")
    head.add_row("devices send over", run.transport, "API", f"{run.api_url}/docs", "metrics", f"{run.api_url}/metrics")
    head.add_row("值班台 console", f"{run.api_url}/", "officer key", run.officer_token, "", "")
    if database_away:
        head.add_row(
            "[bold red]数据库暂不可用[/]",
            "database unavailable: ingest spools locally; the board below is the last one read",
            "",
            "",
            "",
            "",
        )
    counts = Table(
        title="当前未关闭告警 open now (active, or cleared but not acknowledged) · 隐患台账未关闭项 open hazards"
    )
    counts.add_column("sector")
    for g in GRADES:
        counts.add_column(g, justify="right", style=GRADE_STYLE[g])
    counts.add_column("open hazards", justify="right")
    for sector in SECTORS:
        counts.add_row(
            sector, *(str(b.by_sector_grade.get((sector, g), 0)) for g in GRADES), str(b.open_hazards.get(sector, 0))
        )
    recent = Table(title="最新告警 latest alerts (sentinel alerts ack <id>)")
    for name in ("告警id id", f"raised (device time, {tz.key})", "sector", "rule", "subject", "grade", "state"):
        recent.add_column(name)
    for alert_id, raised_at, where, rule, subject, grade, state in b.latest:
        recent.add_row(
            str(alert_id),
            raised_at.astimezone(tz).strftime("%H:%M:%S"),
            where,
            rule,
            subject,
            f"[{GRADE_STYLE.get(grade, '')}]{grade}[/]",
            state,
        )
    return Group(Panel(head, title="Sentinel demo · Ctrl-C to stop"), counts, recent)
