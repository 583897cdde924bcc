"""Target tracking on SageMakerVariantInvocationsPerInstance, minute by minute (docs/capacity.md,
"Autoscaling"). AWS publishes the alarms (3 datapoints above target, 15 below 0.9 x target; an
alarm stays in ALARM, and keeps asking, while its datapoints stay out) and the cooldown rules,
not the capacity formula: ceil(serving x metric / target), clamped, as Kubernetes' HPA
documents, is the stated assumption. Shared by the analytic model and the DES:
it is a rule applied to per-minute counts, not a queueing effect."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ScalingPolicy:
    min_capacity: int
    max_capacity: int
    target: float  # invocations per instance per minute
    scale_in_cooldown_s: float
    scale_out_cooldown_s: float
    alarm_high_minutes: int = 3
    alarm_low_minutes: int = 15
    scale_in_ratio: float = 0.9
    startup_s: float = 300.0  # a new instance serves this long after the scale-out


@dataclass
class TargetTracking:
    """State of one variant's scaling. ``step(t, invocations)`` at the end of minute ``t`` (the
    invocations it received) returns nothing; ``in_service(t)`` is the count serving in minute t;
    ``billed(t)`` counts starting instances too (SageMaker bills from launch)."""

    policy: ScalingPolicy
    initial: int
    desired: int = 0
    _starting: list[tuple[int, int]] = field(default_factory=list)  # (first serving minute, count)
    _serving: int = 0
    _above: int = 0
    _below: int = 0
    _out_until: float = -math.inf  # minute the scale-out cooldown ends
    _in_until: float = -math.inf
    _last_out: int = 0
    events: list[tuple[int, str, int, int]] = field(default_factory=list)  # (minute, action, from, to)

    def __post_init__(self) -> None:
        self.desired = self._serving = self.initial

    def in_service(self, t: int) -> int:
        ready = sum(count for start, count in self._starting if start <= t)
        if ready:
            self._serving += ready
            self._starting = [(s, c) for s, c in self._starting if s > t]
        return self._serving

    def billed(self, t: int) -> int:
        return self.in_service(t) + sum(count for _, count in self._starting)

    def step(self, t: int, invocations: float) -> None:
        p = self.policy
        serving = max(self.in_service(t), 1)
        metric = invocations / serving
        self._above = self._above + 1 if metric > p.target else 0
        self._below = self._below + 1 if metric < p.scale_in_ratio * p.target else 0
        now = t + 1  # decisions take effect from the next minute
        if self._above >= p.alarm_high_minutes:
            # What the metric needs, on the instances that produced it; capacity still starting
            # counts toward it (CAPACITY.md §1.4), so a slow start is not answered twice.
            wanted = min(p.max_capacity, math.ceil(serving * metric / p.target))
            if wanted > self.desired and (now >= self._out_until or wanted > self._last_out):
                self._scale_out(now, wanted)
        elif self._below >= p.alarm_low_minutes and now >= self._in_until and now >= self._out_until:
            wanted = max(p.min_capacity, math.ceil(serving * metric / p.target))
            if wanted < self.desired:
                self._scale_in(now, wanted)

    def _scale_out(self, now: int, wanted: int) -> None:
        p = self.policy
        self.events.append((now, "out", self.desired, wanted))
        self._starting.append((now + math.ceil(p.startup_s / 60), wanted - self.desired))
        self._last_out = wanted
        self.desired = wanted
        self._out_until = now + p.scale_out_cooldown_s / 60
        self._in_until = -math.inf  # a scale-out ends a scale-in cooldown (CAPACITY.md §1.4)

    def _scale_in(self, now: int, wanted: int) -> None:
        self.events.append((now, "in", self.desired, wanted))
        removed = self.desired - wanted
        # Starting instances are cancelled first, then serving ones stop at once.
        while removed and self._starting:
            start, count = self._starting.pop()
            take = min(count, removed)
            removed -= take
            if count > take:
                self._starting.append((start, count - take))
        self._serving -= removed
        self.desired = wanted
        self._in_until = now + self.policy.scale_in_cooldown_s / 60
