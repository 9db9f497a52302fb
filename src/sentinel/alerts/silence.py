"""Communication loss without a flood: many devices of one site silent together are one alert for the site.

ISA-18.2 treats one cause raising many alarms as a flood to prevent. When a site's link (its gateway, its uplink,
its power) fails, every device behind it goes silent in the same staleness tick; officers need one alert saying
"site X is silent", not forty saying "device X-n is silent". So, on the engine's transitions before they are
written (:meth:`SilenceGroups.regroup`):

* raises of communication faults (``alert_kind == "comm"``, from a staleness tick) are counted per site; when at
  least :data:`MIN_DEVICES` devices and at least :data:`MIN_SHARE` of the site's devices go silent in one tick,
  they become one raise whose subject is the site (the rule of the first of them, the worst grade, the longest
  silence as value);
* while that site alert is open, its devices' own communication transitions are folded into it: escalations
  escalate the site alert once per tick, and the first device heard again clears it (the link is back);
* a site alert left open by an earlier run is found again in the database (subject = a site id, kind comm).

Silence that began while Sentinel itself was down is not counted at all: see ``Engine.listening_since``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import psycopg

from sentinel.engine import Engine, Transition
from sentinel.engine.catalog import GRADE_NAMES, transition_kind

MIN_DEVICES = 3
MIN_SHARE = 0.5
GRADE_RANK = {name: rank for rank, name in enumerate(GRADE_NAMES)}


@dataclass
class _Group:
    rule_id: str
    device_id: str  # the device the site alert is stored against (the first one silent)
    grade: str


@dataclass
class SilenceGroups:
    """Per-site grouping of communication faults; one per engine stage."""

    min_devices: int = MIN_DEVICES
    min_share: float = MIN_SHARE
    open: dict[str, _Group] = field(default_factory=dict)
    _loaded: bool = False

    def regroup(self, conn: psycopg.Connection[Any], records: list[Transition], engine: Engine) -> list[Transition]:
        """The transitions to write: site raises in place of many device raises, device moves folded in."""
        comm = {id(t) for t in records if t.alert_kind == "comm" and t.subject == t.device_id}
        if not comm:
            return records
        site_of, size = _sites(engine)
        if not self._loaded:
            self._load(conn, set(size))
        raises: dict[str, list[Transition]] = {}
        for t in records:
            if id(t) in comm and t.kind == "raise" and site_of.get(t.device_id) not in self.open:
                raises.setdefault(site_of.get(t.device_id, ""), []).append(t)
        grouped = {
            site: ts
            for site, ts in raises.items()
            if site and len(ts) >= self.min_devices and len(ts) >= self.min_share * size.get(site, len(ts))
        }
        out: list[Transition] = []
        done: set[str] = set()
        for t in records:
            site = site_of.get(t.device_id, "") if id(t) in comm else ""
            if site in grouped:
                if site not in done:
                    out.append(self._raise(site, grouped[site]))
                    done.add(site)
            elif site in self.open:
                moved = self._fold(site, t)
                if moved is not None:
                    out.append(moved)
            else:
                out.append(t)
        return out

    def _raise(self, site: str, silent: list[Transition]) -> Transition:
        worst = max((t.to_grade for t in silent), key=GRADE_RANK.__getitem__)
        first = silent[0]
        self.open[site] = _Group(first.rule_id, first.device_id, worst)
        return replace(first, subject=site, to_grade=worst, value=max(t.value for t in silent))

    def _fold(self, site: str, t: Transition) -> Transition | None:
        group = self.open[site]
        if t.to_grade == "none":  # a device of the site is heard again: the site's link is back
            del self.open[site]
            return replace(
                t, rule_id=group.rule_id, subject=site, device_id=group.device_id, from_grade=group.grade, kind="clear"
            )
        if GRADE_RANK[t.to_grade] <= GRADE_RANK[group.grade]:
            return None  # another device of a site already reported silent
        before, group.grade = group.grade, t.to_grade
        return replace(
            t,
            rule_id=group.rule_id,
            subject=site,
            device_id=group.device_id,
            from_grade=before,
            kind=transition_kind(GRADE_RANK[before], GRADE_RANK[t.to_grade]),
        )

    def _load(self, conn: psycopg.Connection[Any], sites: set[str]) -> None:
        """Site alerts an earlier run left open."""
        rows = conn.execute(
            """SELECT a.subject, a.rule_id, d.device, a.grade FROM alerts a JOIN devices d USING (device_id)
               WHERE a.kind = 'comm' AND a.state <> 'normal' AND a.condition_active AND a.subject = a.site_id"""
        ).fetchall()
        for subject, rule_id, device, grade in rows:
            if subject in sites:
                self.open.setdefault(subject, _Group(rule_id, device, grade))
        self._loaded = True


def _sites(engine: Engine) -> tuple[dict[str, str], dict[str, int]]:
    """Each device's site id, and the number of devices per site, as the engine knows them."""
    table = engine.table
    sites = list(table.sites)
    site_of = {device: sites[int(table.device_site[i])] for i, device in enumerate(engine.device_ids)}
    counts = np.bincount(table.device_site, minlength=len(sites))
    return site_of, {site: int(counts[i]) for i, site in enumerate(sites)}
