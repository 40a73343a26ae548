"""Model versions on disk -> loaded servables, kept current like TF Serving's model manager.

A `ModelRegistry` holds, per configured model, the versions its `model_version_policy`
asks for (latest N, all, or specific), loaded from `<base_path>/<version>/`. `poll()`
rescans the base paths: a new version is loaded beside the serving ones and swapped in
with one reference assignment, so requests never wait and never see a half-loaded model;
a version that fails to load is reported (END with its error) and never replaces a
working one. `reload()` applies a new ModelServerConfig (models added, removed, policies
and version labels changed).
"""
import os
import threading
import time
from typing import Dict, List, Optional, Tuple

import grpc
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.config import model_server_config_pb2

State = get_model_status_pb2.ModelVersionStatus.State
UNKNOWN_ERROR = 2  # tensorflow.error.Code.UNKNOWN


class ServableError(Exception):
    """A request the server answers with a gRPC status code instead of a result."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


class Servable:
    """One loaded version of one model: its signatures and their SignatureDefs."""

    def __init__(self, name: str, version: int, path: str):
        import scann  # noqa: F401  registers ScaNN's TF ops (here, so clients need not load them)
        self.name, self.version, self.path = name, version, path
        saved_model = saved_model_pb2.SavedModel()
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            saved_model.ParseFromString(f.read())
        self.model = tf.saved_model.load(path)
        self.signatures = dict(self.model.signatures)
        self.signature_defs = {name: definition for name, definition
                               in saved_model.meta_graphs[0].signature_def.items() if name in self.signatures}

    def signature(self, name: str):
        """(concrete function, SignatureDef) of signature `name`; FAILED_PRECONDITION if absent."""
        if name not in self.signatures:
            raise ServableError(grpc.StatusCode.FAILED_PRECONDITION,
                                f"Serving signature name: \"{name}\" not found in signature def")
        return self.signatures[name], self.signature_defs[name]


def read_config(path: str) -> model_server_config_pb2.ModelServerConfig:
    """A TF Serving model_config_list file, relative base_paths made absolute against its directory."""
    config = model_server_config_pb2.ModelServerConfig()
    with open(path) as f:
        text_format.Parse(f.read(), config)
    base = os.path.dirname(os.path.abspath(path))
    for model in config.model_config_list.config:
        model.base_path = os.path.normpath(os.path.join(base, model.base_path))
    return config


def write_config(path: str, models: Dict[str, str]) -> str:
    """Writes a model_config_list file serving {name: base_path}; returns `path`."""
    config = model_server_config_pb2.ModelServerConfig()
    for name, base_path in models.items():
        config.model_config_list.config.add(name=name, base_path=base_path, model_platform="tensorflow")
    with open(path, "w") as f:
        f.write(text_format.MessageToString(config))
    return path


def version_dirs(base_path: str) -> List[int]:
    """Numeric version directories under `base_path`, newest first."""
    names = os.listdir(base_path) if os.path.isdir(base_path) else []
    return sorted((int(d) for d in names if d.isdigit() and os.path.isdir(os.path.join(base_path, d))),
                  reverse=True)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _stamp(path: str) -> Tuple[int, int]:
    """(file count, newest mtime) of a version directory: changes when its files do."""
    times = [os.stat(os.path.join(d, f)).st_mtime_ns for d, _, files in os.walk(path) for f in files]
    return len(times), max(times, default=0)


class ModelRegistry:
    """The servable versions of every configured model, kept current by `poll()`."""

    def __init__(self, config: model_server_config_pb2.ModelServerConfig):
        self._update_lock = threading.Lock()  # one update (poll or reload) at a time
        self._models: Dict[str, model_server_config_pb2.ModelConfig] = {}
        self._served: Dict[str, Dict[int, Servable]] = {}  # replaced whole, never mutated
        self._labels: Dict[str, Dict[str, int]] = {}
        self._states: Dict[str, Dict[int, Tuple[int, str, int]]] = {}  # version -> (state, error, code)
        self._failed: Dict[Tuple[str, int], Tuple[int, int]] = {}  # (model, version) -> stamp at failure
        self._stop = threading.Event()
        self.reload(config)
        empty = [name for name in self._models if not self._served.get(name)]
        if empty:
            raise FileNotFoundError(
                f"Model(s) {empty}: no loadable version directory (<base_path>/<number>/saved_model.pb) "
                f"under {[self._models[n].base_path for n in empty]}; run the pipeline to push one.")

    # ---- updates ------------------------------------------------------------------------
    def reload(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """Serves exactly the models of `config`; ServableError if a version label is unservable."""
        if config.WhichOneof("config") != "model_config_list":
            raise ServableError(grpc.StatusCode.INVALID_ARGUMENT,
                                "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                                "Only ModelConfigList is currently supported")
        models = {m.name: m for m in config.model_config_list.config}
        for model in models.values():
            if not os.path.isabs(model.base_path):
                raise ServableError(grpc.StatusCode.INVALID_ARGUMENT, f"Expected model {model.name} to have "
                                    f"an absolute path or URI; got base_path()={model.base_path}")
        with self._update_lock:
            self._models = models
            self._served = {name: v for name, v in self._served.items() if name in models}
            for model in models.values():
                self._update(model)
            labels = {name: dict(m.version_labels) for name, m in models.items()}
            for name, named in labels.items():
                for label, version in named.items():
                    if version not in self._served.get(name, {}):
                        raise ServableError(grpc.StatusCode.FAILED_PRECONDITION,
                                            f"Request to assign label to version {version} of model {name}, "
                                            "which is not currently available for inference")
            self._labels = labels

    def poll(self) -> None:
        """Loads new version directories, unloads removed ones, per each model's policy."""
        with self._update_lock:
            for model in list(self._models.values()):
                self._update(model)

    def _update(self, model: model_server_config_pb2.ModelConfig) -> None:
        policy = model.model_version_policy
        choice = policy.WhichOneof("policy_choice") or "latest"
        wanted = max(policy.latest.num_versions, 1) if choice == "latest" else None
        current = self._served.get(model.name, {})
        states = self._states.setdefault(model.name, {})
        served: Dict[int, Servable] = {}
        for version in version_dirs(model.base_path):
            if wanted is not None and len(served) >= wanted:
                break
            if choice == "specific" and version not in policy.specific.versions:
                continue
            servable = current.get(version) or self._load(model.name, version, model.base_path)
            if servable is not None:
                served[version] = servable
        for version in set(current) - set(served):
            states[version] = (State.END, "", 0)
        self._served = {**self._served, model.name: served}  # the atomic swap

    def _load(self, name: str, version: int, base_path: str) -> Optional[Servable]:
        path = os.path.join(base_path, str(version))
        stamp = _stamp(path)
        if self._failed.get((name, version)) == stamp:
            return None  # failed before and unchanged since
        states = self._states[name]
        states[version] = (State.LOADING, "", 0)
        try:
            servable = Servable(name, version, path)
        except Exception as error:  # any broken directory: report it, keep serving the rest
            self._failed[(name, version)] = stamp
            code = getattr(error, "error_code", UNKNOWN_ERROR)
            states[version] = (State.END, f"Failed to load {path}: {str(error).splitlines()[0]}", code)
            print(f"Model {name} version {version} failed to load: {states[version][1]}", flush=True)
            return None
        states[version] = (State.AVAILABLE, "", 0)
        print(f"Loaded model {name} version {version} from {path}", flush=True)
        return servable

    def watch(self, poll_seconds: float, config_file: Optional[str] = None,
              config_poll_seconds: float = 0) -> threading.Thread:
        """Polls the base paths every `poll_seconds` (and `config_file` every `config_poll_seconds`)."""
        def loop():
            next_config = time.monotonic() + config_poll_seconds
            last = _read(config_file) if config_file and config_poll_seconds > 0 else None
            while not self._stop.wait(poll_seconds):
                try:
                    if last is not None and time.monotonic() >= next_config:
                        next_config = time.monotonic() + config_poll_seconds
                        text = _read(config_file)
                        if text != last:
                            last = text
                            self.reload(read_config(config_file))
                    self.poll()
                except Exception as error:  # a bad config edit or a vanished path: keep serving
                    print(f"Model update failed, still serving the previous state: {error}", flush=True)
        thread = threading.Thread(target=loop, name="model-poller", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    # ---- lookups ------------------------------------------------------------------------
    def servable(self, spec) -> Servable:
        """The servable a ModelSpec names (latest, a version, or a version label)."""
        if not spec.name:
            raise ServableError(grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified.")
        versions = self._served.get(spec.name, {})
        choice = spec.WhichOneof("version_choice")
        if choice == "version_label":
            version = self._labels.get(spec.name, {}).get(spec.version_label)
            if version is None:
                raise ServableError(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"Unrecognized servable version label: {spec.version_label}")
        else:
            version = spec.version.value if choice == "version" else max(versions, default=None)
        if version not in versions:
            request = f"Specific({spec.name}, {version})" if choice else f"Latest({spec.name})"
            raise ServableError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request}")
        return versions[version]

    def status(self, name: str, version: Optional[int] = None) -> List[Tuple[int, int, str, int]]:
        """[(version, state, error message, error code)] of a model, newest first."""
        if not name:
            raise ServableError(grpc.StatusCode.INVALID_ARGUMENT, "Missing model name in request.")
        states = self._states.get(name, {}).copy() if name in self._models else None  # copy: atomic
        if not states:
            raise ServableError(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {name}")
        if version is not None and version not in states:
            raise ServableError(grpc.StatusCode.NOT_FOUND, f"Could not find version {version} of model {name}")
        return [(v, *states[v]) for v in sorted(states, reverse=True) if version in (None, v)]

    def ready(self, name: str = "") -> Optional[bool]:
        """Whether `name` (every model when "") has a version serving; None for an unknown model."""
        if name and name not in self._models:
            return None
        return all(self._served.get(n) for n in ([name] if name else self._models))
