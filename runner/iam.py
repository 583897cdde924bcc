"""Expand declared IAM scopes into policy documents with exact ARNs.

A scope names resources as things of this stack (``endpoint``, ``artifacts``, ``role:<key>``…);
``ResourceNames`` knows what each of them is called in this account and region, so the
expanded policy never contains a wildcard that the user did not write.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.settings import ConfigError, RoleSettings, Scope, Settings

# The ECR account that hosts the AWS Deep Learning Containers in most commercial regions.
DLC_ACCOUNT = "763104351884"


@dataclass(frozen=True)
class ResourceNames:
    """The physical names of everything a stack owns or touches."""

    stack: str
    account: str
    region: str
    bucket: str
    data_bucket: str
    data_prefix: str

    @classmethod
    def for_settings(cls, settings: Settings, account: str) -> ResourceNames:
        bucket = f"{settings.name}-{account}-{settings.target.region}"
        source = settings.data.source
        if source.startswith("s3://"):
            data_bucket, _, data_prefix = source[len("s3://"):].partition("/")
            data_prefix = data_prefix.strip("/")
        else:
            # Local and built-in data sets are uploaded under the stack's own bucket.
            data_bucket, data_prefix = bucket, f"data/{settings.data.name}"
        return cls(settings.name, account, settings.target.region, bucket, data_bucket, data_prefix)

    # Physical names of the stack's resources.
    def role_name(self, role_key: str) -> str:
        return f"{self.stack}-{role_key.replace('_', '-')}"

    def role_arn(self, role_key: str) -> str:
        return f"arn:aws:iam::{self.account}:role/{self.role_name(role_key)}"

    @property
    def endpoint_name(self) -> str:
        return f"{self.stack}-endpoint"

    @property
    def function_name(self) -> str:
        return f"{self.stack}-invoke"

    @property
    def notebook_name(self) -> str:
        return f"{self.stack}-notebook"

    @property
    def data_uri(self) -> str:
        return f"s3://{self.data_bucket}/{self.data_prefix}"

    def s3_uri(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"

    def arn(self, reference: str, dlc_repositories: tuple[str, ...] = ()) -> list[str]:
        """ARNs for one resource reference of a scope."""
        sm = f"arn:aws:sagemaker:{self.region}:{self.account}"
        logs = f"arn:aws:logs:{self.region}:{self.account}:log-group"
        kind, _, qualifier = reference.partition(":")
        if reference == "*":
            return ["*"]
        if kind == "bucket":
            return sorted({f"arn:aws:s3:::{self.bucket}", f"arn:aws:s3:::{self.data_bucket}"})
        if kind == "data":
            return [f"arn:aws:s3:::{self.data_bucket}/{self.data_prefix}/*"]
        if kind in ("code", "artifacts", "checkpoints"):
            return [f"arn:aws:s3:::{self.bucket}/{kind}/*"]
        if kind == "endpoint":
            # SageMaker lower-cases names in its ARNs.
            return [f"{sm}:endpoint/{self.endpoint_name.lower()}"]
        if kind == "training_jobs":
            return [f"{sm}:training-job/{self.stack}-*"]
        if kind == "dlc_repositories":
            return [f"arn:aws:ecr:{self.region}:{DLC_ACCOUNT}:repository/{repo}" for repo in dlc_repositories]
        if kind == "sagemaker_log_groups":
            return [f"{logs}:/aws/sagemaker/TrainingJobs:*",
                    f"{logs}:/aws/sagemaker/Endpoints/{self.endpoint_name}:*"]
        if kind == "function_log_group":
            return [f"{logs}:/aws/lambda/{self.function_name}:*"]
        if kind == "role" and qualifier:
            return [self.role_arn(qualifier)]
        raise ConfigError(
            f"iam: unknown resource reference {reference!r}; allowed: bucket, data, code, artifacts, "
            "checkpoints, endpoint, training_jobs, dlc_repositories, sagemaker_log_groups, "
            "function_log_group, role:<key>, *"
        )


def trust_policy(service_principal: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service_principal}, "Action": "sts:AssumeRole"}
        ],
    }


def scope_statement(scope: Scope, names: ResourceNames, sid: str, dlc_repositories: tuple[str, ...]) -> dict:
    resources: list[str] = []
    for reference in scope.resources:
        for arn in names.arn(reference, dlc_repositories):
            if arn not in resources:
                resources.append(arn)
    statement: dict = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": [f"{scope.service}:{action}" for action in scope.actions],
        "Resource": resources if len(resources) > 1 else resources[0],
    }
    if scope.conditions:
        statement["Condition"] = {op: dict(values) for op, values in scope.conditions.items()}
    return statement


def role_policy(role_key: str, role: RoleSettings, names: ResourceNames, dlc_repositories: tuple[str, ...]) -> dict:
    """The inline policy document of one declared role."""
    statements = []
    for i, scope in enumerate(role.scopes):
        sid = f"{scope.service.capitalize()}{i}".replace("-", "")
        statements.append(scope_statement(scope, names, sid, dlc_repositories))
    return {"Version": "2012-10-17", "Statement": statements}
