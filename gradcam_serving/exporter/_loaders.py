"""Model loaders: turn a handle, file, folder or object into one traced function.

Every source ends up as the same thing, a :class:`LoadedModel` whose
``function`` maps float32 images ``[N, H, W, 3]`` to class scores ``[N, C]``.
The rest of the exporter never needs to know where a model came from.

Loaders are tried in order through a small registry (as ``tensorflow_hub``'s
resolvers are); when none accepts the source, the error lists what was tried.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import tensorflow as tf

from gradcam_serving.errors import ModelSourceError, UnsupportedModelError

__all__ = ["LoadedModel", "load_model"]

_HUB_URL_PREFIXES = ("http://", "https://", "gs://")


@dataclass
class LoadedModel:
    """A model reduced to what the exporter needs.

    Attributes:
        function: concrete function, float32 ``[N, H, W, channels]`` -> scores ``[N, C]``.
        input_size: the model's ``(height, width)``.
        kind: human-readable description of the source ("hub module", ...).
        layer_names: names of Keras layers, used to tidy tensor names.
        keepalive: objects that own the variables captured by ``function``.
        channels: 3 (RGB), or 1 for grayscale models (fed BT.601 luma by the export).
        handle: the hub handle or SavedModel path it was loaded from ("" otherwise); its name may
            say what the model outputs (``.../feature_vector/5``).
    """

    function: Any
    input_size: tuple[int, int]
    kind: str
    layer_names: frozenset[str] = frozenset()
    keepalive: list[Any] = field(default_factory=list)
    channels: int = 3
    handle: str = ""


class _Loader(Protocol):
    name: str

    def is_supported(self, source: Any) -> bool: ...

    def __call__(self, source: Any, input_size: tuple[int, int] | None, output: str | None) -> LoadedModel: ...


def _is_keras_model(obj: Any) -> bool:
    return any(
        cls.__name__ == "Model" and cls.__module__.split(".")[0] in ("keras", "tf_keras")
        for cls in type(obj).__mro__
    )


def _keras_layer_names(model: Any) -> frozenset[str]:
    names: set[str] = set()
    stack = [model]
    while stack:
        layer = stack.pop()
        names.add(layer.name)
        stack.extend(getattr(layer, "layers", []) or [])
    return frozenset(names)


def _resolve_size(shape: Sequence[int | None] | None, override: tuple[int, int] | None, what: str) -> tuple[int, int]:
    """Pick the model's input size, refusing to guess for size-agnostic models."""
    if shape is not None and len(shape) != 4:
        raise UnsupportedModelError(
            f"{what} takes input of shape {list(shape)}; expected an image batch [N, H, W, 3]"
        )
    if shape is not None and shape[3] not in (None, 1, 3):
        raise UnsupportedModelError(
            f"{what} takes {shape[3]} channels; expected RGB images [N, H, W, 3] or grayscale [N, H, W, 1]"
        )
    fixed = shape is not None and shape[1] is not None and shape[2] is not None
    if override is not None:
        if min(override) < 1:
            raise UnsupportedModelError(f"--input-size must be two positive numbers H,W; got {override}")
        if fixed and tuple(override) != (shape[1], shape[2]):
            raise UnsupportedModelError(
                f"{what} takes {shape[1]}x{shape[2]} images; --input-size {override[0]},{override[1]} "
                "is only for models that accept any size (leave it out)"
            )
        return tuple(override)  # type: ignore[return-value]
    if not fixed:
        raise UnsupportedModelError(
            f"{what} accepts images of any size; pass --input-size H,W "
            "(the size it was trained at, e.g. 224,224)"
        )
    return int(shape[1]), int(shape[2])


def _channels(shape: Sequence[int | None] | None) -> int:
    """1 for grayscale models, else 3 (``_resolve_size`` has refused other counts)."""
    return 1 if shape is not None and len(shape) == 4 and shape[3] == 1 else 3


def _trace(call: Callable[[tf.Tensor], Any], size: tuple[int, int], what: str = "the model", channels: int = 3) -> Any:
    spec = tf.TensorSpec([None, size[0], size[1], channels], tf.float32, name="images")
    try:
        return tf.function(call).get_concrete_function(spec)
    except (TypeError, ValueError, tf.errors.OpError) as exc:
        raise UnsupportedModelError(f"could not trace {what} on float32 images {spec.shape}: {_last_line(exc)}") from exc


