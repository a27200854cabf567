// Sends the spans described by a JSON spec (argv[2]) with npm's jaeger-client, through its HTTP
// sender (Thrift binary to /api/traces) or its UDP sender (Thrift binary emitBatch), then prints
// the ids the client gave each span as JSON: [{traceId, spanId}] in lowercase hex, 16 / 8 bytes.
'use strict';
const { initTracer } = require('jaeger-client');
const opentracing = require('opentracing');

const spec = JSON.parse(process.argv[2]);

function value(tag) {
  return tag.type === 'binary' ? Buffer.from(tag.value, 'base64') : tag.value;
}

function hex(buffer, bytes) {
  return buffer.toString('hex').padStart(bytes * 2, '0');
}

const reporter = { flushIntervalMs: 100, logSpans: false };
if (spec.sender === 'http') {
  reporter.collectorEndpoint = spec.endpoint;
} else {
  reporter.agentHost = '127.0.0.1';
  reporter.agentPort = spec.port;
}
const logger = { info() {}, error(msg) { process.stderr.write(`jaeger-client: ${msg}\n`); } };
const tracer = initTracer(
  { serviceName: spec.service, sampler: { type: 'const', param: 1 }, reporter },
  { tags: spec.processTags, traceId128bit: spec.traceId128bit, logger },
);

const spans = [];
for (const s of spec.spans) {
  const references = [];
  if (s.parent !== null) {
    references.push(opentracing.childOf(spans[s.parent].context()));
  }
  for (const i of s.followsFrom) {
    references.push(opentracing.followsFrom(spans[i].context()));
  }
  const tags = {};
  for (const [key, tag] of Object.entries(s.tags)) tags[key] = value(tag);
  const span = tracer.startSpan(s.name, { startTime: s.startMs, references, tags });
  for (const log of s.logs) {
    const fields = {};
    for (const [key, tag] of Object.entries(log.fields)) fields[key] = value(tag);
    span.log(fields, log.timeMs);
  }
  spans.push(span);
}
spec.spans.forEach((s, i) => spans[i].finish(s.endMs));

tracer.close(() => {
  const ids = spans.map((span) => ({
    traceId: hex(span.context().traceId, 16),
    spanId: hex(span.context().spanId, 8),
  }));
  process.stdout.write(JSON.stringify(ids));
});
