"""The numpy side of the client: encode requests, decode responses.

Kept apart from :mod:`._base` (and imported on first use) so that importing
the client does not import numpy; everything here is pure data conversion,
no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from gradcam_serving import signatures as sig
from gradcam_serving import wire as _wire
from gradcam_serving.client._encoded import IMAGE_BYTES
from gradcam_serving.client._images import Images, decode_encoded, to_batch, to_class_indices
from gradcam_serving.client._tensors import (
    array_to_tensor,
    dtype_name,
    shape_from_proto,
    strings_to_tensor,
    tensor_to_array,
)
from gradcam_serving.client._types import (
    Explanation,
    ModelMetadata,
    ModelSpec,
    Prediction,
    SignatureInfo,
    TensorSpec,
    VersionStatus,
)
from gradcam_serving.errors import GradcamServingError, StatusCode, VersionState

__all__ = [
    "SIGNATURE_DEF",
    "decode_encoded",
    "decode_encoded_explanation",
    "decode_explanation",
    "decode_metadata",
    "decode_prediction",
    "decode_status",
    "decode_topk_explanation",
    "explain_bytes_request",
    "explain_request",
    "explanation_from_outputs",
    "predict_bytes_request",
    "predict_request",
    "with_k",
]

SIGNATURE_DEF = sig.SIGNATURE_DEF


def predict_request(model_spec: Any, images: Images) -> Any:
    """A ``PredictRequest`` feeding ``images`` to the signature named in ``model_spec``."""
    request = _wire.PredictRequest(model_spec=model_spec)
    request.inputs[sig.IMAGES].CopyFrom(array_to_tensor(to_batch(images)))
    return request


def explain_request(model_spec: Any, images: Images, class_index: int | Sequence[int] | None) -> Any:
    """A ``PredictRequest`` for ``explain``: images plus one class index per image."""
    request = predict_request(model_spec, images)
    count = _batch_size(request.inputs[sig.IMAGES])
    request.inputs[sig.CLASS_INDEX].CopyFrom(array_to_tensor(to_class_indices(class_index, count)))
    return request


def predict_bytes_request(model_spec: Any, encoded: list[bytes]) -> Any:
    """A ``PredictRequest`` feeding encoded files to ``predict_bytes`` (string ``[N]``)."""
    request = _wire.PredictRequest(model_spec=model_spec)
    request.inputs[IMAGE_BYTES].CopyFrom(strings_to_tensor(encoded))
    return request


def explain_bytes_request(model_spec: Any, encoded: list[bytes], class_index: int | Sequence[int] | None) -> Any:
    """A ``PredictRequest`` for ``explain_bytes``: encoded files plus one class index per image."""
    request = predict_bytes_request(model_spec, encoded)
    request.inputs[sig.CLASS_INDEX].CopyFrom(array_to_tensor(to_class_indices(class_index, len(encoded))))
    return request


def with_k(request: Any, k: int) -> Any:
    """Add ``k`` of ``explain_topk``/``explain_topk_bytes``, one per image: a batching server refuses scalars."""
    count = _batch_size(request.inputs[sig.IMAGES if sig.IMAGES in request.inputs else IMAGE_BYTES])
    request.inputs[sig.K].CopyFrom(array_to_tensor(np.full([count], k, dtype=np.int32)))
    return request


def _batch_size(tensor: Any) -> int:
    return int(tensor.tensor_shape.dim[0].size)


def _model_spec_of(spec: Any) -> ModelSpec:
    version = spec.version.value if spec.HasField("version") else None
    return ModelSpec(name=spec.name, signature_name=spec.signature_name, version=version)


def _outputs(response: Any, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    missing = [name for name in names if name not in response.outputs]
    if missing:
        raise GradcamServingError(
            f"the response lacks outputs {missing} (it has {sorted(response.outputs)}); "
            "is the model a gradcam-serving export?"
        )
    return {name: tensor_to_array(response.outputs[name]) for name in names}


def _text(value: object) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _prediction_fields(outputs: dict[str, np.ndarray], model_spec: ModelSpec) -> dict[str, Any]:
    return {
        sig.PROBABILITIES: outputs[sig.PROBABILITIES].astype(np.float32, copy=False),
        sig.CLASS_INDEX: outputs[sig.CLASS_INDEX].astype(np.int32, copy=False),
        sig.SCORE: outputs[sig.SCORE].astype(np.float32, copy=False),
        sig.LABEL: tuple(_text(value) for value in outputs[sig.LABEL].ravel()),
        "model_spec": model_spec,
    }


def decode_prediction(response: Any) -> Prediction:
    """``PredictResponse`` of the ``predict`` signature → :class:`Prediction`."""
    return Prediction(**_prediction_fields(_outputs(response, sig.PREDICT_OUTPUTS), _model_spec_of(response.model_spec)))


def _decoded(alias: str, value: np.ndarray) -> np.ndarray:
    """An output as the contract types it: float32/int32 arrays, bytes for binary outputs, text otherwise."""
    spec = sig.output_spec(alias)
    if spec is None or spec.dtype not in ("float32", "int32", "string"):
        return value
    if spec.dtype != "string":
        return value.astype(np.dtype(spec.dtype), copy=False)
    convert = bytes if spec.binary else _text
    return np.array([convert(item) for item in value.ravel()], dtype=object).reshape(value.shape)


def _explanation(response: Any, *, topk: bool = False, k: int | None = None, encoded: bool = False) -> Explanation:
    """A ``PredictResponse`` of any explain signature → :class:`Explanation` (see :func:`explanation_from_outputs`)."""
    arrays = {alias: tensor_to_array(tensor) for alias, tensor in response.outputs.items()}
    return explanation_from_outputs(arrays, _model_spec_of(response.model_spec), topk=topk, k=k, encoded=encoded)


def explanation_from_outputs(
    arrays: Mapping[str, np.ndarray],
    model_spec: ModelSpec,
    *,
    topk: bool = False,
    k: int | None = None,
    encoded: bool = False,
) -> Explanation:
    """Any explain answer, as arrays by alias, → :class:`Explanation`, read by its family's outputs.

    The one reader of explain answers: the client's responses and an export run in-process (``view``)
    come through here, so both follow the signature table. ``topk``: an ``explain_topk*`` answer, whose
    per-class outputs are ``[N, k, ...]``; ``k`` trims its padding rows. ``encoded`` requires the
    family's binary outputs (the overlay PNG of the ``*_bytes`` twins), under their current or their
    legacy alias.
    """
    try:
        family = sig.family_answering(arrays)
    except ValueError:
        maps = sorted({family.map for family in sig.FAMILIES.values()})
        raise GradcamServingError(
            f"the response lacks outputs {maps} (it has {sorted(arrays)}); is the model a gradcam-serving export?"
        ) from None
    missing = [alias for alias in sig.PREDICT_OUTPUTS if alias not in arrays]
    if missing:
        raise GradcamServingError(
            f"the response lacks outputs {missing} (it has {sorted(arrays)}); is the model a gradcam-serving export?"
        )
    outputs = {alias: np.asarray(value) for alias, value in arrays.items()}
    if topk and k is not None:
        outputs = {alias: _rows(alias, value, k) for alias, value in outputs.items()}
    fields = _prediction_fields(outputs, model_spec)
    decoded = {alias: _decoded(alias, value) for alias, value in outputs.items() if alias not in sig.PREDICT_OUTPUTS}
    methods = decoded.get(sig.METHOD)
    labels = outputs[sig.LABEL]
    if topk:
        fields[sig.LABEL] = tuple(tuple(_text(v) for v in row) for row in labels)
    return Explanation(
        **fields,
        heatmap=decoded[family.map],
        cam=decoded.get(sig.CAM),
        overlay_png=_binary_outputs(family, decoded, required=encoded),
        top_k=(int(labels.shape[1]) if labels.ndim == 2 else 0) if topk else None,
        method=None if methods is None else tuple(str(m) for m in (methods if methods.ndim == 1 else methods[:, 0])),
        family=family.name,
        outputs=MappingProxyType(decoded),
    )


def _rows(alias: str, value: np.ndarray, k: int) -> np.ndarray:
    """A top-k output trimmed to ``k`` rows per image (per-image outputs, such as probabilities, stay whole)."""
    spec = sig.output_spec(alias)
    return value if spec is not None and spec.per_image else value[:, :k]


def _binary_outputs(family: sig.Family, decoded: dict[str, np.ndarray], *, required: bool) -> tuple[bytes, ...] | None:
    """The family's first binary output (the overlay PNG), under whichever alias the export used."""
    for spec in family.encoded_outputs:
        if not spec.binary:
            continue
        for alias in (spec.alias, spec.legacy_alias):
            if alias in decoded:
                return tuple(decoded[alias].ravel())
        if required:
            raise GradcamServingError(
                f"the response lacks output {spec.alias!r} (it has {sorted(decoded)}); "
                "is the model a gradcam-serving export?"
            )
    return None


