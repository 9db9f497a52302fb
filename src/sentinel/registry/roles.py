"""Who may do what: the role sets the HTTP API and the console both check, so a page can never allow what the API
refuses (or the reverse).

Roles: ``gateway`` (ingest for its own sites only), ``officer`` (alerts), ``supervisor`` (alerts, hazards, device
maintenance), ``admin`` (everything, including the registry, out-of-service and webhooks).
"""

from __future__ import annotations

ROLES = ("gateway", "officer", "supervisor", "admin")
ALERT_STAFF = ("officer", "supervisor")  # read and work alerts; read and create hazard entries
MAINTENANCE = ("supervisor",)  # put a device in or out of maintenance
ADMIN = ("admin",)  # out-of-service, webhooks, the registry


def may(role: str, roles: tuple[str, ...]) -> bool:
    """Whether a key of ``role`` may take an action open to ``roles`` (admin always may)."""
    return role == "admin" or role in roles
