"""SG-IAM-002: NotAction or NotResource in an Allow, which grants everything not listed."""

from policies.rules.iam._analysis import AnalyserRule


class NotActionOrResource(AnalyserRule):
    id = "SG-IAM-002"
    severity = "high"
    title = "NotAction or NotResource in an Allow statement"
    config_key = "iam.roles.<role>.scopes"
    remediation = ("Allow an explicit list of actions on an explicit list of resources; NotAction/NotResource "
                   "grants everything else, including actions added to AWS later.")
