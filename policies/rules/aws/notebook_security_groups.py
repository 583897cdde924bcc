"""SG-AWS-002: a notebook subnet without security groups (AWS refuses the request; the row in runner/core/aws_rules.py
names the source)."""

from __future__ import annotations

from policies.rules.aws._request_rule import AwsRequestRule
from runner.core import aws_rules


class NotebookSecurityGroups(AwsRequestRule):
    row = aws_rules.rule("SG-AWS-002")
