"""What every builder of the stack shares: the settings, the names, the tags, the roles built so far.

Each family of resources (roles, endpoint, autoscaling, function, notebook, jobs) has its own
small builder module; they all take a ``StackParts`` so that ``build_stack`` stays a short
composition of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from runner.core.images import image_uri
from runner.core.names import STACK_TAG, ResourceNames
from runner.core.settings import Settings
from runner.core.variants import production_variants

# The parts of a stack a role's ``used_by`` can name.
PARTS = ("training", "endpoint", "function", "notebook", "ec2_training")


def active_parts(settings: Settings) -> set[str]:
    """The parts this configuration deploys or runs (roles for other parts are not created)."""
    parts = {"endpoint", "function"}
    if settings.training.launcher == "sagemaker":
        parts.add("training")
    if settings.training.launcher == "ec2":
        parts.add("ec2_training")
    if settings.notebook.enabled:
        parts.add("notebook")
    return parts


@dataclass
class StackParts:
    settings: Settings
    names: ResourceNames
    parts: set[str]
    hosting_images: dict[str, str]  # instance type -> inference image URI
    training_image: str
    # Role key -> logical id, filled by the roles builder.
    role_ids: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_settings(cls, settings: Settings, account: str) -> StackParts:
        region = settings.target.region
        e, t = settings.endpoint, settings.training
        hosting = {instance_type: image_uri(e.framework_version, e.py_version, region, instance_type, "inference")
                   for instance_type in _hosting_instance_types(settings)}
        training_type = t.instance_type if t.instance_type.startswith("ml.") else "ml." + t.instance_type
        training = image_uri(t.framework_version, t.py_version, region, training_type, "training")
        return cls(settings, ResourceNames.for_settings(settings, account), active_parts(settings), hosting, training)

    @property
    def region(self) -> str:
        return self.settings.target.region

    @property
    def tags(self) -> list[dict[str, str]]:
        tags = {**self.settings.tags, STACK_TAG: self.settings.name}
        return [{"Key": key, "Value": str(value)} for key, value in sorted(tags.items())]

    @property
    def dlc_repositories(self) -> tuple[str, ...]:
        """The ECR repositories of every image the stack pulls (roles may read exactly these)."""
        uris = [*self.hosting_images.values(), self.training_image]
        return tuple(sorted({uri.split("/", 1)[1].split(":")[0] for uri in uris}))

    def role_key_for(self, part: str) -> str:
        for role_key, role in self.settings.iam.roles.items():
            if part in role.used_by:
                return role_key
        raise ValueError(f"iam.roles: no role is declared with used_by: [{part}]")

    def role_for(self, part: str) -> tuple[str, str]:
        """(ARN, logical id) of the role that ``part`` runs as."""
        role_key = self.role_key_for(part)
        return self.names.role_arn(role_key), self.role_ids[role_key]


def _hosting_instance_types(settings: Settings) -> list[str]:
    return list(dict.fromkeys(v.instance_type for v in production_variants(settings)))
