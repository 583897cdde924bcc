"""Hydra's basic sweeper without its second composition pass.

Hydra's BasicSweeper composes every job's config once to validate the batch, and the launcher
composes it again to run it. sagegate's sweep callback (runner/sweep.py) already composes and
validates every job before the sweeper starts (it needs the configs to scan all templates with
one checkov run), so the sweeper's own pass only doubles the cost of a sweep (≈0.1 s a job).
Hydra loads sweepers only from the hydra_plugins namespace, hence this package.
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper


class PrevalidatedSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Done by runner.sweep.SweepSummary.on_multirun_start for every job of the sweep."""
