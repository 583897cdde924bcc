"""Hardening where checkov has no CloudFormation check, and on the job requests it never sees."""

CODE = "HARD"
NAME = "hardening"
