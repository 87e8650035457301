"""Warmup records: ``assets.extra/tf_serving_warmup_requests`` in every export.

TF Serving replays these PredictionLog records when it loads a version, before
the version serves, so the first real ``explain`` does not pay for graph
optimisation and kernel selection (g3doc/saved_model_warmup.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError

from gradcam_serving import signatures as sig

__all__ = ["MAX_WARMUP_RECORDS", "WARMUP_FILE", "read_warmup_requests", "write_warmup_requests"]

WARMUP_FILE = Path(sig.WARMUP_FILE)
MAX_WARMUP_RECORDS = 1000  # TF Serving's kMaxNumRecords


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


def read_warmup_requests(export_dir: Path) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """Yield ``(signature, inputs)`` for each predict record of an export's warmup file."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = export_dir / WARMUP_FILE
    for count, raw in enumerate(tf.data.TFRecordDataset(str(path)).as_numpy_iterator(), start=1):
        if count > MAX_WARMUP_RECORDS:
            raise ValueError(f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}")
        try:
            log = prediction_log_pb2.PredictionLog.FromString(raw)
        except DecodeError as exc:
            raise ValueError(f"warmup record {count} in {path} is not a tensorflow.serving.PredictionLog") from exc
        if log.WhichOneof("log_type") != "predict_log":
            raise ValueError(f"warmup record {count} in {path} is a {log.WhichOneof('log_type')}, not a predict_log")
        request = log.predict_log.request
        yield request.model_spec.signature_name or "serving_default", {
            alias: tf.make_ndarray(tensor) for alias, tensor in request.inputs.items()
        }
