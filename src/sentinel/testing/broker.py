"""The private Mosquitto for tests: re-exported from :mod:`sentinel.collect.broker_process`, where the demo uses it."""

from sentinel.collect.broker_process import BrokerUnavailable, PrivateMosquitto, find_mosquitto, free_port, publish

__all__ = ["BrokerUnavailable", "PrivateMosquitto", "find_mosquitto", "free_port", "publish"]
