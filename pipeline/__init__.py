"""The TFX pipeline: create_pipeline(), its configuration and runners."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TFRS needs Keras 2; set before TF loads
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF C++ logs: warnings and errors only
