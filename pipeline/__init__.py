"""The TFX pipeline: create_pipeline(), its configuration and runners."""
from models import set_tf_environment

set_tf_environment()  # before TensorFlow loads
