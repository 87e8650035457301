"""Tiny deterministic SavedModels that follow the serving contract.

``images`` (uint8 NHWC, 3 channels) -> mean colour per image -> ``@ W`` ->
softmax over 3 classes. ``explain`` adds ``heatmap[n, h, w] = x[n, h, w, :] .
W[:, c]`` for the requested (or predicted, when -1) class, with a
``tf.debugging`` assert that the class is in range. :func:`expected` computes
the same in numpy, so tests can check exact values.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from gradcam_serving import signatures as sig

LABELS = (b"cat", b"dog", b"bird")
BASE_W = np.array([[2.0, -1.0, 0.5], [-1.0, 2.0, 0.5], [0.5, 0.5, 2.0]], dtype=np.float32)


class _Classifier(tf.Module):
    def __init__(self, scale: float) -> None:
        super().__init__()
        self.w = tf.Variable(BASE_W * scale, name="w")
        self.labels = tf.constant(LABELS)

    def _forward(self, images: tf.Tensor):
        x = tf.cast(images, tf.float32) / 255.0
        probs = tf.nn.softmax(tf.matmul(tf.reduce_mean(x, axis=[1, 2]), self.w))
        predicted = tf.argmax(probs, axis=1, output_type=tf.int32)
        return x, probs, predicted

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name=sig.IMAGES)])
    def predict(self, images):
        _, probs, predicted = self._forward(images)
        return {
            sig.PROBABILITIES: probs,
            sig.CLASS_INDEX: predicted,
            sig.SCORE: tf.reduce_max(probs, axis=1),
            sig.LABEL: tf.gather(self.labels, predicted),
        }

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.uint8, name=sig.IMAGES),
        tf.TensorSpec([None], tf.int32, name=sig.CLASS_INDEX),
    ])
    def explain(self, images, class_index):
        x, probs, predicted = self._forward(images)
        chosen = tf.where(class_index < 0, predicted, class_index)
        with tf.control_dependencies([tf.debugging.assert_less(chosen, 3, message="class_index out of range")]):
            chosen = tf.identity(chosen)
        weights = tf.gather(tf.transpose(self.w), chosen)
        return {
            sig.PROBABILITIES: probs,
            sig.CLASS_INDEX: chosen,
            sig.SCORE: tf.gather(probs, chosen, batch_dims=1),
            sig.LABEL: tf.gather(self.labels, chosen),
            sig.HEATMAP: tf.einsum("nhwc,nc->nhw", x, weights),
        }


def write_model(base: str, version: int | str, *, scale: float = 1.0, atomic: bool = True) -> str:
    """Save a version folder under ``base``; with ``atomic``, via a temp folder and ``os.rename``."""
    module = _Classifier(scale)
    target = os.path.join(base, str(version))
    tmp = os.path.join(base, f".tmp-{version}") if atomic else target
    tf.saved_model.save(module, tmp, signatures={
        sig.SERVING_DEFAULT: module.predict, sig.PREDICT: module.predict, sig.EXPLAIN: module.explain,
    })
    if atomic:
        os.rename(tmp, target)
    return target


def write_broken(base: str, version: int) -> str:
    """A version folder whose saved_model.pb is garbage (written atomically)."""
    tmp = os.path.join(base, f"{version}.tmp")
    os.makedirs(tmp)
    with open(os.path.join(tmp, "saved_model.pb"), "wb") as handle:
        handle.write(b"\x08\x01this is not a SavedModel\xff\xff")
    target = os.path.join(base, str(version))
    os.rename(tmp, target)
    return target


def predict_request(images: np.ndarray, signature: str = sig.PREDICT, model: str = "clf",
                    class_index: np.ndarray | None = None) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model, signature_name=signature))
    request.inputs[sig.IMAGES].CopyFrom(tf.make_tensor_proto(images, dtype=tf.uint8))
    if class_index is not None:
        request.inputs[sig.CLASS_INDEX].CopyFrom(tf.make_tensor_proto(class_index, dtype=tf.int32))
    return request


def write_warmup(version_dir: str, requests: list[predict_pb2.PredictRequest] | None = None,
                 raw: bytes | None = None) -> str:
    """Write ``assets.extra/tf_serving_warmup_requests`` (records, or raw bytes)."""
    folder = os.path.join(version_dir, "assets.extra")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "tf_serving_warmup_requests")
    if raw is not None:
        with open(path, "wb") as handle:
            handle.write(raw)
        return path
    with tf.io.TFRecordWriter(path) as writer:
        for request in requests or []:
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def copy_version(src: str, base: str, version: int) -> str:
    """Copy a version folder atomically into ``base/version``."""
    tmp = os.path.join(base, f"{version}.copying")
    shutil.copytree(src, tmp)
    target = os.path.join(base, str(version))
    os.rename(tmp, target)
    return target


def images(n: int = 2, size: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def expected(images_: np.ndarray, scale: float = 1.0, class_index: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The numpy twin of the model."""
    x = images_.astype(np.float32) / 255.0
    w = BASE_W * scale
    logits = x.mean(axis=(1, 2)) @ w
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    predicted = probs.argmax(axis=1).astype(np.int32)
    out = {
        sig.PROBABILITIES: probs, sig.CLASS_INDEX: predicted, sig.SCORE: probs.max(axis=1),
        sig.LABEL: np.array([LABELS[i] for i in predicted], dtype=object),
    }
    if class_index is not None:
        chosen = np.where(class_index < 0, predicted, class_index).astype(np.int32)
        out[sig.CLASS_INDEX] = chosen
        out[sig.SCORE] = probs[np.arange(len(chosen)), chosen]
        out[sig.LABEL] = np.array([LABELS[i] for i in chosen], dtype=object)
        out[sig.HEATMAP] = np.einsum("nhwc,nc->nhw", x, w.T[chosen])
    return out
