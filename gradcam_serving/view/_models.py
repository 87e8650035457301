"""The models a page shows: an export run in this process, or a model on a server through the gRPC client.

Both answer the same question the page asks, "explain this file's class with this method", through the
``*_bytes`` signatures, so the export decodes the file and draws ``overlay_png`` exactly as it does in
production. An export runs on TF Serving's loading path (:class:`gradcam_serving.runtime.ExportSession`,
opened by the exporter's gate); a served model only through :class:`gradcam_serving.client.ExplainClient`,
so ``view --server`` imports no TensorFlow.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gradcam_serving import signatures as sig

from gradcam_serving.errors import readable_error

from ._errors import ViewError

__all__ = ["Answer", "ExportModel", "ServedModel", "ViewModel", "open_models"]


def _page_method(model: str, method: str, methods: list[str]) -> str:
    """The one method the page asked ``model`` for, checked by the one resolver; 404 naming the model's methods.

    :data:`~gradcam_serving.signatures.DEFAULT_METHOD` (``default``) asks for the plain ``explain_bytes``.
    """
    try:
        chosen = sig.resolve_methods([method], methods)
    except ValueError as exc:
        raise ViewError(404, f"{model}: {exc}") from None
    if len(chosen) != 1:
        raise ViewError(404, f"{model}: ask for one method at a time, one of {', '.join(methods)}")
    return chosen[0]


@dataclass(frozen=True)
class Answer:
    """One explain call for one image: what the page draws and what its JSON download holds."""

    method: str
    signature: str
    probabilities: np.ndarray
    class_index: int
    label: str
    score: float
    heatmap: np.ndarray
    cam: np.ndarray | None
    overlay_png: bytes
    seconds: float


class ViewModel(Protocol):
    """What the page needs from a model: its methods and card, and one explain call."""

    name: str
    methods: list[str]

    def card(self) -> dict[str, Any]: ...

    def label_of(self, class_index: int) -> str: ...

    def explain(self, data: bytes, method: str, class_index: int) -> Answer: ...

    def close(self) -> None: ...


def _probe_png() -> bytes:
    """A small PNG to run each signature once at start (its first run is mostly graph optimisation)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (128, 96, 64)).save(buffer, "PNG")
    return buffer.getvalue()


def _first(values: Any) -> Any:
    """The first element of a one-image answer, with text decoded."""
    value = np.asarray(values).reshape(-1)[0]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


