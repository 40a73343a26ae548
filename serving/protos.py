"""TF Serving's gRPC messages and stubs, importable without importing TensorFlow.

Importing anything under `tensorflow.` runs `tensorflow/__init__.py` (10-30 s), so when
TensorFlow is not loaded yet a bare stand-in `tensorflow` package (the real `__path__`,
nothing executed) serves while the pb2 modules import, and is taken out of `sys.modules`
again: a later `import tensorflow` runs as usual with the same message classes. Import
the client before starting threads that import TensorFlow.
"""
import importlib
import importlib.util
import sys
import types

_MODULES = {
    "tensor_pb2": "tensorflow.core.framework.tensor_pb2",
    "types_pb2": "tensorflow.core.framework.types_pb2",
    "predict_pb2": "tensorflow_serving.apis.predict_pb2",
    "get_model_status_pb2": "tensorflow_serving.apis.get_model_status_pb2",
    "model_service_pb2_grpc": "tensorflow_serving.apis.model_service_pb2_grpc",
    "prediction_service_pb2_grpc": "tensorflow_serving.apis.prediction_service_pb2_grpc",
}


def _import_all() -> dict:
    return {alias: importlib.import_module(name) for alias, name in _MODULES.items()}


def _import_without_tensorflow() -> dict:
    if "tensorflow" in sys.modules:
        return _import_all()
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("The tensorflow-serving-api package needs the tensorflow package's protos; "
                          "install the project's requirements (`make setup`).")
    before = set(sys.modules)
    package = types.ModuleType("tensorflow", "Stand-in for the tensorflow package while protos import.")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["tensorflow"] = package
    try:
        return _import_all()
    finally:
        for name in set(sys.modules) - before:
            if name == "tensorflow" or name.startswith("tensorflow."):
                del sys.modules[name]


_loaded = _import_without_tensorflow()
tensor_pb2, types_pb2, predict_pb2 = _loaded["tensor_pb2"], _loaded["types_pb2"], _loaded["predict_pb2"]
get_model_status_pb2 = _loaded["get_model_status_pb2"]
model_service_pb2_grpc = _loaded["model_service_pb2_grpc"]
prediction_service_pb2_grpc = _loaded["prediction_service_pb2_grpc"]
