"""sagegate's custom checkov checks (loaded with ``--external-checks-dir``; checkov needs this file)."""