@dataclass
class ExportModel:
    """A version folder loaded once as TF Serving loads it.

    Calls to one signature are serialised: TensorFlow optimises a signature's graph on its first run, and
    two first runs at once would both pay for it; different methods still run side by side.
    """

    path: Path
    name: str = ""
    methods: list[str] = field(default_factory=list)
    validation: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        from gradcam_serving.runtime import open_export

        self.path = Path(self.path)
        self.name = self.name or (f"{self.path.parent.name}/{self.path.name}" if self.path.name.isdigit()
                                  else self.path.name)
        self.session = open_export(self.path)
        self.metadata = self.session.metadata
        self._signatures = self._explain_signatures()
        self.methods = list(self._signatures)
        self._locks = {name: threading.Lock() for name in {*self._signatures.values(), sig.EXPLAIN_BYTES}}
        self._validate_lock = threading.Lock()

    def _explain_signatures(self) -> dict[str, str]:
        """``{method: explain_bytes_<method>}``; plain ``explain_bytes`` for an export that predates methods."""
        held = set(self.session.signature_defs)
        methods = sig.resolve_methods("all", self.metadata.methods)  # DEFAULT_METHOD alone for an old export
        signatures = {m: sig.explain_signature(m, encoded=True) for m in methods}
        missing = sorted(name for name in signatures.values() if name not in held)
        if missing:
            raise ValueError(
                f"{self.path} has no {', '.join(missing)} signature, which the page feeds "
                "image files to; re-export it with this version of gradcam-serving"
            )
        return signatures

    def warm_up(self, progress: Callable[[str], None] = lambda _method: None) -> None:
        """Run each explain signature once on a small image, so the first real image is fast.

        The first runs go side by side (:meth:`ExportSession.run_each`): each is mostly single-threaded
        graph optimisation.
        """
        data = _probe_png()

        def first_run(method: str, _inputs: object) -> dict:
            progress(method)
            self.explain(data, method, sig.PREDICTED_CLASS)
            return {}

        self.session.run_each([(method, {}) for method in self.methods], run=first_run)

    def label_of(self, class_index: int) -> str:
        labels = self.metadata.labels
        return labels[class_index] if labels is not None and 0 <= class_index < len(labels) else str(class_index)

    def explain(self, data: bytes, method: str, class_index: int) -> Answer:
        import tensorflow as tf

        signature = self._signature(method)
        inputs = {sig.IMAGE_BYTES: np.array([data], dtype=object), sig.CLASS_INDEX: np.array([class_index], np.int32)}
        started = time.perf_counter()
        try:
            with self._locks[signature]:
                out = self.session.run(signature, inputs)
        except tf.errors.InvalidArgumentError as exc:
            raise ViewError(400, readable_error(exc.message)) from None
        except tf.errors.OpError as exc:
            raise ViewError(500, f"{signature} failed: {readable_error(exc.message)}") from None
        from gradcam_serving.client import ModelSpec, explanation_from_outputs

        result = explanation_from_outputs(out, ModelSpec(self.name, signature, None), encoded=True)
        return _answer(method, result, time.perf_counter() - started)

    def _signature(self, method: str) -> str:
        return sig.explain_signature(_page_method(self.name, method, self.methods), encoded=True)

    def card(self) -> dict[str, Any]:
        """Signatures, methods, input size, classes, the TensorFlow that wrote it and the ``validate`` verdict."""
        from gradcam_serving.exporter import writer_version

        meta = self.metadata
        try:
            written_by = writer_version(self.path)
        except (OSError, ValueError):
            written_by = None
        return {
            "kind": "export", "source": str(self.path), "signatures": sorted(self.session.signature_defs),
            "methods": self.methods, "default_method": meta.default_method,
            "target_layer": meta.layer, "input_size": meta.input_size,
            "num_classes": meta.num_classes, "labels": meta.labels is not None, "max_pixels": meta.max_pixels,
            "tensorflow_version": written_by, "validation": self.validation, "can_validate": True,
            "colormap": meta.colormap, "overlay_alpha": meta.overlay_alpha,
        }

    def validate(self) -> dict[str, Any]:
        """Run ``validate`` on the folder (it loads the export again and runs every signature once)."""
        from gradcam_serving.exporter import validate_export

        with self._validate_lock:
            report = validate_export(self.path)
        self.validation = {
            "passed": report.passed,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in report.checks],
        }
        return self.validation

    def close(self) -> None:
        self.session.close()


