"""Benchmarks: run each as a module, e.g. `python -m benchmarks.ranking` (see its --help)."""
from models import set_tf_environment

set_tf_environment()  # before TensorFlow loads
