"""checkov, run from its own environment: the runner, the worker it starts, sagegate's custom checks."""
