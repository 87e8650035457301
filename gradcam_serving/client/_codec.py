"""The numpy side of the client: encode requests, decode responses.

Kept apart from :mod:`._base` (and imported on first use) so that importing
the client does not import numpy; everything here is pure data conversion,
no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradcam_serving import signatures as sig
from gradcam_serving.client import _wire
from gradcam_serving.client._encoded import IMAGE_BYTES, OVERLAY_PNG
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
    ModelState,
    Prediction,
    SignatureInfo,
    TensorSpec,
    VersionStatus,
)
from gradcam_serving.errors import GradcamServingError

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


def _prediction_fields(outputs: dict[str, np.ndarray], response: Any) -> dict[str, Any]:
    return {
        sig.PROBABILITIES: outputs[sig.PROBABILITIES].astype(np.float32, copy=False),
        sig.CLASS_INDEX: outputs[sig.CLASS_INDEX].astype(np.int32, copy=False),
        sig.SCORE: outputs[sig.SCORE].astype(np.float32, copy=False),
        sig.LABEL: tuple(_text(value) for value in outputs[sig.LABEL].ravel()),
        "model_spec": _model_spec_of(response.model_spec),
    }


def decode_prediction(response: Any) -> Prediction:
    """``PredictResponse`` of the ``predict`` signature → :class:`Prediction`."""
    return Prediction(**_prediction_fields(_outputs(response, sig.PREDICT_OUTPUTS), response))


def _cam(response: Any) -> np.ndarray | None:
    """The raw map; exports made before ``explain_<method>`` existed do not return it."""
    if sig.CAM not in response.outputs:
        return None
    return tensor_to_array(response.outputs[sig.CAM]).astype(np.float32, copy=False)


_METHOD_OUTPUT = "method"
"""The CAM method that ran ([N] strings), in every explain/top-k answer of exports that name it."""


def _method(response: Any) -> str | None:
    """The method that ran; ``None`` from exports made before answers named it."""
    if _METHOD_OUTPUT not in response.outputs:
        return None
    names = tensor_to_array(response.outputs[_METHOD_OUTPUT]).ravel()
    return _text(names[0]) if names.size else None


def decode_explanation(response: Any) -> Explanation:
    """``PredictResponse`` of an ``explain`` signature → :class:`Explanation`."""
    outputs = _outputs(response, sig.EXPLAIN_OUTPUTS)
    heatmap = outputs[sig.HEATMAP].astype(np.float32, copy=False)
    return Explanation(**_prediction_fields(outputs, response), heatmap=heatmap, cam=_cam(response),
                       method=_method(response))


def decode_encoded_explanation(response: Any) -> Explanation:
    """``PredictResponse`` of an ``explain_bytes`` signature → :class:`Explanation` with ``overlay_png``."""
    outputs = _outputs(response, (*sig.EXPLAIN_OUTPUTS, OVERLAY_PNG))
    heatmap = outputs[sig.HEATMAP].astype(np.float32, copy=False)
    overlays = tuple(bytes(value) for value in outputs[OVERLAY_PNG].ravel())
    return Explanation(**_prediction_fields(outputs, response), heatmap=heatmap, overlay_png=overlays, cam=_cam(response),
                       method=_method(response))


def decode_topk_explanation(response: Any, k: int | None = None) -> Explanation:
    """``PredictResponse`` of ``explain_topk`` (or its bytes twin) → :class:`Explanation` with ``[N, k]`` fields.

    ``k`` trims the padding rows a batching server adds when it merged requests with a larger k.
    """
    outputs = _outputs(response, sig.TOPK_OUTPUTS)
    if k is not None:
        outputs = {name: value if name == sig.PROBABILITIES else value[:, :k] for name, value in outputs.items()}
    fields = _prediction_fields(outputs, response)
    labels = outputs[sig.LABEL]
    fields[sig.LABEL] = tuple(tuple(_text(value) for value in row) for row in labels.reshape(labels.shape[0], -1))
    return Explanation(
        **fields,
        heatmap=outputs[sig.HEATMAP].astype(np.float32, copy=False),
        cam=outputs[sig.CAM].astype(np.float32, copy=False),
        top_k=int(labels.shape[1]) if labels.ndim == 2 else 0,
        method=_method(response),
    )


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


def _state(number: int) -> ModelState:
    try:
        return ModelState(number)
    except ValueError:
        return ModelState.UNKNOWN


def _error_code_name(number: int) -> str:
    value = _wire.ErrorCode.values_by_number.get(number)
    return value.name if value is not None else f"CODE_{number}"
