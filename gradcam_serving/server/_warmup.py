"""Replay ``assets.extra/tf_serving_warmup_requests`` when a version loads.

Follows ``saved_model_warmup_util.cc``: the file is a TFRecord of
``tensorflow.serving.PredictionLog``; each ``predict_log`` request runs through
the same predict path (and batching) as live traffic; more than 1000 records,
an unparsable record, a corrupt file or any failing request fails the load of
that version. ``classify_log``/``regress_log``/``multi_inference_log`` would
need Classify/Regress, which this server does not implement, so they fail the
load with UNIMPLEMENTED.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from gradcam_serving.errors import DataLossError, InvalidArgumentError, UnimplementedError
from gradcam_serving.server._tf_errors import from_tf_error
from gradcam_serving.signatures import MAX_WARMUP_RECORDS, WARMUP_FILE

__all__ = ["MAX_WARMUP_RECORDS", "WARMUP_FILE", "run_warmup"]

_log = logging.getLogger("gradcam_serving.server")


def run_warmup(
    version_path: str, run_request: Callable[[object], None], iterations: int = 1
) -> int:
    """Replay the warmup file of one version folder, if there is one.

    Args:
        version_path: the version folder.
        run_request: runs one ``PredictRequest`` and raises ``ServingError`` on failure.
        iterations: ``--num_request_iterations_for_warmup``.

    Returns:
        The number of records replayed (0 when there is no file).

    Raises:
        ServingError: the first failure, with TF Serving's code and text.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(version_path, WARMUP_FILE)
    if not os.path.exists(path):
        _log.info("No warmup data file found at %s", path)
        return 0
    _log.info("Starting to read warmup data for model at %s", path)
    count = 0
    try:
        for record in tf.compat.v1.io.tf_record_iterator(path):
            log = prediction_log_pb2.PredictionLog()
            try:
                log.ParseFromString(record)
            except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError subclasses
                text = record.decode("utf-8", errors="replace")
                raise InvalidArgumentError(f"Failed to parse warmup record: {text} from {path}") from exc
            for _ in range(max(1, iterations)):
                _run_record(log, run_request)
            count += 1
            if count > MAX_WARMUP_RECORDS:
                raise InvalidArgumentError(
                    f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}"
                )
    except tf.errors.OpError as exc:
        error = from_tf_error(exc)
        if isinstance(exc, tf.errors.DataLossError):
            raise DataLossError(f"{error.message}. Please verify your warmup data is in TFRecord format.") from exc
        raise error from exc
    _log.info("Finished reading warmup data for model at %s. Number of warmup records read: %d.", path, count)
    return count


def _run_record(log: object, run_request: Callable[[object], None]) -> None:
    kind = log.WhichOneof("log_type")  # type: ignore[attr-defined]
    if kind is None:
        return
    if kind == "predict_log":
        run_request(log.predict_log.request)  # type: ignore[attr-defined]
        return
    number = log.DESCRIPTOR.fields_by_name[kind].number  # type: ignore[attr-defined]
    if kind in ("predict_streamed_log", "session_run_log"):
        raise UnimplementedError(f"Unsupported log_type for warmup: {number}")
    raise UnimplementedError(
        f"Warmup record of type {kind} needs the {kind.removesuffix('_log')} API, "
        "which gradcam-serving's local server does not implement"
    )

