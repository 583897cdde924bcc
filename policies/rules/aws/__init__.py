"""Requests AWS would refuse: the cross-field and cross-request rules of runner/core/aws_rules.py,
run over the stack before anything is sent (the local target's emulator enforces the same table)."""

CODE = "AWS"
NAME = "AWS would refuse"
