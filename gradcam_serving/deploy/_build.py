"""Build :class:`DeploymentOptions` as ``gradcam-serving config`` does: where the exports are read and warnings given.

The options record only checks its fields, so it can be copied and compared
freely. Choosing the image tag needs the served exports on disk (the
TensorFlow that wrote them), and some valid choices deserve a warning; both
happen here, once, for the command line and the Python API alike.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gradcam_serving.deploy._image import default_image_tag, image_tag_warnings
from gradcam_serving.deploy._options import (
    DEFAULT_IMAGE_TAG,
    DeployedModel,
    DeploymentOptions,
    batching_grpc_threads,
)
from gradcam_serving.errors import GradcamServingWarning

__all__ = ["deployment_options", "served_exports"]


def served_exports(models: Iterable[DeployedModel]) -> list[Path]:
    """The local version folders the servers will load (by each model's version policy)."""
    return [folder for model in models for folder in model.served_folders()]


def _grpc_threads_warning(options: DeploymentOptions) -> str | None:
    """Too few gRPC threads to fill a batch: valid (multi-image requests still fill one), but usually a mistake."""
    threads, batching = options.grpc_max_threads, options.batching
    if threads is None or batching is None or threads >= batching.max_batch_size:
        return None
    return (
        f"grpc_max_threads {threads} is below max_batch_size {batching.max_batch_size}: each request "
        "waiting for its batch holds a gRPC thread, so requests of one image each can never fill a batch "
        f"and every batch waits for its timeout; give at least {batching.max_batch_size} "
        f"(default {batching_grpc_threads(batching)})"
    )


def deployment_options(
    models: Iterable[DeployedModel], *, image_tag: str | None = None, **fields: Any
) -> DeploymentOptions:
    """The checked options for ``models``, with the image tag chosen from (or checked against) their exports.

    Args:
        models: the models to serve, e.g. from :func:`model_from_export`.
        image_tag: ``tensorflow/serving`` tag without ``-gpu``. ``None``: ``X.Y.0``
            of the newest TensorFlow that wrote a served local export
            (:data:`DEFAULT_IMAGE_TAG` without local exports). A given tag
            older than a writer is checked against its release's op registry.
        **fields: any other :class:`DeploymentOptions` field.

    Returns:
        The options; every field is checked before an export is read.

    Raises:
        ConfigError, ValueError: a field TF Serving or Kubernetes would refuse,
            or a tag whose op registry lacks an op or attribute a served export uses.

    Warns:
        GradcamServingWarning: ``grpc_max_threads`` below ``max_batch_size``;
            a tag older than an export's TensorFlow that should still load it.

    Example::

        options = deployment_options([model_from_export("exports/shapes")], gpus=1)
    """
    options = DeploymentOptions(
        models=tuple(models), image_tag=DEFAULT_IMAGE_TAG if image_tag is None else image_tag, **fields
    )
    threads_warning = _grpc_threads_warning(options)
    if threads_warning is not None:
        warnings.warn(threads_warning, GradcamServingWarning, stacklevel=2)
    exports = served_exports(options.models)
    if image_tag is None:
        # The newest writer's own release: at least as new as every export, so nothing to check.
        return dataclasses.replace(options, image_tag=default_image_tag(exports, DEFAULT_IMAGE_TAG))
    for text in image_tag_warnings(image_tag, exports):
        warnings.warn(text, GradcamServingWarning, stacklevel=2)
    return options
