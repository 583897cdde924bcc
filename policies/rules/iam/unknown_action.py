"""SG-IAM-008: an action the analyser's catalogue does not know (a typo, or a new action)."""

from policies.rules.iam._analysis import AnalyserRule


class UnknownAction(AnalyserRule):
    id = "SG-IAM-008"
    severity = "low"
    title = "Action unknown to the analyser's catalogue"
    config_key = "iam.roles.<role>.scopes"
    remediation = ("Check the action's spelling; if it is new, extend policies/data/iam_actions.json "
                   "(policies/data/make_iam_actions.py).")
