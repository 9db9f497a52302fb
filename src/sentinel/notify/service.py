"""The notification layer as one runnable piece: :func:`build_notifier` → :class:`Notifier` (``start``/``stop``).

One pass (:meth:`Notifier.run_once`, at the injected clock's time) routes new alert events to deliveries
(:mod:`.routing`), raises due escalation steps (:mod:`.escalation`), sends within every channel's limits
(:mod:`.dispatch`), delivers the generic webhooks (:mod:`.webhook`) and refreshes the accounting metric. Every
piece of state is in PostgreSQL, so passes may run in any process and a restart carries on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry

from sentinel.notify import config as channels_config
from sentinel.notify import roster as duty_roster
from sentinel.notify.audit import NotifyMetrics
from sentinel.notify.config import ChannelsFile
from sentinel.notify.dispatch import Dispatcher, DispatchReport
from sentinel.notify.escalation import EscalationReport, escalate_due
from sentinel.notify.routing import RouteReport, route_pending
from sentinel.notify.webhook import WebhookDelivery, add_webhook
from sentinel.store.database import connect

if TYPE_CHECKING:
    from sentinel.settings import Settings

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PassReport:
    routed: RouteReport
    escalation: EscalationReport
    dispatch: DispatchReport
    accounting: dict[str, int]


class Notifier:
    def __init__(
        self,
        conninfo: str,
        cfg: ChannelsFile,
        *,
        display_tz: str = "Asia/Shanghai",
        clock: Callable[[], datetime] = _now,
        registry: CollectorRegistry | None = None,
        interval_s: float = 2.0,
        webhooks: bool = True,
    ) -> None:
        self.conninfo = conninfo
        self.cfg = cfg
        self.display_tz = display_tz
        self.tz = ZoneInfo(display_tz)
        self.clock = clock
        self.interval_s = interval_s
        self.metrics = NotifyMetrics(registry, cfg.channels)
        self.dispatcher = Dispatcher(cfg, self.tz, self.metrics)
        self.webhook_delivery = WebhookDelivery(conninfo) if webhooks else None
        self._task: asyncio.Task[None] | None = None
        self._webhooks_saved = False

    def save_webhooks(self) -> None:
        with connect(self.conninfo) as conn:
            for w in self.cfg.webhooks:
                add_webhook(
                    conn,
                    w.name,
                    w.url,
                    w.secret,
                    grades=list(w.route.grades),
                    sectors=list(w.route.sectors),
                    townships=list(w.route.townships),
                )
        self._webhooks_saved = True

    def roster(self, conn: Any) -> duty_roster.Roster | None:
        return duty_roster.stored(conn, self.display_tz)

    def run_once(self, now: datetime | None = None) -> PassReport:
        now = now or self.clock()
        if self.cfg.webhooks and not self._webhooks_saved:
            self.save_webhooks()
        with connect(self.conninfo) as conn:
            # One pass at a time across notifiers (processes): a pass that routed only part of the outbox while
            # another was still routing the rest would judge that part "not a flood" and send low grades alone
            # before the other's red and orange. Held by this connection: released when the pass ends.
            conn.execute("SELECT pg_advisory_lock(hashtext('sentinel.notify.pass'))")
            conn.commit()  # a session lock outlives the transaction; the pass's own transactions stay its own
            roster = self.roster(conn)
            routed = route_pending(conn, self.cfg, roster, now, self.tz)
            self.metrics.fallbacks.inc(routed.fallbacks)
            escalation = escalate_due(conn, self.cfg, roster, now, self.tz)
            dispatch = self.dispatcher.dispatch(conn, now)
            accounting = self.metrics.refresh(conn)
        if self.webhook_delivery is not None:
            self.webhook_delivery.deliver_due(now)
        return PassReport(routed, escalation, dispatch, accounting)

    async def run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.run_once, self.clock())
            except Exception as exc:  # a database hiccup must not end notification; the state waits in the tables
                log.warning("notification pass failed: %s", type(exc).__name__)
            await asyncio.sleep(self.interval_s)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="notifier")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


def build_notifier(
    settings: Settings,
    conninfo: str,
    *,
    clock: Callable[[], datetime] = _now,
    registry: CollectorRegistry | None = None,
) -> Notifier:
    """The notifier of ``sentinel serve``: channels from ``settings.notify_channels_file`` (none: only the generic
    webhooks of the database and the audit of routed events), display time zone, and a pass every
    ``notify_interval_s`` (or ``webhook_poll_s`` if shorter: the pass also delivers the webhooks)."""
    path = settings.notify_channels_file
    cfg = channels_config.load(path) if path is not None else ChannelsFile()
    return Notifier(
        conninfo,
        cfg,
        display_tz=settings.display_tz,
        clock=clock,
        registry=registry,
        interval_s=min(settings.notify_interval_s, settings.webhook_poll_s),
    )
