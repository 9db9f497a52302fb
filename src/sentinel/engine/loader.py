"""Load and validate rule packs (``rules/*.yaml``) into a :class:`~sentinel.engine.model.RuleSet`.

A pack file::

    pack: casting
    name: {zh: 铝加工（深井铸造）, en: Aluminium deep-well casting}
    device_classes:
      casting_machine: {metrics: [cw_pressure_mpa, casting_active, shutoff_valve_closed]}
    rules:
      - id: casting.cw_pressure_low
        name: {zh: 结晶器冷却水压力低, en: Mould cooling-water pressure low}
        kind: threshold                 # see sentinel.engine.model for every kind and its keys
        device_classes: [casting_machine]
        metric: cw_pressure_mpa
        direction: below
        relative_to: cw_pressure_setpoint_mpa    # levels are ratios of this device attribute
        source: "S: 2023 major-hazard criteria"  # S = sourced, T = typical (DOMAIN.md marks)
        levels:
          - {grade: blue, at: 0.9, clear: 0.93, source: T}
          - {grade: orange, at: 0.8, for_s: 5, source: T}

:func:`load_rules` raises :class:`~sentinel.errors.RulePackError` listing every problem of every file, each as
``file:line: what is wrong``; :func:`check_rules` returns them instead. The engine refuses an invalid pack.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sentinel.engine.catalog import ALERT_GRADES, GRADE_INDEX, METRIC_INDEX
from sentinel.engine.model import (
    ALERT_CHOICES,
    ANOMALY_DETECTORS,
    RULE_KINDS,
    DeviceClass,
    Level,
    Param,
    Rule,
    RuleSet,
    Term,
)
from sentinel.engine.yamlnodes import Node, NodeReader, suggest
from sentinel.errors import Problem, RulePackError

COMMON_KEYS = ("id", "name", "kind", "device_classes", "source", "major_hazard", "alert")
KIND_KEYS: dict[str, tuple[str, ...]] = {
    "threshold": ("metric", "direction", "relative_to", "levels"),
    "deviation": ("metric", "baseline", "scale", "deviation", "levels"),
    "rate": ("metric", "direction", "per_s", "levels"),
    "stuck": ("metric", "eps", "levels"),
    "count": ("metric", "window_s", "levels"),
    "staleness": ("levels",),
    "composite": ("scope", "all", "grade", "for_s"),
    "interlock": ("trip", "while", "acted", "within_s", "grade"),
    "anomaly": ("model", "detector", "metrics", "levels"),
}
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "threshold": ("metric", "levels"),
    "deviation": ("metric", "baseline", "levels"),
    "rate": ("metric", "levels"),
    "stuck": ("metric", "levels"),
    "count": ("metric", "window_s", "levels"),
    "staleness": ("levels",),
    "composite": ("all", "grade"),
    "interlock": ("trip", "acted", "within_s"),
    "anomaly": ("model", "metrics", "levels"),
}
ALL_KIND_KEYS = tuple(dict.fromkeys(k for keys in KIND_KEYS.values() for k in keys))
LEVEL_KEYS = ("grade", "at", "clear", "for_s", "source")
TERM_KEYS = ("name", "metric", "above", "below", "relative_to", "source")


def default_rules_dir() -> Path:
    """The packs shipped with Sentinel: the wheel's data folder, else the source tree's ``rules/``."""
    packaged = resources.files("sentinel").joinpath("_data", "rules")
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[3] / "rules"


def pack_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")) if path.is_dir() else [path]


def check_rules(path: Path) -> tuple[RuleSet, list[Problem]]:
    """Read every pack under ``path`` (a file or a folder); return what loaded and every problem found."""
    rules = RuleSet()
    problems: list[Problem] = []
    files = pack_files(path)
    if not files or not all(f.exists() for f in files):
        return rules, [Problem(str(path), "no rule pack (*.yaml) found here")]
    pending: list[tuple[NodeReader, Rule, Node]] = []
    for file in files:
        reader = NodeReader(str(file))
        try:
            root = yaml.compose(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{file}:{mark.line + 1}" if mark else str(file)
            problems.append(Problem(where, f"not valid YAML: {getattr(exc, 'problem', exc)}"))
            continue
        if root is None:
            problems.append(Problem(f"{file}:1", "the file is empty"))
            continue
        pending += _read_pack(reader, root, rules)
        problems += reader.problems
    for reader, rule, node in pending:  # device classes may come from another pack
        reader.problems = []
        _cross_check(reader, rule, node, rules)
        problems += reader.problems
    return rules, sorted(problems, key=_position)


def _position(problem: Problem) -> tuple[str, int]:
    file, _, line = problem.where.rpartition(":")
    return (file, int(line)) if line.isdigit() else (problem.where, 0)


def load_rules(path: Path | None = None) -> RuleSet:
    """Load the packs under ``path`` (default: the shipped packs) or raise RulePackError with every problem."""
    rules, problems = check_rules(path or default_rules_dir())
    if problems:
        raise RulePackError(problems)
    return rules


def _read_pack(r: NodeReader, root: Node, rules: RuleSet) -> list[tuple[NodeReader, Rule, Node]]:
    keys = r.mapping(root, ("pack", "name", "device_classes", "rules"), ("pack", "rules"), "a rule pack")
    if keys is None:
        return []
    pack = r.string(keys["pack"], "pack") if "pack" in keys else None
    pack = pack or Path(r.file).stem
    if "name" in keys:
        _names(r, keys["name"], "the pack name")
    for name_node, class_node in _items(r, keys.get("device_classes"), "device_classes"):
        name = str(name_node.value)
        ckeys = r.mapping(class_node, ("metrics",), ("metrics",), f"device class {name!r}")
        metrics = []
        for metric, node in r.strings(ckeys["metrics"], "metrics") if ckeys and "metrics" in ckeys else []:
            if metric not in METRIC_INDEX:
                r.error(node, f"unknown metric {metric!r}{suggest(metric, METRIC_INDEX)}")
            metrics.append(metric)
        if name in rules.classes:
            r.error(name_node, f"device class {name!r} is already defined by pack {rules.classes[name].pack!r}")
        rules.classes[name] = DeviceClass(name, tuple(metrics), pack)
    out = []
    seen = {rule.id for rule in rules.rules}
    for node in r.sequence(keys["rules"], "rules") if "rules" in keys else []:
        rule = _read_rule(r, node, pack)
        if rule is None:
            continue
        if rule.id in seen:
            r.error(node, f"duplicate rule id {rule.id!r}")
        seen.add(rule.id)
        rules.rules.append(rule)
        out.append((r, rule, node))
    return out


def _items(r: NodeReader, node: Node | None, what: str) -> list[tuple[Node, Node]]:
    if node is None:
        return []
    if not isinstance(node, yaml.MappingNode):
        r.error(node, f"{what} must be a mapping")
        return []
    return list(node.value)


def _names(r: NodeReader, node: Node, what: str) -> tuple[str, str]:
    keys = r.mapping(node, ("zh", "en"), ("zh", "en"), what) or {}
    zh = r.string(keys["zh"], f"{what} (zh)") if "zh" in keys else None
    en = r.string(keys["en"], f"{what} (en)") if "en" in keys else None
    return zh or "", en or ""


def _read_rule(r: NodeReader, node: Node, pack: str) -> Rule | None:
    if not isinstance(node, yaml.MappingNode):
        r.error(node, "each rule must be a mapping")
        return None
    kind_node = next((v for k, v in node.value if getattr(k, "value", None) == "kind"), None)
    kind = r.choice(kind_node, "rule kind", RULE_KINDS) if kind_node is not None else None
    allowed = COMMON_KEYS + (KIND_KEYS[kind] if kind else ALL_KIND_KEYS)
    keys = r.mapping(
        node, allowed, ("id", "name", "kind", "device_classes", "source", *REQUIRED_KEYS.get(kind or "", ())), "a rule"
    )
    if keys is None:
        return None
    rid = (r.string(keys["id"], "rule id") if "id" in keys else None) or f"<rule at line {node.start_mark.line + 1}>"
    zh, en = _names(r, keys["name"], "the rule name") if "name" in keys else ("", "")
    classes = (
        tuple(c for c, _ in r.strings(keys["device_classes"], "device_classes")) if "device_classes" in keys else ()
    )
    source = (r.source(keys["source"], "the rule source") if "source" in keys else None) or "T"
    fields: dict[str, Any] = {}
    if "metric" in keys:
        metric = r.string(keys["metric"], "metric")
        if metric is not None and metric not in METRIC_INDEX:
            r.error(keys["metric"], f"unknown metric {metric!r}{suggest(metric, METRIC_INDEX)}")
        fields["metric"] = metric
    for key, choices in (
        ("direction", ("above", "below")),
        ("deviation", ("both", "up", "down")),
        ("scope", ("device", "site")),
        ("detector", ANOMALY_DETECTORS),
    ):
        if key in keys:
            fields[key] = r.choice(keys[key], key, choices) or choices[0]
    for key in ("relative_to", "baseline", "scale"):
        if key in keys:
            fields[key] = r.string(keys[key], key)
    for key, minimum in (("per_s", 1e-9), ("eps", 0.0)):
        if key in keys:
            number = r.number(keys[key], key, minimum)
            # Not `or 1.0`: eps 0.0 (any change counts) is a valid value, not a missing one.
            fields[key] = number if number is not None else 1.0
    if "model" in keys:
        fields["model"] = model = r.string(keys["model"], "model")
        if model is not None and (Path(model).is_absolute() or ".." in Path(model).parts):
            r.error(keys["model"], f"model {model!r} must be a relative path inside the engine's models directory")
    if "metrics" in keys:
        features = []
        for metric, metric_node in r.strings(keys["metrics"], "metrics"):
            if metric not in METRIC_INDEX:
                r.error(metric_node, f"unknown metric {metric!r}{suggest(metric, METRIC_INDEX)}")
            features.append(metric)
        if len(set(features)) != len(features) or not features:
            r.error(keys["metrics"], "an anomaly rule needs distinct metrics, in the model's feature order")
        fields["features"] = tuple(features)
    if "major_hazard" in keys:
        fields["major_hazard"] = bool(r.boolean(keys["major_hazard"], "major_hazard"))
    if "alert" in keys:
        if kind == "staleness":
            r.error(keys["alert"], "a staleness rule raises a communication fault; 'alert' does not apply")
        else:
            fields["alert"] = r.choice(keys["alert"], "alert", ALERT_CHOICES)
    if "window_s" in keys:
        fields["window_s"] = Param(r.number(keys["window_s"], "window_s", 1e-6) or 1.0, source, f"{rid}.window_s")
    levels = [_read_level(r, n, rid) for n in r.sequence(keys["levels"], "levels")] if "levels" in keys else []
    if kind in ("composite", "interlock"):
        levels, terms = _read_group(r, keys, rid, kind, source)
        fields["terms"] = tuple(terms)
    grades = [lv.grade for lv in levels if lv is not None]
    if len(set(grades)) != len(grades):
        r.error(keys.get("levels", node), "two levels have the same grade")
    rule = Rule(
        id=rid,
        kind=kind or "threshold",
        name_zh=zh,
        name_en=en,
        pack=pack,
        device_classes=classes,
        source=source,
        levels=tuple(sorted((lv for lv in levels if lv), key=lambda lv: lv.grade)),
        file=r.file,
        line=node.start_mark.line + 1,
        **fields,
    )
    return rule if kind else None


def _read_level(r: NodeReader, node: Node, rid: str) -> Level | None:
    keys = r.mapping(node, LEVEL_KEYS, ("grade", "at", "source"), "a level")
    if keys is None or "grade" not in keys:
        return None
    grade_name = r.choice(keys["grade"], "grade", ALERT_GRADES)
    source = (r.source(keys["source"], "the level source") if "source" in keys else None) or "T"
    at = r.number(keys["at"], "at") if "at" in keys else None
    clear = r.number(keys["clear"], "clear") if "clear" in keys else None
    for_s = r.number(keys["for_s"], "for_s", 0.0) if "for_s" in keys else None
    if grade_name is None or at is None:
        return None
    key = f"{rid}.{grade_name}"
    return Level(
        GRADE_INDEX[grade_name],
        Param(at, source, key),
        Param(clear, source, f"{key}.clear") if clear is not None else None,
        Param(for_s, source, f"{key}.for_s") if for_s is not None else None,
        source,
    )


def _read_term(r: NodeReader, node: Node, rid: str, negate: bool = False) -> Term | None:
    keys = r.mapping(node, TERM_KEYS, ("metric", "source"), "a term")
    if keys is None or "metric" not in keys:
        return None
    metric = r.string(keys["metric"], "metric")
    if metric is not None and metric not in METRIC_INDEX:
        r.error(keys["metric"], f"unknown metric {metric!r}{suggest(metric, METRIC_INDEX)}")
    sides = [k for k in ("above", "below") if k in keys]
    if len(sides) != 1:
        r.error(node, "a term needs exactly one of 'above' or 'below'")
        return None
    at = r.number(keys[sides[0]], sides[0])
    source = (r.source(keys["source"], "the term source") if "source" in keys else None) or "T"
    name = (r.string(keys["name"], "term name") if "name" in keys else None) or metric or "?"
    relative = r.string(keys["relative_to"], "relative_to") if "relative_to" in keys else None
    if metric is None or at is None:
        return None
    return Term(name, metric, sides[0], Param(at, source, f"{rid}.{name}"), relative, negate)


def _read_group(
    r: NodeReader, keys: dict[str, Node], rid: str, kind: str, source: str
) -> tuple[list[Level | None], list[Term]]:
    """Composite and interlock rules become terms plus one boolean level (signal 1.0 when all terms hold)."""
    if kind == "composite":
        terms = [_read_term(r, n, rid) for n in r.sequence(keys["all"], "all")] if "all" in keys else []
        hold_key, hold_node = "for_s", keys.get("for_s")
    else:
        terms = [_read_term(r, n, rid) for n in r.sequence(keys["trip"], "trip")] if "trip" in keys else []
        terms += [_read_term(r, n, rid) for n in r.sequence(keys["while"], "while")] if "while" in keys else []
        terms.append(_read_term(r, keys["acted"], rid, negate=True) if "acted" in keys else None)
        hold_key, hold_node = "within_s", keys.get("within_s")
    grade_name = r.choice(keys["grade"], "grade", ALERT_GRADES) if "grade" in keys else "red"
    hold = r.number(hold_node, hold_key, 0.0) if hold_node is not None else None
    for_s = Param(hold, source, f"{rid}.{hold_key}") if hold is not None else None
    level = Level(GRADE_INDEX[grade_name or "red"], Param(0.5, "S", f"{rid}.all"), None, for_s, source)
    return [level], [t for t in terms if t is not None]


def _cross_check(r: NodeReader, rule: Rule, node: Node, rules: RuleSet) -> None:
    keys = {getattr(k, "value", ""): v for k, v in node.value}
    for name in rule.device_classes:
        cls = rules.classes.get(name)
        if cls is None:
            r.error(keys["device_classes"], f"unknown device class {name!r}{suggest(name, rules.classes)}")
            continue
        for metric in rule.metrics if rule.scope == "device" else ():
            if metric in METRIC_INDEX and metric not in cls.metrics:
                r.error(node, f"device class {name!r} does not report metric {metric!r} used by {rule.id}")
    known = [rules.classes[c] for c in rule.device_classes if c in rules.classes]
    for metric in rule.metrics if rule.scope == "site" and known else ():
        if metric in METRIC_INDEX and not any(metric in c.metrics for c in known):
            r.error(node, f"no device class of {rule.id} reports metric {metric!r}")
    if rule.kind == "staleness" and not rule.levels:
        r.error(node, "a staleness rule needs at least one level")
    for level in rule.levels:
        if level.clear is None:
            continue
        wrong = level.clear.value > level.at.value if rule.direction == "above" else level.clear.value < level.at.value
        if wrong and rule.kind != "composite":
            r.error(
                node,
                f"level {level.grade}: clear {level.clear.value:g} is on the alarm side of at "
                f"{level.at.value:g} (direction {rule.direction})",
            )
    if rule.kind == "interlock" and rule.scope != "device":
        r.error(node, "an interlock is judged per device")
