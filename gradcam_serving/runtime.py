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

import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from google.protobuf import message
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from gradcam_serving import exports
from gradcam_serving import signatures as sig
from gradcam_serving.errors import ServingCheckError, StatusCode
from gradcam_serving.exports import DEFAULT_TAGS, ExportMetadata, matches_tags
from gradcam_serving.signatures import MAX_WARMUP_RECORDS

__all__ = [
    "DEFAULT_TAGS",
    "MAX_WARMUP_RECORDS",
    "ExportMetadata",
    "ExportSession",
    "load_count",
    "load_failure",
    "matches_tags",
    "open_export",
    "read_saved_model",
    "read_warmup_requests",
    "run_checked",
    "tf_error_summary",
    "first_run_threads",
    "session_config",
    "tool_session_config",
]

_loads = 0
_loads_lock = threading.Lock()


def load_count() -> int:
    """How many times this process has loaded an export (tests check that ``validate`` loads once)."""
    return _loads


def read_saved_model(path: str | os.PathLike[str]) -> saved_model_pb2.SavedModel:
    """Parse ``saved_model.pb`` (or ``.pbtxt``), graph included, failing as TF's C++ reader does.

    Raises:
        tf.errors.NotFoundError: neither file exists.
        tf.errors.DataLossError: the file is not a SavedModel proto.
    """
    try:
        return exports.read_saved_model(path, saved_model_pb2.SavedModel)
    except exports.NotAnExportError as exc:
        raise _tf_error(exc) from exc


def _tf_error(exc: exports.NotAnExportError) -> tf.errors.OpError:
    """The reader's error as the ``tf.errors`` type TF's loader raises, so callers map its code as TF Serving does."""
    kind = tf.errors.DataLossError if exc.code == StatusCode.DATA_LOSS else tf.errors.NotFoundError
    return kind(None, None, exc.message)


def _check_tags(saved_model: saved_model_pb2.SavedModel, tags: Sequence[str]) -> None:
    try:
        exports.select_meta_graph(saved_model, tags)
    except exports.NotAnExportError as exc:
        raise _tf_error(exc) from exc


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


def load_failure(path: str | os.PathLike[str], exc: BaseException) -> str:
    """The one sentence for an export that does not load: TF's reason, and the usual mistake if it is that one.

    Pointing a tool at ``BASE/NAME`` instead of a version folder is the common slip, so it is named.
    """
    detail = (exc.message if isinstance(exc, tf.errors.OpError) else str(exc)).strip()
    detail = detail.splitlines()[0] if detail else type(exc).__name__
    folder = Path(path)
    if folder.is_dir() and not (folder / "saved_model.pb").exists() and any(c.name.isdigit() for c in folder.iterdir()):
        detail += " (this looks like BASE/NAME; pass a version folder such as BASE/NAME/1)"
    return f"TF Serving's loader cannot load {os.fspath(path)}: {detail}"


def open_export(
    path: str | os.PathLike[str],
    *,
    config: tf.compat.v1.ConfigProto | None = None,
    tags: Sequence[str] = DEFAULT_TAGS,
    finalize: bool = True,
) -> ExportSession:
    """:class:`ExportSession` whose load failure is a :class:`ServingCheckError` saying :func:`load_failure`.

    The way every tool opens an export it is handed (``view``, ``evaluate``, batch jobs, the export gate):
    a person reads the error, so it is one sentence, while :class:`ExportSession` keeps TF's own errors
    for the server, which returns their codes.
    """
    try:
        return ExportSession(path, config=config, tags=tags, finalize=finalize)
    except Exception as exc:  # TF raises many error types for unloadable models
        raise ServingCheckError(load_failure(path, exc)) from exc


def run_checked(export: ExportSession, name: str, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Run one signature; a missing signature or alias, or TF's error, is a :class:`ServingCheckError`."""
    try:
        return export.run(name, inputs)
    except tf.errors.OpError as exc:
        raise ServingCheckError(
            f"signature {name!r} fails when run the way TF Serving runs it: {tf_error_summary(exc)}"
        ) from exc
    except KeyError as exc:
        raise ServingCheckError(str(exc.args[0])) from exc


def tf_error_summary(exc: tf.errors.OpError) -> str:
    """The informative part of a TF runtime error, without node and stack noise."""
    noise = ("Graph execution error", "Detected at node", "[[", "File ", "Condition x", "x (", "y (")
    lines = [line.strip() for line in exc.message.splitlines()]
    kept = [line for line in lines if line and not line.startswith(noise)]
    return " ".join(kept) or exc.message
