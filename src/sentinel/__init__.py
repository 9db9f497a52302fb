"""Sentinel: real-time risk monitoring and early warning for work safety.

How the package is layered
--------------------------

Every module belongs to one layer and imports only from layers below it; ``lint-imports`` (in ``.ci/run``) checks
the contract written in pyproject.toml (``[tool.importlinter]``). From the bottom up:

* **Foundation** — :mod:`.errors` (the one exception tree), :mod:`.resources`, :mod:`.settings` (the only reader
  of configuration), :mod:`.logs` (logging, configured once), :mod:`.cli_settings` (settings for a command).
* **wire** — the message contract: topics, decoding, dead letters. Knows nothing of storage. :mod:`.batch` (the
  columnar micro-batch) sits on it.
* **store** — PostgreSQL: connections, migrations, the ingest writer, the spool, the embedded server, and the SQL
  of the engine runner's checkpoint (:mod:`.store.checkpoints`). Just above it, :mod:`.cli_common`: what the
  command modules over the database share (a command's connection, the display zone, tables for a person).
* **engine** — the rule engine (a library: arrays in, transitions out) and, on top of it, its runner
  (:mod:`.engine.runner`: durable batches → engine → a ``write_transitions`` callback, checkpoint and catch-up).
  The runner does not know what is done with transitions: the composition root injects the alert lifecycle.
* **registry** — sites, gateways, devices and API keys.
* **collect**, then **ingest** — the MQTT collector and the private Mosquitto; admission (who may send what, and
  duplicates) and the sink (durable batches, spooling while the database is away). :mod:`.observability` (the
  Prometheus metrics of Sentinel itself) sits between them.
* **hazards**, then **alerts** — the major-hazard register; the alert lifecycle (ISA-18.2 states), floods and
  chatter, webhooks, upkeep. Alerts escalate into the register, so alerts sit above hazards.
* **api** — the HTTP routes (ingest, alerts, hazards, registry, health, metrics). Routes reach the running service
  through one dependency, :func:`sentinel.api.context.context`.
* **app** — :class:`sentinel.app.Sentinel`, the composition root: the one place the service is assembled from
  settings, and the one place new parts (the web console, notification channels) are plugged in.
* **threaded**, **sim** — the root running in a background thread; the simulator.
* **serve**, **demo** — the two ways to run it; **cli** and ``__main__`` on top.

The test kit, :mod:`sentinel.testing`, sits above everything: production code never imports it (the demo's broker
lives in :mod:`sentinel.collect.broker_process`, the test kit re-exports it).
"""

__version__ = "0.1.0"
