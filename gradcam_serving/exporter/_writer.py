"""Atomic version folders: ``BASE/NAME/VERSION`` appears whole or not at all.

TF Serving polls ``BASE/NAME`` and loads any numeric child it sees, even one
still being copied (serving#631, #1086). So we build the version in a
non-numeric temporary folder beside it, which TF Serving ignores, and
``rename`` it into place only once it has passed every check.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from gradcam_serving.errors import ExportError, VersionExistsError

__all__ = ["ensure_version_free", "existing_versions", "next_version", "write_version"]


def existing_versions(model_dir: Path) -> list[int]:
    """Numeric children of ``model_dir``, the way TF Serving reads them."""
    if not model_dir.is_dir():
        return []
    versions = []
    for child in model_dir.iterdir():
        if child.name.isascii() and child.name.isdigit() and child.is_dir():
            versions.append(int(child.name))
    return sorted(versions)


def next_version(model_dir: Path) -> int:
    versions = existing_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def ensure_version_free(base: str | os.PathLike[str], name: str, version: int | None, overwrite: bool) -> None:
    """Refuse an existing version up front, before any slow work."""
    _check_name(name)
    if version is not None and version < 0:
        raise ValueError(f"version must be a non-negative integer; got {version}")
    final = Path(base) / name / str(version)
    if version is not None and final.exists() and not overwrite:
        raise VersionExistsError(f"version folder {final} already exists; pass --overwrite to replace it")


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise ValueError(f"model name {name!r} must be a plain folder name (no '/', not empty)")


def write_version(
    base: str | os.PathLike[str],
    name: str,
    build: Callable[[Path], None],
    *,
    version: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Create ``base/name/version`` by calling ``build(tmp_dir)`` then renaming.

    Args:
        base: the model base folder holding one folder per model name.
        name: the model name (a folder under ``base``).
        build: writes the complete SavedModel into the folder it is given.
        version: the version number; default the next integer.
        overwrite: replace an existing version instead of refusing.

    Returns:
        The version folder.

    Raises:
        VersionExistsError: the version exists and ``overwrite`` is false.
    """
    model_dir = Path(base) / name
    version = next_version(model_dir) if version is None else version
    ensure_version_free(base, name, version, overwrite)
    model_dir.mkdir(parents=True, exist_ok=True)
    final = model_dir / str(version)
    tmp = model_dir / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
    try:
        build(tmp)
        _move_into_place(tmp, final, overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _move_into_place(tmp: Path, final: Path, overwrite: bool) -> None:
    old = None
    if final.exists() and overwrite:
        old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
        os.rename(final, old)
    try:
        os.rename(tmp, final)
    except OSError as exc:
        if old is not None:
            os.rename(old, final)
        if final.exists():
            raise VersionExistsError(f"version folder {final} appeared while exporting; not replaced") from exc
        raise ExportError(f"could not move the export into {final}: {exc}") from exc
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
