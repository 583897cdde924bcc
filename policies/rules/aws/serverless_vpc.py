"""SG-AWS-006: a serverless endpoint backed by a model in a VPC (AWS refuses the request; the row in runner/core/aws_rules.py
names the source)."""

from __future__ import annotations

from policies.rules.aws._request_rule import AwsRequestRule
from runner.core import aws_rules


class ServerlessVpc(AwsRequestRule):
    row = aws_rules.rule("SG-AWS-006")
