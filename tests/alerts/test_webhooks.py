"""Webhook delivery from the outbox against a real local HTTP receiver that fails its first 3 calls: every
notification still arrives exactly once by dedupe key, signed; routing by grade and township; the state of delivery
is in the table, so a new worker (a restart) carries on where the old one stopped."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from sentinel.alerts.lifecycle import apply_transitions
from sentinel.alerts.notify import DEDUPE_HEADER, SIGNATURE_HEADER, Backoff, WebhookDelivery, add_webhook, verify
from sentinel.engine import Transition, load_rules
from tests.alerts.support import make_plant

SECRET = "receiver-shared-secret"


class Receiver:
    """Answers 500 to its first ``fail_first`` calls, then 204; keeps what it accepted."""

    def __init__(self, fail_first: int) -> None:
        self.fail_left = fail_first
        self.calls = 0
        self.accepted: Counter[str] = Counter()
        self.bad_signatures = 0
        self.bodies: dict[str, dict[str, object]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls += 1
                if receiver.fail_left > 0:
                    receiver.fail_left -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                if not verify(SECRET, body, self.headers[SIGNATURE_HEADER]):
                    receiver.bad_signatures += 1
                key = self.headers[DEDUPE_HEADER]
                receiver.accepted[key] += 1
                receiver.bodies[key] = json.loads(body)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=3)
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_failing_receiver_gets_every_notification_once_signed(migrated_db: str, receiver: Receiver) -> None:
    plant = make_plant(migrated_db)
    rules = load_rules()
    d0, d1, d2 = plant.devices[0], plant.devices[1], plant.devices[2]  # d0, d1 in town-0; d2 in town-1
    t0 = 1_764_300_000_000_000
    transitions = [
        Transition("gas.ch4_lel", d0, d0, "none", "blue", "raise", t0, 12.0, 1),
        Transition("gas.ch4_lel", d0, d0, "blue", "orange", "escalate", t0 + 1_000_000, 55.0, 2),
        Transition("gas.ch4_lel", d1, d1, "none", "yellow", "raise", t0 + 2_000_000, 30.0, 1),
        Transition("gas.ch4_lel", d2, d2, "none", "orange", "raise", t0 + 3_000_000, 52.0, 1),
        Transition("gas.ch4_lel", d0, d0, "orange", "none", "clear", t0 + 4_000_000, 2.0, 3),
    ]
    with psycopg.connect(migrated_db) as conn:
        add_webhook(conn, "all", receiver.url, SECRET)
        add_webhook(conn, "town-1 orange", "http://127.0.0.1:9/unused", SECRET, grades=["orange"], townships=["town-1"])
        with conn.transaction():
            apply_transitions(conn, transitions, rules, datetime.now(UTC))
        with conn.transaction():  # the same transitions again (a replay): nothing new is queued
            apply_transitions(conn, transitions, rules, datetime.now(UTC))
        routed = conn.execute(
            "SELECT w.name, count(*) FROM outbox o JOIN webhooks w USING (webhook_id) GROUP BY w.name ORDER BY 1"
        ).fetchall()
        wanted = {
            r[0]
            for r in conn.execute(
                "SELECT dedupe_key FROM outbox o JOIN webhooks w USING (webhook_id) WHERE w.name = 'all'"
            )
        }
    assert routed == [("all", 5), ("town-1 orange", 1)]

    clock = datetime.now(UTC)
    backoff = Backoff(base_s=10.0, cap_s=60.0)
    first = WebhookDelivery(migrated_db, backoff=backoff, batch=2)
    delivered, failed = first.deliver_due(clock)  # two rows, both refused
    assert (delivered, failed) == (0, 2)
    assert first.deliver_due(clock) == (1, 1)  # the next two due rows: one refused (the 3rd failure), one sent
    # "Restart": a new worker; the refused rows wait for their backoff, so only later rows go now.
    second = WebhookDelivery(migrated_db, backoff=backoff, batch=50)
    for _ in range(10):
        clock += timedelta(seconds=61)
        second.deliver_due(clock)
    assert receiver.calls == 5 + 3
    assert receiver.bad_signatures == 0
    assert set(receiver.accepted) == wanted
    assert all(n == 1 for n in receiver.accepted.values())
    with psycopg.connect(migrated_db) as conn:
        attempts = conn.execute(
            "SELECT attempts, last_error IS NULL FROM outbox o JOIN webhooks w USING (webhook_id) WHERE w.name = 'all'"
        ).fetchall()
    assert sorted(a for a, _ in attempts) == [1, 1, 2, 2, 2]
    assert all(ok for _, ok in attempts)
    events = sorted((b["event"], b["grade"]) for b in receiver.bodies.values())
    assert events == [
        ("clear", "orange"),
        ("escalate", "orange"),
        ("raise", "blue"),
        ("raise", "orange"),
        ("raise", "yellow"),
    ]
