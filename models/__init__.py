"""Features, preprocessing_fn and the two models' Trainer code.

Importing the package sets TensorFlow's environment, which must precede TF's import; the
other packages (and tests/conftest.py) import it first for that.
"""
import os


def set_tf_environment() -> None:
    """TFRS needs Keras 2 (TF_USE_LEGACY_KERAS); TF's C++ logs: warnings and errors only."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


set_tf_environment()
