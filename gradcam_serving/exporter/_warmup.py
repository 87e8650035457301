"""Warmup records (``assets.extra/tf_serving_warmup_requests``) and the sample requests they are made from.

TF Serving replays these PredictionLog records when it loads a version, before
the version serves, so the first real ``explain`` does not pay for graph
optimisation and kernel selection (g3doc/saved_model_warmup.md). The same
sample requests feed the export gate, and ``validate`` for signatures that
``export --warmup`` left without a record.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from gradcam_serving import signatures as sig
from gradcam_serving.runtime import MAX_WARMUP_RECORDS, read_warmup_requests

__all__ = [
    "MAX_WARMUP_RECORDS", "WARMUP_FILE", "read_warmup_requests", "sample_requests", "warmup_records",
    "write_warmup_requests",
]

WARMUP_FILE = Path(sig.WARMUP_FILE)
_SAMPLE_SEED = 20261125


def sample_requests(
    input_size: Sequence[int], num_classes: int, methods: Sequence[str] = (sig.DEFAULT_EXPORT_METHOD,),
    topk: bool = True,
) -> dict[str, dict[str, np.ndarray]]:
    """A small fixed batch per signature of the table (and ``serving_default``), to compare loading paths.

    The encoded batch mixes PNG and JPEG and two image sizes, as real callers do.
    """
    height, width = input_size
    images = np.random.default_rng(_SAMPLE_SEED).integers(0, 256, (2, height, width, 3), dtype=np.uint8)
    encoded = np.array([_encode(images[0], "PNG"), _encode(images[1, : height // 2 + 1], "JPEG")], dtype=object)
    values = {
        sig.IMAGES: images,
        sig.IMAGE_BYTES: encoded,
        sig.CLASS_INDEX: np.array([sig.PREDICTED_CLASS, num_classes - 1], np.int32),
        sig.K: np.array([min(2, num_classes), 1], np.int32),
    }
    requests = {
        name: {alias: values[alias] for alias in row.inputs}
        for name, row in sig.signature_table(methods, topk).items()
    }
    requests[sig.SERVING_DEFAULT] = requests[sig.PREDICT]
    return requests


def warmup_records(requests: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
    """One image per signature: enough to warm every kernel, small enough to load fast."""
    return {name: {alias: value[:1] for alias, value in inputs.items()} for name, inputs in requests.items()}


def _encode(image: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt)
    return buffer.getvalue()


def write_warmup_requests(export_dir: Path, requests: Mapping[str, Mapping[str, np.ndarray]]) -> Path:
    """Write one PredictLog per ``{signature: inputs}`` into the export."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    if len(requests) > MAX_WARMUP_RECORDS:
        raise ValueError(f"{len(requests)} warmup records exceed TF Serving's maximum of {MAX_WARMUP_RECORDS}")
    path = export_dir / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, inputs in requests.items():
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = signature
            for alias, value in inputs.items():
                request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path
