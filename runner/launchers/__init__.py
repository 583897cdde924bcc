"""Launchers run the shared training bundle somewhere: local processes, SageMaker, EC2.

Kept import-light: each launcher is imported on its own (``runner.launchers.local``).
"""
