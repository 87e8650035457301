"""What the client returns: small frozen dataclasses, free of protobuf types.

Field names are the signature output names (``probabilities``, ``class_index``,
``score``, ``label``, ``heatmap``) so code reads the same on both sides of the
wire. Arrays are made read-only, so a frozen result really cannot change.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "Explanation",
    "ModelMetadata",
    "ModelSpec",
    "ModelState",
    "Prediction",
    "SignatureInfo",
    "TensorSpec",
    "VersionStatus",
]


@dataclass(frozen=True)
class ModelSpec:
    """The servable that answered, as echoed by the server.

    Attributes:
        name: model name.
        signature_name: the signature that ran (empty in metadata answers).
        version: the numeric version, even when a version label was requested;
            ``None`` if the server did not say.
    """

    name: str
    signature_name: str
    version: int | None


@dataclass(frozen=True, eq=False)
class Prediction:
    """Outputs of the ``predict`` signature for a batch of N images.

    Attributes:
        probabilities: float32 ``[N, C]``.
        class_index: int32 ``[N]``, the predicted class.
        score: float32 ``[N]``, its probability.
        label: N class names, decoded from UTF-8.
        model_spec: which model, signature and version answered.
    """

    probabilities: np.ndarray
    class_index: np.ndarray
    score: np.ndarray
    label: tuple[str, ...]
    model_spec: ModelSpec

    def __post_init__(self) -> None:
        for value in vars(self).values():
            flags = getattr(value, "flags", None)  # numpy arrays; no numpy import needed
            if flags is not None:
                flags.writeable = False

    def __len__(self) -> int:
        return len(self.label)


@dataclass(frozen=True, eq=False)
class Explanation(Prediction):
    """Outputs of an ``explain`` signature (``explain``, ``explain_<method>``, their bytes twins, ``explain_topk``).

    ``class_index`` and ``score`` describe the class that was explained (the
    predicted one where -1 was asked for). ``model_spec.signature_name`` says
    which signature answered, hence which method.

    With ``top_k`` (from ``explain(..., top_k=k)``) every per-class field
    gains a class axis: ``class_index`` and ``score`` are ``[N, k]`` (most
    probable first), ``label`` holds N tuples of k names, ``heatmap`` is
    ``[N, k, H, W]`` and ``cam`` ``[N, k, h, w]``; ``overlay_png`` is ``None``.

    Attributes:
        heatmap: float32 ``[N, H, W]`` in [0, 1]: at the request's image size
            for arrays/PIL images (``explain``), at the model's input size for
            file paths/bytes (``explain_bytes``, whose images may differ in size).
        overlay_png: for file paths/bytes, one PNG per image of the heatmap
            blended over that image at its own size, made by the server;
            ``None`` when the uint8 ``explain`` signature answered (arrays, PIL
            images, or an export that predates ``explain_bytes``).
        cam: float32 ``[N, h, w]``, the raw map at the feature map's resolution
            (after ReLU, before resize and normalisation), comparable across
            images; ``None`` from exports that predate it.
        top_k: k for a top-k answer, ``None`` otherwise.
        method: the CAM method that ran (e.g. ``"gradcam"``), from the answer's ``method`` output;
            ``None`` from exports whose answers do not name it.
    """

    heatmap: np.ndarray
    overlay_png: tuple[bytes, ...] | None = None
    cam: np.ndarray | None = None
    top_k: int | None = None
    method: str | None = None


@dataclass(frozen=True)
class TensorSpec:
    """One signature input or output.

    Attributes:
        name: the alias clients use (e.g. ``"images"``).
        dtype: TensorFlow dtype name, e.g. ``"uint8"``, ``"float32"``, ``"string"``.
        shape: dims with ``None`` where unknown; ``None`` if the rank is unknown.
    """

    name: str
    dtype: str
    shape: tuple[int | None, ...] | None


@dataclass(frozen=True)
class SignatureInfo:
    """One signature of the served model."""

    name: str
    method_name: str
    inputs: Mapping[str, TensorSpec]
    outputs: Mapping[str, TensorSpec]


@dataclass(frozen=True)
class ModelMetadata:
    """The answer to ``GetModelMetadata``: the model and all its signatures.

    TF2 exports also list ``__saved_model_init_op``; it is kept, not hidden.
    """

    model_name: str
    version: int | None
    signatures: Mapping[str, SignatureInfo]


class ModelState(enum.IntEnum):
    """``ModelVersionStatus.State``; the numbers are TF Serving's."""

    UNKNOWN = 0
    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


@dataclass(frozen=True)
class VersionStatus:
    """One version's state from ``GetModelStatus``.

    Attributes:
        version: the version number.
        state: where the version is in its lifecycle.
        error_code: the status code name, ``"OK"`` unless loading failed.
        error_message: why loading failed, if it did.
    """

    version: int
    state: ModelState
    error_code: str
    error_message: str
