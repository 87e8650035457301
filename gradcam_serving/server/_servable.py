"""One loaded model version: a SavedModel in its own ``tf.Graph`` + ``Session``.

This is TF Serving's loading path (``SavedModelBundle``): the ``tf.compat.v1``
loader with the configured tag set, then every run feeds and fetches by the
SignatureDef tensor names with no targets. ``tf.saved_model.load`` is never
used, because it would hide exactly the failures the real binary shows (for
example Keras 3 variables that only a Python object graph can find).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Sequence

import numpy as np

from gradcam_serving.server._errors import DataLoss, NotFound, ServingError, from_tf_error, from_undecodable

__all__ = ["Servable", "SessionSettings", "load_servable"]

_log = logging.getLogger("gradcam_serving.server")


@dataclasses.dataclass(frozen=True)
class SessionSettings:
    """How each version's Session is built.

    Attributes:
        tags: the MetaGraph tag set to load (TF Serving default ``{"serve"}``).
        intra_op_parallelism / inter_op_parallelism: 0 lets TensorFlow choose.
    """

    tags: tuple[str, ...] = ("serve",)
    intra_op_parallelism: int = 0
    inter_op_parallelism: int = 0


class Servable:
    """A loaded version that can run signatures; safe to call from many threads.

    Requests hold it through :meth:`acquire` / :meth:`release` so that
    :meth:`close` (on unload) waits for in-flight runs instead of breaking them.

    Attributes:
        name: model name. version: numeric version. path: the version folder.
        signature_defs: every SignatureDef of the MetaGraph, by key, including
            ``__saved_model_init_op`` (GetModelMetadata returns all of them).
    """

    def __init__(self, name: str, version: int, path: str, session: object, signature_defs: dict) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.signature_defs = signature_defs
        self._session = session
        self._users = 0
        self._closed = False
        self._cond = threading.Condition()
        self.session_run_count = 0

    def acquire(self) -> bool:
        """Pin the servable for one request; False once it is being unloaded."""
        with self._cond:
            if self._closed:
                return False
            self._users += 1
            return True

    def release(self) -> None:
        with self._cond:
            self._users -= 1
            self._cond.notify_all()

    def run(self, feeds: dict[str, np.ndarray], fetches: Sequence[str], timeout_ms: int = 0) -> list[np.ndarray]:
        """One ``Session.run`` feeding and fetching by tensor name.

        Args:
            feeds: tensor name (e.g. ``serving_default_images:0``) -> value.
            fetches: tensor names to fetch, in order.
            timeout_ms: ``RunOptions.timeout_in_ms``; 0 means no deadline.

        Raises:
            ServingError: TensorFlow's error with its own code and message.
        """
        import tensorflow as tf

        options = tf.compat.v1.RunOptions(timeout_in_ms=max(0, int(timeout_ms)))
        with self._cond:
            self.session_run_count += 1
        try:
            return list(self._session.run(list(fetches), feed_dict=feeds, options=options))  # type: ignore[attr-defined]
        except tf.errors.OpError as exc:
            raise from_tf_error(exc) from exc
        except UnicodeDecodeError as exc:
            # TF's wrapper could not turn a non-UTF-8 status message into str; its code is lost with it.
            raise from_undecodable(exc) from exc

    def close(self) -> None:
        """Stop new users, wait for in-flight ones, then free the Session."""
        with self._cond:
            self._closed = True
            self._cond.wait_for(lambda: self._users == 0)
        self._session.close()  # type: ignore[attr-defined]


def _read_meta_graph(path: str, tags: tuple[str, ...]) -> None:
    """Fail like TF's C++ reader (``cc/saved_model/reader.cc``) before loading."""
    from google.protobuf import message, text_format
    from tensorflow.core.protobuf import saved_model_pb2

    pb_path = os.path.join(path, "saved_model.pb")
    pbtxt_path = os.path.join(path, "saved_model.pbtxt")
    saved_model = saved_model_pb2.SavedModel()
    if os.path.exists(pb_path):
        try:
            with open(pb_path, "rb") as handle:
                saved_model.ParseFromString(handle.read())
        except (message.DecodeError, OSError) as exc:
            raise DataLoss(f"Can't parse {pb_path} as binary proto") from exc
    elif os.path.exists(pbtxt_path):
        try:
            with open(pbtxt_path, encoding="utf-8") as handle:
                text_format.Parse(handle.read(), saved_model)
        except (text_format.ParseError, OSError, UnicodeDecodeError) as exc:
            raise DataLoss(f"Can't parse {pbtxt_path} as text proto") from exc
    else:
        raise NotFound(
            f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {path}. "
            "Check that the directory exists and that you have the right permissions for accessing it."
        )
    wanted = set(tags)
    if not any(set(mg.meta_info_def.tags) == wanted for mg in saved_model.meta_graphs):
        raise NotFound(
            "Could not find meta graph def matching supplied tags: { "
            + " ".join(tags)
            + " }. To inspect available tag-sets in the SavedModel, please use the SavedModel CLI: "
            "`saved_model_cli`"
        )


def load_servable(name: str, version: int, path: str, settings: SessionSettings) -> Servable:
    """Load one version folder the way ``SavedModelBundleFactory`` does.

    Raises:
        ServingError: with TensorFlow's code, e.g. NOT_FOUND for a missing
            ``saved_model.pb`` or DATA_LOSS for a corrupt one.
    """
    import tensorflow as tf

    _read_meta_graph(path, settings.tags)
    graph = tf.Graph()
    config = tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=settings.intra_op_parallelism,
        inter_op_parallelism_threads=settings.inter_op_parallelism,
    )
    session = tf.compat.v1.Session(graph=graph, config=config)
    try:
        with graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(session, list(settings.tags), path)
    except tf.errors.OpError as exc:
        session.close()
        raise from_tf_error(exc) from exc
    except UnicodeDecodeError as exc:
        session.close()
        raise ServingError(from_undecodable(exc).message) from exc
    except (RuntimeError, ValueError, OSError) as exc:
        session.close()
        raise ServingError(str(exc)) from exc
    graph.finalize()
    signature_defs = {key: meta_graph.signature_def[key] for key in meta_graph.signature_def}
    _log.info("Successfully loaded servable version {name: %s version: %d}", name, version)
    return Servable(name, version, path, session, signature_defs)
