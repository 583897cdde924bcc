"""Capacity and cost of a day of traffic through the config's path (docs/capacity.md): traffic
profiles, queueing formulas, target-tracking autoscaling and the per-minute model. Reads only
runner.core; the gate's SG-CAP rules and the simulate stage read it."""
