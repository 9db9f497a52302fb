"""The one place where Sentinel reads its configuration.

Sources, highest priority first: explicit keyword arguments (the CLI passes its flags this way), environment
variables ``SENTINEL_<NAME>``, a TOML file (``SENTINEL_CONFIG`` or ``--config``; keys are the field names below),
then the defaults. Every value is validated at start; a bad one raises :class:`~sentinel.errors.ConfigError`
naming the environment variable, so the operator knows exactly what to fix.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sentinel.errors import ConfigError

ENV_PREFIX = "SENTINEL_"


def default_data_dir() -> Path:
    """Where Sentinel keeps its own state (embedded database, spool, models).

    As root the user data directory would be under ``/root``; the embedded PostgreSQL runs as an unprivileged
    system user that must not be given a way into root's home, so root gets ``/var/lib/sentinel`` instead. Every
    root shell (whatever its HOME) shares that folder, so it is locked (store/datalock.py): a second ``serve`` or
    ``demo`` on it is refused with one line naming the first, never silently run on the first one's server.
    """
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/sentinel")
    return Path(platformdirs.user_data_dir("sentinel", appauthor=False))


class Settings(BaseSettings):
    """Validated configuration. Field ``x`` is set by ``SENTINEL_X`` or key ``x`` of the TOML file."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    database_url: str | None = Field(
        default=None, description="PostgreSQL URL; unset means: start the embedded PostgreSQL"
    )
    mqtt_url: str | None = Field(default=None, description="mqtt://[user:pass@]host:port; unset means embedded")
    data_dir: Path = Field(default_factory=default_data_dir)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    mqtt_client_id: str = "sentinel-ingest"
    mqtt_session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)
    # Bounded lateness on device time (DESIGN.md, Time and order).
    lateness_s: float = Field(default=300.0, ge=0)
    # Readings the engine keeps to put late readings back in order (engine/rewind.py); 0 turns reordering off.
    rewind_max_readings: int = Field(default=2_000_000, ge=0)
    # Clock-driven work of `sentinel serve`: staleness ticks, engine checkpoints, webhook delivery, register upkeep.
    engine_tick_s: float = Field(default=5.0, gt=0)
    engine_checkpoint_s: float = Field(default=30.0, ge=0)
    webhook_poll_s: float = Field(default=1.0, gt=0)
    upkeep_interval_s: float = Field(default=30.0, gt=0)
    # Model files of the packs' anomaly rules (Engine(models_dir=...)); unset: anomaly rules are off.
    anomaly_models_dir: Path | None = None
    # Scheduled refits of those models in `serve` (engine/anomaly/refit.py): every so many seconds (0: off), on the
    # last window of readings without the rule's alert periods, refused below a number of rows; versions kept per file.
    anomaly_refit_every_s: float = Field(default=0.0, ge=0)
    anomaly_refit_window_s: float = Field(default=24 * 3600.0, gt=0)
    anomaly_refit_min_rows: int = Field(default=500, ge=2)
    anomaly_model_versions: int = Field(default=10, ge=2, le=1000)
    batch_max_messages: int = Field(default=5000, ge=1)
    batch_max_wait_ms: int = Field(default=200, ge=1)
    queue_max_batches: int = Field(default=8, ge=1)
    retention_days: int = Field(default=90, ge=1)
    partitions_ahead_days: int = Field(default=7, ge=1)
    display_tz: str = "Asia/Shanghai"
    # The duty officer's console (sentinel.console): how long a sign-in lasts, the largest evidence file accepted,
    # and an optional map tile URL with {z}/{x}/{y} (an intranet map service); unset draws on a plain background.
    console_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    console_evidence_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    console_tile_url: str | None = Field(default=None, pattern=r"^https?://.*\{z\}.*\{x\}.*\{y\}")
    log_level: str = "INFO"
    # "text" (one line per record, for people) or "json" (one JSON object per line, for log shippers).
    log_format: Literal["text", "json"] = "text"
    # Connections the running service keeps open to PostgreSQL (each of its async and its thread-side pools).
    db_pool_size: int = Field(default=4, ge=1, le=100)
    # Notifications (issue 16): the channels file (robots, SMS, e-mail, escalation; its secrets stay in it) and the
    # notifier's pass interval. Unset file: only the generic webhooks are delivered.
    notify_channels_file: Path | None = None
    notify_interval_s: float = Field(default=2.0, gt=0)
    # Input limits (issue 13)
    #: One limit for one payload on every transport: an MQTT message, or an HTTP body (schemas/README). The
    #: generated mosquitto.conf refuses larger packets at the broker (max_packet_size), before Sentinel reads them.
    max_payload_bytes: int = Field(default=1_048_576, ge=1024, le=256 * 1_048_576)
    #: A dead letter keeps at most this many bytes of what was refused, plus its full size and SHA-256.
    dead_letter_keep_bytes: int = Field(default=4096, ge=0)
    #: Dead letters stored one by one per sender (MQTT topic or HTTP key): a burst, then a steady rate per second.
    #: Beyond it they are counted and summarised in one dead letter (code suppressed), never silently dropped.
    dead_letter_burst: int = Field(default=100, ge=1)
    dead_letter_rate_per_s: float = Field(default=10.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme = urlsplit(value).scheme
        if scheme not in ("postgresql", "postgres") and "=" not in value:
            raise ValueError(f"expected a postgresql:// URL or a libpq key=value string, got scheme {scheme!r}")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"expected mqtt://host:port or mqtts://host:port, got scheme {parts.scheme!r}")
        if not parts.hostname:
            raise ValueError("the URL names no host")
        return value

    @field_validator("anomaly_refit_every_s")
    @classmethod
    def _refits_need_models(cls, value: float, info: ValidationInfo) -> float:
        # Refits without a models folder would do nothing, silently: a setting that cannot act is refused.
        if value > 0 and info.data.get("anomaly_models_dir") is None:
            raise ValueError(f"refits need the models folder: set {_env_name('anomaly_models_dir')} too")
        return value

    @field_validator("display_tz")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; expected an IANA name such as Asia/Shanghai") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("expected one of DEBUG, INFO, WARNING, ERROR")
        return level

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def embedded_pg_dir(self) -> Path:
        return self.data_dir / "postgres"


def _env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read and validate the configuration, raising ConfigError that names the offending setting."""
    file_values: dict[str, Any] = {}
    path = config_file or (Path(os.environ[f"{ENV_PREFIX}CONFIG"]) if os.environ.get(f"{ENV_PREFIX}CONFIG") else None)
    if path is not None:
        try:
            file_values = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{ENV_PREFIX}CONFIG", f"cannot read {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{ENV_PREFIX}CONFIG", f"{path} is not valid TOML: {exc}") from exc
        unknown = sorted(set(file_values) - set(Settings.model_fields))
        if unknown:
            raise ConfigError(f"{ENV_PREFIX}CONFIG", f"{path}: unknown key(s) {', '.join(unknown)}")
    # Environment beats the file: drop file keys that the environment sets, then let pydantic read the env.
    for name in list(file_values):
        if _env_name(name) in os.environ:
            del file_values[name]
    values = {**file_values, **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        source = _env_name(field) if field in Settings.model_fields else field
        raise ConfigError(source, str(first["msg"]).removeprefix("Value error, ")) from exc
