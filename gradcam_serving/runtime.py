"""Run an export the way ``tensorflow_model_server`` runs it: the one place that loads a version folder.

TF Serving does not call ``tf.saved_model.load``. Its ``SavedModelBundleFactory``
reads ``saved_model.pb``, picks the MetaGraph whose tag set *equals* the
configured one (``cc/saved_model/reader.cc``, ``FindMetaGraphDef``), restores
it into a ``Session`` with the TF1 loader, and then feeds and fetches each
signature by the tensor names of its SignatureDef, with no targets. Some
exports pass a Python reload and fail only there (Keras 3's "Could not find
variable", tensorflow#72963), so the export gate, ``validate``, the local
server, ``evaluate``, the batch jobs and the benchmarks all run exports through
:class:`ExportSession` and nothing else.

Two Session options matter for how fast an export becomes useful, and neither
changes an answer. TF Serving's default Session places the whole graph and
optimises each new fetch set against it; ``place_pruned_graph`` places only
what a signature runs, which cuts the load and the first run of every signature
(``benchmarks/load_ready.py``). And each signature's first run spends seconds in
single-threaded graph optimisation, so :meth:`ExportSession.run_each` runs
several at once. The project's own tools (``validate``, ``evaluate``, batch jobs,
the web page) use both. The export gate, which compares answers with the
in-process model to the last PNG byte, and the local server use TF Serving's
Session options (the server reads ``--tensorflow_session_config_file`` as TF
Serving does) and run one request at a time, since other options or concurrent
runs may round a float differently.

Errors are TensorFlow's own (``tf.errors.OpError`` subclasses with their codes,
for example ``NotFoundError`` for a missing ``saved_model.pb`` or a tag set that
matches no MetaGraph, ``DataLossError`` for an unreadable one); each caller maps
them to its own vocabulary (the server to gRPC statuses, the gate to
``ServingCheckError``).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from google.protobuf import message, text_format
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from gradcam_serving import signatures as sig
from gradcam_serving.signatures import MAX_WARMUP_RECORDS

__all__ = [
    "DEFAULT_TAGS",
    "MAX_WARMUP_RECORDS",
    "ExportMetadata",
    "ExportSession",
    "load_count",
    "matches_tags",
    "read_saved_model",
    "read_warmup_requests",
    "first_run_threads",
    "session_config",
    "tool_session_config",
]

DEFAULT_TAGS: tuple[str, ...] = (sig.SERVE_TAG,)
"""TF Serving's default ``--saved_model_tags``."""

_loads = 0
_loads_lock = threading.Lock()


def load_count() -> int:
    """How many times this process has loaded an export (tests check that ``validate`` loads once)."""
    return _loads


def matches_tags(meta_graph_tags: Sequence[str], tags: Sequence[str]) -> bool:
    """TF Serving's rule: a MetaGraph is loaded only when its tag set equals the requested one."""
    return set(meta_graph_tags) == set(tags)


def read_saved_model(path: str | os.PathLike[str]) -> saved_model_pb2.SavedModel:
    """Parse ``saved_model.pb`` (or ``.pbtxt``) failing as TF's C++ reader does.

    Raises:
        tf.errors.NotFoundError: neither file exists.
        tf.errors.DataLossError: the file is not a SavedModel proto.
    """
    folder = os.fspath(path)
    pb_path, pbtxt_path = os.path.join(folder, "saved_model.pb"), os.path.join(folder, "saved_model.pbtxt")
    saved_model = saved_model_pb2.SavedModel()
    if os.path.exists(pb_path):
        try:
            with open(pb_path, "rb") as handle:
                saved_model.ParseFromString(handle.read())
        except (message.DecodeError, OSError) as exc:
            raise tf.errors.DataLossError(None, None, f"Can't parse {pb_path} as binary proto") from exc
        return saved_model
    if os.path.exists(pbtxt_path):
        try:
            with open(pbtxt_path, encoding="utf-8") as handle:
                text_format.Parse(handle.read(), saved_model)
        except (text_format.ParseError, OSError, UnicodeDecodeError) as exc:
            raise tf.errors.DataLossError(None, None, f"Can't parse {pbtxt_path} as text proto") from exc
        return saved_model
    raise tf.errors.NotFoundError(
        None, None,
        f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {folder}. "
        "Check that the directory exists and that you have the right permissions for accessing it.",
    )


