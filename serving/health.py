"""The standard gRPC health service (grpc.health.v1.Health/Check), server and client side.

Wire-compatible with grpc_health_probe and Kubernetes' gRPC probes, without the
grpcio-health-checking package: the two messages are built from their descriptor here.
`service` "" asks about the whole server (SERVING once every model has a version
loaded); a model name asks about that model; an unknown name is NOT_FOUND.
"""
from typing import Callable, Optional

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVICE = "grpc.health.v1.Health"
UNKNOWN, SERVING, NOT_SERVING = 0, 1, 2


def _messages():
    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="grpc/health/v1/health.proto", package="grpc.health.v1",
                                              syntax="proto3")
    request = file.message_type.add(name="HealthCheckRequest")
    request.field.add(name="service", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    response = file.message_type.add(name="HealthCheckResponse")
    status = response.enum_type.add(name="ServingStatus")
    for number, name in enumerate(["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"]):
        status.value.add(name=name, number=number)
    response.field.add(name="status", number=1, type=field.TYPE_ENUM, label=field.LABEL_OPTIONAL,
                       type_name=".grpc.health.v1.HealthCheckResponse.ServingStatus")
    pool = descriptor_pool.DescriptorPool()  # private: no clash with grpcio-health-checking
    pool.Add(file)
    return tuple(message_factory.GetMessageClass(pool.FindMessageTypeByName(f"grpc.health.v1.{name}"))
                 for name in ("HealthCheckRequest", "HealthCheckResponse"))


HealthCheckRequest, HealthCheckResponse = _messages()


def add_health_service(server: grpc.Server, ready: Callable[[str], Optional[bool]]) -> None:
    """Registers Health/Check on `server`; `ready(service)` -> True, False, or None if unknown."""
    def check(request, context):
        state = ready(request.service)
        if state is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return HealthCheckResponse(status=SERVING if state else NOT_SERVING)

    handler = grpc.unary_unary_rpc_method_handler(check, request_deserializer=HealthCheckRequest.FromString,
                                                  response_serializer=HealthCheckResponse.SerializeToString)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Check": handler}),))


def check(channel: grpc.Channel, service: str = "", timeout: float = 5.0) -> int:
    """The serving status (SERVING, NOT_SERVING, ...) the server reports for `service`."""
    call = channel.unary_unary(f"/{SERVICE}/Check", request_serializer=HealthCheckRequest.SerializeToString,
                               response_deserializer=HealthCheckResponse.FromString)
    return call(HealthCheckRequest(service=service), timeout=timeout).status
