"""The one exception tree of Sentinel.

Every error Sentinel raises on purpose derives from :class:`SentinelError`, so a caller can catch the whole
family or one branch of it::

    SentinelError
    ├── ConfigError              a setting is missing, malformed or contradicts another (names the setting)
    │   └── PortInUse            the HTTP port is taken by another process (names the port and the setting)
    ├── StoreError               the database layer
    │   ├── DatabaseUnavailable  cannot connect, or the connection dropped (retryable)
    │   ├── MigrationError       a schema migration failed or the schema is newer than this code
    │   ├── EmbeddedServerError  the embedded PostgreSQL could not be set up, started or stopped
    │   └── DataDirInUse         another Sentinel process holds the data folder (names it and its pid)
    ├── WireError                a message does not honour the wire contract (carries field path and reason)
    │   └── DecodeError          malformed bytes, wrong types, missing or unexpected fields
    ├── RegistryError            who may send what
    │   ├── UnknownDevice        a reading names a device that is not registered
    │   ├── ForeignSite          a gateway writes for a site it is not bound to
    │   └── RegistryFileError    a registry file (sites, gateways, devices) is invalid: file, entry, field
    ├── BrokerError              the MQTT broker: cannot be started or reached, or its config/registry input is bad
    ├── BackpressureError        a bounded queue is full; the caller must slow down or retry later
    ├── RulePackError            a rule pack is invalid (carries every problem with file and line)
    ├── ModelError               an anomaly model file is corrupt or incompatible
    │   └── RefitRefused         a refit of a model was not done (too few normal rows...); the current one stays
    ├── DatasetError             a data file given for training or scoring cannot be read or lacks a column
    ├── ScenarioError            a simulator scenario or recording is invalid (names the file and the field)
    └── TransitionError          an alert or hazard state change that the state machine forbids

Errors that reach the command line are printed as one line (``sentinel: <message>``) and exit with code 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


class SentinelError(Exception):
    """Base of every error Sentinel raises on purpose."""


class ConfigError(SentinelError):
    """A setting is missing, malformed or inconsistent. The message names the setting."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")


class PortInUse(ConfigError):
    """The HTTP API cannot listen: another process holds the address."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        super().__init__(
            "SENTINEL_HTTP_PORT", f"port {port} on {host} is already in use; stop the other process or choose another"
        )


class StoreError(SentinelError):
    """Something went wrong in the database layer."""


class DatabaseUnavailable(StoreError):
    """The database cannot be reached or dropped the connection. Retrying later may succeed."""


class MigrationError(StoreError):
    """A schema migration failed, or the database schema is newer than this code."""


class EmbeddedServerError(StoreError):
    """The embedded PostgreSQL server could not be prepared, started or stopped."""


class DataDirInUse(StoreError):
    """Another Sentinel process holds the data folder (store/datalock.py); nothing in it was touched."""

    def __init__(self, data_dir: Path, holder: dict[str, Any]) -> None:
        self.data_dir = data_dir
        self.pid = holder.get("pid")
        who = f"pid {self.pid}" if self.pid else "another process"
        if holder.get("command"):
            who += f" ({holder['command']}, since {holder.get('since', '?')})"
        super().__init__(
            f"data folder {data_dir} is in use by {who}; stop it, or give this one its own folder "
            "with SENTINEL_DATA_DIR"
        )


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (a field path, or file:line) and what was expected."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}" if self.where else self.what


class WireError(SentinelError):
    """A message that does not honour the wire contract."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem))

    @property
    def path(self) -> str:
        return self.problem.where

    @property
    def reason(self) -> str:
        return str(self.problem)


class DecodeError(WireError):
    """Malformed bytes, a wrong type, a missing or an unexpected field."""


class RegistryError(SentinelError):
    """A sender is not allowed to send what it sent."""


class UnknownDevice(RegistryError):
    """A reading names a device that is not in the registry."""


class ForeignSite(RegistryError):
    """A gateway writes for a site it is not bound to."""


class BrokerError(SentinelError):
    """The MQTT broker cannot be started or reached, or the input for its configuration is invalid."""


class RegistryFileError(RegistryError):
    """A registry file is invalid. The message names the file, the entry and the field."""


class BackpressureError(SentinelError):
    """A bounded queue is full. Nothing was taken; slow down and retry."""

    def __init__(self, what: str, retry_after_s: float = 1.0) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"{what} is full; retry after {retry_after_s:g} s")


class RulePackError(SentinelError):
    """A rule pack is invalid. ``problems`` lists every error found, each with file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ModelError(SentinelError):
    """An anomaly model file is corrupt, tampered with or incompatible with this code."""


class RefitRefused(ModelError):
    """A scheduled or asked-for refit of an anomaly model was not done (too few normal rows, no current model, the
    fit failed); the current model file stays as it was. The message says why, Chinese first."""


class DatasetError(SentinelError):
    """A data file (e.g. a CSV for ``sentinel anomaly fit``) cannot be read or lacks what was asked for.

    The message names the file and, where it can, the column and row."""


class TransitionError(SentinelError):
    """A state change that the alert or hazard state machine forbids."""

    def __init__(self, entity: str, current: str, wanted: str, why: str) -> None:
        self.entity = entity
        self.current = current
        self.wanted = wanted
        self.why = why
        super().__init__(f"{entity}: cannot go from {current} to {wanted}: {why}")


class ScenarioError(SentinelError):
    """A simulator scenario file or a recording is invalid; the message names the file and the field."""


class NotifyConfigError(SentinelError):
    """A channels file, a duty roster or an escalation policy is invalid; the message names the file, the entry and
    the field (issue 16)."""
