"""Warmup records: ``assets.extra/tf_serving_warmup_requests`` in every export.

TF Serving replays these PredictionLog records when it loads a version, before
the version serves, so the first real ``explain`` does not pay for graph
optimisation and kernel selection (g3doc/saved_model_warmup.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf

from gradcam_serving import signatures as sig
from gradcam_serving.runtime import MAX_WARMUP_RECORDS, read_warmup_requests

__all__ = ["MAX_WARMUP_RECORDS", "WARMUP_FILE", "read_warmup_requests", "write_warmup_requests"]

WARMUP_FILE = Path(sig.WARMUP_FILE)


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
