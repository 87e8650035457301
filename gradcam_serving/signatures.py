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
    "CAM_FAMILY",
    "CONTRACT_VERSION",
    "FAMILIES",
    "Family",
    "LEGACY_OVERLAY_PNG",
    "METHOD",
    "METHOD_FAMILIES",
    "Output",
    "family_answering",
    "family_of",
    "map_output",
    "output_spec",
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
"""The CAM methods (family ``cam``), each as ``explain_<method>`` and ``explain_bytes_<method>``.

Every method of every family, with its family, is in :data:`METHOD_FAMILIES`."""
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
METHOD = "method"
"""Explain answers of exports made since contract 2: the method that computed each map, as text.

``explain`` and ``explain_topk`` compute the export's default method, which their names do not say.
"""
HEATMAP = "heatmap"
CAM = "cam"
"""The raw map at feature-map resolution ``[N, h, w]`` (after ReLU, before resize and normalisation)."""
OVERLAY_PNG = "overlay_png_bytes"
"""``explain_bytes`` only: the heatmap blended over each image, PNG-encoded in the graph.

The alias ends in ``_bytes`` because TF Serving's REST API base64-encodes a string output
(``{"b64": ...}``) only then; exports made before contract 2 call it :data:`LEGACY_OVERLAY_PNG`.
"""
LEGACY_OVERLAY_PNG = "overlay_png"
"""What :data:`OVERLAY_PNG` was called by exports of contract 1, which clients still read."""

PREDICTED_CLASS = -1
"""``class_index`` value meaning "explain the predicted class"."""

CONTRACT_VERSION = 2
"""The version of the signature contract new exports follow, recorded in their metadata.

1: the first exports (``overlay_png``; no ``method`` output). 2: binary outputs end in ``_bytes``, and
explain answers name their :data:`METHOD`. An export without the field in its metadata is of contract 1.
"""


@dataclass(frozen=True)
class Output:
    """One output alias of the contract: its dtype and its shape, so every tool can check or parse it.

    Attributes:
        alias: the output's name in the SignatureDef.
        dtype: ``float32``, ``int32`` or ``string``.
        shape: the sizes after the leading ones, as symbols: ``"C"`` classes, ``"H"``/``"W"`` the request's
            image size (the model's input size for encoded images), ``"h"``/``"w"`` sizes the contract leaves
            open, or a number.
        per_image: ``[N, ...]`` even in ``explain_topk*`` (whose other outputs are ``[N, k, ...]``).
        unit_range: every value lies in [0, 1].
        nonnegative: every value is at least 0.
        binary: bytes, not text (its alias must end in ``_bytes`` so TF Serving's REST API base64-encodes it).
        since: the first :data:`CONTRACT_VERSION` with this output.
        legacy_alias: its alias in exports of contracts before ``renamed_in``, if it was renamed.
        renamed_in: the contract that gave it :attr:`alias`.
    """

    alias: str
    dtype: str
    shape: tuple[str | int, ...] = ()
    per_image: bool = False
    unit_range: bool = False
    nonnegative: bool = False
    binary: bool = False
    since: int = 1
    legacy_alias: str | None = None
    renamed_in: int = 2

    def __post_init__(self) -> None:
        if self.binary and not self.alias.endswith("_bytes"):
            raise ValueError(f"binary output {self.alias!r} must end in '_bytes' for TF Serving's REST API to encode it")

    def alias_in(self, contract: int) -> str | None:
        """The alias exports of ``contract`` use, or ``None`` if they do not have this output."""
        if contract < self.since:
            return None
        return self.legacy_alias if self.legacy_alias and contract < self.renamed_in else self.alias


@dataclass(frozen=True)
class Family:
    """What a family of methods answers, beyond the ``predict`` outputs: the one place a tool learns it.

    Attributes:
        name: ``cam`` (class activation maps at the feature map's resolution, resized to the image).
        outputs: what every explain answer of the family adds to the ``predict`` outputs.
        encoded_outputs: what the ``*_bytes`` twins add to those.
        map: the output every tool draws and scores: ``[N, H, W]`` (``[N, k, H, W]`` in top-k), in [0, 1].
        raw: the output before normalisation, if the family has one.
        inputs: inputs the family's explain signatures take besides the images and ``class_index``.
        description: one line for the documentation and ``--help``.
    """

    name: str
    outputs: tuple[Output, ...]
    encoded_outputs: tuple[Output, ...] = ()
    map: str = HEATMAP
    raw: str | None = None
    inputs: tuple[str, ...] = ()
    description: str = ""


