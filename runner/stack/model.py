"""The stack as plain data: resources (CloudFormation-shaped) and job requests (exact API requests).

One model, three uses: ``Stack.template()`` renders the CloudFormation template that checkov
scans, the policy rules read the same resources and job requests, and the applier turns each
resource into boto3 calls. Every value is resolved when the stack is built (names, ARNs, image
URIs), so what is checked is exactly what is sent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from runner.core import cost
from runner.core.names import ResourceNames
from runner.core.settings import PricingSettings


@dataclass
class Resource:
    logical_id: str
    type: str
    properties: dict[str, Any]
    depends_on: list[str] = field(default_factory=list)
    # The config key a reader should change to affect this resource (reports point at it).
    config_key: str = ""

    @property
    def physical_name(self) -> str | None:
        return physical_name(self.properties)


def physical_name(properties: dict[str, Any]) -> str | None:
    """The name a resource's properties give it (None for kinds named by their parent)."""
    for key in ("RoleName", "ModelName", "EndpointName", "EndpointConfigName", "FunctionName",
                "NotebookInstanceName", "PolicyName", "InstanceProfileName", "Name"):
        if key in properties and isinstance(properties[key], str):
            return properties[key]
    return None


@dataclass
class JobSpec:
    """A job that is not infrastructure: the exact API request that will be sent."""

    logical_id: str
    kind: str  # local_training | training_job | tuning_job | ec2_run
    api: str | None  # e.g. "sagemaker:CreateTrainingJob"; None for local training
    request: dict[str, Any]
    config_key: str = "training"
    # The runtime bound when the request cannot carry it (RunInstances; the instance shuts down).
    max_runtime_s: int | None = None


@dataclass(frozen=True)
class Need:
    """A call a part's service makes at run time with the part's role (runner/stack/needs.py)."""

    part: str  # training | endpoint | function | notebook | ec2_training
    feature: str  # what breaks without it, in a user's words
    action: str
    resource: str  # a representative ARN of what is called ("*" for actions without resource types)
    source: str
    context: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class Stack:
    name: str
    account: str
    region: str
    names: ResourceNames
    resources: list[Resource]
    jobs: list[JobSpec]
    model_data_url: str
    # What each part's role must allow at run time (the gate checks the roles against them).
    needs: list[Need] = field(default_factory=list)

    def resource(self, logical_id: str) -> Resource:
        for resource in self.resources:
            if resource.logical_id == logical_id:
                return resource
        raise KeyError(logical_id)

    def find(self, resource_type: str) -> list[Resource]:
        return [r for r in self.resources if r.type == resource_type]

    def cost(self, pricing: PricingSettings) -> cost.CostSummary:
        """What this stack costs: the one cost model applied to its resources and jobs."""
        return cost.estimate([(r.type, r.properties) for r in self.resources],
                             [cost.Job(j.kind, j.request, j.max_runtime_s) for j in self.jobs], pricing)

    def job_role_ids(self) -> list[str]:
        """The roles (and instance profiles) the stack's jobs run as: what must exist before a job
        is sent."""
        arns = [job.request.get("TrainingJobDefinition", job.request).get("RoleArn", "") for job in self.jobs]
        profiles = {job.request["IamInstanceProfile"]["Name"] for job in self.jobs if "IamInstanceProfile" in job.request}
        roles = {arn.rsplit("/", 1)[-1] for arn in arns if arn}
        for profile in self.find("AWS::IAM::InstanceProfile"):
            if profile.properties["InstanceProfileName"] in profiles:
                roles.update(profile.properties["Roles"])
        return [r.logical_id for r in self.resources
                if (r.type == "AWS::IAM::Role" and r.properties["RoleName"] in roles)
                or (r.type == "AWS::IAM::InstanceProfile" and r.properties["InstanceProfileName"] in profiles)]

    def template_json(self) -> bytes:
        """The template as written to template.json: the exact bytes whose sha256 the gate records."""
        return (json.dumps(self.template(), indent=2) + "\n").encode()

    def template(self) -> dict[str, Any]:
        """A CloudFormation template with every value resolved: no Parameters, no Conditions."""
        resources: dict[str, Any] = {}
        for r in self.resources:
            body: dict[str, Any] = {"Type": r.type, "Properties": r.properties}
            # cfn-lint flags a DependsOn that a GetAtt already implies.
            referenced = get_att_targets(r.properties)
            explicit = [d for d in r.depends_on if d not in referenced]
            if explicit:
                body["DependsOn"] = explicit
            resources[r.logical_id] = body
        return {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": f"sagegate stack {self.name} ({self.region}, account {self.account})",
            "Resources": resources,
        }

    def to_plan(self) -> dict[str, Any]:
        return {
            "stack": self.name,
            "account": self.account,
            "region": self.region,
            "model_data_url": self.model_data_url,
            "resources": [
                {"logical_id": r.logical_id, "type": r.type, "name": r.physical_name,
                 "depends_on": r.depends_on, "properties": r.properties}
                for r in self.resources
            ],
            "jobs": [{"logical_id": j.logical_id, "kind": j.kind, "api": j.api, "request": j.request}
                     for j in self.jobs],
        }


def get_att_targets(value: Any) -> set[str]:
    """Logical ids that ``Fn::GetAtt`` references inside a value (implied dependencies)."""
    if isinstance(value, dict):
        found = {value["Fn::GetAtt"][0]} if "Fn::GetAtt" in value else set()
        for item in value.values():
            found |= get_att_targets(item)
        return found
    if isinstance(value, list):
        return set().union(*(get_att_targets(item) for item in value)) if value else set()
    return set()


def content_hash(value: Any, length: int = 8) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:length]


