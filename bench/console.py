"""The duty console's cost: the board's first page with 10,000 open alerts, and the ingest rate with 50 live
consoles connected beside the same run without any.

    python bench/console.py [--alerts 10000] [--consoles 50] [--messages 6000] [--rounds 2]

board     10,000 open alerts (2,500 devices x 4 rules, every grade and state, 3 townships) in PostgreSQL; the
          first page of the board, worst grade then oldest, with its counts: the query alone
          (sentinel.console.queries.board) and GET /board over HTTP with a signed-in session (page rendered),
          median of 15 after one warm-up; target < 1 s.
ingest    POST /v1/telemetry (NDJSON, 100 messages a request, one connection) of --messages methane readings
          walking through every grade on 100 devices, so alerts open, escalate and clear all the time (each a live
          event for every console), measured from the first request to the last message durable (message_log
          counted). Without consoles, then with --consoles SSE streams (a separate process reading /events with a
          signed-in session, receiving the announced events and the board bodies pushed, at most once a second
          per view, after changes) connected,
          alternating for --rounds rounds; target: the rate with consoles within 5 % of the rate without. The
          CPU column (this process: the service and the poster; the consoles' process is left out, as browsers
          run on the officers' desktops) is steadier than the rate on a shared machine.
latency   with the consoles connected and a steady ingest walk running, --trials times: a reading that raises an
          orange alert on a quiet device is posted, and a console's stream is watched for the first board pushed
          that reflects the alert's event (its id at least the event's): seconds from the event's commit (its time
          stamp) to the push's arrival; target < 2 s.

Uses SENTINEL_TEST_DATABASE_URL's server when set, else an embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import psycopg

from sentinel.app import prepare_catalogue
from sentinel.console.queries import BoardFilter, board
from sentinel.registry.entries import DeviceEntry, GatewayEntry, RegistryFile, SiteEntry
from sentinel.registry.repository import create_api_key, upsert_registry
from sentinel.store import migrations
from sentinel.testing.postgres import postgres_for_tests
from sentinel.testing.service import start_service
from sentinel.wire import Telemetry, encode_batch

GRADES = ("red", "orange", "yellow", "blue")
STATES = ("active_unack", "active_ack", "cleared_unack", "shelved", "suppressed")
WALK = [2.0, 12.0, 30.0, 55.0, 30.0, 5.0]  # none, blue, yellow, orange, back down, clear

# The consoles: one process, asyncio sockets (no HTTP library), so the browsers' own work, which happens on the
# officers' desktops, costs this machine as little as possible. Each reads /events as the board page does (the
# server pushes the board's body after alert events); the process counts the events and the board pushes.
LISTENER = r"""
import asyncio, sys
from urllib.parse import urlsplit
url, cookie, n = urlsplit(sys.argv[1]), sys.argv[2], int(sys.argv[3])
count = boards = 0
async def listen(ready):
    global count, boards
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write((f"GET /events?view= HTTP/1.1\r\nHost: {url.netloc}\r\nCookie: sentinel_session={cookie}\r\n"
                  "Accept: text/event-stream\r\n\r\n").encode())
    await writer.drain()
    ready.release()
    while chunk := await reader.read(65536):
        count += chunk.count(b"\nevent: alert")
        boards += chunk.count(b"\nevent: board")