_PREDICT_SPECS = (
    Output(PROBABILITIES, "float32", ("C",), per_image=True, unit_range=True),
    Output(CLASS_INDEX, "int32"),
    Output(SCORE, "float32"),
    Output(LABEL, "string"),
)
_METHOD_SPEC = Output(METHOD, "string", since=2)
_OVERLAY_SPEC = Output(OVERLAY_PNG, "string", per_image=True, binary=True, legacy_alias=LEGACY_OVERLAY_PNG)

CAM_FAMILY = "cam"
FAMILIES: dict[str, Family] = {
    CAM_FAMILY: Family(
        CAM_FAMILY,
        outputs=(Output(HEATMAP, "float32", ("H", "W"), unit_range=True), Output(CAM, "float32", ("h", "w"), nonnegative=True)),
        encoded_outputs=(_OVERLAY_SPEC,),
        map=HEATMAP,
        raw=CAM,
        description="class activation map: one map at the target layer's resolution, resized to the image",
    ),
}
"""Every family of methods, by name. A new family is one entry here; every tool reads its outputs from it."""

METHOD_FAMILIES: dict[str, str] = {method: CAM_FAMILY for method in METHODS}
"""The family of every method an export can hold, in ``--methods all`` order."""


def family_of(method: str) -> Family:
    """The :class:`Family` of a method (KeyError naming the known methods)."""
    try:
        return FAMILIES[METHOD_FAMILIES[method]]
    except KeyError:
        raise KeyError(f"unknown method {method!r}; known methods: {', '.join(METHOD_FAMILIES)}") from None


def family_answering(aliases: Iterable[str]) -> Family:
    """The family whose explain answers hold these output aliases (current or legacy names).

    A client reading an answer of the plain ``explain`` signature, which does not name its method, tells
    the family by what the answer holds: the family's map must be there, and of several such families
    the one with most of its outputs there wins (the first exports had no ``cam``).

    Raises:
        ValueError: no family's map is there.
    """
    held = set(aliases)
    fitting = [family for family in FAMILIES.values() if family.map in held]
    if not fitting:
        raise ValueError(
            f"an answer with outputs {sorted(held)} is no explanation of any family "
            f"({', '.join(f'{f.name}: {[o.alias for o in f.outputs]}' for f in FAMILIES.values())})"
        )
    return max(fitting, key=lambda family: sum(bool(held & {o.alias, o.legacy_alias}) for o in family.outputs))


def map_output(aliases: Iterable[str]) -> str:
    """The alias of the map an explain signature with these outputs answers (its family's ``map``).

    Raises:
        ValueError: the outputs hold no family's map.
    """
    return family_answering(aliases).map


def output_spec(alias: str) -> Output | None:
    """The :class:`Output` of an alias (any family, current or legacy name), or ``None`` if the contract has none."""
    for spec in (*_PREDICT_SPECS, _METHOD_SPEC, *(o for f in FAMILIES.values() for o in (*f.outputs, *f.encoded_outputs))):
        if alias in (spec.alias, spec.legacy_alias):
            return spec
    return None


PREDICT_OUTPUTS = tuple(spec.alias for spec in _PREDICT_SPECS)
EXPLAIN_OUTPUTS = PREDICT_OUTPUTS + (HEATMAP,)
"""What every ``cam`` explain answer holds in every contract (see :meth:`SignatureRow.outputs` for the whole list)."""

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
    known = tuple(METHOD_FAMILIES)
    if names == ["all"]:
        return known
    names = [name for name in names if name]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        what = f"unknown method(s) {', '.join(map(repr, unknown))}" if unknown else "no method named"
        raise ValueError(f"{what}; valid methods: {', '.join(known)}, or 'all'")
    return tuple(dict.fromkeys(names))


