"""SG-HARD-009: SageMaker training containers run under network isolation."""

from __future__ import annotations

from typing import Any

from policies.rules.base import Context, TrainingDefinitionRule


class TrainingNetworkIsolation(TrainingDefinitionRule):
    id = "SG-HARD-009"
    severity = "medium"
    title = "Training without network isolation"
    config_key = "training.network_isolation"
    remediation = "Set training.network_isolation=true; the training code reads its data from the S3 channels."

    def problem(self, ctx: Context, definition: dict[str, Any]) -> str | None:
        if definition.get("EnableNetworkIsolation"):
            return None
        return "EnableNetworkIsolation is off: the training container can call out to the network"
