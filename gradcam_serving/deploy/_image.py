"""Which ``tensorflow/serving`` image serves the exports: the TensorFlow that wrote them, or a checked older one.

An export written by TensorFlow 2.21 may use an op or attribute TF Serving
2.19 does not know, and the server then refuses it at load ("Op type not
registered ..."). So the default tag follows the newest TensorFlow that wrote
a served version, and an explicitly older tag is checked against that
release's recorded op registry: refused when the server would refuse an
export, a warning when it would load them (built by an older TensorFlow, the
server may still differ in kernels and numerics).

TensorFlow is imported only when a local export is read.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from gradcam_serving.errors import ConfigError, GradcamServingWarning

if TYPE_CHECKING:
    from gradcam_serving.deploy._options import DeployedModel

__all__ = ["check_image_tag", "default_image_tag", "served_exports"]

_SHOWN_PROBLEMS = 2


def served_exports(models: Iterable[DeployedModel]) -> list[Path]:
    """The local version folders the servers will load (by each model's version policy)."""
    from gradcam_serving.deploy._options import local_versions

    folders = []
    for model in models:
        if model.local_path is not None:
            served = model.config.version_policy.select(set(local_versions(model.local_path)))
            folders.extend(model.local_path / str(version) for version in sorted(served))
    return folders


def _writers(models: Iterable[DeployedModel]) -> list[tuple[Path, str]]:
    """(version folder, TensorFlow that wrote it) for the served folders that hold a SavedModel yet."""
    folders = [folder for folder in served_exports(models) if (folder / "saved_model.pb").is_file()]
    if not folders:
        return []
    from gradcam_serving.exporter._compat import writer_version

    return [(folder, writer_version(folder)) for folder in folders]


def default_image_tag(models: Iterable[DeployedModel], fallback: str) -> str:
    """``X.Y.0`` of the newest TensorFlow that wrote a served export; ``fallback`` without local exports."""
    from gradcam_serving.exporter._compat import image_tag_for, release_of

    writers = [version for _, version in _writers(models) if release_of(version)]
    if not writers:
        return fallback
    return image_tag_for(max(writers, key=release_of))  # type: ignore[arg-type,return-value]


def check_image_tag(tag: str, models: Iterable[DeployedModel]) -> None:
    """Refuse a tag whose TensorFlow would refuse a served export; warn about one older than the writer.

    Tags that are not versions (``latest``, ``nightly``) are not checked.

    Raises:
        ConfigError: that release's op registry lacks an op, attribute or
            attribute value a served export uses; names the first problems.
    """
    from gradcam_serving.exporter._compat import SERVING_VERSIONS, compatibility_problems, image_tag_for, release_of

    release = release_of(tag)
    if release is None:
        return
    for folder, written in _writers(models):
        needed = release_of(written)
        if needed is None or release >= needed:
            continue
        older = f"tensorflow/serving:{tag} is older than TensorFlow {written}, which wrote {folder}"
        if f"{release[0]}.{release[1]}" not in SERVING_VERSIONS:
            warnings.warn(
                f"{older}; no op registry is recorded for it ({', '.join(SERVING_VERSIONS)}), so the export could "
                f"not be checked; the default tag {image_tag_for(written)} serves what was exported",
                GradcamServingWarning,
                stacklevel=2,
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
        warnings.warn(
            f"{older}; its op registry knows every op and attribute of the export, so it should load, "
            f"but kernels and numerics may differ from what was exported and tested; "
            f"the default tag {image_tag_for(written)} serves what was exported",
            GradcamServingWarning,
            stacklevel=2,
        )
