"""SG-IAM-007: a trust policy that lets anything but the role's own service principal assume it."""

from policies.rules.iam._analysis import AnalyserRule


class TrustPolicy(AnalyserRule):
    id = "SG-IAM-007"
    severity = "high"
    title = "Trust policy allows an unexpected principal"
    config_key = "iam.roles.<role>.trust"
    remediation = "Trust exactly the service principal that assumes the role (e.g. sagemaker.amazonaws.com)."