async def main():
    ready = asyncio.Semaphore(0)
    tasks = [asyncio.create_task(listen(ready)) for _ in range(n)]
    for _ in range(n):
        await ready.acquire()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    print(count, boards, flush=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
asyncio.run(main())
"""


def registry(devices: int, prefix: str = "b") -> RegistryFile:
    sites = [SiteEntry(f"{prefix}-s{i}", f"场所 {i}", f"镇{i % 3}", "gas", 31.5 + i * 0.01, 120.3) for i in range(10)]
    devs = [DeviceEntry(f"{prefix}-d{j}", f"{prefix}-s{j % 10}", "gas_well_monitor", 3600.0) for j in range(devices)]
    gateway = GatewayEntry(f"{prefix}-gw", [s.id for s in sites], secret=f"{prefix}-gateway-secret-token")
    return RegistryFile(sites, [gateway], devs)


def fill_alerts(conn: psycopg.Connection[object], n: int) -> None:
    per_device = 4
    with conn.transaction():
        conn.execute(
            """INSERT INTO alerts (alert_key, rule_id, subject, device_id, site_id, alert_class, grade, state,
                                   raised_at, acked, township, sector, last_value, condition_active)
               SELECT 'bench|' || g, 'bench.rule' || (g %% %(per)s), d.device, d.device_id, d.site_id, 'alarm',
                      (ARRAY['red','orange','yellow','blue'])[1 + g %% 4],
                      (ARRAY['active_unack','active_ack','cleared_unack','shelved','suppressed'])[1 + g %% 5],
                      now() - (g || ' seconds')::interval, g %% 5 = 1, s.township, s.sector, 42, true
               FROM generate_series(0, %(n)s - 1) g
               JOIN devices d ON d.device = 'b-d' || (g / %(per)s)
               JOIN sites s ON s.site_id = d.site_id""",
            {"n": n, "per": per_device},
        )


def sign_in(url: str, key: str) -> httpx.Client:
    http = httpx.Client(base_url=url, timeout=60)
    csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/login").text)
    assert csrf is not None
    r = http.post("/login", data={"csrf": csrf.group(1), "api_key": key, "next": "/board"})
    assert r.status_code == 303, r.text
    return http


def board_bench(conninfo: str, url: str, key: str, n: int) -> tuple[float, float, int]:
    with psycopg.connect(conninfo) as conn:
        board(conn, BoardFilter(), 1)
        query = []
        for _ in range(15):
            t = time.perf_counter()
            result = board(conn, BoardFilter(), 1)
            query.append(time.perf_counter() - t)
    assert result.total == n, result.total
    http = sign_in(url, key)
    http.get("/board")
    page = []
    for _ in range(15):
        t = time.perf_counter()
        r = http.get("/board")
        page.append(time.perf_counter() - t)
        assert r.status_code == 200
    http.close()
    return statistics.median(query), statistics.median(page), result.total


def ingest_once(url: str, token: str, conninfo: str, messages: int, seq0: int) -> tuple[float, float]:
    """(messages per second, CPU seconds of this process — the service and the poster — per 1,000 messages)."""
    devices = 100
    start_us = (time.time_ns() // 1000) - 3_600_000_000
    batch = [
        Telemetry(
            f"b-d{k % devices}",
            start_us + (seq0 + k) * 1000,
            seq0 + k // devices + 1,
            {"ch4_pct_lel": WALK[(k // devices) % len(WALK)]},
        )
        for k in range(messages)
    ]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        before = int(conn.execute("SELECT count(*) FROM message_log").fetchone()[0])  # type: ignore[index]
        t, cpu = time.perf_counter(), time.process_time()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            for i in range(0, len(batch), 100):
                r = http.post(
                    "/v1/telemetry",
                    content=encode_batch(batch[i : i + 100]),
                    headers={"content-type": "application/json"},
                )
                assert r.status_code == 202, r.text
        while int(conn.execute("SELECT count(*) FROM message_log").fetchone()[0]) < before + messages:  # type: ignore[index]
            time.sleep(0.02)
        return messages / (time.perf_counter() - t), (time.process_time() - cpu) * 1000 / messages


def settle(conninfo: str, quiet_s: float = 3.0, limit_s: float = 300.0) -> float:
    """Wait until the engine has worked off what the ingest runs left (no new alert event for ``quiet_s``); seconds
    waited. The ingest runs time durability, not evaluation, so the engine may still be behind them."""
    start = time.monotonic()
    last, since = -1, time.monotonic()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while time.monotonic() - since < quiet_s and time.monotonic() - start < limit_s:
            row = conn.execute("SELECT coalesce(max(event_id), 0) FROM alert_events").fetchone()
            if row is not None and row[0] != last:
                last, since = row[0], time.monotonic()
            time.sleep(0.2)
    return time.monotonic() - start


def latency(
    url: str, cookie: str, token: str, conninfo: str, trials: int, seq0: int, consoles: int, first_quiet: int
) -> list[float | None]:
    """Seconds from a raising alert event's commit (its ``at``, the service's wall clock, this machine's) to the
    arrival of the first board push reflecting it, while the ingest runs and ``consoles`` other streams are
    connected; None for a trial whose alert the engine did not raise within 30 s."""
    seen: list[tuple[float, str, int, str]] = []  # (arrival, kind, id, data)
    stop = threading.Event()

    def listen() -> None:
        with (
            httpx.Client(base_url=url, cookies={"sentinel_session": cookie}, timeout=None) as sse,
            sse.stream("GET", "/events?view=") as stream,
        ):
            kind, event_id = "", 0
            for line in stream.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("id: "):
                    event_id = int(line[4:])
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    seen.append((time.time(), kind, event_id, line[6:]))
                    kind, event_id = "", 0

    others = subprocess.Popen(
        [sys.executable, "-c", LISTENER, url, cookie, str(consoles)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert others.stdout is not None
    assert others.stdout.readline().strip() == "ready"
    threading.Thread(target=listen, daemon=True).start()

    def keep_ingesting() -> None:  # the walk goes on (alerts opening, escalating and clearing) until the trials end
        seq = seq0
        while not stop.is_set():
            ingest_once(url, token, conninfo, 300, seq)
            seq += 300
            # About 250 readings a second, each moving its device's grade (an alert event each): a load the engine
            # keeps up with on this machine; a backlog would time the engine's lag, not the console.
            time.sleep(1.0)

    load = threading.Thread(target=keep_ingesting)
    load.start()
    out: list[float | None] = []
    try:
        for k in range(trials):
            time.sleep(2.0)
            device = f"b-d{first_quiet + k}"
            # Device time on the walk's clock (an hour behind the wall clock, see ingest_once).
            at_us = (time.time_ns() // 1000) - 3_600_000_000 - 2_000_000
            readings = [
                Telemetry(device, at_us + i * 1_000_000, i + 1, {"ch4_pct_lel": v}) for i, v in enumerate((2.0, 55.0))
            ]
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
                body = encode_batch(readings)
                r = http.post("/v1/telemetry", content=body, headers={"content-type": "application/json"})
                assert r.status_code == 202, r.text
            deadline = time.perf_counter() + 30
            found = None
            while found is None and time.perf_counter() < deadline:
                time.sleep(0.01)
                raised = [(i, d) for _, kind, i, d in list(seen) if kind == "alert" and f'"subject": "{device}"' in d]
                if raised:
                    committed = datetime.fromisoformat(json.loads(raised[0][1])["at"]).timestamp()
                    board = next((t for t, kind, i, _ in list(seen) if kind == "board" and i >= raised[0][0]), None)
                    found = None if board is None else board - committed
            if found is None:
                with psycopg.connect(conninfo) as conn:
                    alerts = conn.execute("SELECT count(*) FROM alerts WHERE subject = %s", (device,)).fetchone()
                if alerts == (0,):  # the engine has not raised it: that times the engine, not the console
                    print(f"latency trial {k}: the engine raised no alert for {device} within 30 s", file=sys.stderr)
                    out.append(None)
                    continue
                raise AssertionError(f"{device}'s alert was raised but no board push reflected it within 30 s")
            out.append(found)
    finally:
        stop.set()
        load.join()
        others.communicate("\n", timeout=30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--consoles", type=int, default=50)
    parser.add_argument("--messages", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args()
    with postgres_for_tests(os.environ.get("SENTINEL_TEST_DATABASE_URL")) as pg, pg.database("sentinel_bench") as db:
        migrations.upgrade(db)
        prepare_catalogue(db)
        quiet = max(args.alerts // 4, 100)  # devices from here on are the latency trials' (no alerts, no walk)
        reg = registry(quiet + args.trials)
        with psycopg.connect(db) as conn:
            upsert_registry(conn, reg)
            officer = create_api_key(conn, "bench-officer", "officer")
            fill_alerts(conn, args.alerts)
        spool = Path(tempfile.mkdtemp(prefix="sentinel-bench-console-"))
        svc = start_service(db, spool, engine=True, settings={"engine_tick_s": 1.0})
        try:
            query_s, page_s, total = board_bench(db, svc.url, officer, args.alerts)
            with psycopg.connect(db) as conn, conn.transaction():
                conn.execute("DELETE FROM alerts WHERE alert_key LIKE 'bench|%'")
            http = sign_in(svc.url, officer)
            cookie = http.cookies["sentinel_session"]
            rates: dict[int, list[float]] = {0: [], args.consoles: []}
            cpus: dict[int, list[float]] = {0: [], args.consoles: []}
            seq = 0
            events = pushed = 0
            ingest_once(svc.url, "b-gateway-secret-token", db, 600, seq)  # warm-up
            seq += 600
            # Latency first: the engine evaluates slower than ingest stores under this walk, so after the rates'
            # runs it would be minutes behind (settle waits for it anyway) and the trials would time its lag.
            settled = settle(db)
            lat = latency(svc.url, cookie, "b-gateway-secret-token", db, args.trials, seq, args.consoles, quiet)
            seq += 1_000_000  # past whatever the latency trials' walk used
            for _ in range(args.rounds):
                for consoles in (0, args.consoles):
                    listener = None
                    if consoles:
                        listener = subprocess.Popen(
                            [
                                sys.executable,
                                "-c",
                                LISTENER,
                                svc.url,
                                cookie,
                                str(consoles),
                            ],
                            stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE,
                            text=True,
                        )
                        assert listener.stdout is not None
                        assert listener.stdout.readline().strip() == "ready"
                        time.sleep(1.0)  # every stream connected
                    rate, cpu = ingest_once(svc.url, "b-gateway-secret-token", db, args.messages, seq)
                    rates[consoles].append(rate)
                    cpus[consoles].append(cpu)
                    seq += args.messages
                    if listener is not None:
                        time.sleep(1.5)  # the last events delivered
                        out, _ = listener.communicate("\n", timeout=30)
                        got, fetched = out.strip().splitlines()[-1].split()
                        events += int(got)
                        pushed += int(fetched)
            http.close()
        finally:
            svc.stop()
    base, loaded = statistics.median(rates[0]), statistics.median(rates[args.consoles])
    cpu0, cpu1 = statistics.median(cpus[0]), statistics.median(cpus[args.consoles])
    print(f"\nboard, {total:,} open alerts")
    print(f"{'measure':<38}{'median s':>12}{'target':>10}")
    print(f"{'first page: query':<38}{query_s:>12.4f}{'< 1 s':>10}")
    print(f"{'first page: GET /board (rendered)':<38}{page_s:>12.4f}{'< 1 s':>10}")
    print(f"\ningest, {args.messages:,} readings per run, {args.rounds} runs each (median)")
    print(f"{'consoles connected':<22}{'msg/s':>10}{'ratio':>8}{'CPU s/1k msg':>14}{'ratio':>8}")
    print(f"{'0':<22}{base:>10,.0f}{1.0:>8.3f}{cpu0:>14.3f}{1.0:>8.3f}")
    print(f"{args.consoles:<22}{loaded:>10,.0f}{loaded / base:>8.3f}{cpu1:>14.3f}{cpu1 / cpu0:>8.3f}")
    print(f"\nlatency, an alert's commit -> first board push reflecting it ({args.trials} trials under ingest)")
    print(f"{'median s':>10}{'max s':>10}{'target':>10}")
    measured = [x for x in lat if x is not None]
    if measured:
        print(f"{statistics.median(measured):>10.2f}{max(measured):>10.2f}{'< 2 s':>10}")
    print(
        f"(trials measured: {len(measured)} of {len(lat)}, the others' alert not raised by the engine within 30 s;"
        f" the engine worked off the warm-up's backlog for {settled:.0f} s before the trials)"
    )
    print(
        f"(live events delivered to the consoles: {events:,}, board bodies pushed to them: {pushed:,}; "
        f"runs: 0 → {[round(r) for r in rates[0]]}, "
        f"{args.consoles} → {[round(r) for r in rates[args.consoles]]})"
    )


if __name__ == "__main__":
    main()
