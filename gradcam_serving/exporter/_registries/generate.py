"""Record the op registries of the TensorFlow releases TF Serving images are built from.

``gradcam-serving validate --serving-version V`` and ``gradcam-serving config``
check an export against TensorFlow V's op registry: an op or attribute added
after V makes ``tensorflow_model_server`` V refuse the export ("Op type not
registered ...", "NodeDef mentions attr ... not in Op ..."). The registries are
recorded in the package (``gradcam_serving/exporter/_registries/V.json.gz``) so
the check needs no network and no second TensorFlow at run time.

For each release this script downloads the ``tensorflow-cpu`` wheel with pip
(``--no-deps``, nothing is installed), unpacks only its shared libraries into a
temporary folder, and calls TensorFlow's C API ``TF_GetAllOpList`` from
``libtensorflow_cc.so.2`` in a fresh interpreter through ctypes: that is the
registry of the C++ runtime TF Serving links, without the Python-only test ops.
The wheel's Python side is never imported, so the releases' own numpy/protobuf
pins do not matter. Run (network needed; about 250 MB per release)::

    python gradcam_serving/exporter/_registries/generate.py            # 2.15 ... 2.21
    python gradcam_serving/exporter/_registries/generate.py 2.21.0     # one release

The written files are deterministic for a given wheel.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

RELEASES = ("2.15.1", "2.16.2", "2.17.1", "2.18.1", "2.19.1", "2.20.0", "2.21.0")
"""The newest patch release of each supported minor version."""

OUT_DIR = Path(__file__).resolve().parent

_DUMP = r"""
import ctypes, os, sys
folder = sys.argv[1]
for name in ("libtensorflow_framework.so.2", "libtensorflow_cc.so.2"):
    lib = ctypes.CDLL(os.path.join(folder, name), mode=ctypes.RTLD_GLOBAL)

class Buffer(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("length", ctypes.c_size_t), ("free", ctypes.c_void_p)]

lib.TF_GetAllOpList.restype = ctypes.POINTER(Buffer)
buffer = lib.TF_GetAllOpList().contents
sys.stdout.buffer.write(ctypes.string_at(buffer.data, buffer.length))
"""


def download_wheel(release: str, folder: Path) -> Path:
    """``pip download`` one tensorflow-cpu wheel for this interpreter, without dependencies."""
    env = dict(os.environ, PIP_CONSTRAINT="")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", f"tensorflow-cpu=={release}", "--no-deps",
         "--only-binary=:all:", "--dest", str(folder), "--quiet"],
        check=True, env=env,
    )
    wheels = sorted(folder.glob(f"tensorflow_cpu-{release}-*.whl"))
    if not wheels:
        raise SystemExit(f"pip downloaded no tensorflow_cpu-{release} wheel into {folder}")
    return wheels[0]


def unpack_libraries(wheel: Path, folder: Path) -> Path:
    """Unpack the wheel's top-level ``tensorflow/lib*.so*`` files; returns their folder."""
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            parts = member.split("/")
            if len(parts) == 2 and parts[0] == "tensorflow" and parts[1].startswith("lib") and ".so" in parts[1]:
                archive.extract(member, folder)
    return folder / "tensorflow"


def dump_op_list(libraries: Path) -> bytes:
    """The serialized ``OpList`` of the C++ registry, read in a fresh interpreter."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", _DUMP, str(libraries)], check=True, capture_output=True, env=env)
    return done.stdout


def compact(op_list_bytes: bytes) -> dict[str, dict]:
    """Op name -> what the check needs: attrs (type, default, allowed values), input/output names.

    Defaults and allowed values are kept as serialized ``AttrValue`` protos in
    hex, so they compare exactly with a NodeDef's attribute values.
    """
    from tensorflow.core.framework import op_def_pb2

    op_list = op_def_pb2.OpList.FromString(op_list_bytes)
    ops: dict[str, dict] = {}
    for op in sorted(op_list.op, key=lambda o: o.name):
        attrs = {}
        for attr in op.attr:
            entry: dict[str, object] = {"type": attr.type}
            if attr.HasField("default_value"):
                entry["default"] = attr.default_value.SerializeToString(deterministic=True).hex()
            if attr.HasField("allowed_values"):
                entry["allowed"] = attr.allowed_values.SerializeToString(deterministic=True).hex()
            if attr.has_minimum:
                entry["minimum"] = attr.minimum
            attrs[attr.name] = entry
        ops[op.name] = {
            "attrs": attrs,
            "inputs": [arg.name for arg in op.input_arg],
            "outputs": [arg.name for arg in op.output_arg],
        }
    return ops


def write_registry(release: str, ops: dict[str, dict], out_dir: Path) -> Path:
    minor = ".".join(release.split(".")[:2])
    path = out_dir / f"{minor}.json.gz"
    payload = json.dumps({"tensorflow": release, "ops": ops}, sort_keys=True, separators=(",", ":"))
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0) as gz:
        gz.write(payload.encode())
    return path


def record(release: str, out_dir: Path, cache: Path | None) -> Path:
    """Download, dump and write one release; the raw OpList is cached when ``cache`` is given."""
    cached = cache / f"{release}.oplist.pb" if cache else None
    if cached is not None and cached.exists():
        raw = cached.read_bytes()
    else:
        with tempfile.TemporaryDirectory(prefix=f"tf-{release}-") as tmp:
            wheel = download_wheel(release, Path(tmp))
            raw = dump_op_list(unpack_libraries(wheel, Path(tmp) / "unpacked"))
        if cached is not None:
            cache.mkdir(parents=True, exist_ok=True)
            cached.write_bytes(raw)
    return write_registry(release, compact(raw), out_dir)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("releases", nargs="*", default=list(RELEASES), help="tensorflow-cpu releases, e.g. 2.21.0")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    parser.add_argument("--cache", type=Path, help="keep each release's raw OpList here (reruns skip the download)")
    args = parser.parse_args(argv)
    for release in args.releases:
        path = record(release, args.out_dir, args.cache)
        print(f"{release}: {path} ({path.stat().st_size} bytes)", flush=True)


if __name__ == "__main__":
    main()
