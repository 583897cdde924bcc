"""SG-SAN-003: the tuner's objective regex reads a number from a line the training code prints.

The schema checks that the regex compiles with one capture group; only this rule knows what the
training code prints (training/metrics.py, docs/contracts.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from policies.rules.base import Context, Outcome, Rule
from training.metrics import METRIC_NAMES, metric_line


class HpoObjectiveRegex(Rule):
    id = "SG-SAN-003"
    severity = "high"
    title = "HPO objective regex does not match what training prints"
    config_key = "hpo.objective_regex"
    remediation = ("Use a regex with one capture group that matches a metric line of docs/contracts.md, "
                   "e.g. 'Testing Loss: ([0-9\\.]+)'.")

    def check(self, ctx: Context) -> Iterator[Outcome]:
        for job in ctx.jobs("tuning_job"):
            objective = job.request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"]
            definitions = job.request["TrainingJobDefinition"]["AlgorithmSpecification"].get("MetricDefinitions", [])
            regexes = [d["Regex"] for d in definitions if d.get("Name") == objective]
            if not regexes:
                yield self.outcome(job.logical_id, f"objective {objective!r} has no metric definition: the tuner "
                                   "never sees a value", config_key="hpo.objective_metric")
                continue
            problem = None
            for regex in regexes:
                problem = _regex_problem(regex) or problem
            yield self.outcome(job.logical_id, problem)


def _regex_problem(regex: str) -> str | None:
    try:
        compiled = re.compile(regex)
    except re.error as exc:
        return f"objective regex {regex!r} does not compile ({exc})"
    lines = [metric_line(name, 0.123456) for name in METRIC_NAMES]
    captured = [m.group(1) for line in lines if (m := compiled.search(line)) and m.groups()]
    if not captured:
        return (f"objective regex {regex!r} matches none of the metric lines the training code "
                f"prints ({', '.join(n + ': <float>' for n in METRIC_NAMES)})")
    if not all(_is_float(v) for v in captured):
        return f"objective regex {regex!r} captures {captured[0]!r}, not a number"
    return None


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
