"""Communication loss without a flood: many devices of one site (or gateway) silent together are one alert.

ISA-18.2 treats one cause raising many alarms as a flood to prevent. When a site's link (its gateway, its uplink,
its power) fails, every device behind it goes silent in the same staleness tick; officers need one alert saying
"site X is silent", not forty saying "device X-n is silent". So, on the engine's transitions before they are
written (:meth:`SilenceGroups.regroup`):

* raises of communication faults (``alert_class == "comm"``, from a staleness tick) are counted per site; when at
  least :data:`MIN_DEVICES` devices and at least :data:`MIN_SHARE` of the site's devices go silent in one tick,
  they become one raise whose subject is the site (the rule of the first of them, the worst grade, the longest
  silence as value);
* while that site alert is open, its devices' own communication transitions are folded into it: escalations
  escalate the site alert once per tick, and the first device heard again clears it (the link is back);
* when every site a gateway serves (two or more) falls silent in the same tick, the one alert is the gateway's
  (subject = the gateway id), standing for all its sites;
* such an alert left open by an earlier run is found again in the database (alert class comm, subject not a
  device).

Silence that began while Sentinel itself was down is not counted at all: see ``Engine.listening_since``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import psycopg

from sentinel.engine import Engine, Transition
from sentinel.engine.catalog import GRADE_INDEX, grade_move

MIN_DEVICES = 3
MIN_SHARE = 0.5
Sites = frozenset[str]


@dataclass
class _Group:
    rule_id: str
    device_id: str  # the device the unit's alert is stored against (the first one silent)
    grade: str
    sites: frozenset[str]  # the sites the alert stands for: its own, or every site of the gateway


@dataclass
class SilenceGroups:
    """Per-site (and per-gateway) grouping of communication faults; one per engine stage."""

    min_devices: int = MIN_DEVICES
    min_share: float = MIN_SHARE
    open: dict[str, _Group] = field(default_factory=dict)  # by unit: a site id or a gateway id
    gateways: dict[str, frozenset[str]] = field(default_factory=dict)  # gateway id -> its sites
    _loaded: bool = False
    _sites: tuple[dict[str, str], dict[str, int]] = field(default_factory=lambda: ({}, {}))
    _sites_key: tuple[int, int] = (0, -1)

    def regroup(self, conn: psycopg.Connection[Any], records: list[Transition], engine: Engine) -> list[Transition]:
        """The transitions to write: unit raises in place of many device raises, device moves folded in."""
        comm = {id(t) for t in records if t.alert_class == "comm" and t.subject == t.device_id}
        if not comm:
            return records
        key = (id(engine), len(engine.device_ids))
        if self._sites_key != key:  # the engine was rebuilt or grew: map its devices to sites again
            self._sites, self._sites_key = _sites(engine), key
        site_of, size = self._sites
        if not self._loaded:
            self._load(conn, set(size))
        raises: dict[str, list[Transition]] = {}
        for t in records:
            site = site_of.get(t.device_id, "")
            if id(t) in comm and t.move == "raise" and self._unit_of(site) is None:
                raises.setdefault(site, []).append(t)
        unit_of = self._units(raises, size)
        out: list[Transition] = []
        for t in records:
            site = site_of.get(t.device_id, "") if id(t) in comm else ""
            if site in unit_of:
                unit, sites = unit_of[site]
                if unit not in self.open:
                    out.append(self._raise(unit, sites, [x for s in sorted(sites) for x in raises[s]]))
            elif (held := self._unit_of(site)) is not None:
                moved = self._fold(held, t)
                if moved is not None:
                    out.append(moved)
            else:
                out.append(t)
        return out

    def _units(
        self, raises: dict[str, list[Transition]], size: dict[str, int]
    ) -> dict[str, tuple[str, frozenset[str]]]:
        """Silent site -> (unit, its sites). A site is silent when at least ``min_devices`` and ``min_share`` of its
        devices fell silent in this tick; a gateway when every known site it serves (two or more) lost
        ``min_share`` of its devices, ``min_devices`` in all; the gateway's alert then stands for its sites."""

        def share(site: str) -> bool:
            return len(raises.get(site, ())) >= self.min_share * size.get(site, 1)

        out: dict[str, tuple[str, Sites]] = {}
        for gateway, sites in sorted(self.gateways.items()):
            served = frozenset(sites & set(size))
            total = sum(len(raises.get(site, ())) for site in served)
            if (
                len(served) >= 2
                and all(share(s) for s in served)
                and total >= self.min_devices
                and not served & set(out)
            ):
                out.update(dict.fromkeys(served, (gateway, served)))
        for site, silent in raises.items():
            if site and site not in out and len(silent) >= self.min_devices and share(site):
                out[site] = (site, frozenset({site}))
        return out

    def _unit_of(self, site: str) -> str | None:
        return next((unit for unit, group in self.open.items() if site in group.sites), None)

    def _raise(self, unit: str, sites: frozenset[str], silent: list[Transition]) -> Transition:
        worst = max((t.to_grade for t in silent), key=GRADE_INDEX.__getitem__)
        first = silent[0]
        self.open[unit] = _Group(first.rule_id, first.device_id, worst, sites)
        return replace(first, subject=unit, to_grade=worst, value=max(t.value for t in silent))

    def _fold(self, unit: str, t: Transition) -> Transition | None:
        group = self.open[unit]
        if t.to_grade == "none":  # a device behind it is heard again: the link is back
            del self.open[unit]
            return replace(
                t, rule_id=group.rule_id, subject=unit, device_id=group.device_id, from_grade=group.grade, move="clear"
            )
        if GRADE_INDEX[t.to_grade] <= GRADE_INDEX[group.grade]:
            return None  # another device behind an alert already raised
        before, group.grade = group.grade, t.to_grade
        return replace(
            t,
            rule_id=group.rule_id,
            subject=unit,
            device_id=group.device_id,
            from_grade=before,
            move=grade_move(GRADE_INDEX[before], GRADE_INDEX[t.to_grade]),
        )

    def _load(self, conn: psycopg.Connection[Any], sites: set[str]) -> None:
        """The gateways' sites, and the unit alerts an earlier run left open."""
        served: dict[str, set[str]] = {}
        for gateway, site in conn.execute("SELECT gateway_id, site_id FROM gateway_sites").fetchall():
            served.setdefault(gateway, set()).add(site)
        self.gateways = {g: frozenset(s) for g, s in served.items()}
        rows = conn.execute(
            """SELECT a.subject, a.rule_id, d.device, a.grade FROM alerts a JOIN devices d USING (device_id)
               WHERE a.alert_class = 'comm' AND a.state <> 'normal' AND a.condition_active AND a.subject <> d.device"""
        ).fetchall()
        for subject, rule_id, device, grade in rows:
            unit_sites = self.gateways.get(subject, frozenset({subject})) & sites
            if unit_sites:
                self.open.setdefault(subject, _Group(rule_id, device, grade, frozenset(unit_sites)))
        self._loaded = True


def _sites(engine: Engine) -> tuple[dict[str, str], dict[str, int]]:
    """Each device's site id, and the number of devices per site, as the engine knows them."""
    table = engine.table
    sites = list(table.sites)
    site_of = {device: sites[int(table.device_site[i])] for i, device in enumerate(engine.device_ids)}
    counts = np.bincount(table.device_site, minlength=len(sites))
    return site_of, {site: int(counts[i]) for i, site in enumerate(sites)}
