"""Which ``tensorflow/serving`` image serves the exports: the TensorFlow that wrote them, or a checked older one.

An export written by TensorFlow 2.21 may use an op or attribute TF Serving
2.19 does not know, and the server then refuses it at load ("Op type not
registered ..."). So the default tag follows the newest TensorFlow that wrote
a served version, and an explicitly older tag is checked against that
release's recorded op registry: refused when the server would refuse an
export, a warning when it would load them (built by an older TensorFlow, the
server may still differ in kernels and numerics).

Everything here is a function of the served version folders
(``BASE/NAME/VERSION``) alone: it knows nothing of the deployment options and
warns nothing itself; it returns the warnings' texts to whoever builds the
options. TensorFlow is imported only when a folder holds a SavedModel.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from gradcam_serving.errors import ConfigError

__all__ = ["default_image_tag", "export_writers", "image_tag_warnings"]

_SHOWN_PROBLEMS = 2


def export_writers(exports: Iterable[Path]) -> list[tuple[Path, str]]:
    """(version folder, TensorFlow that wrote it) for the folders that hold a SavedModel yet."""
    folders = [folder for folder in exports if (folder / "saved_model.pb").is_file()]
    if not folders:
        return []
    from gradcam_serving.exports import read_export

    return [(folder, read_export(folder).tensorflow_version) for folder in folders]


def default_image_tag(exports: Iterable[Path], fallback: str) -> str:
    """``X.Y.0`` of the newest TensorFlow that wrote one of ``exports``; ``fallback`` when none holds a SavedModel."""
    writers = [version for _, version in export_writers(exports)]
    if not writers:
        return fallback
    from gradcam_serving.tf_releases import image_tag_for, release_of

    known = [version for version in writers if release_of(version)]
    return image_tag_for(max(known, key=release_of)) if known else fallback  # type: ignore[arg-type]


def image_tag_warnings(tag: str, exports: Iterable[Path]) -> list[str]:
    """What to warn about serving ``exports`` with ``tensorflow/serving:tag``; refuse a tag that would not load them.

    Tags that are not versions (``latest``, ``nightly``) and tags at least as
    new as every writer are not checked.

    Returns:
        One warning text per export written by a newer TensorFlow than ``tag``
        that the tag's op registry would still load (or that no recorded
        registry can check).

    Raises:
        ConfigError: that release's op registry lacks an op, attribute or
            attribute value a served export uses; names the first problems.
    """
    writers = export_writers(exports)
    if not writers:
        return []
    from gradcam_serving.exporter import SERVING_VERSIONS, compatibility_problems, image_tag_for, release_of

    release = release_of(tag)
    if release is None:
        return []
    found = []
    for folder, written in writers:
        needed = release_of(written)
        if needed is None or release >= needed:
            continue
        older = f"tensorflow/serving:{tag} is older than TensorFlow {written}, which wrote {folder}"
        default = f"the default tag {image_tag_for(written)} serves what was exported"
        if f"{release[0]}.{release[1]}" not in SERVING_VERSIONS:
            found.append(
                f"{older}; no op registry is recorded for it ({', '.join(SERVING_VERSIONS)}), so the export could "
                f"not be checked; {default}"
            )
            continue
        problems = compatibility_problems(folder, tag)
        if problems:
            shown = "; ".join(problems[:_SHOWN_PROBLEMS])
            more = f" (and {len(problems) - _SHOWN_PROBLEMS} more)" if len(problems) > _SHOWN_PROBLEMS else ""
            raise ConfigError(
                f"{older}, and would refuse it: {shown}{more}. Use image tag {image_tag_for(written)} "
                f"(the default), or re-export with TensorFlow {release[0]}.{release[1]}"
            )
        found.append(
            f"{older}; its op registry knows every op and attribute of the export, so it should load, "
            f"but kernels and numerics may differ from what was exported and tested; {default}"
        )
    return found
