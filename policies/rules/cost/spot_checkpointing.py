"""SG-COST-007: managed spot training checkpoints, so an interruption does not restart from epoch 1."""

from __future__ import annotations

from typing import Any

from policies.rules.base import Context, TrainingDefinitionRule


class SpotCheckpointing(TrainingDefinitionRule):
    id = "SG-COST-007"
    severity = "medium"
    title = "Managed spot training without checkpointing"
    config_key = "training.checkpointing"
    remediation = "Set training.checkpointing=true so an interrupted spot job resumes from its last checkpoint."

    def problem(self, ctx: Context, definition: dict[str, Any]) -> str | None:
        if definition.get("EnableManagedSpotTraining") and not definition.get("CheckpointConfig", {}).get("S3Uri"):
            return "managed spot training without a CheckpointConfig: every interruption restarts from epoch 1"
        return None
