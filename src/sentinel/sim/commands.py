"""CLI: ``sentinel simulate`` and ``sentinel replay`` (top-level commands; ``sentinel demo`` is in cli.py, since the
demo sits above the simulator)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from sentinel.cli_settings import cli_settings
from sentinel.errors import ScenarioError

if TYPE_CHECKING:
    from sentinel.sim.simulation import Outgoing


def _target(via: str, mqtt_url: str | None, http_url: str | None) -> tuple[str, str]:
    if via == "mqtt":
        if not mqtt_url:
            raise ScenarioError(
                "--via mqtt needs --mqtt-url or SENTINEL_MQTT_URL (e.g. mqtt://127.0.0.1:1883); without a broker use "
                "--via http to a running `sentinel serve`, or --report --dry-run to score the scenario in-process"
            )
        return via, mqtt_url
    if via == "http":
        return via, http_url or ""
    raise ScenarioError(f"--via {via!r}: expected mqtt or http")


def _answers(http_url: str) -> bool:
    """Whether something listens at the URL's host and port (a running Sentinel, when it is ours)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(http_url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=1.0):
            return True
    except OSError:
        return False


def _choose(via: str | None, mqtt_url: str | None, http_url: str, report: bool) -> tuple[str, str, str]:
    """(transport, target, note) when --via was not given: the broker if one is named, else a running Sentinel
    over HTTP (as the demo does without a broker), else, for --report, the in-process engine only ("none")."""
    if via is not None:
        return (*_target(via, mqtt_url, http_url), "")
    if mqtt_url:
        return "mqtt", mqtt_url, ""
    if _answers(http_url):
        return "http", http_url, f"no broker (SENTINEL_MQTT_URL unset): sending over HTTP to {http_url}"
    if report:
        return (
            "none",
            "",
            (
                f"no broker (SENTINEL_MQTT_URL unset) and no Sentinel at {http_url}: nothing is sent; "
                "the report scores the stream with the rule engine in-process"
            ),
        )
    raise ScenarioError(
        f"nowhere to send: no broker (set SENTINEL_MQTT_URL or --mqtt-url) and no Sentinel at {http_url} (start "
        "`sentinel serve` or `sentinel demo`, or pass --http-url); --report --dry-run scores the scenario in-process"
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def simulate(
        ctx: typer.Context,
        scenario: Annotated[Path, typer.Argument(help="scenario YAML (see simulators/)")],
        via: Annotated[
            str | None, typer.Option(help="mqtt or http (default: mqtt with a broker URL, else http to Sentinel)")
        ] = None,
        speed: Annotated[float, typer.Option(help="device time per wall time; 0 = as fast as possible")] = 0.0,
        record: Annotated[Path | None, typer.Option(help="write the stream (JSON lines, .gz to compress)")] = None,
        registry_out: Annotated[Path | None, typer.Option(help="write the scenario's registry (YAML) and exit")] = None,
        mqtt_url: Annotated[str | None, typer.Option(help="broker URL (default: SENTINEL_MQTT_URL)")] = None,
        http_url: Annotated[str | None, typer.Option(help="Sentinel's URL (default: from SENTINEL_HTTP_*)")] = None,
        report: Annotated[bool, typer.Option(help="score the run with the rule engine (in-process)")] = False,
        report_json: Annotated[Path | None, typer.Option(help="write the detection report as JSON")] = None,
        dry_run: Annotated[bool, typer.Option(help="send nothing (with --record / --report)")] = False,
    ) -> None:
        """Publish a scenario's device stream to a running Sentinel (register its devices first:
        --registry-out FILE, then `sentinel registry load FILE`)."""
        import msgspec
        import yaml

        from sentinel.sim.publish import HttpSender, Recorder, paced_steps, send_mqtt
        from sentinel.sim.report import score
        from sentinel.sim.scenario import load_scenario
        from sentinel.sim.simulation import Simulation
        from sentinel.sim.tap import run_offline

        settings = cli_settings(ctx)
        sim = Simulation(load_scenario(scenario))
        console = Console()
        if registry_out is not None:
            registry_out.write_text(
                yaml.safe_dump(msgspec.to_builtins(sim.registry), allow_unicode=True, sort_keys=False), encoding="utf-8"
            )
            console.print(
                f"wrote {registry_out}: {len(sim.registry.sites)} sites, {len(sim.registry.devices)} "
                f"devices; load it with `sentinel registry load {registry_out}`"
            )
            return
        kind, url, note = (
            ("none", "", "")
            if dry_run
            else _choose(
                via,
                mqtt_url or settings.mqtt_url,
                http_url or f"http://{settings.http_host}:{settings.http_port}",
                bool(report or report_json),
            )
        )
        if note:
            console.print(note)
        payloads: list[bytes] = []
        recorder = Recorder(record, sim) if record else None
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task(f"{sim.scenario.name} → {url or 'nowhere'}", total=sim.scenario.duration_s, rate="")
            from sentinel.sim.publish import Progress as Counters

            counters = Counters()

            def steps() -> Iterator[list[Outgoing]]:
                source = paced_steps(sim, speed, progress=counters)
                for step in recorder.tee(source) if recorder else source:
                    if report or report_json:
                        payloads.extend(m.payload for m in step)
                    bar.update(
                        task, completed=counters.device_s, rate=f"{counters.sent:,} msgs · {counters.rate:,.0f} msg/s"
                    )
                    yield step

            if kind == "none":
                for _ in steps():
                    pass
            elif kind == "mqtt":
                from sentinel.collect.mqtt import CollectorConfig

                cfg = CollectorConfig.from_url(url, client_id="unused")
                send_mqtt(cfg.host, cfg.port, steps(), username=cfg.username, password=cfg.password)
            else:
                sender = HttpSender(url, sim.registry, {gw.id: gw.secret or "" for gw in sim.registry.gateways})
                for step in steps():
                    sender.send(step)
                sender.close()
        if recorder:
            recorder.close()
        done = "generated (nothing sent)" if kind == "none" else "sent"
        console.print(f"{done} {counters.sent:,} messages ({sim.dropped} dropped by the devices' network)")
        if report or report_json:
            transitions = run_offline(sim.registry, payloads, end_us=sim.end_us)
            result = score(
                sim.scenario.name,
                sim.start_us,
                sim.scenario.duration_s,
                list(sim.entries),
                sim.faults,
                transitions,
                "rule engine in-process over the sent stream",
            )
            result.print(console)
            if report_json:
                result.write_json(report_json)

    @app.command()
    def replay(
        ctx: typer.Context,
        file: Annotated[Path, typer.Argument(help="a recording made by `sentinel simulate --record`")],
        speed: Annotated[float, typer.Option(help="× the recorded pace; 0 = as fast as possible")] = 0.0,
        via: Annotated[str, typer.Option(help="mqtt or http")] = "mqtt",
        mqtt_url: Annotated[str | None, typer.Option(help="broker URL (default: SENTINEL_MQTT_URL)")] = None,
        http_url: Annotated[str | None, typer.Option(help="Sentinel's URL")] = None,
    ) -> None:
        """Send a recorded stream again, byte for byte, in recorded order."""
        from sentinel.sim.publish import HttpSender, read_recording, recording_steps, send_mqtt

        settings = cli_settings(ctx)
        rec = read_recording(file)
        kind, url = _target(
            via, mqtt_url or settings.mqtt_url, http_url or f"http://{settings.http_host}:{settings.http_port}"
        )
        console = Console()
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task(f"replay {file.name} → {url}", total=len(rec.messages))
            steps = recording_steps(rec, speed, threading.Event(), on_step=lambda n: bar.advance(task, n))
            if kind == "mqtt":
                from sentinel.collect.mqtt import CollectorConfig

                cfg = CollectorConfig.from_url(url, client_id="unused")
                send_mqtt(cfg.host, cfg.port, steps, username=cfg.username, password=cfg.password)
            else:
                sender = HttpSender(url, rec.registry, rec.tokens)
                for step in steps:
                    sender.send(step)
                sender.close()
        console.print(f"replayed {len(rec.messages):,} messages")
