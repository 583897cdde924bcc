"""sagegate: `python main.py [stage=...] [group=option] [key=value ...]` (see README.md)."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    # First, before Hydra and sagegate are even imported: a run that will gate starts its checkov
    # worker now, so checkov loads on one core while the config is composed, validated and the
    # stack built on the other (policies/checkov/process.py).
    from policies.checkov import process

    if process.will_gate(sys.argv[1:]):
        process.prestart()

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from runner.app.cli import run  # noqa: E402
from runner.core.errors import EXIT_BAD_CONFIG, RunExit  # noqa: E402


@hydra.main(config_path="conf", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    try:
        main()
    except RunExit:
        raise
    except SystemExit as exc:
        # Hydra reports an override it cannot compose (unknown key or option, bad syntax) with
        # exit 1; that is a configuration error, which exits 2 (1 means policy violations).
        if exc.code == 1:
            sys.exit(EXIT_BAD_CONFIG)
        raise
