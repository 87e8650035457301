"""The one PEP 562 helper: names load from their submodule on first access, once, and unknown names raise."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from gradcam_serving.lazy import lazy_module_attributes


@pytest.fixture()
def package(tmp_path, monkeypatch):
    root = tmp_path / "lazypkg"
    root.mkdir()
    (root / "__init__.py").write_text(
        "from gradcam_serving.lazy import lazy_module_attributes\n"
        "__all__ = ['thing', 'other']\n"
        "loaded = []\n"
        "__getattr__, __dir__ = lazy_module_attributes(__name__, {'thing': '_home', 'other': '_home'},\n"
        "                                              publish=lambda v: loaded.append(v) or v)\n"
    )
    (root / "_home.py").write_text("thing = object()\nother = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield __import__("lazypkg")
    for name in [n for n in sys.modules if n.startswith("lazypkg")]:
        del sys.modules[name]


def test_a_name_loads_its_submodule_on_first_access_and_is_then_stored(package: types.ModuleType) -> None:
    assert "lazypkg._home" not in sys.modules
    first = package.thing
    assert "lazypkg._home" in sys.modules
    assert package.thing is first and vars(package)["thing"] is first
    assert package.loaded == [first]  # published once, not on every access
    from lazypkg import other

    assert other == 2


def test_unknown_names_raise_attribute_error_and_dir_lists_the_lazy_ones(package: types.ModuleType) -> None:
    with pytest.raises(AttributeError, match="module 'lazypkg' has no attribute 'nothing'"):
        package.nothing  # noqa: B018
    assert {"thing", "other", "loaded"} <= set(dir(package))


def test_every_package_that_defers_names_uses_the_helper() -> None:
    probe = (
        "import sys, gradcam_serving.exporter, gradcam_serving.evaluate, gradcam_serving.batch, "
        "gradcam_serving.view, gradcam_serving.server, gradcam_serving.client\n"
        "print(sorted(m for m in ('tensorflow', 'numpy', 'apache_beam', 'starlette') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    import gradcam_serving.batch as batch
    import gradcam_serving.exporter as exporter

    assert lazy_module_attributes.__module__ == "gradcam_serving.lazy"
    assert exporter.__getattr__.__qualname__.startswith("lazy_module_attributes")
    assert batch.__dir__.__qualname__.startswith("lazy_module_attributes")
