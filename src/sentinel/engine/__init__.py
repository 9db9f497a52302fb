"""Rule engine: rule packs (YAML) → dense numpy state → alert transitions, one micro-batch at a time.

Public interface (the rest of Sentinel builds against these names)::

    from sentinel.engine import Engine, DeviceSpec, load_rules, Transitions, Transition

    rules = load_rules()                    # rules/*.yaml; RulePackError lists every problem (file:line)
    engine = Engine(rules, [DeviceSpec("cm-1", "casting_machine", "foundry-1", "casting", 1.0,
                                       {"cw_pressure_setpoint_mpa": 0.5, ...})],
                    site_overrides={"foundry-1": {"casting.cw_interlock.within_s": 3.0}}, lateness_s=300.0,
                    models_dir=Path("/var/lib/sentinel/models"))   # anomaly rules' model files; None = off
    engine.model_errors                     # {rule id: ModelError} for refused model files (rule off)
    i, m = engine.device_index("cm-1"), engine.metric_index("cw_pressure_mpa")
    out = engine.process(device_i32, metric_i16, ts_us_i64, value_f64, seq_i64)   # -> Transitions
    out = engine.tick(now_us)                                                      # staleness
    out.records()[0].alert_class   # "alarm" (报警), "warning" (预警: anomaly rules), "comm" (staleness)
    engine.add_devices([...]); blob = engine.snapshot(); engine.restore(blob)

Modules, in the order data flows through them: :mod:`.catalog` (metrics, grades), :mod:`.model` (compiled
rules, parameter keys), :mod:`.yamlnodes` and :mod:`.loader` (packs and their problems), :mod:`.devices`
(dense indices), :mod:`.params` (per-device numbers), :mod:`.state` (arrays, snapshot), :mod:`.kernels` and
:mod:`.evaluate` (array operations), :mod:`.engine` (the batch loop, time and order), :mod:`.transitions`
(output), :mod:`.reference` (the per-reading evaluator the tests compare against), :mod:`.commands` (CLI).
The anomaly models live in :mod:`.anomaly`; :mod:`.anomaly.live` scores them inside the engine pass.
"""

from sentinel.engine.catalog import GRADE_NAMES, METRICS, metric_index
from sentinel.engine.devices import DeviceSpec
from sentinel.engine.engine import Engine
from sentinel.engine.loader import check_rules, default_rules_dir, load_rules
from sentinel.engine.model import Rule, RuleSet
from sentinel.engine.transitions import Transition, Transitions

__all__ = [
    "GRADE_NAMES",
    "METRICS",
    "DeviceSpec",
    "Engine",
    "Rule",
    "RuleSet",
    "Transition",
    "Transitions",
    "check_rules",
    "default_rules_dir",
    "load_rules",
    "metric_index",
]
