"""SG-IAM-005: iam:PassRole beyond named roles, or without an iam:PassedToService condition."""

from policies.rules.iam._analysis import AnalyserRule


class PassRole(AnalyserRule):
    id = "SG-IAM-005"
    severity = "high"
    title = "iam:PassRole not limited to named roles and a service"
    config_key = "iam.roles.<role>.scopes"
    remediation = ("Scope iam:PassRole to the role ARNs it must pass (role:<key>) and add an "
                   "iam:PassedToService condition for the service that receives them.")
