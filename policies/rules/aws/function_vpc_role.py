"""SG-AWS-008: a function in a VPC whose role cannot manage network interfaces (AWS refuses the request; the row in runner/core/aws_rules.py
names the source)."""

from __future__ import annotations

from policies.rules.aws._request_rule import AwsRequestRule
from runner.core import aws_rules


class FunctionVpcRole(AwsRequestRule):
    row = aws_rules.rule("SG-AWS-008")
