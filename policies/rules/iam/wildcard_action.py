"""SG-IAM-001: an Allow of every action ('*') or of every action of a service ('s3:*')."""

from policies.rules.iam._analysis import AnalyserRule


class WildcardAction(AnalyserRule):
    id = "SG-IAM-001"
    severity = "high"
    title = "Wildcard action (* or a whole service)"
    config_key = "iam.roles.<role>.scopes"
    remediation = "List the exact actions the workload calls instead of '*' or 'service:*'."
