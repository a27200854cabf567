"""api_v2's sampling messages (jaeger-idl proto/api_v2/sampling.proto), built at runtime.

Why declared here and not generated: the IDL file imports gogoproto and google.api
annotations, which no installed package provides and which change nothing on the wire. The
six messages and the enum are small; names, numbers and types follow the published file
(jaeger-idl commit 74be5630), and tests/unit/test_sampling_proto.py checks them against a
descriptor protoc produced from that file, so a drift fails a test.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from query.sampling_strategies import PROBABILISTIC, Strategy

PACKAGE = "jaeger.api_v2"
SERVICE = f"{PACKAGE}.SamplingManager"
METHOD = "GetSamplingStrategy"
FILE_NAME = "tracehouse/jaeger_api_v2_sampling.proto"

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_DOUBLE, _INT32, _STRING, _ENUM, _MSG = (
    _F.TYPE_DOUBLE,
    _F.TYPE_INT32,
    _F.TYPE_STRING,
    _F.TYPE_ENUM,
    _F.TYPE_MESSAGE,
)
_P = f".{PACKAGE}."
MESSAGES: dict[str, list[tuple[str, int, int, int, str]]] = {
    "ProbabilisticSamplingStrategy": [("samplingRate", 1, _DOUBLE, _OPT, "")],
    "RateLimitingSamplingStrategy": [("maxTracesPerSecond", 1, _INT32, _OPT, "")],
    "OperationSamplingStrategy": [
        ("operation", 1, _STRING, _OPT, ""),
        ("probabilisticSampling", 2, _MSG, _OPT, _P + "ProbabilisticSamplingStrategy"),
    ],
    "PerOperationSamplingStrategies": [
        ("defaultSamplingProbability", 1, _DOUBLE, _OPT, ""),
        ("defaultLowerBoundTracesPerSecond", 2, _DOUBLE, _OPT, ""),
        ("perOperationStrategies", 3, _MSG, _REP, _P + "OperationSamplingStrategy"),
        ("defaultUpperBoundTracesPerSecond", 4, _DOUBLE, _OPT, ""),
    ],
    "SamplingStrategyResponse": [
        ("strategyType", 1, _ENUM, _OPT, _P + "SamplingStrategyType"),
        ("probabilisticSampling", 2, _MSG, _OPT, _P + "ProbabilisticSamplingStrategy"),
        ("rateLimitingSampling", 3, _MSG, _OPT, _P + "RateLimitingSamplingStrategy"),
        ("operationSampling", 4, _MSG, _OPT, _P + "PerOperationSamplingStrategies"),
    ],
    "SamplingStrategyParameters": [("serviceName", 1, _STRING, _OPT, "")],
}


def file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(name=FILE_NAME, package=PACKAGE, syntax="proto3")
    enum = fdp.enum_type.add(name="SamplingStrategyType")
    enum.value.add(name="PROBABILISTIC", number=0)
    enum.value.add(name="RATE_LIMITING", number=1)
    for name, fields in MESSAGES.items():
        msg = fdp.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            f = msg.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name
    fdp.service.add(name="SamplingManager").method.add(
        name=METHOD,
        input_type=_P + "SamplingStrategyParameters",
        output_type=_P + "SamplingStrategyResponse",
    )
    return fdp


POOL = descriptor_pool.DescriptorPool()
POOL.Add(file_descriptor())


def message_class(name: str) -> Any:
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(f"{PACKAGE}.{name}"))


SamplingStrategyParameters = message_class("SamplingStrategyParameters")
SamplingStrategyResponse = message_class("SamplingStrategyResponse")


def response_message(strategy: Strategy) -> Any:
    """A Strategy as the api_v2 response message (the gRPC binding)."""
    msg = SamplingStrategyResponse()
    if strategy.kind == PROBABILISTIC:
        msg.strategyType = 0
        msg.probabilisticSampling.samplingRate = strategy.param
    else:
        msg.strategyType = 1
        msg.rateLimitingSampling.maxTracesPerSecond = int(strategy.param)
    p = strategy.per_operation
    if p is not None:
        ops = msg.operationSampling
        ops.defaultSamplingProbability = p.default_probability
        ops.defaultLowerBoundTracesPerSecond = p.lower_bound_per_second
        ops.defaultUpperBoundTracesPerSecond = p.upper_bound_per_second
        for o in p.operations:
            item = ops.perOperationStrategies.add(operation=o.operation)
            item.probabilisticSampling.samplingRate = o.probability
    return msg
