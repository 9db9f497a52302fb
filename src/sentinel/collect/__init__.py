"""Collectors: MQTT and HTTP. Bytes in, nothing else."""
