"""SG-IAM-003: ``"Resource": "*"`` for actions that accept resource ARNs."""

from policies.rules.iam._analysis import AnalyserRule


class StarResource(AnalyserRule):
    id = "SG-IAM-003"
    severity = "high"
    title = "'*' resource for actions that support resource-level permissions"
    config_key = "iam.roles.<role>.scopes"
    remediation = ("Name the resources (this stack's ARNs) in the scope; keep '*' only for actions that "
                   "have no resource-level permissions.")
