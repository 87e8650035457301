"""One loaded model version: :class:`gradcam_serving.runtime.ExportSession` with the server's bookkeeping.

The runtime loads and runs the version exactly as TF Serving's
``SavedModelBundle`` does; this module only adds what a server needs around it:
pinning by in-flight requests so unloading waits for them, and TF's errors
mapped to the server's statuses.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from gradcam_serving import signatures as sig
from gradcam_serving.errors import InvalidArgumentError, UnknownError
from gradcam_serving.server._tf_errors import from_tf_error, from_undecodable

__all__ = ["Servable", "SessionSettings", "load_servable"]

_log = logging.getLogger("gradcam_serving.server")


@dataclasses.dataclass(frozen=True)
class SessionSettings:
    """How each version's Session is built.

    Attributes:
        tags: the MetaGraph tag set to load (TF Serving default ``{"serve"}``).
        intra_op_parallelism / inter_op_parallelism: 0 lets TensorFlow choose.
        config_text: ``--tensorflow_session_config_file``'s text ConfigProto; "" is TF Serving's default.
    """

    tags: tuple[str, ...] = (sig.SERVE_TAG,)
    intra_op_parallelism: int = 0
    inter_op_parallelism: int = 0
    config_text: str = ""


class Servable:
    """A loaded version that can run signatures; safe to call from many threads.

    Requests hold it through :meth:`acquire` / :meth:`release` so that
    :meth:`close` (on unload) waits for in-flight runs instead of breaking them.

    Attributes:
        name: model name. version: numeric version. path: the version folder.
        signature_defs: every SignatureDef of the MetaGraph, by key, including
            ``__saved_model_init_op`` (GetModelMetadata returns all of them).
        session_config: the ConfigProto its Session was built with.
    """

    def __init__(self, name: str, version: int, path: str, export: Any) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.signature_defs = export.signature_defs
        self.session_config = export.config
        self._export = export
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

        with self._cond:
            self.session_run_count += 1
        try:
            return self._export.run_tensors(feeds, fetches, timeout_ms=timeout_ms)
        except tf.errors.OpError as exc:
            raise from_tf_error(exc) from exc
        except ValueError as exc:
            # Python's Session checks a feed's shape against the placeholder's before running; TF Serving's
            # C++ Session does not, and the op that reads the input answers INVALID_ARGUMENT instead.
            raise InvalidArgumentError(str(exc)) from exc
        except UnicodeDecodeError as exc:
            # TF's wrapper could not turn a non-UTF-8 status message into str; its code is lost with it.
            raise from_undecodable(exc) from exc

    def close(self) -> None:
        """Stop new users, wait for in-flight ones, then free the Session."""
        with self._cond:
            self._closed = True
            self._cond.wait_for(lambda: self._users == 0)
        self._export.close()


def load_servable(name: str, version: int, path: str, settings: SessionSettings) -> Servable:
    """Load one version folder the way ``SavedModelBundleFactory`` does.

    Raises:
        ServingError: with TensorFlow's code, e.g. NOT_FOUND for a missing
            ``saved_model.pb`` or a tag set no MetaGraph has, DATA_LOSS for a corrupt one.
    """
    import tensorflow as tf

    from google.protobuf import text_format

    from gradcam_serving.runtime import ExportSession, session_config

    base = text_format.Parse(settings.config_text, tf.compat.v1.ConfigProto())
    config = session_config(settings.intra_op_parallelism, settings.inter_op_parallelism, base=base)
    try:
        export = ExportSession(path, tags=settings.tags, config=config)
    except tf.errors.OpError as exc:
        raise from_tf_error(exc) from exc
    except UnicodeDecodeError as exc:
        raise UnknownError(from_undecodable(exc).message) from exc
    except (RuntimeError, ValueError, OSError) as exc:
        raise UnknownError(str(exc)) from exc
    _log.info("Successfully loaded servable version {name: %s version: %d}", name, version)
    return Servable(name, version, path, export)
