"""What an export folder holds, read without TensorFlow: its signatures, methods, their families, its metadata.

Every tool that only needs to *know* an export (``inspect``, the batch job's planning, ``view``'s card,
the benchmarks) reads it here, in milliseconds, instead of importing TensorFlow (seconds) or loading the
graph. :mod:`gradcam_serving.runtime` is the way to *run* one. ``saved_model.pb`` is parsed with the
wire-compatible messages of :mod:`gradcam_serving.wire`, and the MetaGraph is chosen by TF Serving's rule:
the one whose tag set equals the requested one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import message, text_format

from gradcam_serving import signatures as sig
from gradcam_serving import wire
from gradcam_serving.errors import GradcamServingError, StatusCode

__all__ = [
    "DEFAULT_TAGS",
    "ExportContents",
    "ExportMetadata",
    "NotAnExportError",
    "matches_tags",
    "read_export",
    "read_saved_model",
    "select_meta_graph",
]

DEFAULT_TAGS: tuple[str, ...] = (sig.SERVE_TAG,)
"""TF Serving's default ``--saved_model_tags``."""


class NotAnExportError(GradcamServingError, ValueError):
    """The folder holds no SavedModel, an unreadable one, or none with the requested tag set.

    The messages are those of TensorFlow's C++ reader, which TF Serving prints for the same folder, and
    ``code`` is the status code it fails with there: ``NOT_FOUND`` (no file, no such tag set) or
    ``DATA_LOSS`` (not a SavedModel proto).
    """

    def __init__(self, message: str, code: StatusCode = StatusCode.NOT_FOUND) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def matches_tags(meta_graph_tags: Sequence[str], tags: Sequence[str]) -> bool:
    """TF Serving's rule: a MetaGraph is loaded only when its tag set equals the requested one."""
    return set(meta_graph_tags) == set(tags)


def read_saved_model(path: str | os.PathLike[str], message_class: type | None = None) -> Any:
    """``saved_model.pb`` (or ``.pbtxt``) of a version folder, failing as TF's C++ reader does.

    Args:
        path: the version folder.
        message_class: :class:`gradcam_serving.wire.SavedModel` by default (tag sets and signatures only);
            the runtime passes TensorFlow's own ``SavedModel`` when it needs the graph too.

    Raises:
        NotAnExportError: neither file exists (``NOT_FOUND``), or the file is not a SavedModel (``DATA_LOSS``).
    """
    folder = os.fspath(path)
    pb_path, pbtxt_path = os.path.join(folder, "saved_model.pb"), os.path.join(folder, "saved_model.pbtxt")
    saved_model = (message_class or wire.SavedModel)()
    if os.path.exists(pb_path):
        try:
            saved_model.ParseFromString(Path(pb_path).read_bytes())
        except (message.DecodeError, OSError) as exc:
            raise NotAnExportError(f"Can't parse {pb_path} as binary proto", StatusCode.DATA_LOSS) from exc
        return saved_model
    if os.path.exists(pbtxt_path):
        try:
            text_format.Parse(Path(pbtxt_path).read_text(encoding="utf-8"), saved_model, allow_unknown_field=True)
        except (text_format.ParseError, OSError, UnicodeDecodeError) as exc:
            raise NotAnExportError(f"Can't parse {pbtxt_path} as text proto", StatusCode.DATA_LOSS) from exc
        return saved_model
    raise NotAnExportError(
        f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {folder}. "
        "Check that the directory exists and that you have the right permissions for accessing it."
    )


def select_meta_graph(saved_model: Any, tags: Sequence[str]) -> Any:
    """The MetaGraph whose tag set equals ``tags``, as TF Serving picks it (NotAnExportError otherwise)."""
    for meta_graph in saved_model.meta_graphs:
        if matches_tags(meta_graph.meta_info_def.tags, tags):
            return meta_graph
    raise NotAnExportError(
        "Could not find meta graph def matching supplied tags: { " + " ".join(tags) + " }. "
        "To inspect available tag-sets in the SavedModel, please use the SavedModel CLI: `saved_model_cli`"
    )


