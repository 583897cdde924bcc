"""SG-HARD-002: the notebook's volume under a customer-managed KMS key."""

from __future__ import annotations

from policies.rules.base import Context, ResourceRule
from policies.rules.hardening._kms import kms_problem
from runner.stack.model import Resource


class NotebookKms(ResourceRule):
    id = "SG-HARD-002"
    severity = "low"
    title = "Notebook without a customer KMS key"
    config_key = "notebook.kms_key_id"
    remediation = "Set notebook.kms_key_id to a customer-managed KMS key."
    resource_type = "AWS::SageMaker::NotebookInstance"

    def problem(self, ctx: Context, resource: Resource) -> str | None:
        return kms_problem(resource.properties.get("KmsKeyId"), "the notebook's volume and data")
