"""Who may send what: sites, gateways and devices, loaded from a file or the API and kept in PostgreSQL."""
