"""Simulators: how Sentinel is tried, tested and shown.

In flow order: :mod:`.scenario` (scenario files: the county map, sites and devices, delivery habits, faults),
:mod:`.faults` (fault kinds with their ground truth: rule, grade, deadline), :mod:`.models` (healthy signals per
device class), :mod:`.simulation` (the message stream as a broker would see it), :mod:`.publish` (pacing, MQTT and
HTTP senders, recordings), :mod:`.tap` (the rule engine over a stream, the alert events read back, a device-time
clock for accelerated runs), :mod:`.report` (the detection report) and :mod:`.commands` (``sentinel simulate``,
``replay``, ``demo``). The demo itself is :mod:`sentinel.demo`.
"""
