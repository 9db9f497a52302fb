"""The compiled form of a rule pack: what the loader produces and both evaluators consume.

Every number a rule uses is a :class:`Param`: its pack default, its DOMAIN.md source mark (``S`` sourced or
``T`` typical) and the key under which a device attribute or a site override replaces it. Keys are derived from
the rule id so a pack author never invents them:

==========================  ==============================================
``<rule>.<grade>``          the level's raise value (``at``)
``<rule>.<grade>.clear``    the level's clear value (hysteresis)
``<rule>.<grade>.for_s``    how long the level's condition must hold
``<rule>.<term>``           a composite / interlock term's value (term name defaults to its metric)
``<rule>.window_s``         count-in-window window; ``<rule>.within_s`` interlock reaction time
==========================  ==============================================

Resolution order per device: the device's ``attrs`` > the site's overrides > the pack default.

Rule kinds (``Rule.kind``): ``threshold`` (absolute, or a ratio of a device setpoint with ``relative_to``),
``deviation`` (from a per-device baseline), ``rate`` (change per ``per_s`` seconds), ``stuck`` (seconds without a
change), ``count`` (sum in a tumbling window), ``staleness`` (seconds without data / expected interval),
``composite`` (all terms hold, across metrics of a device or a site) and ``interlock`` (trip terms hold and the
``acted`` term does not within ``within_s``: red) and ``anomaly`` (a fitted model file, ``model``, scores the
device's latest value of each of ``metrics`` at each of their readings; the signal is the normalised score, 1.0 =
on the model's control limit, see :mod:`sentinel.engine.anomaly.live`). Sustained-for (``for_s``) and hysteresis
(``clear``) are level options available to every kind; the scenario and property tests exercise them as kinds of
their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LEVEL_KINDS = ("threshold", "deviation", "rate", "stuck", "count")
GROUP_KINDS = ("composite", "interlock")
RULE_KINDS = (*LEVEL_KINDS, "staleness", *GROUP_KINDS, "anomaly")
ANOMALY_DETECTORS = ("pca", "iforest", "robust_z")  # an anomaly rule's ``detector``: the model file must be one

# The alert class of each rule kind's alerts in the alert lifecycle (column alerts.alert_class), unless the rule
# says (``alert:``): model-based findings are early warnings (预警), distinct from threshold alarms (报警); staleness
# is a communication fault. A rule of another kind that is an early warning by design (a trend below the alarm
# level, DOMAIN.md) says ``alert: warning``. This is the one place the alert class is decided; the lifecycle stores
# it.
ALERT_CLASS_OF_RULE = {"anomaly": "warning", "staleness": "comm"}
ALERT_CHOICES = ("alarm", "warning")


@dataclass(frozen=True)
class Param:
    """A number a rule uses, where it comes from and the key that overrides it."""

    value: float
    source: str
    key: str

    @property
    def typical(self) -> bool:
        return self.source.startswith("T")


@dataclass(frozen=True)
class Level:
    """One grade of a rule: raise when the signal passes ``at`` (for ``for_s``), clear when it passes ``clear``."""

    grade: int
    at: Param
    clear: Param | None = None
    for_s: Param | None = None
    source: str = "T"


@dataclass(frozen=True)
class Term:
    """One condition of a composite: ``metric`` above/below ``at`` (times a device attribute if relative)."""

    name: str
    metric: str
    direction: str
    at: Param
    relative_to: str | None = None
    negate: bool = False


@dataclass(frozen=True)
class Rule:
    """One compiled rule. ``levels`` are sorted by grade, lowest first."""

    id: str
    kind: str
    name_zh: str
    name_en: str
    pack: str
    device_classes: tuple[str, ...]
    source: str
    metric: str | None = None
    direction: str = "above"
    levels: tuple[Level, ...] = ()
    relative_to: str | None = None
    baseline: str | None = None
    scale: str | None = None
    deviation: str = "both"
    per_s: float = 60.0
    eps: float = 0.0
    window_s: Param | None = None
    terms: tuple[Term, ...] = ()
    scope: str = "device"
    major_hazard: bool = False
    alert: str | None = None  # "alarm" | "warning" when the pack says so; None: by kind
    model: str | None = None
    detector: str | None = None
    features: tuple[str, ...] = ()
    file: str = ""
    line: int = 0

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric the rule reads, in term order, without repeats."""
        names = [self.metric] if self.metric else []
        names += [t.metric for t in self.terms]
        names += list(self.features)
        return tuple(dict.fromkeys(names))

    @property
    def alert_class(self) -> str:
        """``alarm`` (报警), ``warning`` (预警: anomaly rules, and rules marked ``alert: warning``) or ``comm``
        (staleness): the alert class, stored in column ``alerts.alert_class``."""
        if self.kind == "staleness":
            return "comm"
        return self.alert or ALERT_CLASS_OF_RULE.get(self.kind, "alarm")

    def device_attrs(self) -> tuple[str, ...]:
        """Device attributes the rule needs (setpoints, baselines, scales)."""
        names = [self.relative_to, self.baseline, self.scale, *(t.relative_to for t in self.terms)]
        return tuple(dict.fromkeys(n for n in names if n))


@dataclass(frozen=True)
class DeviceClass:
    """A kind of device a pack knows: the metrics it reports."""

    name: str
    metrics: tuple[str, ...]
    pack: str


@dataclass
class RuleSet:
    """Everything the loaded packs define: device classes and rules, in pack order."""

    classes: dict[str, DeviceClass] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(f"no rule {rule_id!r}")
