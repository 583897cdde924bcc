"""sagegate: `python main.py [stage=...] [group=option] [key=value ...]` (see README.md)."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from runner.app.cli import run
from runner.core.errors import EXIT_BAD_CONFIG, RunExit


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
