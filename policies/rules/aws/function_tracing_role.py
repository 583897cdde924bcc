"""SG-AWS-007: a traced function whose role cannot write X-Ray traces (AWS refuses the request; the row in runner/core/aws_rules.py
names the source)."""

from __future__ import annotations

from policies.rules.aws._request_rule import AwsRequestRule
from runner.core import aws_rules


class FunctionTracingRole(AwsRequestRule):
    row = aws_rules.rule("SG-AWS-007")
