"""What the capacity rules share: the config's simulated day (once per evaluation) and its
minutes over the SLO, each with the one cause that explains it best."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from policies.rules.base import Context, Outcome, Rule
from runner.core.errors import ConfigError

if TYPE_CHECKING:
    from runner.capacity.path import Simulation

THROTTLED, AT_MAX, TOO_SLOW, OVERFLOW = "throttled", "at max capacity", "scale-out too slow", "queue overflow"


@dataclass(frozen=True)
class BadMinute:
    minute: int
    cause: str
    error_share: float
    p99_ms: float | None


def _analysed(ctx: Context) -> tuple[Simulation | None, list[BadMinute], str | None]:
    """(the simulation, its minutes over the SLO, why it could not run); memoised per evaluation."""
    if "capacity" not in ctx.memo:
        from runner.capacity.path import simulate_config

        try:
            simulation = simulate_config(ctx.settings)
        except ConfigError as exc:
            ctx.memo["capacity"] = (None, [], str(exc))
        else:
            ctx.memo["capacity"] = (simulation, _bad_minutes(ctx, simulation), None)
    result: tuple[Simulation | None, list[BadMinute], str | None] = ctx.memo["capacity"]
    return result


def _bad_minutes(ctx: Context, simulation: Simulation) -> list[BadMinute]:
    slo = ctx.settings.slo
    m = simulation.day.minutes
    found = []
    for t in range(len(m["t"])):
        arrivals = m["arrivals"][t]
        errors = m["throttled"][t] + m["rejected"][t]
        share = errors / arrivals if arrivals else 0.0
        p99 = None if m["p99_ms"][t] != m["p99_ms"][t] else float(m["p99_ms"][t])  # NaN: nothing served
        over = ((slo.error_rate is not None and share > slo.error_rate)
                or (slo.p99_ms is not None and p99 is not None and p99 > slo.p99_ms))
        if not over:
            continue
        # The first that applies: Lambda's limits; capacity asked for and still starting; the
        # most capacity there can be; the alarm still counting; else the queue, with room left.
        if errors and m["throttled"][t] >= m["rejected"][t]:
            cause = THROTTLED
        elif m["starting"][t]:
            cause = TOO_SLOW
        elif m["at_max"][t]:
            cause = AT_MAX
        elif m["over_target"][t]:
            cause = TOO_SLOW
        else:
            cause = OVERFLOW
        found.append(BadMinute(t, cause, share, p99))
    return found


class CapacityRule(Rule):
    """One cause of a simulated day over its SLO; silent without an SLO."""

    cause: ClassVar[str]  # THROTTLED, AT_MAX, TOO_SLOW or OVERFLOW
    scan_attributes = ("cause",)

    def check(self, ctx: Context) -> Iterator[Outcome]:
        slo = ctx.settings.slo
        if slo.p99_ms is None and slo.error_rate is None:
            return
        endpoint = next((r.logical_id for r in ctx.stack.find("AWS::SageMaker::Endpoint")), "Endpoint")
        simulation, bad, error = _analysed(ctx)
        if simulation is None:
            if self.cause == THROTTLED:  # said once, not by every rule
                yield self.outcome(endpoint, f"the SLO cannot be checked: {error}", config_key="slo")
            return
        mine = [b for b in bad if b.cause == self.cause]
        if simulation.slo_met is not False or not mine:
            yield self.outcome(endpoint)
            return
        s, first = simulation.day.summary, mine[0]
        yield self.outcome(endpoint, (
            f"the simulated day ({simulation.traffic.profile} traffic) misses the SLO: p99 {s['p99_ms']:.0f} ms "
            f"(slo {_limit(slo.p99_ms, 'ms')}), errors {s['error_rate']:.2%} (slo {_limit(slo.error_rate, '%')}); "
            f"{len(mine)} minute(s) over it by {self.cause}, first at minute {first.minute} "
            f"({first.minute // 60:02d}:{first.minute % 60:02d}): {first.error_share:.1%} errors"
            + (f", p99 {first.p99_ms:.0f} ms" if first.p99_ms is not None else "") + f"; {self.detail(simulation)}"))

    def detail(self, simulation: Simulation) -> str:
        return ""


def _limit(value: float | None, unit: str) -> str:
    if value is None:
        return "none"
    return f"{value:.2%}" if unit == "%" else f"{value:g} {unit}"
