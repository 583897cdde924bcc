"""SG-AWS-003: a serverless endpoint with more than one variant (AWS refuses the request; the row in runner/core/aws_rules.py
names the source)."""

from __future__ import annotations

from policies.rules.aws._request_rule import AwsRequestRule
from runner.core import aws_rules


class ServerlessOneVariant(AwsRequestRule):
    row = aws_rules.rule("SG-AWS-003")
