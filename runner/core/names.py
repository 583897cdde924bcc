"""The physical names of everything a stack owns or touches, in one account and region.

A scope in iam.roles names resources as things of this stack (``endpoint``, ``artifacts``,
``role:<key>``…); ``ResourceNames`` knows what each of them is called, so an expanded policy never
contains a wildcard that the user did not write.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.core.errors import ConfigError
from runner.core.settings import Settings

STACK_TAG = "sagegate:stack"
LOCAL_ACCOUNT = "123456789012"  # moto's fixed account id
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
    # Customer keys the config names, by the part that uses them (``kms_key:<part>`` in a scope).
    kms_keys: tuple[tuple[str, str], ...] = ()

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
        keys = (("function", settings.function.kms_key_arn), ("training", settings.training.volume_kms_key_id))
        return cls(settings.name, account, settings.target.region, bucket, data_bucket, data_prefix,
                   tuple((part, key) for part, key in keys if key))

    def kms_key_arn(self, key: str) -> str:
        """The ARN IAM authorises a use of ``key`` on (an ARN, a key id, or an alias as configs
        take them): a key id is the key's ARN; an alias stands for a key whose ARN the config does
        not say, so any key of the account (AWS KMS DG, "Using aliases to control access": IAM
        policies match the key's ARN, not the alias's)."""
        if key.startswith("arn:"):
            return key if ":key/" in key else f"arn:aws:kms:{self.region}:{self.account}:key/*"
        if key.startswith("alias/"):
            return f"arn:aws:kms:{self.region}:{self.account}:key/*"
        return f"arn:aws:kms:{self.region}:{self.account}:key/{key}"

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
        if kind in ("code", "artifacts", "checkpoints", "notebooks"):
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
        if kind == "notebook_log_group":
            return [f"{logs}:/aws/sagemaker/NotebookInstances:*"]
        if kind == "role" and qualifier:
            return [self.role_arn(qualifier)]
        if kind == "kms_key" and qualifier in ("function", "training"):
            keys = dict(self.kms_keys)
            if qualifier not in keys:
                raise ConfigError(f"iam: resource kms_key:{qualifier} names no key: set "
                                  f"{'function.kms_key_arn' if qualifier == 'function' else 'training.volume_kms_key_id'}")
            return [self.kms_key_arn(keys[qualifier])]
        raise ConfigError(
            f"iam: unknown resource reference {reference!r}; allowed: bucket, data, code, artifacts, "
            "checkpoints, notebooks, endpoint, training_jobs, dlc_repositories, sagemaker_log_groups, "
            "function_log_group, notebook_log_group, role:<key>, kms_key:function, kms_key:training, *"
        )


