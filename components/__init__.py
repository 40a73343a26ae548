"""The project's own TFX components."""
from models import set_tf_environment

set_tf_environment()  # before TensorFlow loads