def _last_line(exc: BaseException) -> str:
    """The informative line of a TF/Keras error (they open with 'in user code:' and a stack)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _single_output(outputs: Any, what: str, output: str | None = None, names: Sequence[str] | None = None) -> tf.Tensor:
    """Reduce a model's outputs to the one tensor of class scores.

    Args:
        outputs: what the model returned (a tensor, list or dict).
        what: the model, for messages.
        output: the output name the user picked (``--output``), if any.
        names: names of list outputs (Keras ``output_names``); dict keys otherwise.
    """
    if isinstance(outputs, (list, tuple)):
        if len(outputs) == 1 and output is None:
            return outputs[0]
        keys = list(names) if names is not None and len(names) == len(outputs) else [str(i) for i in range(len(outputs))]
        outputs = dict(zip(keys, outputs))
    if not isinstance(outputs, dict):
        if output is not None:
            raise UnsupportedModelError(f"{what} has a single unnamed output; leave out --output ({output!r} given)")
        return outputs
    if output is not None:
        if output not in outputs:
            raise UnsupportedModelError(
                f"{what} has no output {output!r}; its outputs are {', '.join(map(str, outputs))}"
            )
        return outputs[output]
    if len(outputs) == 1:
        return next(iter(outputs.values()))
    raise UnsupportedModelError(
        f"{what} has several outputs ({', '.join(map(str, outputs))}); pick the class scores with --output NAME"
    )


class _KerasObjectLoader:
    name = "Keras model object (tf_keras or Keras 3)"

    def is_supported(self, source: Any) -> bool:
        return _is_keras_model(source)

    def __call__(self, source: Any, input_size: tuple[int, int] | None, output: str | None) -> LoadedModel:
        return _from_keras(source, input_size, output, kind=f"Keras model ({type(source).__module__.split('.')[0]})")


def _from_keras(model: Any, input_size: tuple[int, int] | None, output: str | None, kind: str) -> LoadedModel:
    shape = None
    inputs = getattr(model, "inputs", None)
    if inputs:
        if len(inputs) != 1:
            raise UnsupportedModelError(f"the {kind} has {len(inputs)} inputs; expected one image input")
        shape = tuple(inputs[0].shape)
    size = _resolve_size(shape, input_size, f"the {kind}")
    what = f"the {kind}"
    names = getattr(model, "output_names", None)
    channels = _channels(shape)
    function = _trace(lambda x: _single_output(model(x, training=False), what, output, names), size, what, channels)
    return LoadedModel(function, size, kind, _keras_layer_names(model), keepalive=[model], channels=channels)


def _hub_keras_layer() -> Any:
    import tensorflow_hub as hub

    return hub.KerasLayer


def _load_or_explain(load: Callable[[], Any], path: Any, what: str) -> Any:
    """Run a Keras loader; name the file and the format on failure (Keras' own errors do not)."""
    try:
        return load()
    except Exception as exc:  # Keras and h5py raise many types for unreadable files
        raise ModelSourceError(f"could not load {os.fspath(path)} as {what}: {_last_line(exc)}") from exc


class _KerasFileLoader:
    name = "Keras file (.h5 / .keras)"

    def is_supported(self, source: Any) -> bool:
        return isinstance(source, (str, os.PathLike)) and Path(source).suffix in (".h5", ".hdf5", ".keras")

    def __call__(self, source: Any, input_size: tuple[int, int] | None, output: str | None) -> LoadedModel:
        path = Path(source)
        if path.suffix == ".keras" and _keras_file_major_version(path) >= 3:
            import keras

            model = _load_or_explain(lambda: keras.saving.load_model(path, compile=False), path, "a Keras 3 model")
            return _from_keras(model, input_size, output, kind="Keras 3 model")
        import tf_keras

        model = _load_or_explain(
            lambda: tf_keras.models.load_model(path, compile=False, custom_objects={"KerasLayer": _hub_keras_layer()}),
            path,
            f"a tf_keras {path.suffix} model",
        )
        return _from_keras(model, input_size, output, kind="tf_keras model")


def _keras_file_major_version(path: Path) -> int:
    """Read the Keras version a .keras archive was written by (3 unless it says otherwise)."""
    try:
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read("metadata.json"))
        return int(str(meta.get("keras_version", "3")).split(".")[0])
    except (KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelSourceError(f"{path} is not a valid .keras archive: {exc}") from exc


class _KerasSavedModelLoader:
    name = "tf_keras SavedModel folder (keras_metadata.pb)"

    def is_supported(self, source: Any) -> bool:
        return isinstance(source, (str, os.PathLike)) and (Path(source) / "keras_metadata.pb").is_file()

    def __call__(self, source: Any, input_size: tuple[int, int] | None, output: str | None) -> LoadedModel:
        import tf_keras

        model = _load_or_explain(
            lambda: tf_keras.models.load_model(
                os.fspath(source), compile=False, custom_objects={"KerasLayer": _hub_keras_layer()}
            ),
            source,
            "a tf_keras SavedModel",
        )
        return _from_keras(model, input_size, output, kind="tf_keras SavedModel")


class _HubLoader:
    """TF2 hub modules and any TF2 SavedModel, through ``tensorflow_hub``.

    Going through ``hub.resolve`` keeps handles, ``TFHUB_CACHE_DIR`` and offline
    caches working exactly as hub users expect.
    """

    name = "TF Hub handle or TF2 SavedModel folder"

    def is_supported(self, source: Any) -> bool:
        if isinstance(source, str) and source.startswith(_HUB_URL_PREFIXES):
            return True
        return isinstance(source, (str, os.PathLike)) and (Path(source) / "saved_model.pb").is_file()

    def __call__(self, source: Any, input_size: tuple[int, int] | None, output: str | None) -> LoadedModel:
        import tensorflow_hub as hub

        handle = os.fspath(source)
        try:
            obj = hub.load(handle)
        except Exception as exc:  # hub and TF raise many types for unreadable modules
            raise ModelSourceError(f"could not load {handle} as a TF2 SavedModel / hub module: {exc}") from exc
        call = getattr(obj, "__call__", None)
        if call is not None and getattr(call, "concrete_functions", None):
            return _from_restored_call(obj, input_size, output, handle)
        if "serving_default" in getattr(obj, "signatures", {}):
            return _from_signature(obj, obj.signatures["serving_default"], input_size, output, handle)
        raise UnsupportedModelError(
            f"{handle} has neither a callable __call__ (hub module) nor a 'serving_default' signature"
        )


def _image_spec_shape(specs: Sequence[Any], what: str) -> tuple[int | None, ...]:
    tensors = [s for s in tf.nest.flatten(specs) if isinstance(s, tf.TensorSpec)]
    if len(tensors) != 1:
        raise UnsupportedModelError(f"{what} takes {len(tensors)} tensor inputs; expected one image batch")
    spec = tensors[0]
    if not spec.dtype.is_floating:
        raise UnsupportedModelError(f"{what} takes {spec.dtype.name} input; expected float32 images")
    return tuple(spec.shape.as_list()) if spec.shape.rank is not None else None


def _from_restored_call(obj: Any, input_size: tuple[int, int] | None, output: str | None, handle: str) -> LoadedModel:
    what = f"hub module {handle}"
    concretes = obj.__call__.concrete_functions
    args, kwargs = concretes[0].structured_input_signature
    shape = _image_spec_shape(args, what)
    size = _resolve_size(shape, input_size, what)
    takes_training = any("training" in cf.structured_input_signature[1] for cf in concretes) or any(
        len(cf.structured_input_signature[0]) > 1 for cf in concretes
    )

    def call(x: tf.Tensor) -> tf.Tensor:
        out = obj(x, training=False) if takes_training else obj(x)
        return _single_output(out, what, output)

    channels = _channels(shape)
    return LoadedModel(
        _trace(call, size, what, channels), size, "TF2 hub module", keepalive=[obj], channels=channels, handle=handle
    )


def _from_signature(
    obj: Any, signature: Any, input_size: tuple[int, int] | None, output: str | None, handle: str
) -> LoadedModel:
    what = f"SavedModel {handle} (signature 'serving_default')"
    kwargs = signature.structured_input_signature[1]
    shape = _image_spec_shape(list(kwargs.values()), what)
    size = _resolve_size(shape, input_size, what)
    (arg_name,) = kwargs

    def call(x: tf.Tensor) -> tf.Tensor:
        return _single_output(signature(**{arg_name: x}), what, output)

    channels = _channels(shape)
    return LoadedModel(
        _trace(call, size, what, channels), size, "TF2 SavedModel signature", keepalive=[obj, signature],
        channels=channels, handle=handle,
    )


class _ModuleLoader:
    name = "tf.Module or callable taking float32 images"

    def is_supported(self, source: Any) -> bool:
        return isinstance(source, tf.Module) or (callable(source) and not isinstance(source, (str, os.PathLike)))

    def __call__(self, source: Any, input_size: tuple[int, int] | None, output: str | None) -> LoadedModel:
        size = _resolve_size(None, input_size, f"the callable {type(source).__name__}")
        what = f"the callable {type(source).__name__}"
        return LoadedModel(
            _trace(lambda x: _single_output(source(x), what, output), size), size, "callable", keepalive=[source]
        )


_LOADERS: list[_Loader] = [
    _KerasObjectLoader(),
    _KerasFileLoader(),
    _KerasSavedModelLoader(),
    _HubLoader(),
    _ModuleLoader(),
]


def load_model(source: Any, *, input_size: tuple[int, int] | None = None, output: str | None = None) -> LoadedModel:
    """Load ``source`` with the first loader that supports it.

    Args:
        source: a hub handle or URL, a path (SavedModel folder, ``.h5``,
            ``.keras``), a Keras model, or a ``tf.Module``/callable.
        input_size: ``(height, width)``; required only for size-agnostic models.
        output: name of the class-score output of a model with several outputs.

    Raises:
        ModelSourceError: the path does not exist, or no loader accepts it.
        UnsupportedModelError: the model is not an image classifier we can trace.
    """
    if isinstance(source, (str, os.PathLike)) and not str(source).startswith(_HUB_URL_PREFIXES):
        if not Path(source).exists():
            raise ModelSourceError(
                f"model path {os.fspath(source)!r} does not exist; expected a SavedModel folder, "
                "a .h5 or .keras file, or a TF Hub handle"
            )
    for loader in _LOADERS:
        if loader.is_supported(source):
            return loader(source, input_size, output)
    tried = "; ".join(loader.name for loader in _LOADERS)
    raise ModelSourceError(f"no loader accepts {source!r} (tried: {tried})")
