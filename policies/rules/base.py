"""What every native rule is built on: the context it reads, the outcome it yields, and the base
classes that hold the scan logic, so that a rule file declares metadata and one predicate.

A rule is a class. Its metadata are class attributes: ``id`` (``SG-<AREA>-<NNN>``), the default
``severity``, a ``title``, the ``config_key`` a finding points at and a ``remediation`` sentence.
Its ``check(ctx)`` is pure: it reads the stack (resources and exact job requests), the settings
and the cost summary, and yields one ``Outcome`` per thing it looked at; ``message`` None is a
pass (a JUnit test case), a message is a finding. The base classes below iterate the stack for
the common shapes (every resource of a type, every job of some kinds, every training-job
definition), leaving the rule a ``problem(...)`` predicate that returns the message or None.

Declaring such a class in a module of an area package (policies/rules/iam/, cost/, sanity/,
hardening/) registers it: ``policies.rules.registry.all_rules()`` collects them. The declaration
is checked when the class is created, so a malformed rule fails at import, not in a report.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from runner.core.cost import CostSummary
from runner.core.settings import SEVERITIES, Settings
from runner.stack.model import JobSpec, Resource, Stack

RULE_ID = re.compile(r"^SG-[A-Z]+-\d{3}$")
SAGEMAKER_JOB_KINDS = ("training_job", "tuning_job")


def job_definition(job: JobSpec) -> dict[str, Any]:
    """The training-job definition inside a CreateTrainingJob or CreateHyperParameterTuningJob request."""
    return job.request.get("TrainingJobDefinition", job.request) if job.kind == "tuning_job" else job.request


@dataclass(frozen=True)
class Context:
    settings: Settings
    stack: Stack
    costs: CostSummary
    # Work shared by several rules of one evaluation (e.g. the IAM analysis of every role).
    memo: dict[str, Any] = field(default_factory=dict)

    def jobs(self, *kinds: str) -> list[JobSpec]:
        """The stack's jobs of these kinds, in stack order."""
        return [job for job in self.stack.jobs if job.kind in kinds]

    def training_definitions(self) -> list[tuple[JobSpec, dict[str, Any]]]:
        """Each SageMaker job with its training-job definition (a tuning job nests it)."""
        return [(job, job_definition(job)) for job in self.jobs(*SAGEMAKER_JOB_KINDS)]


@dataclass(frozen=True)
class Outcome:
    resource: str
    config_key: str
    message: str | None = None  # None: the resource passed this rule
    severity: str | None = None  # overrides the rule's default for this finding

    @property
    def passed(self) -> bool:
        return self.message is None


class Rule(ABC):
    """One native rule: declared metadata and a pure ``check``."""

    id: ClassVar[str]
    severity: ClassVar[str]
    title: ClassVar[str]
    config_key: ClassVar[str]
    remediation: ClassVar[str]
    # Class attributes a base class's scan logic needs a concrete rule to set.
    scan_attributes: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "id" in vars(cls):
            _check_declaration(cls)

    @property
    def area(self) -> str:
        """``SG-COST-001`` -> ``COST``."""
        return self.id.split("-")[1]

    @abstractmethod
    def check(self, ctx: Context) -> Iterable[Outcome]:
        """One outcome per resource or job looked at."""

    def outcome(self, resource: str, problem: str | None = None, *, config_key: str | None = None,
                severity: str | None = None) -> Outcome:
        """A pass (``problem`` None) or a finding on ``resource``, at the rule's config key unless given."""
        return Outcome(resource, config_key or self.config_key, problem, severity)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


def _check_declaration(cls: type[Rule]) -> None:
    name = f"rule {cls.__module__}.{cls.__qualname__}"
    if not RULE_ID.match(str(cls.id)):
        raise TypeError(f"{name}: id {cls.id!r} is not SG-<AREA>-<NNN>")
    missing = [a for a in ("severity", "title", "config_key", "remediation", *cls.scan_attributes)
               if not getattr(cls, a, None)]
    if missing:
        raise TypeError(f"{name} ({cls.id}) declares no {', '.join(missing)}")
    if cls.severity not in SEVERITIES:
        raise TypeError(f"{name} ({cls.id}): severity {cls.severity!r} is not one of {', '.join(SEVERITIES)}")
    if not cls.remediation.endswith("."):
        raise TypeError(f"{name} ({cls.id}): the remediation is a sentence ending with '.'")


class ResourceRule(Rule):
    """A rule on every resource of one CloudFormation type."""

    resource_type: ClassVar[str]
    scan_attributes = ("resource_type",)

    def check(self, ctx: Context) -> Iterator[Outcome]:
        for resource in ctx.stack.find(self.resource_type):
            yield self.outcome(resource.logical_id, self.problem(ctx, resource))

    @abstractmethod
    def problem(self, ctx: Context, resource: Resource) -> str | None:
        """What is wrong with ``resource``, or None."""


class JobRule(Rule):
    """A rule on every job of the given kinds (``local_training``, ``training_job``,
    ``tuning_job``, ``ec2_run``): the exact API requests, which checkov never sees."""

    job_kinds: ClassVar[tuple[str, ...]]
    scan_attributes = ("job_kinds",)

    def check(self, ctx: Context) -> Iterator[Outcome]:
        for job in ctx.jobs(*self.job_kinds):
            yield self.outcome(job.logical_id, self.problem(ctx, job))

    @abstractmethod
    def problem(self, ctx: Context, job: JobSpec) -> str | None:
        """What is wrong with ``job``'s request, or None."""


class TrainingDefinitionRule(Rule):
    """A rule on the training-job definition of every SageMaker training and tuning job."""

    def check(self, ctx: Context) -> Iterator[Outcome]:
        for job, definition in ctx.training_definitions():
            yield self.outcome(job.logical_id, self.problem(ctx, definition))

    @abstractmethod
    def problem(self, ctx: Context, definition: dict[str, Any]) -> str | None:
        """What is wrong with the definition, or None."""
