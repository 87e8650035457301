"""The thumbnails of ``view --images DIR|MANIFEST``, confined to that folder.

The page asks for a gallery image by its number, never by a path, and every entry is resolved
(symlinks followed) and checked to lie inside the folder both when the list is read and when the
file is sent, so neither ``..`` nor a symlink pointing out can reach another file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gradcam_serving.manifests import ManifestRow, manifest_kind, read_manifest

from ._errors import ViewError

__all__ = ["Gallery", "GalleryItem", "confined", "outside", "read_gallery"]

SUFFIXES = (".png", ".jpg", ".jpeg")
"""What the ``*_bytes`` signatures decode (JPEG and PNG); other files in a folder are not listed."""
MAX_ITEMS = 500


@dataclass(frozen=True)
class GalleryItem:
    name: str
    path: Path
    label: str | None = None


@dataclass(frozen=True)
class Gallery:
    """The images of a folder or manifest, and the entries that were left out and why."""

    root: Path
    items: tuple[GalleryItem, ...]
    skipped: tuple[str, ...] = ()

    def read(self, index: int) -> tuple[GalleryItem, bytes]:
        """The item and its bytes; 404 for an unknown number or a file that left the folder since."""
        if not 0 <= index < len(self.items):
            raise ViewError(404, f"no gallery image {index} (there are {len(self.items)})")
        item = self.items[index]
        if outside(item.path, self.root):
            raise ViewError(404, f"gallery image {item.name} now points outside {self.root}")
        try:
            return item, item.path.read_bytes()
        except OSError as exc:
            raise ViewError(404, f"gallery image {item.name} cannot be read: {exc.strerror}") from None


def outside(path: Path, root: Path) -> bool:
    """True when ``path``, symlinks followed, is not inside the (resolved) ``root``."""
    return not path.resolve().is_relative_to(root)


def confined(root: Path, relative: str | Path) -> tuple[Path | None, str | None]:
    """``root / relative`` if it stays inside ``root`` and is a file; else ``None`` and why, in words.

    Shared by the gallery and the ``--results`` browser: no absolute path, no ``..``, no symlink out.
    """
    relative = Path(relative)
    if relative.is_absolute() or ".." in relative.parts:
        return None, f"{relative}: outside the folder (absolute or '..')"
    path = root / relative
    if outside(path, root):
        return None, f"{relative}: a link pointing outside the folder"
    if not path.is_file():
        return None, f"{relative}: no such file"
    return path, None


def read_gallery(source: str | Path) -> Gallery:
    """A folder's JPEG/PNG files (sorted), or the ``path`` rows of a ``.csv``/``.jsonl`` manifest.

    Raises:
        ValueError: not a folder or manifest, a manifest without a ``path`` column, or no images at all.
    """
    source = Path(source)
    if source.is_dir():
        root = source.resolve()
        rows = [ManifestRow(p.name, None, None, str(p)) for p in sorted(source.iterdir()) if p.suffix.lower() in SUFFIXES]
    elif manifest_kind(source.name) is not None:
        root, rows = source.parent.resolve(), read_manifest(source)
    else:
        raise ValueError(f"--images {source}: expected a folder of JPEG/PNG images or a .csv/.jsonl manifest")
    items, skipped = [], []
    for row in rows:
        item, problem = _item(root, row)
        if problem:
            skipped.append(problem)
        elif item is not None and len(items) < MAX_ITEMS:
            items.append(item)
    if not items:
        reasons = f" ({'; '.join(skipped[:3])})" if skipped else ""
        raise ValueError(f"--images {source}: no JPEG or PNG images inside it{reasons}")
    if len(rows) - len(skipped) > MAX_ITEMS:
        skipped.append(f"only the first {MAX_ITEMS} images are shown")
    return Gallery(root, tuple(items), tuple(skipped))


def _item(root: Path, row: ManifestRow) -> tuple[GalleryItem | None, str | None]:
    path, problem = confined(root, row.path)
    if path is None:
        return None, problem
    return GalleryItem(Path(row.path).as_posix(), path, None if row.label in (None, "") else str(row.label)), None
