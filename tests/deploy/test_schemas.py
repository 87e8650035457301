"""Every generated manifest against a real schema.

* Kubernetes objects: ``kubernetes-validate`` (the API server's OpenAPI
  schemas, shipped offline), strict, so a misspelled or misplaced field fails.
* KServe InferenceService: the ``kserve`` package's generated model classes
  (with the Kubernetes client's for core types), walked strictly: every key
  must be an attribute of the class at its place, the classes' setters
  check required fields and enums, and the rebuilt object must hold every
  value of the document.
* TF Serving's config files: ``models.config`` with tensorflow-serving-api's
  ``ModelServerConfig`` and the other text protos are covered in
  ``test_protos.py`` / ``test_tls.py``.

``kserve`` needs server packages (fastapi, uvicorn ...) and pins protobuf<7
in its ``__init__``'s import chain, so the model classes are loaded without
running ``kserve/__init__.py`` (or ``kubernetes/__init__.py``, which needs
oauthlib): installed with ``pip install --no-deps kserve kubernetes`` they
still work, and a full install works too.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import importlib.util
import re
import sys
import types
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gradcam_serving.deploy import DeploymentOptions, TlsOptions, render_files

K8S_VERSION = "1.30.0"  # an API version every maintained cluster serves


def _models_of(package: str) -> types.ModuleType:
    """``<package>.models`` or ``<package>.client.models`` without running the package's own ``__init__``."""
    if package not in sys.modules:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, f"{package} is not installed (see pyproject dev)"
        stub = types.ModuleType(package)
        stub.__path__ = list(spec.submodule_search_locations)
        sys.modules[package] = stub
    return importlib.import_module(f"{package}.models" if package == "kserve" else f"{package}.client.models")


def _model_class(name: str) -> type:
    for package in ("kserve", "kubernetes"):
        found = getattr(_models_of(package), name, None)
        if found is not None:
            return found
    raise AssertionError(f"no model class {name}")


_PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}


def _build(data: Any, type_name: str, where: str) -> Any:
    """Rebuild ``data`` as ``type_name`` (an OpenAPI type string), failing on any key the class does not declare."""
    if type_name in _PRIMITIVES:
        assert isinstance(data, _PRIMITIVES[type_name]), f"{where}: {data!r} is not {type_name}"
        return data
    if type_name == "datetime":
        return data
    if match := re.fullmatch(r"[lL]ist\[(.+)\]", type_name):
        assert isinstance(data, list), f"{where}: expected a list"
        return [_build(item, match[1], f"{where}[{i}]") for i, item in enumerate(data)]
    if match := re.fullmatch(r"dict\(str, (.+)\)|Dict\[str, (.+)\]", type_name):
        assert isinstance(data, dict), f"{where}: expected a mapping"
        return {key: _build(value, match[1] or match[2], f"{where}.{key}") for key, value in data.items()}
    klass = _model_class(type_name)
    assert isinstance(data, dict), f"{where}: {type_name} must be a mapping"
    by_json = {json_key: attr for attr, json_key in klass.attribute_map.items()}
    unknown = sorted(set(data) - set(by_json))
    assert not unknown, f"{where}: {type_name} has no field(s) {unknown}"
    kwargs = {by_json[key]: _build(value, klass.openapi_types[by_json[key]], f"{where}.{key}") for key, value in data.items()}
    return klass(**kwargs)  # the generated setters check required fields and enums


def _plain(value: Any) -> Any:
    """A rebuilt object back to JSON-like data, keys as in the attribute maps, ``None`` dropped."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if hasattr(value, "attribute_map"):
        return {
            json_key: _plain(getattr(value, attr))
            for attr, json_key in value.attribute_map.items()
            if getattr(value, attr) is not None
        }
    return value


def _holds(rebuilt: Any, document: Any) -> bool:
    """``rebuilt`` has every key and value of ``document`` (it may add the classes' defaults, e.g. ``name: ''``)."""
    if isinstance(document, dict):
        return isinstance(rebuilt, dict) and all(key in rebuilt and _holds(rebuilt[key], value) for key, value in document.items())
    if isinstance(document, list):
        return isinstance(rebuilt, list) and len(rebuilt) == len(document) and all(map(_holds, rebuilt, document))
    return rebuilt == document


def _documents(options: DeploymentOptions, name: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(render_files(options)[name]))


@pytest.fixture
def tls_options(options: DeploymentOptions) -> DeploymentOptions:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    tls = TlsOptions(
        server_key=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode(),
        server_cert=cert.public_bytes(serialization.Encoding.PEM).decode(),
    )
    return dataclasses.replace(options, tls=tls, allow_growth=True, gpu_memory_fraction=None)


@pytest.mark.parametrize("variant", ["gpu", "cpu", "tls"])
def test_kubernetes_manifests_validate_strictly_against_the_api_schemas(options, tls_options, variant) -> None:
    chosen = {"gpu": options, "cpu": dataclasses.replace(options, gpus=0), "tls": tls_options}[variant]
    documents = _documents(chosen, "kubernetes.yaml")
    assert [doc["kind"] for doc in documents] == ["ConfigMap", "Deployment", "Service"]
    for document in documents:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_kubernetes_validate_catches_a_misplaced_field(options) -> None:
    """The check has teeth: a field one level off fails."""
    deployment = _documents(options, "kubernetes.yaml")[1]
    deployment["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []
    with pytest.raises(kubernetes_validate.ValidationError, match="volumeMount"):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


@pytest.mark.parametrize("gpus", [1, 0])
def test_kserve_inference_services_are_kserve_model_objects(options, gpus: int) -> None:
    for document in _documents(dataclasses.replace(options, gpus=gpus), "kserve.yaml"):
        service = _build(document, "V1beta1InferenceService", document["metadata"]["name"])
        assert _holds(_plain(service), document)  # nothing dropped or changed (the classes add only their defaults)
        assert service.spec.predictor.model.model_format.name == "tensorflow"


def test_the_kserve_walk_catches_an_unknown_field(options) -> None:
    document = _documents(options, "kserve.yaml")[0]
    document["spec"]["predictor"]["model"]["storageUrl"] = document["spec"]["predictor"]["model"].pop("storageUri")
    with pytest.raises(AssertionError, match=r"V1beta1ModelSpec has no field\(s\) \['storageUrl'\]"):
        _build(document, "V1beta1InferenceService", "shapes")
