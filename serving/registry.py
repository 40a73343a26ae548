"""Model versions on disk -> loaded servables, kept current like TF Serving's model manager.

`poll()` loads the versions each model's policy asks for beside the serving ones and swaps them in with one reference
assignment: requests never wait nor see a half-loaded model. A version that fails to load is reported (END with its
error), never replaces a working one, and is retried once its files change. `reload()` applies a new config all or
nothing. After each, `on_change` (the health service's) gets `readiness()`."""
import os
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import grpc
import tensorflow as tf
from tensorflow.python.saved_model import loader_impl
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.config import model_server_config_pb2

from serving.config import read_config, under_root, validate
from serving.errors import ServableError, op_message

State = get_model_status_pb2.ModelVersionStatus.State
MAX_VERSION = 2**63 - 1
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


class Servable:
    """One loaded version of one model: its callable signatures and every SignatureDef."""

    def __init__(self, name: str, version: int, path: str):
        import scann  # noqa: F401  registers ScaNN's TF ops (here, so clients need not load them)
        self.name, self.version = name, version
        self.model = tf.saved_model.load(path)
        self.signatures = dict(self.model.signatures)
        # TF Serving's metadata lists every SignatureDef; parse_saved_model reads .pb or .pbtxt.
        self.signature_defs = dict(loader_impl.parse_saved_model(path).meta_graphs[0].signature_def)

    def signature(self, name: str):
        """The concrete function of signature `name`; FAILED_PRECONDITION if absent (as Predict)."""
        if name not in self.signatures:
            raise ServableError(grpc.StatusCode.FAILED_PRECONDITION, f"Serving signature key \"{name}\" not found.")
        return self.signatures[name]


def version_dirs(base_path: str, root: Optional[str] = None) -> List[int]:
    """Version numbers under `base_path`, newest first; OSError if it cannot be listed. Only directories
    named by an integer in [0, 2**63) that hold a SavedModel file (and, with `root`, resolve under it)
    count; a dangling link or an unreadable entry does not."""
    versions = []
    for name in os.listdir(base_path):
        if not (name.isascii() and name.isdigit()) or int(name) > MAX_VERSION:
            continue
        path = os.path.join(base_path, name)
        try:
            if (os.path.isdir(path) and under_root(path, root)
                    and any(os.path.isfile(os.path.join(path, f)) for f in SAVED_MODEL_FILES)):
                versions.append(int(name))
        except OSError:
            continue
    return sorted(set(versions), reverse=True)


def _stamp(path: str) -> Tuple[int, int]:
    """(entries, newest mtime) of a version directory: changes when its files do; links not followed."""
    times = []
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                times.append(os.lstat(os.path.join(folder, name)).st_mtime_ns)
            except OSError:
                times.append(-1)
    return len(times), max(times, default=0)


