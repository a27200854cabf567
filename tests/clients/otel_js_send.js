'use strict';
// Sends one known trace through the OpenTelemetry JS SDK and one of its OTLP trace exporters,
// the way an instrumented Node service would: a SERVER span and a CLIENT child that carries
// attributes of every OTLP value type, an event with attributes, a link to another trace and an
// ERROR status. Ids come from a fixed id generator and times are explicit, so the test can
// compare every stored column with what was sent.
// usage: node otel_js_send.js <http-json|http-proto|grpc> <url> <32-hex trace id> <base micros>
// prints {"traceId", "root", "child", "linkTraceId", "linkSpanId"} on stdout; exit 0 when the
// exporter reported success, 2 when it reported a failure.
const { BasicTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { trace, context, SpanKind, SpanStatusCode } = require('@opentelemetry/api');

const [kind, url, traceId, baseArg] = process.argv.slice(2);
const base = BigInt(baseArg);
const ids = {
  traceId,
  root: 'b000000000000001',
  child: 'b000000000000002',
  linkTraceId: 'c'.repeat(32),
  linkSpanId: 'c000000000000003',
};

function exporterFor(name) {
  if (name === 'http-json') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
    return new OTLPTraceExporter({ url });
  }
  if (name === 'http-proto') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
    return new OTLPTraceExporter({ url });
  }
  if (name === 'grpc') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');
    return new OTLPTraceExporter({ url });
  }
  throw new Error(`unknown exporter ${name}`);
}

// The processor only logs export failures; this wrapper keeps the result for the exit code.
const inner = exporterFor(kind);
const results = [];
const exporter = {
  export(spans, done) {
    inner.export(spans, (result) => { results.push(result); done(result); });
  },
  shutdown: () => inner.shutdown(),
  forceFlush: () => (inner.forceFlush ? inner.forceFlush() : Promise.resolve()),
};

const spanIds = [ids.root, ids.child];
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({
    'service.name': 'js-checkout',
    'deployment.environment': 'ci',
    'host.cpu.count': 2,
    'process.runtime.ratio': 0.75,
    'service.canary': true,
  }),
  idGenerator: {
    generateTraceId: () => ids.traceId,
    generateSpanId: () => spanIds.shift(),
  },
  spanProcessors: [new SimpleSpanProcessor(exporter)],
});
const tracer = provider.getTracer('tracehouse.otel-js-sender', '1.4.2');

// HrTime [seconds, nanoseconds] of base + offset microseconds.
function at(offsetUs) {
  const us = base + BigInt(offsetUs);
  return [Number(us / 1000000n), Number(us % 1000000n) * 1000];
}

const root = tracer.startSpan('GET /checkout', {
  kind: SpanKind.SERVER,
  startTime: at(0),
  attributes: { 'http.request.method': 'GET', 'http.response.status_code': 502 },
});
const child = tracer.startSpan('charge card', {
  kind: SpanKind.CLIENT,
  startTime: at(100),
  attributes: {
    'payment.provider': 'acme',
    'payment.attempt': 3,
    'payment.amount': 12.5,
    'payment.retry': true,
    'payment.cards': ['visa', 'amex'],
  },
  links: [{
    context: { traceId: ids.linkTraceId, spanId: ids.linkSpanId, traceFlags: 1 },
    attributes: { 'link.reason': 'retry-of' },
  }],
}, trace.setSpan(context.active(), root));
child.addEvent('card.declined', { 'decline.code': 'insufficient_funds', 'decline.soft': false },
  at(250));
child.setStatus({ code: SpanStatusCode.ERROR, message: 'card declined' });
child.end(at(600));
root.end(at(1000));

(async () => {
  try {
    await provider.forceFlush();
    await provider.shutdown();
  } catch (err) {
    // A refused or unreachable endpoint makes the flush reject; report it, do not crash.
    console.error(`export failed: ${err && err.message ? err.message : err}`);
    process.exit(2);
  }
  process.stdout.write(JSON.stringify(ids) + '\n');
  const failed = results.filter((r) => r.code !== 0);
  if (results.length === 0 || failed.length > 0) {
    for (const r of failed) console.error(String(r.error));
    process.exit(2);
  }
  process.exit(0);
})();
