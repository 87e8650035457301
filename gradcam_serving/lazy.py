"""Names a package publishes but loads on first access (PEP 562), written once for every package.

A package whose public names pull in something heavy (TensorFlow, Beam, numpy,
Starlette) lists where each lives, and ``import gradcam_serving.<package>``
stays cheap: the command line registers its commands, and the thin client
imports without numpy, until a name is actually used.

Usage, in a package's ``__init__.py``::

    from gradcam_serving.lazy import lazy_module_attributes

    __getattr__, __dir__ = lazy_module_attributes(__name__, {"create_app": "_app", "open_models": "_models"})
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module

__all__ = ["lazy_module_attributes"]


def lazy_module_attributes(
    package: str, homes: Mapping[str, str], *, publish: Callable[[object], object] = lambda value: value
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, loading each name of ``homes`` from its submodule.

    Args:
        package: the package's ``__name__``.
        homes: ``{public name: submodule}``, the submodule relative to ``package`` (``"_app"``).
        publish: applied to a value once, when it is first loaded (e.g. to report it as the package's own).

    A loaded value is stored in the package's namespace, so ``__getattr__`` runs once per name.
    Unknown names raise ``AttributeError`` naming the package, as Python's own lookup does.
    """
    table = dict(homes)

    def __getattr__(name: str) -> object:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = publish(getattr(import_module(f"{package}.{table[name]}"), name))
        vars(sys.modules[package])[name] = value
        return value

    def __dir__() -> list[str]:
        namespace = vars(sys.modules[package])
        return sorted(set(namespace) | set(table) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
