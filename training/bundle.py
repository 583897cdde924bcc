"""The source bundle every launcher runs: ``train.py`` + ``training/`` + the inference handler.

SageMaker script mode unpacks ``sourcedir.tar.gz`` into /opt/ml/code and runs
``python train.py --name value ...``; the local and EC2 launchers do the same. The archive is
byte-for-byte reproducible, so a hash of it can name it (and skip re-uploads).
"""

from __future__ import annotations

from pathlib import Path

from training.archive import write_tar_gz

BUNDLE_NAME = "sourcedir.tar.gz"
ENTRY_POINT = "train.py"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENTRY_SCRIPT = '''\
"""sagegate training entry (SageMaker script mode). Contract: python train.py --help."""

import sys

from training.entry import main

if __name__ == "__main__":
    sys.exit(main())
'''
# handlers/ goes in so the training job can copy the inference module into the model artifact.
HANDLER_FILES = ("handlers/__init__.py", "handlers/inference.py")


def bundle_entries(project_root: Path = PROJECT_ROOT) -> list[tuple[str, bytes]]:
    entries = [(ENTRY_POINT, ENTRY_SCRIPT.encode())]
    package = project_root / "training"
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" not in path.parts:
            entries.append((path.relative_to(project_root).as_posix(), path.read_bytes()))
    for name in HANDLER_FILES:
        if (project_root / name).is_file():
            entries.append((name, (project_root / name).read_bytes()))
    return entries


def build_source_bundle(dest: Path) -> Path:
    """Write ``dest/sourcedir.tar.gz`` (same sources, same bytes) and return its path."""
    return write_tar_gz(Path(dest) / BUNDLE_NAME, bundle_entries())
