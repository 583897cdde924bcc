"""SG-HARD-001: the endpoint's ML storage volumes under a customer-managed KMS key.

Variants on instances with local NVMe storage have no such volume (SG-SAN-008 keeps the key off them).
"""

from __future__ import annotations

from policies.rules.base import Context, ResourceRule
from policies.rules.hardening._kms import kms_problem
from runner.core.instance_storage import has_instance_storage
from runner.stack.model import Resource


class EndpointKms(ResourceRule):
    id = "SG-HARD-001"
    severity = "low"
    title = "Endpoint config without a customer KMS key"
    config_key = "endpoint.kms_key_id"
    remediation = ("Set endpoint.kms_key_id to a customer-managed KMS key to control and audit access to the "
                   "endpoint's volumes.")
    resource_type = "AWS::SageMaker::EndpointConfig"

    def problem(self, ctx: Context, resource: Resource) -> str | None:
        variants = resource.properties.get("ProductionVariants", [])
        with_volumes = [v["InstanceType"] for v in variants
                        if v.get("InstanceType") and not has_instance_storage(v["InstanceType"])]
        if not with_volumes:
            return None
        return kms_problem(resource.properties.get("KmsKeyId"), f"the ML storage volumes of {', '.join(with_volumes)}")