@dataclass(frozen=True)
class ExportMetadata:
    """What a gradcam-serving export says about itself.

    Read from ``assets.extra/gradcam_serving.json`` (written by the exporter; TF Serving ignores it).
    For exports made before that file existed, methods come from the signature names and the rest
    is ``None``.

    Attributes:
        methods: the methods, default first.
        default_method: the method ``explain`` and ``explain_topk`` compute.
        labels: one label per class, or ``None`` when the export returns indices as text.
        input_size: the model's ``(height, width)``.
        max_pixels: the largest image (height x width) the export accepts.
        num_classes: the number of classes.
        topk: whether the export holds ``explain_topk*``.
        layer: the target layer's name.
        colormap / overlay_alpha: how the overlay PNG is drawn (matplotlib colormap, heatmap weight).
        contract: the :data:`~gradcam_serving.signatures.CONTRACT_VERSION` the export follows; a metadata file
            without it, or no file at all, is an export of contract 1.
    """

    methods: tuple[str, ...]
    default_method: str | None
    labels: tuple[str, ...] | None = None
    input_size: tuple[int, int] | None = None
    max_pixels: int | None = None
    num_classes: int | None = None
    topk: bool = True
    layer: str | None = None
    colormap: str | None = None
    overlay_alpha: float | None = None
    contract: int = sig.CONTRACT_VERSION

    def as_json(self) -> str:
        return json.dumps({
            "methods": list(self.methods), "default_method": self.default_method,
            "labels": None if self.labels is None else list(self.labels),
            "input_size": None if self.input_size is None else list(self.input_size),
            "max_pixels": self.max_pixels, "num_classes": self.num_classes, "topk": self.topk,
            "layer": self.layer, "colormap": self.colormap, "overlay_alpha": self.overlay_alpha,
            "contract": self.contract,
        }, indent=1)

    @classmethod
    def from_json(cls, text: str) -> ExportMetadata:
        """The metadata file's text; an export this version cannot read is refused by name, not half-read.

        Raises:
            GradcamServingError: not JSON, a contract newer than :data:`~gradcam_serving.signatures.CONTRACT_VERSION`,
                or a method this version does not know (an export written by a newer gradcam-serving).
        """
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GradcamServingError(f"{sig.METADATA_FILE} is not JSON: {exc}") from None
        _check_readable(raw)
        return cls(
            methods=tuple(raw["methods"]), default_method=raw["default_method"],
            labels=None if raw.get("labels") is None else tuple(raw["labels"]),
            input_size=None if raw.get("input_size") is None else (int(raw["input_size"][0]), int(raw["input_size"][1])),
            max_pixels=raw.get("max_pixels"), num_classes=raw.get("num_classes"), topk=bool(raw.get("topk", True)),
            layer=raw.get("layer"), colormap=raw.get("colormap"), overlay_alpha=raw.get("overlay_alpha"),
            contract=int(raw.get("contract", 1)),
        )

    def signature_table(self) -> dict[str, sig.SignatureRow]:
        """The signatures this export must hold (the contract ``validate`` checks)."""
        return sig.signature_table(self.methods, topk=self.topk, contract=self.contract)

    @classmethod
    def read(cls, path: str | os.PathLike[str], signature_names: Sequence[str]) -> ExportMetadata:
        """The metadata file of the export at ``path``, or what its signature names tell."""
        file = Path(path) / sig.METADATA_FILE
        if file.is_file():
            return cls.from_json(file.read_text(encoding="utf-8"))
        methods = tuple(sig.exported_methods(signature_names))
        return cls(methods=methods, default_method=None, topk=sig.EXPLAIN_TOPK in set(signature_names), contract=1)


def _check_readable(raw: dict[str, Any]) -> None:
    newer = int(raw.get("contract", 1)) > sig.CONTRACT_VERSION
    unknown = [method for method in raw.get("methods", ()) if method not in sig.METHOD_FAMILIES]
    if newer or unknown:
        what = f"contract {raw.get('contract')}" if newer else f"method(s) {', '.join(unknown)}"
        raise GradcamServingError(
            f"the export was written by a newer gradcam-serving ({what}; this version reads contracts up to "
            f"{sig.CONTRACT_VERSION} and the methods {', '.join(sig.METHOD_FAMILIES)}); upgrade gradcam-serving"
        )


@dataclass(frozen=True)
class ExportContents:
    """One version folder as TF Serving would see it, without running anything.

    Attributes:
        path: the version folder.
        tags: the MetaGraph tag set that was read.
        signature_defs: SignatureDef by name (:class:`gradcam_serving.wire.SignatureDef`: inputs, outputs, dtypes, shapes).
        metadata: :class:`ExportMetadata` (the file, or what the signature names tell).
        tensorflow_version: the TensorFlow that wrote it, as the MetaGraph records it.
    """

    path: Path
    tags: tuple[str, ...]
    signature_defs: dict[str, Any] = field(repr=False)
    metadata: ExportMetadata
    tensorflow_version: str

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods the export holds, default first (its metadata's order)."""
        return self.metadata.methods

    @property
    def families(self) -> dict[str, str]:
        """``{method: family}`` for every method the export holds."""
        return {method: sig.family_of(method).name for method in self.methods}

    @property
    def is_gradcam_serving(self) -> bool:
        """Whether the export has the explain contract (a plain classifier's SavedModel does not)."""
        return sig.EXPLAIN in self.signature_defs

    def signature_table(self) -> dict[str, sig.SignatureRow]:
        """The contract's rows for this export (methods, top-k, contract version from its metadata)."""
        return self.metadata.signature_table()

    def resolve_methods(self, requested: str | Sequence[str] | None) -> tuple[str, ...]:
        """:func:`gradcam_serving.signatures.resolve_methods` against what this export holds."""
        return sig.resolve_methods(requested, self.methods, self.metadata.default_method)


def read_export(path: str | os.PathLike[str], tags: Sequence[str] = DEFAULT_TAGS) -> ExportContents:
    """What the version folder at ``path`` holds; no TensorFlow is imported.

    Raises:
        NotAnExportError: no SavedModel there, an unreadable one, or no MetaGraph with exactly ``tags``.
    """
    folder = Path(path)
    meta_graph = select_meta_graph(read_saved_model(folder), tuple(tags))
    signature_defs = dict(meta_graph.signature_def)
    return ExportContents(
        path=folder,
        tags=tuple(tags),
        signature_defs=signature_defs,
        metadata=ExportMetadata.read(folder, list(signature_defs)),
        tensorflow_version=meta_graph.meta_info_def.tensorflow_version,
    )
