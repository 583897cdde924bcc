"""Native rules: small declared units, one check each.

A rule has an id (``SG-<AREA>-<NNN>``), a default severity, a title, the config key it concerns,
a remediation sentence and a check. The check reads the stack (resources and exact job requests),
the settings and the cost summary, and yields one ``Outcome`` per thing it looked at: ``message``
None is a pass (a JUnit test case), a message is a finding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from runner.core.cost import CostSummary
from runner.core.settings import Settings
from runner.stack.model import Stack


@dataclass(frozen=True)
class Context:
    settings: Settings
    stack: Stack
    costs: CostSummary
    # Work shared by several rules of one evaluation (e.g. the IAM analysis of every role).
    memo: dict[str, Any] = field(default_factory=dict)

    def training_definitions(self) -> list[tuple[Any, dict]]:
        """Each SageMaker job with its training-job definition (a tuning job nests it)."""
        return [(job, job_definition(job)) for job in self.stack.jobs if job.kind in ("training_job", "tuning_job")]


def job_definition(job: Any) -> dict:
    """The training-job definition inside a CreateTrainingJob or CreateHyperParameterTuningJob request."""
    return job.request.get("TrainingJobDefinition", job.request) if job.kind == "tuning_job" else job.request


@dataclass(frozen=True)
class Outcome:
    resource: str
    config_key: str
    message: str | None = None  # None: the resource passed this rule
    severity: str | None = None  # overrides the rule's default for this finding

    @property
    def passed(self) -> bool:
        return self.message is None


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    title: str
    config_key: str
    remediation: str
    check: Callable[[Context], Iterable[Outcome]]

    @property
    def area(self) -> str:
        return self.id.split("-")[1]


def all_rules() -> tuple[Rule, ...]:
    from policies.rules import cost, hardening, iam, sanity

    return (*iam.RULES, *cost.RULES, *sanity.RULES, *hardening.RULES)
