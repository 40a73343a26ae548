"""TF Serving model_config_list files: read, written, and checked whole before any use
(`validate`, which makes a reload all or nothing)."""
import os
from pathlib import Path
from typing import Dict, Optional

import grpc
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving.errors import ServableError

PLATFORMS = ("tensorflow",)  # the platforms this server can load, as TF Serving's default platform map


def read_config(path: str) -> model_server_config_pb2.ModelServerConfig:
    """A TF Serving model_config_list file, relative base_paths made absolute against its directory."""
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(Path(path).read_text(), config)
    base = os.path.dirname(os.path.abspath(path))
    for model in config.model_config_list.config:
        model.base_path = os.path.normpath(os.path.join(base, model.base_path))
    return config


def write_config(path: str, models: Dict[str, str]) -> str:
    """Writes a model_config_list file serving {name: base_path}; returns `path`."""
    config = model_server_config_pb2.ModelServerConfig()
    for name, base_path in models.items():
        config.model_config_list.config.add(name=name, base_path=base_path, model_platform="tensorflow")
    Path(path).write_text(text_format.MessageToString(config))
    return path


def under_root(path: str, root: Optional[str]) -> bool:
    """Whether `path`, symlinks resolved, lies in `root` (always, when no root is set)."""
    if not root:
        return True
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([real, real_root]) == real_root


def validate(config: model_server_config_pb2.ModelServerConfig,
             root: Optional[str] = None) -> Dict[str, model_server_config_pb2.ModelConfig]:
    """{name: ModelConfig} of `config` (only model_config_list is supported) if it is valid as a whole, else
    INVALID_ARGUMENT; with `root`, every base_path must resolve (symlinks followed) to a path under it."""
    models: Dict[str, model_server_config_pb2.ModelConfig] = {}
    try:
        if config.WhichOneof("config") != "model_config_list":
            raise ValueError("ServerModelConfig type not supported by HandleReloadConfigRequest. "
                             "Only ModelConfigList is currently supported")
        for model in config.model_config_list.config:
            if not model.name:
                raise ValueError(f"A model with base_path {model.base_path!r} has no name; give it one")
            if model.name in models:
                raise ValueError(f"Illegal to list model {model.name} multiple times in config list")
            if model.model_platform not in PLATFORMS:  # the deprecated model_type is not read
                raise ValueError(f"Model {model.name}: model_platform {model.model_platform!r} is not supported; "
                                 f"set it to one of {list(PLATFORMS)}")
            if not os.path.isabs(model.base_path):
                raise ValueError(f"Expected model {model.name} to have an absolute path or URI; "
                                 f"got base_path()={model.base_path}")
            if not under_root(model.base_path, root):
                raise ValueError(f"Model {model.name}: base_path {model.base_path} resolves to "
                                 f"{os.path.realpath(model.base_path)}, outside --model_base_path_root {root}")
            if not os.path.isdir(model.base_path):
                raise ValueError(f"Model {model.name}: base_path {model.base_path} is not a directory; "
                                 "fix the path, or run the pipeline to push a model there")
            models[model.name] = model
    except ValueError as error:
        raise ServableError(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from None
    return models
