"""The serving contract: signature keys and tensor aliases.

Shared by the exporter (which builds the signatures), the server (which only
feeds and fetches by these aliases) and the thin client (which must not import
TensorFlow), so it is plain Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "CAM",
    "CLASS_INDEX",
    "DEFAULT_EXPORT_METHOD",
    "DEFAULT_METHOD",
    "EXPLAIN",
    "EXPLAIN_BYTES",
    "EXPLAIN_OUTPUTS",
    "EXPLAIN_TOPK",
    "EXPLAIN_TOPK_BYTES",
    "HEAD_EXPLAIN",
    "HEAD_PREDICT",
    "HEAD_TOPK",
    "K",
    "MAX_WARMUP_RECORDS",
    "METADATA_FILE",
    "METHODS",
    "SCORE_MODES",
    "SERVE_TAG",
    "SIGNATURE_DEF",
    "ScoreMode",
    "SignatureRow",
    "TOPK_OUTPUTS",
    "WARMUP_FILE",
    "explain_signature",
    "exported_methods",
    "parse_methods",
    "resolve_methods",
    "signature_table",
    "warmup_signatures",
    "WARMUP_ALL",
    "WARMUP_DEFAULT",
    "WARMUP_NONE",
    "HEATMAP",
    "IMAGES",
    "IMAGE_BYTES",
    "LABEL",
    "OVERLAY_PNG",
    "PREDICT",
    "PREDICT_BYTES",
    "PREDICT_OUTPUTS",
    "PREDICTED_CLASS",
    "PROBABILITIES",
    "SCORE",
    "SERVING_DEFAULT",
]

PREDICT = "predict"
EXPLAIN = "explain"
SERVING_DEFAULT = "serving_default"
PREDICT_BYTES = "predict_bytes"
EXPLAIN_BYTES = "explain_bytes"
EXPLAIN_TOPK = "explain_topk"
"""The ``k`` most probable classes per image, each explained with the default method."""
EXPLAIN_TOPK_BYTES = "explain_topk_bytes"

METHODS = ("gradcam", "gradcampp", "hirescam", "xgradcam", "layercam", "eigencam", "reciprocam")
"""Every CAM method an export can hold, each as ``explain_<method>`` and ``explain_bytes_<method>``."""
DEFAULT_EXPORT_METHOD = "gradcam"
"""The method an export computes in ``explain`` and ``explain_topk`` when the exporter is given none."""

DEFAULT_METHOD = "default"
"""The one word, wherever a tool names methods, for "the export's default method": its plain ``explain``
(``explain_bytes``) signature, whichever method that computes. It is the only method an export made before
``explain_<method>`` existed holds, and every export can be asked for it."""

ScoreMode = Literal["auto", "logits", "probabilities", "sigmoid"]
"""How an export reads the model's output: ``auto`` decides from the output op; the others say it."""
SCORE_MODES: tuple[str, ...] = get_args(ScoreMode)

IMAGES = "images"
CLASS_INDEX = "class_index"
IMAGE_BYTES = "image_bytes"
"""JPEG or PNG files, string ``[N]``, input of the ``*_bytes`` signatures."""
K = "k"
"""``explain_topk*`` only: how many classes to explain (1..C), an int32 scalar or ``[N]``, one per image.

Send ``[N]`` to a server with batching: TF Serving's batching session refuses scalar inputs.
Outputs have ``max(k)`` rows per image; rows past an image's own k are padding (class -1).
"""

PROBABILITIES = "probabilities"
SCORE = "score"
LABEL = "label"
HEATMAP = "heatmap"
CAM = "cam"
"""The raw map at feature-map resolution ``[N, h, w]`` (after ReLU, before resize and normalisation)."""
OVERLAY_PNG = "overlay_png"
"""``explain_bytes`` only: the heatmap blended over each image, PNG-encoded in the graph."""

PREDICTED_CLASS = -1
"""``class_index`` value meaning "explain the predicted class"."""

PREDICT_OUTPUTS = (PROBABILITIES, CLASS_INDEX, SCORE, LABEL)
EXPLAIN_OUTPUTS = PREDICT_OUTPUTS + (HEATMAP,)
"""What every ``explain`` answer holds; exports made since ``explain_<method>`` exist add :data:`CAM`."""
TOPK_OUTPUTS = (PROBABILITIES, CLASS_INDEX, SCORE, LABEL, HEATMAP, CAM)
"""``explain_topk*``: ``[N, C]`` probabilities; ``[N, k]`` classes, scores and labels; ``[N, k, H, W]`` heatmaps; ``[N, k, h, w]`` maps."""

