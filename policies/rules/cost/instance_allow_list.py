"""SG-COST-001: every instance the stack asks for is on the allow-list for its use.

Hosting and notebook have a template-level twin, the custom checkov check CKV_SG_002
(policies/checkov/checks/), for teams that run checkov on an exported template; the gate folds
the twin into this rule's finding when both fire.
"""

from __future__ import annotations

from collections.abc import Iterator

from policies.rules.base import Context, Outcome, Rule, job_definition


class InstanceAllowList(Rule):
    id = "SG-COST-001"
    severity = "high"
    title = "Instance type outside the allow-list for its use"
    config_key = "endpoint.variants"
    remediation = ("Pick an instance type from policy.allowed_instance_types (hosting, training, notebook or "
                   "ec2), or extend the list in the policy config through review.")

    def check(self, ctx: Context) -> Iterator[Outcome]:
        allowed = ctx.settings.policy.allowed_instance_types
        for config in ctx.stack.find("AWS::SageMaker::EndpointConfig"):
            # Every variant, not just one of them.
            sized = [v for v in config.properties.get("ProductionVariants", []) if "ServerlessConfig" not in v]
            outside = [str(v.get("InstanceType")) for v in sized if v.get("InstanceType") not in allowed.hosting]
            if outside:
                yield self._allowed(config.logical_id, "endpoint.variants", "hosting", ", ".join(outside),
                                    allowed.hosting)
            else:
                yield self.outcome(config.logical_id, config_key="endpoint.variants")
        for notebook in ctx.stack.find("AWS::SageMaker::NotebookInstance"):
            yield self._allowed(notebook.logical_id, "notebook.instance_type", "notebook",
                                notebook.properties.get("InstanceType"), allowed.notebook)
        for job in ctx.jobs("training_job", "tuning_job", "ec2_run"):
            if job.kind == "ec2_run":
                yield self._allowed(job.logical_id, "training.instance_type", "ec2", job.request.get("InstanceType"),
                                    allowed.ec2)
            else:
                instance_type = job_definition(job).get("ResourceConfig", {}).get("InstanceType")
                yield self._allowed(job.logical_id, "training.instance_type", "training", instance_type,
                                    allowed.training)

    def _allowed(self, resource: str, key: str, use: str, instance_type: object, allow: list[str]) -> Outcome:
        if instance_type in allow:
            return self.outcome(resource, config_key=key)
        return self.outcome(resource, f"{use} instance type {instance_type} is not in "
                            f"policy.allowed_instance_types.{use} ({', '.join(allow) or 'empty'})", config_key=key)
