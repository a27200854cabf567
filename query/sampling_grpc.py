"""gRPC binding of remote sampling: ``jaeger.api_v2.SamplingManager/GetSamplingStrategy``.

On its own port (Jaeger's 5779, where OTel Collector's and SDKs' gRPC remote samplers look).
Same answers as the HTTP binding; INVALID_ARGUMENT for an over-long service name,
UNAUTHENTICATED for an unknown token (``authorization: Bearer`` metadata), INTERNAL otherwise.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from core.tenancy import token_from_headers
from query import sampling_proto as pb
from query.sampling_service import SamplingService, Unauthenticated, check_service

GRPC_THREADS = 4
log = logging.getLogger("query.sampling")


def _handler(service: SamplingService) -> grpc.GenericRpcHandler:
    def get_strategy(request: Any, context: grpc.ServicerContext) -> Any:
        metadata = {k.lower(): v for k, v in context.invocation_metadata()}
        try:
            name = check_service([request.serviceName])
        except ValueError as exc:
            service.counters["grpc", "bad_request"] += 1
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            tenant = service.tenant(token_from_headers(metadata.get))
        except Unauthenticated as exc:
            service.counters["grpc", "unauthenticated"] += 1
            context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        try:
            reply = pb.response_message(service.strategy(tenant, name))
        except Exception:
            log.exception("sampling strategy for %r failed", name[:200])
            service.counters["grpc", "error"] += 1
            context.abort(grpc.StatusCode.INTERNAL, "internal error")
        service.counters["grpc", "ok"] += 1
        return reply

    method = grpc.unary_unary_rpc_method_handler(
        get_strategy,
        request_deserializer=pb.SamplingStrategyParameters.FromString,
        response_serializer=lambda m: m.SerializeToString(),
    )
    return grpc.method_handlers_generic_handler(pb.SERVICE, {pb.METHOD: method})


def start_sampling_grpc(service: SamplingService, host: str, port: int) -> grpc.Server:
    server = grpc.server(ThreadPoolExecutor(GRPC_THREADS, thread_name_prefix="sampling-grpc"))
    server.add_generic_rpc_handlers((_handler(service),))
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"cannot listen on {host}:{port} (sampling gRPC)")
    server.start()
    return server
