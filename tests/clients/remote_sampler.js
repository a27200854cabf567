// Drives OpenTelemetry's JaegerRemoteSampler (npm @opentelemetry/sampler-jaeger-remote) against
// tracehouse: fetch the service's strategy from <endpoint>/sampling, wait until the sampler
// applied it, then start N root spans per operation with sdk-trace-base's BasicTracerProvider and
// print how many were sampled, as JSON on stdout.
// usage: node remote_sampler.js <endpoint> <service> <spans per operation> <op> [<op>...]
'use strict';
const { JaegerRemoteSampler } = require('@opentelemetry/sampler-jaeger-remote');
const { BasicTracerProvider, AlwaysOffSampler } = require('@opentelemetry/sdk-trace-base');

async function main() {
  const [endpoint, service, perOp, ...ops] = process.argv.slice(2);
  const sampler = new JaegerRemoteSampler({
    endpoint,
    serviceName: service,
    poolingInterval: 100,
    initialSampler: new AlwaysOffSampler(),
  });
  const initial = sampler.toString();
  const deadline = Date.now() + 15000;
  while (sampler.toString() === initial) {
    if (Date.now() > deadline) throw new Error('sampler never updated: ' + initial);
    await new Promise((r) => setTimeout(r, 50));
  }
  const provider = new BasicTracerProvider({ sampler });
  const tracer = provider.getTracer('tracehouse-sampling-test');
  const sampled = {};
  for (const op of ops) {
    sampled[op] = 0;
    for (let i = 0; i < Number(perOp); i++) {
      const span = tracer.startSpan(op);
      if (span.spanContext().traceFlags & 1) sampled[op] += 1;
      span.end();
    }
  }
  process.stdout.write(JSON.stringify({ sampler: sampler.toString(), sampled }) + '\n');
  process.exit(0); // the sampler's polling interval would keep node alive
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
  process.exit(1);
});