class ServedModel:
    """A model on TF Serving or ``gradcam-serving serve``; the browser never talks to it directly."""

    def __init__(self, server: str, model: str, version: int | None = None, timeout: float = 60.0) -> None:
        from gradcam_serving.client import ExplainClient, Timeout
        from gradcam_serving.errors import RpcError

        self.server, self.model, self.version = server, model, version
        self.name = f"{model}@{server}" if version is None else f"{model}/{version}@{server}"
        self.client = ExplainClient(server, model, version=version, timeout=Timeout(timeout))
        try:
            self._metadata = self.client.metadata()
        except RpcError as exc:
            self.client.close()
            raise ValueError(f"cannot read model {model!r} from {server}: {exc.code_name}: "
                             f"{readable_error(exc.details)}") from None
        self.methods = list(sig.resolve_methods("all", sig.exported_methods(self._metadata.signatures)))
        self._labels: dict[int, str] = {}

    def label_of(self, class_index: int) -> str:
        """Labels learnt from the server's answers (the gRPC metadata does not list them)."""
        return self._labels.get(class_index, f"class {class_index}")

    def explain(self, data: bytes, method: str, class_index: int) -> Answer:
        from gradcam_serving.errors import RpcError

        method = _page_method(self.name, method, self.methods)
        started = time.perf_counter()
        try:
            result = self.client.explain(data, class_index, method=method)
        except RpcError as exc:
            raise _served_error(exc, self.server) from None
        except ValueError as exc:
            raise ViewError(400, str(exc)) from None
        answer = _answer(method, result, time.perf_counter() - started)
        self._labels[answer.class_index] = answer.label
        return answer

    def card(self) -> dict[str, Any]:
        signatures = self._metadata.signatures
        probabilities = _output_shape(signatures, sig.PREDICT, sig.PROBABILITIES)
        heatmap = _map_shape(signatures)
        return {
            "kind": "server", "source": self.name,
            "signatures": sorted(name for name in signatures if not name.startswith("__")),
            "methods": self.methods, "default_method": None, "target_layer": None,
            "input_size": list(heatmap[-2:]) if heatmap and None not in heatmap[-2:] else None,
            "num_classes": probabilities[-1] if probabilities else None, "labels": None,
            "max_pixels": None, "tensorflow_version": None, "served_version": self._metadata.version,
            "validation": None, "can_validate": False,
        }

    def close(self) -> None:
        self.client.close()


def _answer(method: str, result: Any, seconds: float) -> Answer:
    """The first image of an :class:`~gradcam_serving.client.Explanation`, whichever model answered it.

    The family's map is what the page draws; its raw map (``cam`` for CAMs) feeds "one scale for all".
    """
    raw = sig.FAMILIES[result.family].raw
    return Answer(
        method=method, signature=result.model_spec.signature_name, probabilities=np.asarray(result.probabilities[0]),
        class_index=int(_first(result.class_index)), label=str(_first(result.label)),
        score=float(_first(result.score)), heatmap=np.asarray(result.heatmap[0]),
        cam=np.asarray(result.outputs[raw][0]) if raw in result.outputs else None,
        overlay_png=result.overlay_png[0] if result.overlay_png else b"", seconds=seconds,
    )


def _map_shape(signatures: Any) -> tuple[int | None, ...] | None:
    """The shape of ``explain``'s map (its family's, as the signature table says), which ends in the input size."""
    try:
        family = sig.family_answering(signatures[sig.EXPLAIN].outputs)
    except (KeyError, ValueError):
        return None
    return _output_shape(signatures, sig.EXPLAIN, family.map)


def _output_shape(signatures: Any, signature: str, alias: str) -> tuple[int | None, ...] | None:
    try:
        return signatures[signature].outputs[alias].shape
    except (KeyError, AttributeError):
        return None


def _served_error(exc: Any, server: str) -> ViewError:
    """A gRPC failure as the page says it: a server that went away is not the user's image's fault."""
    details = readable_error(exc.details)
    if exc.code_name == "UNAVAILABLE":
        return ViewError(503, f"the model server at {server} is not answering ({details}); "
                              "start it again, then retry")
    if exc.code_name == "DEADLINE_EXCEEDED":
        return ViewError(504, f"the model server at {server} did not answer in time ({details})")
    if exc.code_name == "INVALID_ARGUMENT":
        return ViewError(400, details)
    return ViewError(502, f"the model server at {server} answered {exc.code_name}: {details}")


def open_models(
    exports: list[str], server: str | None = None, model: str | None = None, version: int | None = None,
    timeout: float = 60.0,
) -> list[ViewModel]:
    """One column per export folder, then the served model; closes what it opened if one fails."""
    opened: list[ViewModel] = []
    try:
        for path in exports:
            opened.append(ExportModel(Path(path)))
        if server is not None and model is not None:
            opened.append(ServedModel(server, model, version, timeout))
    except BaseException:
        for done in opened:
            done.close()
        raise
    return opened
