"""SG-IAM-004: AWS-managed policies attached to a role (administrator, *FullAccess, or any)."""

from policies.rules.iam._analysis import AnalyserRule


class ManagedPolicy(AnalyserRule):
    id = "SG-IAM-004"
    severity = "high"
    title = "AWS-managed broad policy attached"
    config_key = "iam.roles.<role>.managed_policy_arns"
    remediation = ("Remove the AWS-managed policy and declare the exact scopes the role needs in "
                   "iam.roles.<role>.scopes.")
