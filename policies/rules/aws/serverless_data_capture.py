"""SG-AWS-004: a serverless endpoint with data capture (AWS refuses the request; the row in runner/core/aws_rules.py
names the source)."""

from __future__ import annotations

from policies.rules.aws._request_rule import AwsRequestRule
from runner.core import aws_rules


class ServerlessDataCapture(AwsRequestRule):
    row = aws_rules.rule("SG-AWS-004")
