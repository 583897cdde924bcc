"""SG-HARD-003: a SageMaker job's training volumes under a customer-managed KMS key (none on
instances with local NVMe storage, which SageMaker encrypts in hardware)."""

from __future__ import annotations

from typing import Any

from policies.rules.base import Context, TrainingDefinitionRule
from policies.rules.hardening._kms import kms_problem
from runner.core.instance_storage import has_instance_storage


class TrainingVolumeKms(TrainingDefinitionRule):
    id = "SG-HARD-003"
    severity = "low"
    title = "Training volumes without a customer KMS key"
    config_key = "training.volume_kms_key_id"
    remediation = ("Set training.volume_kms_key_id to a customer-managed KMS key (not for instance types with "
                   "local NVMe storage).")

    def problem(self, ctx: Context, definition: dict[str, Any]) -> str | None:
        resources = definition.get("ResourceConfig", {})
        instance_type = resources.get("InstanceType", "")
        if has_instance_storage(instance_type):
            return None
        return kms_problem(resources.get("VolumeKmsKeyId"), f"the {instance_type} training volumes")
