"""Exports written by hand from the signature table: every row answers with its output specs' dtypes and shapes.

Nothing here knows what a family answers: each output is made from :meth:`SignatureRow.output_specs`
(zeros, ``"a"`` for text, ``b"png"`` for bytes), so an export for a family that exists only in a test
comes out as the table says. ``wrong`` names one signature whose map is 3 x 3 pixels instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gradcam_serving import signatures as sig
from gradcam_serving.exports import ExportMetadata

SIZE = (8, 8)
CLASSES = 3


def write_fake_export(folder: Path, methods: tuple[str, ...] = ("gradcam",), *, wrong: str | None = None) -> Path:
    """A version folder holding ``methods`` (input size 8 x 8, 3 classes), warmup records and metadata."""
    import tensorflow as tf

    from gradcam_serving.exporter._warmup import _encode, write_warmup_requests

    metadata = ExportMetadata(methods=methods, default_method=methods[0], input_size=SIZE, num_classes=CLASSES)
    table = metadata.signature_table()
    functions = {name: _function(tf, row, wrong) for name, row in table.items()}
    functions[sig.SERVING_DEFAULT] = functions[sig.PREDICT]
    tf.saved_model.save(tf.Module(), str(folder), signatures=functions)
    images = np.zeros((1, *SIZE, 3), np.uint8)
    values = {sig.IMAGES: images, sig.IMAGE_BYTES: np.array([_encode(images[0], "PNG")], object),
              sig.CLASS_INDEX: np.zeros(1, np.int32), sig.K: np.ones(1, np.int32)}
    write_warmup_requests(folder, {name: {alias: values[alias] for alias in row.inputs} for name, row in table.items()})
    (folder / sig.METADATA_FILE).write_text(metadata.as_json(), encoding="utf-8")
    return folder


def _function(tf, row: sig.SignatureRow, wrong: str | None):
    pixel_spec = tf.TensorSpec([None], tf.string) if row.encoded else tf.TensorSpec([None, None, None, 3], tf.uint8)
    specs = [pixel_spec] + [tf.TensorSpec([None], tf.int32)] * (len(row.inputs) - 1)

    def run(*inputs):
        count = tf.shape(inputs[0])[0]
        size = SIZE if row.encoded else tf.unstack(tf.shape(inputs[0])[1:3])
        if row.name == wrong:
            size = (3, 3)
        lead = [count] if row.head != sig.HEAD_TOPK else [count, tf.reduce_max(inputs[1])]
        symbols = {"C": CLASSES, "H": size[0], "W": size[1], "h": 2, "w": 2}
        out = {}
        for spec in row.output_specs:
            shape = tf.stack([*([count] if spec.per_image else lead),
                              *(symbols[d] if isinstance(d, str) else d for d in spec.shape)])
            if spec.dtype == "string":
                out[spec.alias_in(row.contract)] = tf.fill(shape, "png" if spec.binary else "a")
            else:
                out[spec.alias_in(row.contract)] = tf.zeros(shape, tf.as_dtype(spec.dtype))
        return out

    named = [tf.TensorSpec(s.shape, s.dtype, name=alias) for s, alias in zip(specs, row.inputs)]
    return tf.function(run, input_signature=named).get_concrete_function()
