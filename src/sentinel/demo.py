"""``sentinel demo``: the whole of Sentinel on one machine with no configuration, and a county to watch.

Starts, in order: the database (the embedded PostgreSQL when no ``SENTINEL_DATABASE_URL`` is set), the schema, the
demo county's registry (``simulators/demo-county.yaml``), a private Mosquitto on a free loopback port when the
binary is installed (otherwise devices publish over HTTP, and the screen says so), the ingest pipeline with the
rule engine on its durable batches and the HTTP API, and the county simulation in real time. A live terminal view
shows the ingest rate, alerts by sector and grade, the latest alerts and the URLs to open. Ctrl-C (or
``--duration``) stops the simulation, then the service, then the broker, then the database.

Alerts shown are the rule engine's transitions on the live stream (:class:`~sentinel.sim.tap.EngineTap`); the
alert lifecycle that will write the ``alerts`` table is a separate stage.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from sentinel.collect.mqtt import CollectorConfig
from sentinel.engine import Transition
from sentinel.pipeline import IngestPipeline
from sentinel.registry.repository import upsert_registry
from sentinel.resources import data_dir
from sentinel.settings import Settings
from sentinel.sim.publish import HttpSender, Progress, paced_steps, send_mqtt
from sentinel.sim.scenario import SECTORS, load_scenario
from sentinel.sim.simulation import Simulation
from sentinel.sim.tap import EngineTap
from sentinel.store import migrations
from sentinel.store.database import Database
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
    sent: int = 0
    transitions: list[Transition] = field(default_factory=list)
    sector_of: dict[str, str] = field(default_factory=dict)

    def sectors_alerted(self) -> set[str]:
        return {self.sector_of.get(t.subject, "?") for t in self.transitions if t.kind in ("raise", "escalate")}


def run_demo(
    settings: Settings,
    *,
    duration_s: float | None = None,
    headless: bool = False,
    scenario_path: Path | None = None,
    console: Console | None = None,
    keep: DemoRun | None = None,
) -> DemoRun:
    console = console or Console()
    run = keep or DemoRun()
    scenario = load_scenario(scenario_path or demo_scenario_path())
    now = time.time()
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
        run.conninfo = db.conninfo
        with _broker(console) as broker:
            mqtt = None
            if broker is not None:
                mqtt = CollectorConfig.from_url(broker.url, client_id="sentinel-demo-collector")
            tap = EngineTap(db.conninfo, sim.registry)
            run.sector_of = tap.log.sector_of
            pipeline = IngestPipeline(db.conninfo, db.dialect, settings.spool_dir, mqtt=mqtt, on_durable=tap)
            service = ServiceThread(pipeline).start()
            run.api_url = service.url
            run.transport = f"MQTT {broker.url}" if broker else f"HTTP {service.url}/v1/telemetry"
            if broker is None:
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
                _watch(console, tap, progress, run, started, duration_s, headless, stop)
            except KeyboardInterrupt:
                say("stopping…")
            finally:
                stop.set()
                publisher.join(30)
                service.stop()
                run.sent = progress.sent
                run.transitions = tap.log.snapshot()
    say(
        f"demo stopped: {run.sent} messages sent, {len(run.transitions)} alert transitions, "
        f"sectors alerted: {', '.join(sorted(run.sectors_alerted())) or 'none'}"
    )
    return run


@contextlib.contextmanager
def _broker(console: Console) -> Iterator[PrivateMosquitto | None]:
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
    tap: EngineTap,
    progress: Progress,
    run: DemoRun,
    started: float,
    duration_s: float | None,
    headless: bool,
    stop: threading.Event,
) -> None:
    def expired() -> bool:
        return duration_s is not None and time.monotonic() - started >= duration_s

    if headless:
        while not expired():
            time.sleep(0.5)
        return
    with Live(_view(tap, progress, run, started), console=console, refresh_per_second=2, screen=False) as live:
        while not expired():
            time.sleep(0.5)
            live.update(_view(tap, progress, run, started))


def _view(tap: EngineTap, progress: Progress, run: DemoRun, started: float) -> Group:
    elapsed = time.monotonic() - started
    head = Table.grid(padding=(0, 2))
    head.add_row("running", f"{elapsed:.0f} s", "messages", f"{progress.sent:,}", "rate", f"{progress.rate:,.0f} msg/s")
    head.add_row("devices send over", run.transport, "API", f"{run.api_url}/docs · {run.api_url}/metrics", "", "")
    counts = Table(title="alerts raised (engine transitions) by sector and grade")
    counts.add_column("sector")
    for g in GRADES:
        counts.add_column(g, justify="right", style=GRADE_STYLE[g])
    with tap.log.lock:
        raised = dict(tap.log.raised)
        latest = tap.log.records[-10:]
    for sector in SECTORS:
        counts.add_row(sector, *(str(raised.get((sector, g), 0)) for g in GRADES))
    recent = Table(title="latest alert transitions")
    for name in ("device time", "rule", "subject", "grade", "kind", "value"):
        recent.add_column(name)
    for t in reversed(latest):
        recent.add_row(
            time.strftime("%H:%M:%S", time.localtime(t.ts_us / 1e6)),
            t.rule_id,
            t.subject,
            f"[{GRADE_STYLE.get(t.to_grade, '')}]{t.to_grade}[/]" if t.to_grade != "none" else "none",
            t.kind,
            f"{t.value:g}",
        )
    return Group(Panel(head, title="Sentinel demo · Ctrl-C to stop"), counts, recent)