SERVE_TAG = "serve"
"""The MetaGraph tag TF Serving loads."""
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
"""Warmup records inside a version folder, relative to it (TF Serving's fixed location)."""
MAX_WARMUP_RECORDS = 1000
"""TF Serving's ``kMaxNumRecords``: the most warmup records a version may hold."""
METADATA_FILE = "assets.extra/gradcam_serving.json"
"""What the export says about itself (methods, labels, input size, pixel limit); TF Serving ignores it."""
SIGNATURE_DEF = "signature_def"
"""The only ``GetModelMetadata`` field TF Serving supports."""


def explain_signature(method: str, *, encoded: bool = False) -> str:
    """``explain_<method>`` or, for encoded images, ``explain_bytes_<method>``.

    :data:`DEFAULT_METHOD` names the plain ``explain`` (``explain_bytes``) signature.
    """
    head = EXPLAIN_BYTES if encoded else EXPLAIN
    return head if method == DEFAULT_METHOD else f"{head}_{method}"


def parse_methods(methods: str | Iterable[str]) -> tuple[str, ...]:
    """``"gradcam,layercam"``, a list of names, or ``"all"`` -> the checked, de-duplicated names.

    The first name is the default method (the one ``explain`` and ``explain_topk`` compute). Plain
    Python, so the command line checks ``--methods`` before TensorFlow is imported.

    Raises:
        ValueError: no name, or a name that is not in :data:`METHODS`.
    """
    names = [part.strip() for part in methods.split(",")] if isinstance(methods, str) else [str(m) for m in methods]
    if names == ["all"]:
        return METHODS
    names = [name for name in names if name]
    unknown = [name for name in names if name not in METHODS]
    if unknown or not names:
        what = f"unknown CAM method(s) {', '.join(map(repr, unknown))}" if unknown else "no CAM method named"
        raise ValueError(f"{what}; valid methods: {', '.join(METHODS)}, or 'all'")
    return tuple(dict.fromkeys(names))


def exported_methods(signature_names: object) -> list[str]:
    """The methods an export holds, in :data:`METHODS` order, from its signature names."""
    names = set(signature_names)  # type: ignore[call-overload]
    return [method for method in METHODS if explain_signature(method) in names]


def resolve_methods(
    requested: str | Iterable[str] | None, exported: Sequence[str], default: str | None = None
) -> tuple[str, ...]:
    """The methods a tool runs on one export: the only place a method name given by a user is checked.

    Args:
        requested: ``None`` (or nothing) for the export's default method, ``"all"`` for every exported
            method, or names (a list, or one string with commas). :data:`DEFAULT_METHOD` is always allowed.
        exported: the methods the export holds (:func:`exported_methods`), in its own order; empty for an
            export made before ``explain_<method>`` existed, which holds :data:`DEFAULT_METHOD` only.
        default: the export's default method when known (its metadata's first method); without it a single
            exported method is the default, and several leave the plain ``explain`` as :data:`DEFAULT_METHOD`.

    Raises:
        ValueError: a method the export does not hold, naming those it does.
    """
    held = tuple(exported) or (DEFAULT_METHOD,)
    if isinstance(requested, str):
        requested = [part.strip() for part in requested.split(",")]
    names = [name for name in (requested or ()) if name]
    if not names:
        if default in held:
            return (default,)  # type: ignore[return-value]
        return held[:1] if len(held) == 1 else (DEFAULT_METHOD,)
    if "all" in names:
        return held
    missing = [name for name in names if name not in held and name != DEFAULT_METHOD]
    if missing:
        raise ValueError(
            f"method(s) {', '.join(map(repr, missing))} not exported; the export holds: {', '.join(held)} "
            f"(or {DEFAULT_METHOD!r} for its default, or 'all')"
        )
    return tuple(dict.fromkeys(names))


HEAD_PREDICT = "predict"
HEAD_EXPLAIN = "explain"
HEAD_TOPK = "topk"


