"""Errors a user can cause; each message names the path or argument at fault."""

from __future__ import annotations


class TrainingError(Exception):
    """Base class: a problem with the inputs of a training run, not a bug."""


class ConfigError(TrainingError, ValueError):
    """A bad hyperparameter, argument or environment variable."""


class DataError(TrainingError, ValueError):
    """A dataset that does not have the expected shape (missing split, empty class, ...)."""


class CheckpointError(TrainingError, ValueError):
    """A checkpoint that cannot be resumed by this run."""
