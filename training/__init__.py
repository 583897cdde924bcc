"""sagegate's shared training package.

Kept import-light on purpose: the artifact's ``code/`` ships ``training/model.py`` beside the
inference module, and nothing here may pull in the data pipeline or the training loop.
"""