def _check_tags(saved_model: saved_model_pb2.SavedModel, tags: Sequence[str]) -> None:
    if not any(matches_tags(mg.meta_info_def.tags, tags) for mg in saved_model.meta_graphs):
        raise tf.errors.NotFoundError(
            None, None,
            "Could not find meta graph def matching supplied tags: { " + " ".join(tags) + " }. "
            "To inspect available tag-sets in the SavedModel, please use the SavedModel CLI: `saved_model_cli`",
        )


def read_warmup_requests(path: str | os.PathLike[str]) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """Yield ``(signature, inputs)`` for each predict record of a version folder's warmup file.

    Raises:
        ValueError: more records than TF Serving replays, or a record that is not a predict log.
    """
    from tensorflow_serving.apis import prediction_log_pb2

    file = Path(path) / sig.WARMUP_FILE
    for count, raw in enumerate(tf.data.TFRecordDataset(str(file)).as_numpy_iterator(), start=1):
        if count > MAX_WARMUP_RECORDS:
            raise ValueError(f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {file}")
        try:
            log = prediction_log_pb2.PredictionLog.FromString(raw)
        except message.DecodeError as exc:
            raise ValueError(f"warmup record {count} in {file} is not a tensorflow.serving.PredictionLog") from exc
        if log.WhichOneof("log_type") != "predict_log":
            raise ValueError(f"warmup record {count} in {file} is a {log.WhichOneof('log_type')}, not a predict_log")
        request = log.predict_log.request
        yield request.model_spec.signature_name or sig.SERVING_DEFAULT, {
            alias: tf.make_ndarray(tensor) for alias, tensor in request.inputs.items()
        }


@dataclass(frozen=True)
class ExportMetadata:
    """What a gradcam-serving export says about itself.

    Read from ``assets.extra/gradcam_serving.json`` (written by the exporter; TF Serving ignores it).
    For exports made before that file existed, methods come from the signature names and the rest
    is ``None``.

    Attributes:
        methods: the CAM methods, default first.
        default_method: the method ``explain`` and ``explain_topk`` compute.
        labels: one label per class, or ``None`` when the export returns indices as text.
        input_size: the model's ``(height, width)``.
        max_pixels: the largest image (height x width) the export accepts.
        num_classes: the number of classes.
        topk: whether the export holds ``explain_topk*``.
        layer: the target layer's name.
        colormap / overlay_alpha: how ``overlay_png`` is drawn (matplotlib colormap, heatmap weight).
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

    def as_json(self) -> str:
        return json.dumps({
            "methods": list(self.methods), "default_method": self.default_method,
            "labels": None if self.labels is None else list(self.labels),
            "input_size": None if self.input_size is None else list(self.input_size),
            "max_pixels": self.max_pixels, "num_classes": self.num_classes, "topk": self.topk,
            "layer": self.layer, "colormap": self.colormap, "overlay_alpha": self.overlay_alpha,
        }, indent=1)

    @classmethod
    def from_json(cls, text: str) -> ExportMetadata:
        raw = json.loads(text)
        return cls(
            methods=tuple(raw["methods"]), default_method=raw["default_method"],
            labels=None if raw.get("labels") is None else tuple(raw["labels"]),
            input_size=None if raw.get("input_size") is None else (int(raw["input_size"][0]), int(raw["input_size"][1])),
            max_pixels=raw.get("max_pixels"), num_classes=raw.get("num_classes"), topk=bool(raw.get("topk", True)),
            layer=raw.get("layer"), colormap=raw.get("colormap"), overlay_alpha=raw.get("overlay_alpha"),
        )

    def signature_table(self) -> dict[str, sig.SignatureRow]:
        """The signatures this export must hold (the contract ``validate`` checks)."""
        return sig.signature_table(self.methods, topk=self.topk)

    @classmethod
    def read(cls, path: str | os.PathLike[str], signature_names: Sequence[str]) -> ExportMetadata:
        """The metadata file of the export at ``path``, or what its signature names tell."""
        file = Path(path) / sig.METADATA_FILE
        if file.is_file():
            return cls.from_json(file.read_text(encoding="utf-8"))
        methods = tuple(sig.exported_methods(signature_names))
        return cls(methods=methods, default_method=None, topk=sig.EXPLAIN_TOPK in set(signature_names))


def session_config(
    intra_op_parallelism: int = 0,
    inter_op_parallelism: int = 0,
    *,
    base: tf.compat.v1.ConfigProto | None = None,
    place_pruned_graph: bool = False,
) -> tf.compat.v1.ConfigProto:
    """Session options built as ``tensorflow_model_server`` builds them.

    Args:
        intra_op_parallelism / inter_op_parallelism: thread counts; a count above 0 overrides ``base``'s,
            as TF Serving's ``--tensorflow_*_parallelism`` flags override the session config file.
        base: the ``ConfigProto`` of ``--tensorflow_session_config_file``; TF Serving's default is empty.
        place_pruned_graph: place only the nodes a run needs (``GraphOptions.place_pruned_graph``).
    """
    config = tf.compat.v1.ConfigProto()
    if base is not None:
        config.CopyFrom(base)
    if intra_op_parallelism > 0:
        config.intra_op_parallelism_threads = intra_op_parallelism
    if inter_op_parallelism > 0:
        config.inter_op_parallelism_threads = inter_op_parallelism
    if place_pruned_graph:
        config.graph_options.place_pruned_graph = True
    return config


def tool_session_config(intra_op_parallelism: int = 0, inter_op_parallelism: int = 0) -> tf.compat.v1.ConfigProto:
    """The Session options of the project's own tools: TF Serving's, with ``place_pruned_graph``.

    Answers are the same; what changes is how long the load and each signature's first run take.
    Thread counts above 0 override TensorFlow's choice (a Beam worker sharing its machine).
    """
    return session_config(intra_op_parallelism, inter_op_parallelism, place_pruned_graph=True)


def first_run_threads() -> int:
    """How many signatures :meth:`ExportSession.run_each` runs at once: one per core this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


class ExportSession:
    """One version folder, loaded once as TF Serving loads it, runnable from many threads.

    Use it as a context manager (or call :meth:`close`)::

        with ExportSession("models/flowers/1") as export:
            answer = export.run("explain", {"images": batch, "class_index": classes})

    Args:
        path: the version folder (``BASE/NAME/VERSION``).
        tags: the MetaGraph tag set to load; TF Serving's default is ``{"serve"}``.
        config: Session options; :func:`tool_session_config` by default. The server passes
            TF Serving's own (:func:`session_config`).
        finalize: freeze the graph after loading, as serving does; ``False`` lets a caller add ops
            (the randomisation test of ``evaluate`` assigns new weights).

    Raises:
        tf.errors.OpError: TensorFlow's loading error, with its code.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        tags: Sequence[str] = DEFAULT_TAGS,
        config: tf.compat.v1.ConfigProto | None = None,
        finalize: bool = True,
    ) -> None:
        global _loads
        self.path = Path(path)
        self.tags = tuple(tags)
        _check_tags(read_saved_model(self.path), self.tags)
        self.graph = tf.Graph()
        self.config: tf.compat.v1.ConfigProto = config or tool_session_config()
        """The Session options this export runs with."""
        self._session = tf.compat.v1.Session(graph=self.graph, config=self.config)
        try:
            with self.graph.as_default():
                self.meta_graph: meta_graph_pb2.MetaGraphDef = tf.compat.v1.saved_model.loader.load(
                    self._session, list(self.tags), str(self.path)
                )
        except BaseException:
            self._session.close()
            raise
        if finalize:
            self.graph.finalize()
        with _loads_lock:
            _loads += 1
        self.signature_defs: dict[str, meta_graph_pb2.SignatureDef] = dict(self.meta_graph.signature_def)
        self._metadata: ExportMetadata | None = None

    def __enter__(self) -> ExportSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def session(self) -> tf.compat.v1.Session:
        """The Session itself, for callers that run ops of their own (weight randomisation)."""
        return self._session

    @property
    def metadata(self) -> ExportMetadata:
        """Methods, default method, labels, input size and pixel limit of the export."""
        if self._metadata is None:
            self._metadata = ExportMetadata.read(self.path, list(self.signature_defs))
        return self._metadata

    def signature(self, name: str) -> meta_graph_pb2.SignatureDef:
        """The SignatureDef ``name``; KeyError naming the ones there are."""
        try:
            return self.signature_defs[name]
        except KeyError:
            raise KeyError(f"signature {name!r} is not in {self.path} (has {sorted(self.signature_defs)})") from None

    def run(
        self, signature: str, inputs: Mapping[str, Any], outputs: Sequence[str] | None = None, *, timeout_ms: int = 0
    ) -> dict[str, np.ndarray]:
        """Run one signature, feeding and fetching by its SignatureDef's tensor names.

        Args:
            signature: the SignatureDef key, e.g. ``explain_gradcam``.
            inputs: input alias -> value.
            outputs: output aliases to fetch; all of the signature's by default.
            timeout_ms: ``RunOptions.timeout_in_ms``; 0 means no deadline.
        """
        definition = self.signature(signature)
        unknown = sorted(set(inputs) - set(definition.inputs))
        if unknown:
            raise KeyError(f"signature {signature!r} has no inputs {unknown} (has {sorted(definition.inputs)})")
        aliases = list(definition.outputs) if outputs is None else list(outputs)
        missing = sorted(set(aliases) - set(definition.outputs))
        if missing:
            raise KeyError(f"signature {signature!r} has no outputs {missing} (has {sorted(definition.outputs)})")
        feeds = {definition.inputs[alias].name: value for alias, value in inputs.items()}
        values = self.run_tensors(feeds, [definition.outputs[alias].name for alias in aliases], timeout_ms=timeout_ms)
        return dict(zip(aliases, values))

    def run_tensors(
        self, feeds: Mapping[str, Any], fetches: Sequence[str], *, timeout_ms: int = 0
    ) -> list[np.ndarray]:
        """One ``Session.run`` by tensor names (``serving_default_images:0``), as TF Serving's Predict does."""
        options = tf.compat.v1.RunOptions(timeout_in_ms=max(0, int(timeout_ms)))
        return list(self._session.run(list(fetches), feed_dict=dict(feeds), options=options))

    def run_each(
        self,
        requests: Sequence[tuple[str, Mapping[str, Any]]],
        *,
        run: Callable[[str, Mapping[str, Any]], dict[str, np.ndarray]] | None = None,
        threads: int | None = None,
    ) -> list[dict[str, np.ndarray]]:
        """Run each ``(signature, inputs)`` on a few threads; the answers come back in request order.

        A signature's first run is mostly single-threaded graph optimisation, so an export
        with many signatures gets through its first runs faster side by side.

        Args:
            requests: ``(signature, inputs)`` pairs.
            run: what runs one pair; :meth:`run` by default (validate passes the gate's error-mapping wrapper).
            threads: at most this many at once; :func:`first_run_threads` by default.

        Raises:
            The first request's error, in request order.
        """
        runner = run or self.run
        workers = max(1, min(len(requests), threads or first_run_threads()))
        with ThreadPoolExecutor(workers, thread_name_prefix="first-run") as pool:
            return list(pool.map(lambda request: runner(*request), requests))

    def warmup_requests(self) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
        """The export's warmup records as ``(signature, inputs)``; none if it has no warmup file."""
        if not (self.path / sig.WARMUP_FILE).exists():
            return iter(())
        return read_warmup_requests(self.path)

    def close(self) -> None:
        """Free the Session; idempotent."""
        self._session.close()
