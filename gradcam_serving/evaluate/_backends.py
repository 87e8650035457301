"""Where maps and scores come from: an export loaded TF Serving's way, or a server.

Both backends answer the same three questions (which explain methods exist,
``predict`` on a batch, ``explain_<method>`` on a batch) through the
signatures a service would call, so a score measured here is a score of what
is served. Perturbed images go through ``predict`` in batches, so a server
with batching enabled does the batching.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from gradcam_serving import signatures as sig

__all__ = ["Backend", "InProcessBackend", "ServerBackend", "choose_methods", "explain_methods"]


_EXPLAIN_INPUTS = set(sig.signature_table(())[sig.EXPLAIN].inputs)


def explain_methods(signatures: Mapping[str, tuple[set[str], set[str]]]) -> dict[str, str]:
    """``{method: signature}`` from ``{signature: (inputs, outputs)}``.

    The methods are those the signature table names (``explain_<method>``) that follow the
    ``explain`` contract; an export without any is evaluated through plain ``explain``
    (as :data:`gradcam_serving.signatures.DEFAULT_METHOD`).
    """
    def follows_contract(name: str) -> bool:
        inputs, outputs = signatures[name]
        return inputs == _EXPLAIN_INPUTS and any(family.map in outputs for family in sig.FAMILIES.values())

    methods = {
        method: sig.explain_signature(method)
        for method in sig.exported_methods(signatures) if follows_contract(sig.explain_signature(method))
    }
    if methods:
        return methods
    if sig.EXPLAIN in signatures and follows_contract(sig.EXPLAIN):
        return {sig.DEFAULT_METHOD: sig.EXPLAIN}
    raise ValueError(f"no explain signature with inputs images and class_index found (has {sorted(signatures)})")


def choose_methods(available: Mapping[str, str], requested: Sequence[str] | None) -> dict[str, str]:
    """``{method: signature}`` to score: every available one when nothing is asked, else those asked.

    Names are checked by :func:`gradcam_serving.signatures.resolve_methods`, the one resolver every tool uses
    (``default`` is the plain ``explain`` signature, ``all`` every method).
    """
    exported = [method for method in available if method != sig.DEFAULT_METHOD]
    chosen = sig.resolve_methods(list(requested) if requested else "all", exported)
    return {method: available.get(method, sig.explain_signature(method)) for method in chosen}


def signature_contracts(signature_defs: Mapping[str, object]) -> dict[str, tuple[set[str], set[str]]]:
    """``{signature: (input aliases, output aliases)}`` of SignatureDefs (protos or the client's metadata)."""
    return {name: (set(d.inputs), set(d.outputs)) for name, d in signature_defs.items()}  # type: ignore[attr-defined]


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


class InProcessBackend:
    """An export evaluated in this process on TF Serving's loading path."""

    def __init__(self, export_dir: str | os.PathLike[str]) -> None:
        from gradcam_serving.runtime import open_export

        self.export = open_export(export_dir)
        self.name = _export_name(Path(export_dir))

    def methods(self) -> dict[str, str]:
        return explain_methods(signature_contracts(self.export.signature_defs))

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self._run(sig.PREDICT, {sig.IMAGES: images}, sig.PROBABILITIES)

    def explain(self, signature: str, images: np.ndarray, class_index: np.ndarray) -> np.ndarray:
        inputs = {sig.IMAGES: images, sig.CLASS_INDEX: np.asarray(class_index, np.int32)}
        return self._run(signature, inputs, sig.map_output(self.export.signature(signature).outputs))

    def _run(self, signature: str, inputs: Mapping[str, np.ndarray], output: str) -> np.ndarray:
        from gradcam_serving.runtime import run_checked

        return run_checked(self.export, signature, inputs)[output]

    def close(self) -> None:
        self.export.close()


class ServerBackend:
    """A model on TF Serving or ``gradcam-serving serve``, through our gRPC client."""

    def __init__(self, server: str, model: str, *, version: int | None = None, timeout: float = 60.0) -> None:
        from gradcam_serving.client import ExplainClient, Timeout

        self.client = ExplainClient(server, model, version=version, timeout=Timeout(timeout))
        self.name = f"{model}@{server}" if version is None else f"{model}/{version}@{server}"

    def methods(self) -> dict[str, str]:
        return explain_methods(signature_contracts(self.client.metadata().signatures))

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
    for method in sig.METHOD_FAMILIES:
        if signature == sig.explain_signature(method):
            return method
    raise ValueError(f"{signature!r} is neither 'explain' nor an explain_<method> signature")


def _export_name(path: Path) -> str:
    """``NAME/VERSION`` for a version folder, else the folder's name."""
    return f"{path.parent.name}/{path.name}" if path.name.isdigit() else path.name
