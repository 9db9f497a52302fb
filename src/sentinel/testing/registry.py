"""Registries for tests and benchmarks: sites, a gateway and devices of every sector, made from a few numbers."""

from __future__ import annotations

from sentinel.registry.entries import DeviceEntry, GatewayEntry, RegistryFile, Sector, SiteEntry

SECTOR_CLASS = {
    "gas": "gas_pipe_monitor",
    "dust": "dust_collector",
    "casting": "casting_machine",
    "charging": "charging_port",
}


def small_registry(
    prefix: str,
    *,
    sites: int = 2,
    devices_per_site: int = 3,
    sector: Sector = "gas",
    device_class: str | None = None,
) -> RegistryFile:
    """``prefix``-s0 … sites, each with devices ``prefix``-s<i>-d<j>, and gateway ``prefix``-gw bound to site 0
    only (so writing for site 1 through it is a foreign-site write)."""
    site_entries = [
        SiteEntry(f"{prefix}-s{i}", f"site {i}", f"town-{i % 3}", sector, 31.5 + i * 0.01, 120.3) for i in range(sites)
    ]
    devices = [
        DeviceEntry(f"{prefix}-s{i}-d{j}", f"{prefix}-s{i}", device_class or SECTOR_CLASS[sector], 10.0)
        for i in range(sites)
        for j in range(devices_per_site)
    ]
    gateway = GatewayEntry(f"{prefix}-gw", [f"{prefix}-s0"], secret=f"{prefix}-gateway-secret-token")
    return RegistryFile(site_entries, [gateway], devices)
