"""Ingest: raw bytes from the collectors become admitted, de-duplicated, durable batches."""
