"""Sentinel: real-time risk monitoring and early warning for work safety."""

__version__ = "0.1.0"
