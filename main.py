"""sagegate: `python main.py [stage=...] [group=option] [key=value ...]` (see README.md)."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from runner.cli import EXIT_BAD_CONFIG, run


@hydra.main(config_path="conf", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    main.reached = True  # type: ignore[attr-defined]
    run(cfg)


if __name__ == "__main__":
    main.reached = False  # type: ignore[attr-defined]
    try:
        main()
    except SystemExit as exc:
        # Hydra reports an override it cannot compose (unknown key or option, bad syntax) and
        # exits 1 before our code runs; that is a configuration error, which exits 2.
        if exc.code == 1 and not main.reached:  # type: ignore[attr-defined]
            sys.exit(EXIT_BAD_CONFIG)
        raise
