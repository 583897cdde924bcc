"""SG-IAM-006: action sets that let a principal grant itself more privilege."""

from policies.rules.iam._analysis import AnalyserRule


class PrivilegeEscalation(AnalyserRule):
    id = "SG-IAM-006"
    severity = "high"
    title = "Privilege-escalation action set"
    config_key = "iam.roles.<role>.scopes"
    remediation = ("Remove the actions that let the principal grant itself more privilege, or limit "
                   "iam:PassRole to named roles so the path cannot reach other roles.")