def decode_explanation(response: Any) -> Explanation:
    """``PredictResponse`` of an ``explain`` signature → :class:`Explanation`."""
    return _explanation(response)


def decode_encoded_explanation(response: Any) -> Explanation:
    """``PredictResponse`` of an ``explain_bytes`` signature → :class:`Explanation` with ``overlay_png``."""
    return _explanation(response, encoded=True)


def decode_topk_explanation(response: Any, k: int | None = None) -> Explanation:
    """``PredictResponse`` of ``explain_topk`` (or its bytes twin) → :class:`Explanation` with ``[N, k]`` fields.

    ``k`` trims the padding rows a batching server adds when it merged requests with a larger k.
    """
    return _explanation(response, topk=True, k=k)


def _tensor_specs(infos: Any) -> dict[str, TensorSpec]:
    return {
        alias: TensorSpec(name=alias, dtype=dtype_name(info.dtype), shape=shape_from_proto(info.tensor_shape))
        for alias, info in sorted(infos.items())
    }


def _signature_info(name: str, definition: Any) -> SignatureInfo:
    return SignatureInfo(
        name=name,
        method_name=definition.method_name,
        inputs=_tensor_specs(definition.inputs),
        outputs=_tensor_specs(definition.outputs),
    )


def decode_metadata(response: Any) -> ModelMetadata:
    """``GetModelMetadataResponse`` → :class:`ModelMetadata`.

    The ``Any`` keeps its official type URL on the wire; its value bytes are
    parsed into our wire-compatible ``SignatureDefMap``.
    """
    if SIGNATURE_DEF not in response.metadata:
        raise GradcamServingError(f"metadata response has no {SIGNATURE_DEF!r} entry: {sorted(response.metadata)}")
    packed = response.metadata[SIGNATURE_DEF]
    if packed.type_url.rpartition("/")[2] != _wire.SIGNATURE_DEF_MAP_TYPE_URL.rpartition("/")[2]:
        raise GradcamServingError(f"signature_def metadata has unexpected type {packed.type_url!r}")
    signature_map = _wire.SignatureDefMap.FromString(packed.value)
    signatures = {
        name: _signature_info(name, definition) for name, definition in sorted(signature_map.signature_def.items())
    }
    spec = _model_spec_of(response.model_spec)
    return ModelMetadata(model_name=spec.name, version=spec.version, signatures=signatures)


def decode_status(response: Any) -> list[VersionStatus]:
    """``GetModelStatusResponse`` → one :class:`VersionStatus` per version, newest first."""
    statuses = [
        VersionStatus(
            version=int(item.version),
            state=_state(item.state),
            error_code=_error_code_name(item.status.error_code),
            error_message=item.status.error_message,
        )
        for item in response.model_version_status
    ]
    return sorted(statuses, key=lambda status: status.version, reverse=True)


def _state(number: int) -> VersionState:
    try:
        return VersionState(number)
    except ValueError:
        return VersionState.UNKNOWN


def _error_code_name(number: int) -> str:
    """The name of a ``StatusProto.error_code``; a number no canonical code has is shown as ``CODE_<n>``."""
    try:
        return StatusCode(number).name
    except ValueError:
        return f"CODE_{number}"
