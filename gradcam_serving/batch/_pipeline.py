"""The pipeline: read images, check each, explain in batches with RunInference, write what came out.

``ExplainTransform`` is the reusable core (``images | ExplainTransform(...)``
gives rows and failures); ``ReadImages`` turns a file pattern, a manifest or
TFRecords into its input; ``WriteExplanations`` writes the folder the
``explain-batch`` command promises. Every input ends as rows or as one line
of ``failed.jsonl``: failures of reading, checking, explaining one image, and
whole batches in RunInference's dead-letter output are all collected.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, RunInference

from gradcam_serving.manifests import manifest_kind, parse_manifest

from ._handlers import ExplainModelHandler
from ._job import input_kind
from ._progress import count
from ._records import (
    STAGE_CHECK,
    STAGE_READ,
    STAGE_SERVER,
    ExplainRequest,
    Failure,
    ImageInput,
    check_image,
    class_to_explain,
)
from ._summary import BORDER_THRESHOLD, ClassSummary, border_share, grid_of, summary_document, summary_json, summary_png

__all__ = ["ExplainTransform", "ReadImages", "WriteExplanations", "relative_name"]

FAILED = "failed"
ENCODED_FEATURE = "image/encoded"
LABEL_FEATURE = "image/class/label"
NAME_FEATURE = "image/filename"


# -- inputs ---------------------------------------------------------------------------------------


def _files_pattern(source: str) -> str:
    return posixpath.join(source, "**") if os.path.isdir(source) else source


class ReadImages(beam.PTransform):
    """``ImageInput``s from a file pattern or folder (``fileio``), a CSV/JSONL manifest, or TFRecords.

    Files are read with Beam's filesystems, so ``gs://`` and ``s3://`` work where their extras
    are installed. A manifest's relative paths are joined to the manifest's folder. TFRecords hold
    ``tf.train.Example``s with ``image/encoded`` and an optional ``image/class/label`` (the TFDS/TFX
    convention); a record is named ``FILE#image/filename`` or ``FILE#sha1-<hash of its bytes>``.
    """

    def __init__(self, source: str, kind: str | None = None) -> None:
        super().__init__()
        self.source = source
        self.kind = kind

    def expand(self, pipeline: Any) -> Any:
        kind = self.kind or input_kind(self.source)
        if kind == "manifest":
            return pipeline | "Manifest" >> beam.Create(_manifest_inputs(self.source), reshuffle=True)
        if kind == "tfrecord":
            return (pipeline | "Pattern" >> beam.Create([self.source])
                    | "ReadTFRecords" >> beam.io.ReadAllFromTFRecord(with_filename=True)
                    | "Examples" >> beam.Map(_example_input))
        return (pipeline | "Match" >> fileio.MatchFiles(_files_pattern(self.source))
                | "Open" >> fileio.ReadMatches(skip_directories=True)
                | "Paths" >> beam.Map(lambda readable: ImageInput(readable.metadata.path))
                | "Spread" >> beam.Reshuffle())


def _manifest_inputs(source: str) -> list[ImageInput]:
    with FileSystems.open(source) as handle:
        text = handle.read().decode("utf-8-sig")
    base = posixpath.dirname(source) if "://" in source else os.path.dirname(os.path.abspath(source))
    rows = parse_manifest(text, manifest_kind(source) or "csv", posixpath.basename(source))
    return [ImageInput(_joined(base, row.path), None, row.label) for row in rows]


def _joined(base: str, path: str) -> str:
    if "://" in path or os.path.isabs(path):
        return path
    return FileSystems.join(base, path)


def _example_input(item: tuple[str, bytes]) -> ImageInput:
    from tensorflow.core.example import example_pb2

    filename, record = item
    try:
        features = example_pb2.Example.FromString(record).features.feature
    except Exception as exc:  # noqa: BLE001 - a corrupt record is one failed input
        name = f"{filename}#sha1-{hashlib.sha1(record).hexdigest()[:16]}"
        return ImageInput(name, error=f"not a tf.train.Example: {type(exc).__name__}: {exc}")
    data = features[ENCODED_FEATURE].bytes_list.value[0] if features[ENCODED_FEATURE].bytes_list.value else b""
    names = features[NAME_FEATURE].bytes_list.value if NAME_FEATURE in features else []
    name = names[0].decode("utf-8", "replace") if names else f"sha1-{hashlib.sha1(data).hexdigest()[:16]}"
    labels = features[LABEL_FEATURE].int64_list.value if LABEL_FEATURE in features else []
    return ImageInput(f"{filename}#{name}", data, int(labels[0]) if labels else None)


# -- checking and explaining ------------------------------------------------------------------------


class _CheckImages(beam.DoFn):
    """Read each input and check it alone (tagged ``failed`` when it cannot go into a batch)."""

    def __init__(self, max_pixels: int | None, class_from_label: bool, labels: tuple[str, ...] | None,
                 num_classes: int | None) -> None:
        self.max_pixels = max_pixels
        self.class_from_label = class_from_label
        self.labels = labels
        self.num_classes = num_classes

    def process(self, item: ImageInput | str) -> Iterator[Any]:
        image = item if isinstance(item, ImageInput) else ImageInput(str(item))
        if image.error is not None:
            yield _failure(image.path, STAGE_READ, image.error)
            return
        try:
            data = image.data if image.data is not None else _read(image.path)
        except Exception as exc:  # noqa: BLE001 - whatever the filesystem raises, the input is unreadable
            yield _failure(image.path, STAGE_READ, exc)
            return
        try:
            height, width = check_image(data, self.max_pixels)
            index = class_to_explain(image.label, self.labels, self.num_classes) if self.class_from_label else -1
        except Exception as exc:  # noqa: BLE001 - whatever a decoder raises, one bad file never fails the job
            yield _failure(image.path, STAGE_CHECK, exc)
            return
        label = None if image.label is None else str(image.label)
        yield image.path, ExplainRequest(image.path, data, index, label, height, width)


def _read(path: str) -> bytes:
    with FileSystems.open(path, compression_type="uncompressed") as handle:
        return handle.read()


def _failure(path: str, stage: str, exc: BaseException | str) -> beam.pvalue.TaggedOutput:
    count(failed=1)
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return beam.pvalue.TaggedOutput(FAILED, Failure(path, stage, " ".join(text.split())))


class _SplitOutcomes(beam.DoFn):
    """RunInference's ``(path, PredictionResult)`` -> one element per row, or a tagged failure."""

    def process(self, item: tuple[str, Any]) -> Iterator[Any]:
        path, result = item
        outcome = result.inference
        if isinstance(outcome, Failure):
            count(failed=1)
            yield beam.pvalue.TaggedOutput(FAILED, outcome)
            return
        count(images=1)
        yield from outcome


