"""SG-HARD-010: multi-instance training encrypts the traffic between its containers."""

from __future__ import annotations

from typing import Any

from policies.rules.base import Context, TrainingDefinitionRule


class InterContainerEncryption(TrainingDefinitionRule):
    id = "SG-HARD-010"
    severity = "medium"
    title = "Multi-instance training without inter-container encryption"
    config_key = "training.inter_container_encryption"
    remediation = "Set training.inter_container_encryption=true for jobs on more than one instance."

    def problem(self, ctx: Context, definition: dict[str, Any]) -> str | None:
        count = int(definition.get("ResourceConfig", {}).get("InstanceCount", 1))
        if count > 1 and not definition.get("EnableInterContainerTrafficEncryption"):
            return f"{count} instances exchange gradients unencrypted (EnableInterContainerTrafficEncryption is off)"
        return None
