"""Where maps and scores come from: an export loaded TF Serving's way, or a server.

Both backends answer the same three questions (which explain methods exist,
``predict`` on a batch, ``explain_<method>`` on a batch) through the
signatures a service would call, so a score measured here is a score of what
is served. Perturbed images go through ``predict`` in batches, so a server
with batching enabled does the batching.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from gradcam_serving import signatures as sig

__all__ = ["Backend", "ExportSession", "InProcessBackend", "ServerBackend", "explain_methods"]

DEFAULT_METHOD = "default"
_METHOD_SIGNATURE = re.compile(r"^explain_(?!bytes)(?!topk)([a-z0-9_]+)$")


def explain_methods(signatures: Mapping[str, tuple[set[str], set[str]]]) -> dict[str, str]:
    """``{method: signature}`` from ``{signature: (inputs, outputs)}``.

    Every ``explain_<method>`` signature with the ``explain`` contract, or just
    ``explain`` (as ``default``) when there are none.
    """
    contract_in = {sig.IMAGES, sig.CLASS_INDEX}

    def follows_contract(name: str) -> bool:
        inputs, outputs = signatures[name]
        return inputs == contract_in and sig.HEATMAP in outputs

    methods = {}
    for name in sorted(signatures):
        match = _METHOD_SIGNATURE.match(name)
        if match and follows_contract(name):
            methods[match.group(1)] = name
    if methods:
        return methods
    if sig.EXPLAIN in signatures and follows_contract(sig.EXPLAIN):
        return {DEFAULT_METHOD: sig.EXPLAIN}
    raise ValueError(f"no explain signature with inputs images and class_index found (has {sorted(signatures)})")


class Backend(Protocol):
    """What the evaluation needs from a model."""

    name: str

    def methods(self) -> dict[str, str]: ...

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities ``[N, C]`` for uint8 images ``[N, H, W, 3]``."""
        ...

    def explain(self, signature: str, images: np.ndarray, class_index: np.ndarray) -> np.ndarray:
        """Heatmaps ``[N, H, W]`` for the given classes."""
        ...

    def close(self) -> None: ...


class ExportSession:
    """An export loaded once as TF Serving loads it (TF1 loader, ``serve`` tag, Session).

    ``exporter.run_like_tf_serving`` loads the SavedModel per call; evaluation
    runs thousands of batches, so this keeps the Session open and feeds and
    fetches by the SignatureDef tensor names, exactly as that gate does.
    """

    def __init__(self, export_dir: str | os.PathLike[str]) -> None:
        import tensorflow as tf

        from gradcam_serving.errors import ServingCheckError
        from gradcam_serving.exporter._gate import SERVE_TAG

        self.export_dir = Path(export_dir)
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        try:
            self.meta_graph = tf.compat.v1.saved_model.loader.load(self.session, [SERVE_TAG], str(export_dir))
        except Exception as exc:  # TF raises many error types for unloadable models
            self.session.close()
            raise ServingCheckError(f"TF Serving's loader cannot load {export_dir}: {exc}") from exc

    def signatures(self) -> dict[str, tuple[set[str], set[str]]]:
        return {
            name: (set(definition.inputs), set(definition.outputs))
            for name, definition in self.meta_graph.signature_def.items()
        }

    def run(self, signature: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        from gradcam_serving.errors import ServingCheckError
        from gradcam_serving.exporter._gate import tf_error_summary

        definition = self.meta_graph.signature_def[signature]
        feeds = {definition.inputs[alias].name: value for alias, value in inputs.items()}
        fetches = {alias: definition.outputs[alias].name for alias in outputs}
        try:
            return self.session.run(fetches, feed_dict=feeds)
        except tf.errors.OpError as exc:
            raise ServingCheckError(f"signature {signature!r} failed on {self.export_dir}: {tf_error_summary(exc)}") from exc

    def close(self) -> None:
        self.session.close()


class InProcessBackend:
    """An export evaluated in this process on TF Serving's loading path."""

    def __init__(self, export_dir: str | os.PathLike[str]) -> None:
        self.export = ExportSession(export_dir)
        self.name = _export_name(Path(export_dir))

    def methods(self) -> dict[str, str]:
        return explain_methods(self.export.signatures())

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.export.run(sig.PREDICT, {sig.IMAGES: images}, [sig.PROBABILITIES])[sig.PROBABILITIES]

    def explain(self, signature: str, images: np.ndarray, class_index: np.ndarray) -> np.ndarray:
        inputs = {sig.IMAGES: images, sig.CLASS_INDEX: np.asarray(class_index, np.int32)}
        return self.export.run(signature, inputs, [sig.HEATMAP])[sig.HEATMAP]

    def close(self) -> None:
        self.export.close()


class ServerBackend:
    """A model on TF Serving or ``gradcam-serving serve``, through our gRPC client."""

    def __init__(self, server: str, model: str, *, version: int | None = None, timeout: float = 60.0) -> None:
        from gradcam_serving.client import ExplainClient, Timeout

        self.client = ExplainClient(server, model, version=version, timeout=Timeout(timeout))
        self.name = f"{model}@{server}" if version is None else f"{model}/{version}@{server}"

    def methods(self) -> dict[str, str]:
        metadata = self.client.metadata()
        return explain_methods(
            {name: (set(info.inputs), set(info.outputs)) for name, info in metadata.signatures.items()}
        )

    def predict(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self.client.predict(images).probabilities)

    def explain(self, signature: str, images: np.ndarray, class_index: np.ndarray) -> np.ndarray:
        method = _method_of(signature)
        explanation = self.client.explain(images, [int(c) for c in class_index], method=method)
        return np.asarray(explanation.heatmap)

    def close(self) -> None:
        self.client.close()


def _method_of(signature: str) -> str | None:
    """The client's ``method=`` for a signature :func:`explain_methods` found (None for plain ``explain``)."""
    if signature == sig.EXPLAIN:
        return None
    match = _METHOD_SIGNATURE.match(signature)
    if match is None:
        raise ValueError(f"{signature!r} is neither 'explain' nor an explain_<method> signature")
    return match.group(1)


def _export_name(path: Path) -> str:
    """``NAME/VERSION`` for a version folder, else the folder's name."""
    return f"{path.parent.name}/{path.name}" if path.name.isdigit() else path.name
