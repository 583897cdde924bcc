"""Least privilege: the stack's roles and policies through the IAM analyser (policies/iam_analyzer.py)."""

CODE = "IAM"
NAME = "least privilege"