def _batch_failures(failed: tuple[Any, BaseException]) -> Iterator[Failure]:
    """A batch in RunInference's dead-letter output -> one failure per image, each naming its input."""
    batch, exc = failed
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    for element in batch:
        path = element[0] if isinstance(element, tuple) else getattr(element, "path", repr(element))
        count(failed=1)
        yield Failure(path, STAGE_SERVER, text)


class ExplainTransform(beam.PTransform):
    """``ImageInput``s (or paths) -> ``{"rows": row dicts, "failed": Failure}``; nothing is dropped.

    Each input is read and checked alone, then batched through ``RunInference``. Rows hold the
    parquet columns (path, size, label, predicted and top-k classes, explained class, method,
    score, raw ``cam`` and its shape, heatmap peak and area above 0.5) plus ``heatmap`` (float32
    at the model's input size) and ``overlay_png`` (bytes, with ``overlays``).

    Args:
        model: an export folder (local or on a Beam filesystem) or a model handler
            (:class:`ExplainModelHandler`, :class:`RemoteExplainModelHandler`).
        methods, top_k, overlays, batch_size: for the handler made from an export folder.
        class_from_label: explain each input's label instead of the predicted class.
        max_pixels: refuse larger images before batching (the export's own limit).
        labels, num_classes: the export's, to turn label texts into class indices.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelHandler,
        *,
        methods: Sequence[str] | str | None = None,
        top_k: int = 1,
        overlays: bool = False,
        batch_size: int = 16,
        class_from_label: bool = False,
        max_pixels: int | None = None,
        labels: Sequence[str] | None = None,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.handler_options = {"methods": methods, "top_k": top_k, "overlays": overlays, "batch_size": batch_size}
        self.check = _CheckImages(max_pixels, class_from_label, None if labels is None else tuple(labels),
                                  num_classes)

    @property
    def handler(self) -> ModelHandler:
        """The model handler: the one given, or one made for the export folder given (made when used)."""
        if isinstance(self.model, ModelHandler):
            return self.model
        return ExplainModelHandler(self.model, **self.handler_options)  # type: ignore[arg-type]

    def expand(self, images: Any) -> dict[str, Any]:
        checked = images | "Check" >> beam.ParDo(self.check).with_outputs(FAILED, main="requests")
        results, dead = checked.requests | "Explain" >> RunInference(
            KeyedModelHandler(self.handler)).with_exception_handling()
        split = results | "Rows" >> beam.ParDo(_SplitOutcomes()).with_outputs(FAILED, main="rows")
        lost = dead.failed_inferences | "LostBatches" >> beam.FlatMap(_batch_failures)
        failed = (checked[FAILED], split[FAILED], lost) | "AllFailed" >> beam.Flatten()
        return {"rows": split.rows, "failed": failed}


# -- outputs ------------------------------------------------------------------------------------------


def relative_name(path: str, root: str = "") -> str:
    """A file stem for an input that keeps its folders below ``root`` (no collisions): ``root/x/y.jpg`` -> ``x/y``.

    Inputs outside ``root`` keep their whole path (``gs://b/x/y.jpg`` -> ``b/x/y``); a TFRecord entry
    ``FILE#NAME`` becomes ``FILE/NAME``.
    """
    stem_root = root.rstrip("/\\") + "/" if root else ""
    if stem_root and path.startswith(stem_root):
        path = path[len(stem_root):]
    without_scheme = path.split("://", 1)[-1]
    stem, _, record = without_scheme.partition("#")
    parts = [p for p in stem.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    if parts:
        parts[-1] = posixpath.splitext(parts[-1])[0] or parts[-1]
    if record:
        parts.append("".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in record))
    return "/".join(parts) or "image"


def _row_suffix(row: dict[str, Any], top_k: int) -> str:
    return f"_{row['method']}" + (f"_top{row['rank']}" if top_k > 1 else "")


class _WriteArtifacts(beam.DoFn):
    """Write a row's overlay / heatmap files, yield its parquet row and its contribution to the summary."""

    def __init__(self, output: str, overlays: bool, heatmaps: str, top_k: int, root: str) -> None:
        self.output = output
        self.root = root
        self.overlays = overlays
        self.heatmaps = heatmaps
        self.top_k = top_k

    def process(self, row: dict[str, Any]) -> Iterator[Any]:
        stem = relative_name(row["path"], self.root) + _row_suffix(row, self.top_k)
        heatmap = row["heatmap"]
        overlay_file = heatmap_file = None
        if self.overlays and row.get("overlay_png"):
            overlay_file = f"overlays/{stem}.png"
            self._write(overlay_file, row["overlay_png"])
        if self.heatmaps != "none":
            heatmap_file = f"heatmaps/{stem}.{self.heatmaps}"
            self._write(heatmap_file, _heatmap_bytes(heatmap, self.heatmaps))
        grid = grid_of(heatmap)
        key = (row["method"], row["explained_class"], row["explained_label"])
        yield beam.pvalue.TaggedOutput("summary", (key, (grid, border_share(grid), row["score"])))
        parquet = {k: v for k, v in row.items() if k not in ("heatmap", "overlay_png")}
        yield {**parquet, "overlay_file": overlay_file, "heatmap_file": heatmap_file}

    def _write(self, relative: str, data: bytes) -> None:
        path = FileSystems.join(self.output, *relative.split("/"))
        if "://" not in path:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        with FileSystems.create(path) as handle:
            handle.write(data)


def _heatmap_bytes(heatmap: np.ndarray, kind: str) -> bytes:
    import io

    buffer = io.BytesIO()
    if kind == "npy":
        np.save(buffer, np.asarray(heatmap, np.float32))
    else:
        from PIL import Image

        Image.fromarray(np.round(np.clip(heatmap, 0, 1) * 255).astype(np.uint8), mode="L").save(buffer, "PNG")
    return buffer.getvalue()


def parquet_schema() -> Any:
    """The ``results-*.parquet`` columns."""
    import pyarrow as pa

    return pa.schema([
        ("path", pa.string()), ("height", pa.int32()), ("width", pa.int32()), ("label", pa.string()),
        ("predicted_class", pa.int32()), ("predicted_score", pa.float32()),
        ("top_classes", pa.list_(pa.int32())), ("top_scores", pa.list_(pa.float32())),
        ("method", pa.string()), ("rank", pa.int32()),
        ("explained_class", pa.int32()), ("explained_label", pa.string()), ("score", pa.float32()),
        ("cam", pa.list_(pa.float32())), ("cam_shape", pa.list_(pa.int32())),
        ("peak_row", pa.float32()), ("peak_col", pa.float32()), ("area_above_half", pa.float32()),
        ("overlay_file", pa.string()), ("heatmap_file", pa.string()),
    ])


class _WriteSummary(beam.DoFn):
    def __init__(self, output: str, threshold: float) -> None:
        self.output = output
        self.threshold = threshold

    def process(self, _: Any, classes: list[Any], images: int, failed: int, rows: int) -> Iterator[str]:
        document = summary_document(classes, images=images, failed=failed, rows=rows, threshold=self.threshold)
        for name, data in (("summary.json", summary_json(document).encode()), ("summary.png", summary_png(document))):
            with FileSystems.create(FileSystems.join(self.output, name)) as handle:
                handle.write(data)
        yield summary_json(document)


class WriteExplanations(beam.PTransform):
    """``{"rows", "failed"}`` -> ``results-*.parquet``, ``failed.jsonl``, overlays, heatmaps, ``summary.json/png``.

    Overlay and heatmap files are named after each input's path below ``input_root`` (see
    :func:`relative_name`), with ``_<method>`` (and ``_top<rank>``) appended.
    """

    def __init__(self, output: str, *, overlays: bool = False, heatmaps: str = "none", top_k: int = 1,
                 border_threshold: float = BORDER_THRESHOLD, input_root: str = "") -> None:
        super().__init__()
        if heatmaps not in ("none", "npy", "png"):
            raise ValueError(f"heatmaps must be npy, png or none; got {heatmaps!r}")
        self.output = output
        self.overlays = overlays
        self.heatmaps = heatmaps
        self.top_k = top_k
        self.threshold = border_threshold
        self.root = input_root

    def expand(self, explained: dict[str, Any]) -> Any:
        rows, failed = explained["rows"], explained["failed"]
        written = rows | "Files" >> beam.ParDo(
            _WriteArtifacts(self.output, self.overlays, self.heatmaps, self.top_k, self.root)).with_outputs("summary", main="rows")
        _ = written.rows | "Parquet" >> beam.io.WriteToParquet(
            FileSystems.join(self.output, "results"), parquet_schema(), file_name_suffix=".parquet")
        _ = (failed | "FailedLines" >> beam.Map(Failure.as_json)
             | "FailedJsonl" >> beam.io.WriteToText(FileSystems.join(self.output, "failed"), file_name_suffix=".jsonl",
                                                   shard_name_template="", num_shards=1))
        classes = (written.summary | "PerClass" >> beam.CombinePerKey(ClassSummary())
                   | "Classes" >> beam.combiners.ToList())
        images = (rows | "Paths" >> beam.Map(lambda row: row["path"]) | "Distinct" >> beam.Distinct()
                  | "Images" >> beam.combiners.Count.Globally())
        failures = failed | "Failures" >> beam.combiners.Count.Globally()
        row_count = rows | "RowCount" >> beam.combiners.Count.Globally()
        side = beam.pvalue.AsSingleton
        return (rows.pipeline | "Once" >> beam.Create([None])
                | "Summary" >> beam.ParDo(_WriteSummary(self.output, self.threshold), side(classes), side(images),
                                          side(failures), side(row_count)))
