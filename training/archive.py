"""Deterministic .tar.gz files: the same inputs give the same bytes, so a hash can name them.

Fixed mtimes, owners and modes, sorted entries, and a gzip header without time or file name.
Written to a temporary file and renamed, so a reader never sees half an archive. Import-light.

``python -m training.archive pack MODEL_DIR DEST`` packs a model directory as SageMaker packs
/opt/ml/model (the EC2 instance's user data runs it).
"""

from __future__ import annotations

import gzip
import io
import os
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

FIXED_MTIME = 0


def write_tar_gz(dest: Path, entries: Iterable[tuple[str, bytes]]) -> Path:
    """Write ``(archive name, content)`` pairs as a reproducible gzip'd tar at ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(entries)
    names = [name for name, _ in ordered]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate archive entries for {dest}")
    handle, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    try:
        with os.fdopen(handle, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=FIXED_MTIME) as gz:
                with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    for name, content in ordered:
                        info = tarfile.TarInfo(name)
                        info.size = len(content)
                        info.mtime = FIXED_MTIME
                        info.mode = 0o644
                        info.uid = info.gid = 0
                        info.uname = info.gname = ""
                        tar.addfile(info, io.BytesIO(content))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; an artifact is meant to be read
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def directory_entries(root: Path) -> list[tuple[str, bytes]]:
    """Every file under ``root`` (caches excluded) as ``(relative posix name, bytes)``."""
    root = Path(root)
    return [
        (path.relative_to(root).as_posix(), path.read_bytes())
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]


def pack_directory(root: Path, dest: Path) -> Path:
    """Pack a model directory the way SageMaker packs /opt/ml/model into model.tar.gz."""
    return write_tar_gz(dest, directory_entries(root))


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract regular files only, refusing names that escape ``dest``."""
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(dest, filter="data")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3 or args[0] != "pack":
        print("usage: python -m training.archive pack MODEL_DIR DEST", file=sys.stderr)
        return 2
    root = Path(args[1])
    if not (root / "model.json").is_file():
        print(f"error: {root} holds no model.json: not a model directory", file=sys.stderr)
        return 2
    print(f"packed {pack_directory(root, Path(args[2]))}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
