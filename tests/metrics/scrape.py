"""A parsed /metrics page, with the naming conventions Sentinel's metrics must keep."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

HEALTH_BOARD = Path(__file__).resolve().parents[2] / "grafana" / "dashboards" / "sentinel-health.json"
_UNIT_SUFFIXES = ("_seconds", "_bytes", "_ratio", "_batches", "_readings", "_messages")

Series = tuple[str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class Sample:
    family: str
    name: str
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Scrape:
    types: dict[str, str]  # family name (counters without _total) -> type
    samples: list[Sample]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        families = list(text_string_to_metric_families(text))
        samples = [Sample(f.name, s.name, dict(s.labels), s.value) for f in families for s in f.samples]
        return cls({f.name: f.type for f in families}, samples)

    @classmethod
    def of(cls, response: httpx.Response) -> Scrape:
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain"), response.headers["content-type"]
        return cls.parse(response.text)

    @property
    def series(self) -> set[Series]:
        return {(s.name, frozenset(s.labels.items())) for s in self.samples}

    def sample_names(self) -> set[str]:
        return {s.name for s in self.samples}

    def label_names(self) -> set[str]:
        return {k for s in self.samples for k in s.labels}

    def label_values(self, label: str) -> set[str]:
        return {s.labels[label] for s in self.samples if label in s.labels}

    def all_label_values(self) -> set[str]:
        return {v for s in self.samples for v in s.labels.values()}

    def value(self, name: str, **labels: str) -> float:
        found = [s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items()]
        assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
        return found[0]

    def check_conventions(self) -> None:
        """Prometheus naming: sentinel_ prefix, snake case, counters exposed as *_total, histograms named with
        their unit, gauges not named like counters."""
        for name, kind in self.types.items():
            assert re.fullmatch(r"sentinel_[a-z0-9_]+", name), f"{name}: not sentinel_snake_case"
            if kind == "counter":
                # A labelled counter has no samples until a first label value is used.
                names = {s.name for s in self.samples if s.family == name}
                assert names <= {f"{name}_total"}, f"counter {name} is exposed as {names}, not {name}_total"
                assert not name.endswith("_total"), name
            elif kind == "histogram":
                assert name.endswith(_UNIT_SUFFIXES), f"histogram {name} has no unit in its name"
            elif kind == "gauge":
                assert not name.endswith("_total"), f"gauge {name} is named like a counter"
            else:
                raise AssertionError(f"{name}: unexpected metric type {kind}")


def health_board_metric_names() -> set[str]:
    """Every sentinel_* sample name the health board's Prometheus queries use."""
    board = json.loads(HEALTH_BOARD.read_text(encoding="utf-8"))
    return {
        name
        for panel in board["panels"]
        for target in panel["targets"]
        if "expr" in target
        for name in re.findall(r"\bsentinel_[a-z0-9_]+", target["expr"])
    }
