"""sagegate's policy gate: native rules (policies/rules/), checkov from its own environment
(policies/checkov/), one report (policies/report.py). Entry points: ``policies.gate.run_gate`` /
``evaluate`` for the stages, ``python -m policies scan-iam`` for any IAM policy."""
