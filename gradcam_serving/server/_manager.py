"""Model versions on disk -> loaded servables, like TF Serving's ServerCore.

One :class:`ModelManager` owns every configured model. A poll thread lists each
``base_path`` every ``file_system_poll_wait_seconds``; numeric child folders are
versions (``absl::SimpleAtoi`` rules), the version policy picks the aspired
ones, and the availability-preserving policy decides what happens:

* a new version is loaded (and warmed up) while the old one keeps serving,
  and only becomes routable once AVAILABLE;
* an old version is unloaded only once some aspired version is AVAILABLE (or
  none is aspired any more), so a broken new version never takes the model
  down: it ends in state END with its error, and the old one stays;
* unloading waits for the requests holding the version to finish.

Requests resolve a :class:`ModelRef` to a pinned :class:`Servable`; the texts
of the NOT_FOUND / INVALID_ARGUMENT errors are those of ``server_core.cc`` and
``basic_manager.cc``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator

from gradcam_serving.errors import (
    FailedPreconditionError, InvalidArgumentError, NotFoundError, ServingError, UnknownError, VersionState,
)
from gradcam_serving.server._options import ModelConfig
from gradcam_serving.server._servable import Servable

__all__ = ["ModelManager", "ModelRef", "VersionStatus", "parse_version"]

_log = logging.getLogger("gradcam_serving.server")
_INT64 = re.compile(r"^\s*[+-]?\d+$")
_INT64_MAX = 2**63 - 1


@dataclasses.dataclass(frozen=True)
class ModelRef:
    """What a request asks for: a name plus at most one of version / label."""

    name: str
    version: int | None = None
    label: str | None = None


@dataclasses.dataclass
class VersionStatus:
    """One row of GetModelStatus: the state and, after a failure, the error."""

    version: int
    state: VersionState
    error: ServingError | None = None
    servable: Servable | None = dataclasses.field(default=None, repr=False)
    folder_gone: bool = False
    """A failed version whose folder has since disappeared: loaded again if it comes back."""


@dataclasses.dataclass
class _Model:
    config: ModelConfig
    versions: dict[int, VersionStatus] = dataclasses.field(default_factory=dict)
    paths: dict[int, str] = dataclasses.field(default_factory=dict)
    removed: bool = False
    last_warning: str = ""
    aspired: frozenset[int] = frozenset()


def parse_version(child: str) -> int | None:
    """``absl::SimpleAtoi`` on a folder name: ``1`` and ``00000123`` yes, ``1.tmp`` no."""
    if not _INT64.match(child):
        return None
    value = int(child)
    return value if -(2**63) <= value <= _INT64_MAX else None


Loader = Callable[[str, int, str], Servable]


class ModelManager:
    """Loads, routes and unloads model versions.

    Args:
        loader: ``(name, version, path) -> Servable``; loads and warms one version.
        poll_wait_seconds: 0 polls once at startup, as TF Serving does.
        max_num_load_retries / load_retry_interval_seconds: TF's load retries.
        allow_labels_for_unavailable: skip the label availability check.
    """

    def __init__(
        self, loader: Loader, *, poll_wait_seconds: float = 1.0, max_num_load_retries: int = 5,
        load_retry_interval_seconds: float = 60.0, allow_labels_for_unavailable: bool = False,
    ) -> None:
        self._loader = loader
        self._poll_wait = poll_wait_seconds
        self._retries = max_num_load_retries
        self._retry_interval = load_retry_interval_seconds
        self._allow_unavailable_labels = allow_labels_for_unavailable
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._models: dict[str, _Model] = {}
        self._labels: dict[str, dict[str, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retrying: dict[tuple[str, int], tuple[threading.Thread, threading.Event]] = {}

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, models: tuple[ModelConfig, ...]) -> None:
        """Load the initial config, then start polling.

        Raises:
            ServingError: UNKNOWN ``N servable(s) did not become available: ...``
                when a version fails to load, or a label error.
        """
        with self._sync_lock:
            attempted = self._apply(models)
            self.wait_for_retries()  # like load_servables_fast, startup waits through the retries
            failures = self._failures(attempted)
            if failures:
                raise UnknownError(_unavailable_message(failures, "servable(s)"))
            self._update_labels(models)
        if self._poll_wait > 0:
            self._thread = threading.Thread(target=self._poll_loop, name="version-poll", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop polling and unload every version."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            retry_threads = [thread for thread, _ in self._retrying.values()]
        for thread in retry_threads:
            thread.join()
        with self._sync_lock:
            for model in list(self._models.values()):
                for version in list(model.versions):
                    self._unload(model, version)

    def reload(self, models: tuple[ModelConfig, ...]) -> None:
        """Replace the whole config; blocks until newly added models are AVAILABLE.

        Raises:
            ServingError: UNKNOWN ``N model(s) did not become available: ...`` or a label error.
        """
        with self._sync_lock:
            with self._lock:
                new_names = [m.name for m in models if m.name not in self._models or self._models[m.name].removed]
            attempted = self._apply(models)
        # Only the new models' retries are awaited, and without the sync lock, so polls go on meanwhile.
        self.wait_for_retries(set(new_names))
        with self._sync_lock:
            failures = self._failures(attempted)
            with self._lock:
                not_ready = [
                    name for name in new_names
                    if not any(v.state == VersionState.AVAILABLE for v in self._models[name].versions.values())
                ]
            if not_ready:
                rows = [f for f in failures if f[0] in not_ready] or [(n, None, None) for n in not_ready]
                raise UnknownError(_unavailable_message(rows, "model(s)"))
            self._update_labels(models)

    def poll_once(self) -> None:
        """One poll of every model's base path (the poll thread calls this)."""
        with self._sync_lock:
            with self._lock:
                models = [m for m in self._models.values() if not m.removed]
            for model in models:
                self._sync(model)

    # -- requests ------------------------------------------------------------------------

    @contextlib.contextmanager
    def servable(self, ref: ModelRef) -> Iterator[Servable]:
        """Resolve and pin a version for the length of one request.

        Raises:
            InvalidArgumentError: empty name or unknown label.
            NotFoundError: ``Servable not found for request: Latest(m)`` / ``Specific(m, v)``.
        """
        if not ref.name:
            raise InvalidArgumentError("ModelSpec has no name specified.")
        with self._lock:
            version = ref.version
            if ref.label is not None:
                version = self._labels.get(ref.name, {}).get(ref.label)
                if version is None:
                    raise InvalidArgumentError(f"Unrecognized servable version label: {ref.label}")
            model = self._models.get(ref.name)
            records = model.versions if model is not None and not model.removed else {}
            if version is None:
                available = [v for v, r in records.items() if r.state == VersionState.AVAILABLE]
                if not available:
                    raise NotFoundError(f"Servable not found for request: Latest({ref.name})")
                version = max(available)
            record = records.get(version)
            if record is None or record.state != VersionState.AVAILABLE or record.servable is None:
                raise NotFoundError(f"Servable not found for request: Specific({ref.name}, {version})")
            servable = record.servable
            if not servable.acquire():
                raise NotFoundError(f"Servable not found for request: Specific({ref.name}, {version})")
        try:
            yield servable
        finally:
            servable.release()

    def version_statuses(self, name: str, version: int | None = None) -> list[VersionStatus]:
        """States for GetModelStatus, highest version first.

        Raises:
            NotFoundError: ``Could not find version v of model m`` / ``Could not find any versions of model m``.
        """
        with self._lock:
            model = self._models.get(name)
            records = dict(model.versions) if model is not None else {}
        if version is not None:
            if version not in records:
                raise NotFoundError(f"Could not find version {version} of model {name}")
            return [dataclasses.replace(records[version])]
        if not records:
            raise NotFoundError(f"Could not find any versions of model {name}")
        return [dataclasses.replace(records[v]) for v in sorted(records, reverse=True)]

    # -- internals -----------------------------------------------------------------------

    def _poll_loop(self) -> None:
        while not self._stop.wait(self._poll_wait):
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - polling must survive anything
                _log.exception("Version poll failed")

    def _apply(self, models: tuple[ModelConfig, ...]) -> list[tuple[str, int]]:
        """Install a config and sync every model; returns the ``(model, version)`` loads it started."""
        wanted = {m.name: m for m in models}
        with self._lock:
            for name, model in self._models.items():
                if name not in wanted:
                    model.removed = True
            for name, config in wanted.items():
                model = self._models.get(name)
                if model is None:
                    self._models[name] = _Model(config)
                else:
                    model.config, model.removed = config, False
            targets = list(self._models.values())
        attempted = []
        for model in targets:
            if model.removed:
                for version in list(model.versions):
                    self._unload(model, version)
                continue
            attempted.extend((model.config.name, v) for v in self._sync(model))
        return attempted

    def _failures(self, attempted: list[tuple[str, int]]) -> list[tuple[str, int | None, ServingError | None]]:
        """Of the loads started, those that ended in an error (call after their retries finished)."""
        with self._lock:
            records = [(name, self._models[name].versions.get(version)) for name, version in attempted]
        return [(name, record.version, record.error) for name, record in records
                if record is not None and record.state == VersionState.END and record.error is not None]

    def _sync(self, model: _Model) -> list[int]:
        """Load new aspired versions and unload superseded ones; returns the versions it loaded."""
        on_disk = self._list_versions(model)
        if on_disk is None:
            return []
        config = model.config
        aspired = config.version_policy.select(on_disk)
        if config.version_policy.kind == "specific":
            for missing in sorted(set(config.version_policy.versions) - on_disk):
                self._warn_once(model, f"Version {missing} of servable {config.name}, which was requested to be "
                                "served as a 'specific' version in the servable's version policy, was not found "
                                "in the file system")
        with self._lock:
            model.aspired = frozenset(aspired)
            # TF drops a finished, no longer aspired servable and loads it afresh if its folder comes
            # back (the mid-copy case); status keeps showing the old failure meanwhile, as TF's monitor does.
            for record in model.versions.values():
                if record.state == VersionState.END and record.error is not None and record.version not in on_disk:
                    record.folder_gone = True
            to_load = [
                v for v in sorted(aspired, reverse=True)
                if v not in model.versions
                or (model.versions[v].state == VersionState.END
                    and (model.versions[v].error is None or model.versions[v].folder_gone))
            ]
        for version in to_load:
            self._load(model, version)
        self._unload_superseded(model)
        return to_load

    def _list_versions(self, model: _Model) -> set[int] | None:
        config = model.config
        try:
            children = os.listdir(config.base_path)
        except OSError as exc:
            self._warn_once(model, f"Could not find base path {config.base_path} for servable {config.name} "
                            f"with error {exc.strerror or exc}", error=True)
            return None
        versions: dict[int, str] = {}
        for child in children:
            version = parse_version(child)
            if version is None or not os.path.isdir(os.path.join(config.base_path, child)):
                continue
            if version in versions:
                _log.warning("Duplicate version directories detected: %s and %s", versions[version], child)
            versions[version] = child
        model.paths.update({v: os.path.join(config.base_path, c) for v, c in versions.items()})
        if not versions:
            self._warn_once(model, f"No versions of servable {config.name} found under base path "
                            f"{config.base_path}. Did you forget to name your leaf directory as a number "
                            "(eg. '/1/')?")
        else:
            model.last_warning = ""
        return set(versions)

    def _warn_once(self, model: _Model, message: str, *, error: bool = False) -> None:
        if model.last_warning != message:
            (_log.error if error else _log.warning)(message)
            model.last_warning = message

    def _load(self, model: _Model, version: int) -> ServingError | None:
        """First attempt inline; on failure the retries run on their own thread (see :meth:`_retry`).

        Returns None when the version is AVAILABLE or being retried, else its error. Retrying
        outside the sync lock keeps a failing version from delaying other models' polls and
        ``HandleReloadConfigRequest`` for ``max_num_load_retries`` x ``load_retry_interval``.
        """
        path = model.paths[version]
        record = VersionStatus(version, VersionState.START)
        with self._lock:
            model.versions[version] = record
            record.state = VersionState.LOADING
        error = self._attempt(model, record, path)
        if error is None:
            return None
        if self._retries > 0 and not self._stop.is_set():
            done = threading.Event()
            thread = threading.Thread(target=self._retry, args=(model, record, path, error, done),
                                      name=f"load-retry-{model.config.name}-{version}", daemon=True)
            with self._lock:
                self._retrying[(model.config.name, version)] = (thread, done)
            thread.start()
            return None
        with self._lock:
            record.state, record.error = VersionState.END, error
        return error

    def _attempt(self, model: _Model, record: VersionStatus, path: str) -> ServingError | None:
        """One load; AVAILABLE on success, else the error (logged)."""
        name, version = model.config.name, record.version
        try:
            servable = self._loader(name, version, path)
        except ServingError as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - a loader bug must not kill polling
            error = UnknownError(f"{type(exc).__name__}: {exc}")
        else:
            with self._lock:
                record.servable, record.state, record.error = servable, VersionState.AVAILABLE, None
            return None
        _log.error("Loading servable: {name: %s version: %d} failed: %s", name, version, error.status_string())
        return error

    def _retry(self, model: _Model, record: VersionStatus, path: str, error: ServingError,
               done: threading.Event) -> None:
        """TF's load retries, without any manager lock held between attempts."""
        name, version = model.config.name, record.version
        try:
            for _ in range(self._retries):
                _log.info("Retrying load of servable {name: %s version: %d}", name, version)
                if self._stop.wait(self._retry_interval) or model.removed:
                    break
                attempt_error = self._attempt(model, record, path)
                if attempt_error is None:
                    self._unload_superseded(model)
                    return
                error = attempt_error
            with self._lock:
                record.state, record.error = VersionState.END, error
        finally:
            with self._lock:
                self._retrying.pop((name, version), None)
            done.set()

    def wait_for_retries(self, names: set[str] | None = None, timeout: float | None = None) -> None:
        """Block until the load retries of ``names`` (all models when None) have finished."""
        with self._lock:
            pending = [done for (name, _), (_, done) in self._retrying.items() if names is None or name in names]
        for done in pending:
            done.wait(timeout)

    def _unload_superseded(self, model: _Model) -> None:
        """Once an aspired version serves, unload the AVAILABLE versions no longer aspired."""
        with self._lock:
            aspired = model.aspired
            serving = any(model.versions[v].state == VersionState.AVAILABLE for v in aspired if v in model.versions)
            to_unload = [
                v for v, r in model.versions.items()
                if v not in aspired and r.state == VersionState.AVAILABLE and (serving or not aspired)
            ]
        for version in to_unload:
            self._unload(model, version)

    def _unload(self, model: _Model, version: int) -> None:
        with self._lock:
            record = model.versions.get(version)
            if record is None or record.state != VersionState.AVAILABLE or record.servable is None:
                return
            record.state = VersionState.UNLOADING
            servable = record.servable
        servable.close()
        with self._lock:
            record.state, record.servable = VersionState.END, None
        _log.info("Unloaded servable version {name: %s version: %d}", model.config.name, version)

    def _update_labels(self, models: tuple[ModelConfig, ...]) -> None:
        new_labels: dict[str, dict[str, int]] = {}
        with self._lock:
            for config in models:
                records = self._models[config.name].versions
                for label, version in config.version_labels:
                    record = records.get(version)
                    available = record is not None and record.state == VersionState.AVAILABLE
                    if not self._allow_unavailable_labels and not available:
                        raise FailedPreconditionError(
                            f"Request to assign label to version {version} of model {config.name}, "
                            "which is not currently available for inference"
                        )
                    new_labels.setdefault(config.name, {})[label] = version
            self._labels = new_labels


def _unavailable_message(rows: list[tuple[str, int | None, ServingError | None]], noun: str) -> str:
    parts = []
    for name, version, error in rows:
        ident = f"{{name: {name} version: {version}}}" if version is not None else f"{{name: {name}}}"
        due = f" due to error: {error.status_string()}" if error is not None else ""
        parts.append(f"{{{ident}{due}}}, ")
    return f"{len(rows)} {noun} did not become available: {{{''.join(parts)}}}"
