"""The gRPC status a failed request is answered with, as TF Serving chooses it.

TF Serving passes TensorFlow's own status through: an op's InvalidArgument stays
INVALID_ARGUMENT, ResourceExhausted (out of memory) stays RESOURCE_EXHAUSTED, and the
message is the op's, not Python's "Graph execution error:" wrapper. TensorFlow's errors
are recognised by their `error_code`: no TensorFlow import here.
"""
import re
from typing import Tuple

import grpc

_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}  # TF's and gRPC's codes share numbers


class ServableError(Exception):
    """A request the server answers with a gRPC status code instead of a result."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def op_message(message: str) -> str:
    """The op's own message out of a TensorFlow error's text.

    TensorFlow 2 wraps a graph error as "Graph execution error:", the node's traceback,
    the message, then "\\t [[{{node X}}]] [Op:...]"; the message is the line before that.
    """
    lines = [line for line in message.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.lstrip().startswith("[[") and i > 0:
            return lines[i - 1].strip()
    kept = [line for line in lines if line.strip() != "Graph execution error:"]
    return re.sub(r"\s*\[Op:[^\]]*\]\s*$", "", kept[0] if kept else message).strip()


def status_of(error: BaseException) -> Tuple[grpc.StatusCode, str]:
    """(gRPC code, message) to answer a request that raised `error` with."""
    if isinstance(error, ServableError):
        return error.code, str(error)
    if isinstance(error, MemoryError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, f"Out of memory: {error or 'MemoryError'}"
    code = getattr(error, "error_code", None)  # tf.errors.OpError
    if isinstance(code, int) and code in _BY_NUMBER and code != 0:
        return _BY_NUMBER[code], op_message(str(getattr(error, "message", error)))
    if isinstance(error, (ValueError, TypeError)):
        return grpc.StatusCode.INVALID_ARGUMENT, op_message(str(error))
    return grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {op_message(str(error))}"