class ModelRegistry:
    """The servable versions of every model of `config` (a ModelServerConfig), kept current by `poll()`; with
    `root`, every base path (and version directory) must resolve under it."""

    def __init__(self, config: model_server_config_pb2.ModelServerConfig, root: Optional[str] = None):
        self.root = root
        self._update_lock = threading.Lock()  # one update (poll or reload) at a time
        self._models: Dict[str, model_server_config_pb2.ModelConfig] = {}
        self._served: Dict[str, Dict[int, Servable]] = {}  # replaced whole, never mutated
        self._labels: Dict[str, Dict[str, int]] = {}
        self._states: Dict[str, Dict[int, Tuple[int, str, int]]] = {}  # version -> (state, error, code)
        self._failed: Dict[Tuple[str, int], tuple] = {}  # (model, version) -> (stamp, state) at failure
        self._stop = threading.Event()
        self.on_change: Callable[[Dict[str, bool]], None] = lambda ready: None
        self.reload(config)

    def reload(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """Serves exactly the models of `config`, or, on any error, keeps serving as before.

        Raises:
          ServableError: INVALID_ARGUMENT for an invalid config (serving/config.py),
            FAILED_PRECONDITION for a version label on a version that is not available.
        """
        models = validate(config, self.root)
        with self._update_lock:
            states = {name: dict(versions) for name, versions in self._states.items()}
            try:
                served = {name: self._versions(model, self._served.get(name, {})) for name, model in models.items()}
                unavailable = {name: self._why_empty(name, models[name].base_path)
                               for name in models if name not in self._models and not served[name]}
                if unavailable:  # as TF Serving, which waits for new models; but here nothing is applied
                    raise ServableError(grpc.StatusCode.UNKNOWN, f"{len(unavailable)} model(s) did not become "
                                        f"available, so the config was not applied: {unavailable}")
                labels = {name: dict(m.version_labels) for name, m in models.items()}
                for name, named in labels.items():
                    for version in named.values():
                        if version not in served[name]:
                            raise ServableError(grpc.StatusCode.FAILED_PRECONDITION,
                                                f"Request to assign label to version {version} of model {name}, "
                                                "which is not currently available for inference")
            except (ServableError, OSError) as error:
                self._states = states  # undo what loading reported; nothing was swapped in
                if isinstance(error, OSError):
                    raise ServableError(grpc.StatusCode.INVALID_ARGUMENT,
                                        f"Cannot scan a base path: {error}") from error
                raise
            for name, versions in self._served.items():
                for version in set(versions) - set(served.get(name, {})):
                    self._states[name][version] = (State.END, "", 0)
            self._models, self._served, self._labels = models, served, labels
            self.on_change(self.readiness())

    def _why_empty(self, name: str, base_path: str) -> str:
        failed = [(v, message) for v, (state, message, _) in self._states.get(name, {}).items() if message]
        return max(failed)[1] if failed else (f"no version directory (<base_path>/<number>/saved_model.pb) under "
                                              f"{base_path}; run the pipeline to push one")

    def poll(self) -> None:
        """Loads new version directories and unloads removed ones, model by model."""
        with self._update_lock:
            for name, model in list(self._models.items()):
                current = self._served.get(name, {})
                try:
                    served = self._versions(model, current)
                except OSError as error:  # base path unreadable: this model keeps what it serves
                    print(f"Model {name}: cannot scan {model.base_path} ({error}); still serving "
                          f"versions {sorted(current)}", flush=True)
                    continue
                for version in set(current) - set(served):
                    self._states[name][version] = (State.END, "", 0)
                self._served = {**self._served, name: served}  # the atomic swap
            self.on_change(self.readiness())

    def _versions(self, model: model_server_config_pb2.ModelConfig,
                  current: Dict[int, Servable]) -> Dict[int, Servable]:
        """The versions `model`'s policy serves now, loading those not in `current`."""
        policy = model.model_version_policy
        choice = policy.WhichOneof("policy_choice") or "latest"
        wanted = max(policy.latest.num_versions, 1) if choice == "latest" else None
        self._states.setdefault(model.name, {})
        served: Dict[int, Servable] = {}
        for version in version_dirs(model.base_path, self.root):
            if wanted is not None and len(served) >= wanted:
                break
            if choice == "specific" and version not in policy.specific.versions:
                continue
            servable = current.get(version) or self._load(model.name, version, model.base_path)
            if servable is not None:
                served[version] = servable
        return served

    def _load(self, name: str, version: int, base_path: str) -> Optional[Servable]:
        path = os.path.join(base_path, str(version))
        states = self._states[name]
        try:
            stamp = _stamp(path)
            failed = self._failed.get((name, version))
            if failed and failed[0] == stamp:
                states[version] = failed[1]
                return None  # failed before and unchanged since
            states[version] = (State.LOADING, "", 0)
            servable = Servable(name, version, path)
        except Exception as error:  # any broken directory: report it, keep serving the rest
            code = getattr(error, "error_code", grpc.StatusCode.UNKNOWN.value[0])  # TF's codes are gRPC's
            states[version] = (State.END, f"Failed to load {path}: {op_message(str(error))}", code)
            self._failed[(name, version)] = (_stamp(path), states[version])
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
            last = Path(config_file).read_text() if config_file and config_poll_seconds > 0 else None
            while not self._stop.wait(poll_seconds):
                try:
                    if last is not None and time.monotonic() >= next_config:
                        next_config = time.monotonic() + config_poll_seconds
                        text = Path(config_file).read_text()
                        if text != last:
                            last = text
                            self.reload(read_config(config_file))
                except Exception as error:  # a bad config edit: keep serving the previous config
                    print(f"Config file not applied, still serving the previous config: {error}", flush=True)
                try:
                    self.poll()
                except Exception as error:  # never stop polling
                    print(f"Model update failed, still serving the previous state: {error}", flush=True)
        thread = threading.Thread(target=loop, name="model-poller", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

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
        """[(version, state, error message, error code)] of a model, newest first; NOT_FOUND if none."""
        states = self._states.get(name, {}).copy() if name in self._models else {}  # copy: atomic
        if not states:
            raise ServableError(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {name}")
        if version is not None and version not in states:
            raise ServableError(grpc.StatusCode.NOT_FOUND, f"Could not find version {version} of model {name}")
        return [(v, *states[v]) for v in sorted(states, reverse=True) if version in (None, v)]

    def readiness(self) -> Dict[str, bool]:
        """{model: whether it has a version serving} of every configured model."""
        return {name: bool(self._served.get(name)) for name in self._models}
