'use strict';
// Sends one known trace through zipkin-js (npm `zipkin` + `zipkin-transport-http`), the way two
// instrumented Node services would: a frontend server span calls the backend through a client
// span; the backend joins the client's span id (zipkin-js's default, a shared span) and does one
// local operation. Each service has its own HttpLogger, so each posts its own request.
// usage: node zipkin_js_send.js <endpoint url> <v1|v2> <32-hex trace id> <base micros>
const { Tracer, BatchRecorder, ExplicitContext, Annotation, TraceId, option, jsonEncoder } =
  require('zipkin');
const { HttpLogger } = require('zipkin-transport-http');

const [endpoint, encoding, traceId, baseArg] = process.argv.slice(2);
const base = Number(baseArg);
const encoder = encoding === 'v2' ? { jsonEncoder: jsonEncoder.JSON_V2 } : {}; // default is v1

// Each logger posts once; exit 0 when both were accepted, 2 when any was refused.
let outstanding = 0;
let refused = false;
function logger() {
  const l = new HttpLogger({ endpoint, httpInterval: 20, ...encoder });
  outstanding += 1;
  l.on('success', () => { outstanding -= 1; });
  l.on('error', (err) => { console.error(err.message); refused = true; outstanding -= 1; });
  return l;
}

function tracer(service, log) {
  return new Tracer({
    ctxImpl: new ExplicitContext(),
    recorder: new BatchRecorder({ logger: log }),
    localServiceName: service,
    traceId128Bit: true,
  });
}

const front = tracer('js-frontend', logger());
const back = tracer('js-backend', logger());
const sampled = new option.Some(true);
const rootId = new TraceId({ traceId, spanId: 'a000000000000001', sampled });
const callId = new TraceId({
  traceId, spanId: 'a000000000000002', parentId: new option.Some('a000000000000001'), sampled,
});

front.setId(rootId);
front.recordServiceName('js-frontend');
front.recordRpc('get /checkout');
front.recordAnnotation(new Annotation.ServerRecv(), base);
front.recordBinary('http.path', '/checkout');

front.setId(callId);
front.recordServiceName('js-frontend');
front.recordRpc('get /stock');
front.recordAnnotation(new Annotation.ClientSend(), base + 100);
front.recordAnnotation(new Annotation.ServerAddr({ serviceName: 'js-backend', port: 8081 }),
  base + 100);

// The backend receives the client's B3 headers and joins that span id.
const joined = back.join(new TraceId({
  traceId, spanId: 'a000000000000002', parentId: new option.Some('a000000000000001'), sampled,
}));
back.setId(joined);
back.recordServiceName('js-backend');
back.recordRpc('get /stock');
back.recordAnnotation(new Annotation.ServerRecv(), base + 200);
back.recordBinary('stock.sku', 'A-17');
const localId = new TraceId({
  traceId, spanId: 'a000000000000003', parentId: new option.Some('a000000000000002'), sampled,
});
back.setId(localId);
back.recordServiceName('js-backend');
back.recordAnnotation(new Annotation.LocalOperationStart('load stock'), base + 300);
back.recordAnnotation(new Annotation.Message('cache miss'), base + 350);
back.recordAnnotation(new Annotation.LocalOperationStop(), base + 500);
back.setId(joined);
back.recordBinary('error', 'out of stock');
back.recordAnnotation(new Annotation.ServerSend(), base + 800);

front.setId(callId);
front.recordAnnotation(new Annotation.ClientRecv(), base + 900);
front.setId(rootId);
front.recordAnnotation(new Annotation.ServerSend(), base + 1000);

const deadline = Date.now() + 20000;
const timer = setInterval(() => {
  if (outstanding <= 0) { clearInterval(timer); process.exit(refused ? 2 : 0); }
  if (Date.now() > deadline) { console.error('no answer from the Zipkin endpoint'); process.exit(3); }
}, 20);
