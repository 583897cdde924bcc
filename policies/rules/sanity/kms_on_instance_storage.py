"""SG-SAN-008: no KMS key asked for on instances with local NVMe storage, which SageMaker rejects
(CreateEndpointConfig ``KmsKeyId``, CreateTrainingJob ``ResourceConfig.VolumeKmsKeyId``)."""

from __future__ import annotations

from collections.abc import Iterator

from policies.rules.base import Context, Outcome, Rule
from runner.core.instance_storage import has_instance_storage


class KmsOnInstanceStorage(Rule):
    id = "SG-SAN-008"
    severity = "high"
    title = "KMS key requested for local instance storage"
    config_key = "training.volume_kms_key_id"
    remediation = ("Leave the KMS key unset for instance types with local NVMe storage (g4dn, g5, *d families); "
                   "their volumes are encrypted by the instance's hardware.")

    def check(self, ctx: Context) -> Iterator[Outcome]:
        for config in ctx.stack.find("AWS::SageMaker::EndpointConfig"):
            local = [v.get("InstanceType") for v in config.properties.get("ProductionVariants", [])
                     if v.get("InstanceType") and has_instance_storage(v["InstanceType"])]
            problem = None
            if config.properties.get("KmsKeyId") and local:
                problem = (f"KmsKeyId is set but {', '.join(local)} has local instance storage: "
                           "CreateEndpointConfig rejects a KMS key for it")
            yield self.outcome(config.logical_id, problem, config_key="endpoint.kms_key_id")
        for job, definition in ctx.training_definitions():
            resources = definition.get("ResourceConfig", {})
            instance_type = resources.get("InstanceType", "")
            problem = None
            if resources.get("VolumeKmsKeyId") and has_instance_storage(instance_type):
                problem = (f"ResourceConfig.VolumeKmsKeyId is set but {instance_type} has local instance storage: "
                           "CreateTrainingJob rejects it (the volume is encrypted by the instance's hardware)")
            yield self.outcome(job.logical_id, problem)