@dataclass(frozen=True)
class SignatureRow:
    """One signature of an export: what it is fed, what it computes, what it answers.

    Attributes:
        name: the SignatureDef key.
        encoded: fed JPEG/PNG files (:data:`IMAGE_BYTES`) instead of uint8 pixels (:data:`IMAGES`).
        head: :data:`HEAD_PREDICT`, :data:`HEAD_EXPLAIN` or :data:`HEAD_TOPK`.
        method: the CAM method of an explain or top-k head; ``None`` for predict.
    """

    name: str
    encoded: bool
    head: str
    method: str | None

    @property
    def pixels(self) -> str:
        """The images input's alias."""
        return IMAGE_BYTES if self.encoded else IMAGES

    @property
    def inputs(self) -> tuple[str, ...]:
        extra = {HEAD_PREDICT: (), HEAD_EXPLAIN: (CLASS_INDEX,), HEAD_TOPK: (K,)}[self.head]
        return (self.pixels, *extra)

    @property
    def outputs(self) -> tuple[str, ...]:
        if self.head == HEAD_PREDICT:
            return PREDICT_OUTPUTS
        if self.head == HEAD_TOPK:
            return TOPK_OUTPUTS
        return EXPLAIN_OUTPUTS + (CAM, OVERLAY_PNG) if self.encoded else EXPLAIN_OUTPUTS + (CAM,)

    @property
    def names_method(self) -> bool:
        """The name carries the method (``explain_<method>``, ``explain_bytes_<method>``), as a client picks it."""
        return self.method is not None and self.name == explain_signature(self.method, encoded=self.encoded)

    @property
    def computes(self) -> tuple[bool, str, str | None]:
        """What the row computes: rows equal here (``explain``, ``explain_<default>``) are one function."""
        return self.encoded, self.head, self.method


def signature_table(methods: Sequence[str], topk: bool = True) -> dict[str, SignatureRow]:
    """Every signature an export with ``methods`` holds, by name; the first method is the default.

    This is the contract: the exporter builds one function per row, ``validate`` checks every row, the
    warmup records and sample requests are made from it. ``serving_default`` is ``predict`` under
    TF Serving's default name and is not a row. ``topk=False`` leaves out ``explain_topk*``: they re-run
    the model from the target layer, which a vision transformer's token grid cannot feed. With no
    methods (a model that is not a gradcam-serving export), the table is the bare predict/explain
    contract such an export would have to meet.
    """
    default = methods[0] if methods else None
    rows = [
        SignatureRow(PREDICT, False, HEAD_PREDICT, None),
        SignatureRow(PREDICT_BYTES, True, HEAD_PREDICT, None),
        SignatureRow(EXPLAIN, False, HEAD_EXPLAIN, default),
        SignatureRow(EXPLAIN_BYTES, True, HEAD_EXPLAIN, default),
    ]
    if topk:
        rows += [SignatureRow(EXPLAIN_TOPK, False, HEAD_TOPK, default),
                 SignatureRow(EXPLAIN_TOPK_BYTES, True, HEAD_TOPK, default)]
    for method in methods:
        rows += [SignatureRow(explain_signature(method), False, HEAD_EXPLAIN, method),
                 SignatureRow(explain_signature(method, encoded=True), True, HEAD_EXPLAIN, method)]
    return {row.name: row for row in rows}


WARMUP_ALL = "all"
WARMUP_DEFAULT = "default"
WARMUP_NONE = "none"


def warmup_signatures(choice: str, methods: Sequence[str], topk: bool = True) -> tuple[str, ...]:
    """The signatures that get a warmup record, from ``export --warmup``'s value.

    TF Serving replays the records before a version serves, and each signature's first run costs
    seconds (its function is instantiated and optimised for TF Serving's Session), so every record
    adds to the time before the server is ready; a signature without one pays that cost on its
    first real request instead. ``all`` (every signature and ``serving_default``), ``default``
    (the signatures that name no method: ``serving_default``, ``predict*``, ``explain``,
    ``explain_bytes``, ``explain_topk*``), ``none``, or signature names separated by commas.

    Raises:
        ValueError: an unknown name, with the names the export holds.
    """
    table = signature_table(methods, topk)
    every = (SERVING_DEFAULT, *table)
    value = choice.strip()
    if value == WARMUP_ALL:
        return every
    if value == WARMUP_NONE:
        return ()
    if value == WARMUP_DEFAULT:
        return (SERVING_DEFAULT, *(name for name, row in table.items() if not row.names_method))
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in every]
    if unknown or not names:
        what = f"{', '.join(map(repr, unknown))} is not a signature of this export" if unknown else "no signature named"
        raise ValueError(
            f"warmup: {what}; give {WARMUP_ALL}, {WARMUP_DEFAULT}, {WARMUP_NONE} or signature names separated by "
            f"commas (this export's signatures: {', '.join(every)})"
        )
    return tuple(name for name in every if name in names)
