"""A TF-Serving-compatible gRPC server and the composing client."""
from models import set_tf_environment

set_tf_environment()  # before TensorFlow loads
