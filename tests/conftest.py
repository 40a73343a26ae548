"""Shared test set-up: TF's environment is set before TensorFlow loads."""
from models import set_tf_environment

set_tf_environment()