def exported_methods(signature_names: object) -> list[str]:
    """The methods an export holds, in :data:`METHOD_FAMILIES` order, from its signature names."""
    names = set(signature_names)  # type: ignore[call-overload]
    return [method for method in METHOD_FAMILIES if explain_signature(method) in names]


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
        method: the method of an explain or top-k head; ``None`` for predict (and for the plain explain
            signatures of an export that does not say its methods).
        family: the method's :class:`Family` name; ``None`` for predict. Its outputs are the row's.
        contract: the :data:`CONTRACT_VERSION` of the export, which decides the output aliases.
    """

    name: str
    encoded: bool
    head: str
    method: str | None
    family: str | None = None
    contract: int = CONTRACT_VERSION

    @property
    def pixels(self) -> str:
        """The images input's alias."""
        return IMAGE_BYTES if self.encoded else IMAGES

    @property
    def inputs(self) -> tuple[str, ...]:
        if self.head == HEAD_PREDICT:
            return (self.pixels,)
        choice = CLASS_INDEX if self.head == HEAD_EXPLAIN else K
        return (self.pixels, choice, *FAMILIES[self.family or CAM_FAMILY].inputs)

    @property
    def output_specs(self) -> tuple[Output, ...]:
        """What the row answers, from its head and its family, as this export's contract names it."""
        if self.head == HEAD_PREDICT:
            specs: tuple[Output, ...] = _PREDICT_SPECS
        else:
            family = FAMILIES[self.family or CAM_FAMILY]
            specs = (*_PREDICT_SPECS, _METHOD_SPEC, *family.outputs)
            if self.encoded and self.head == HEAD_EXPLAIN:
                specs += family.encoded_outputs
        return tuple(spec for spec in specs if spec.alias_in(self.contract))

    @property
    def outputs(self) -> tuple[str, ...]:
        """The output aliases (as this export's contract names them)."""
        return tuple(spec.alias_in(self.contract) for spec in self.output_specs)  # type: ignore[misc]

    @property
    def map_output(self) -> str | None:
        """The output a tool draws and scores (``heatmap`` for CAMs); ``None`` for predict."""
        return None if self.head == HEAD_PREDICT else FAMILIES[self.family or CAM_FAMILY].map

    @property
    def names_method(self) -> bool:
        """The name carries the method (``explain_<method>``, ``explain_bytes_<method>``), as a client picks it."""
        return self.method is not None and self.name == explain_signature(self.method, encoded=self.encoded)

    @property
    def computes(self) -> tuple[bool, str, str | None]:
        """What the row computes: rows equal here (``explain``, ``explain_<default>``) are one function."""
        return self.encoded, self.head, self.method


def signature_table(
    methods: Sequence[str], topk: bool = True, contract: int = CONTRACT_VERSION
) -> dict[str, SignatureRow]:
    """Every signature an export with ``methods`` holds, by name; the first method is the default.

    This is the contract: the exporter builds one function per row, ``validate`` checks every row, the
    warmup records and sample requests are made from it, and the client and every tool read from it what
    an answer holds. ``serving_default`` is ``predict`` under TF Serving's default name and is not a row.
    ``topk=False`` leaves out ``explain_topk*``: they re-run the model from the target layer, which a vision
    transformer's token grid cannot feed. With no methods (a model that is not a gradcam-serving export),
    the table is the bare predict/explain contract such an export would have to meet. ``contract`` is the
    export's :data:`CONTRACT_VERSION` (older exports name some outputs differently).
    """
    default = methods[0] if methods else None
    default_family = METHOD_FAMILIES[default] if default else CAM_FAMILY

    def row(name: str, encoded: bool, head: str, method: str | None, family: str | None) -> SignatureRow:
        return SignatureRow(name, encoded, head, method, family, contract)

    rows = [
        row(PREDICT, False, HEAD_PREDICT, None, None),
        row(PREDICT_BYTES, True, HEAD_PREDICT, None, None),
        row(EXPLAIN, False, HEAD_EXPLAIN, default, default_family),
        row(EXPLAIN_BYTES, True, HEAD_EXPLAIN, default, default_family),
    ]
    if topk:
        rows += [row(EXPLAIN_TOPK, False, HEAD_TOPK, default, default_family),
                 row(EXPLAIN_TOPK_BYTES, True, HEAD_TOPK, default, default_family)]
    for method in methods:
        family = family_of(method).name
        rows += [row(explain_signature(method), False, HEAD_EXPLAIN, method, family),
                 row(explain_signature(method, encoded=True), True, HEAD_EXPLAIN, method, family)]
    return {r.name: r for r in rows}


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
