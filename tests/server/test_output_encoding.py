"""Output encoding: the fast packed path gives the same typed fields as TF Serving's AsProtoField."""

from __future__ import annotations

import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2

from gradcam_serving.server._tensors import from_numpy


@pytest.mark.parametrize(
    "array",
    [
        pytest.param(np.random.default_rng(0).random((4, 7, 5), dtype=np.float32), id="float32-heatmaps"),
        pytest.param(np.random.default_rng(1).random(9), id="float64"),
        pytest.param(np.zeros((0, 3), np.float32), id="empty"),
        pytest.param(np.float32(-2.5), id="scalar"),
        pytest.param(np.array([np.nan, np.inf, -0.0], np.float32), id="special-values"),
    ],
)
def test_floats_are_byte_identical_to_typed_extend(array):
    fast = from_numpy(array)
    slow = tensor_pb2.TensorProto(dtype=fast.dtype, tensor_shape=fast.tensor_shape)
    field = slow.double_val if array.dtype == np.float64 else slow.float_val
    field.extend(np.ravel(array).tolist())
    assert fast.SerializeToString() == slow.SerializeToString()
    assert not fast.tensor_content
    import tensorflow as tf

    np.testing.assert_array_equal(tf.make_ndarray(fast), array)
