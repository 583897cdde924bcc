"""Capacity: with an SLO set (slo.p99_ms, slo.error_rate), the config's simulated day of its traffic
profile must meet it; each rule names one cause of a miss (docs/capacity.md)."""

CODE = "CAP"
NAME = "capacity"
