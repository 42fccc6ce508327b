// P1 in `make bench`: the service a team writes in an afternoon when it has no gateway. Node's
// `http` module takes `POST /v1/messages`, checks the JSON a little and queues it with BullMQ (202);
// a BullMQ worker with concurrency 64 POSTs each job to the same INCS sandbox endpoint the gateway
// uses. Redis is the bench's own (AOF `everysec`), so both sides pay the same persistence.
//
// `GET /stats` answers `{completed, failed, last_completed_ms}` for the bench's counting: processed
// = jobs completed, over the time from the start of the load to the last completion.
'use strict';
const http = require('node:http');
const { Queue, Worker } = require('bullmq');

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const port = Number(env('PEER_PORT'));
const sandbox = new URL(env('PEER_SANDBOX_URL'));
const code = env('PEER_CERTIFICATION_CODE');
const connection = { host: '127.0.0.1', port: Number(env('PEER_REDIS_PORT')), maxRetriesPerRequest: null };

const queue = new Queue('sends', {
  connection,
  defaultJobOptions: { attempts: 3, backoff: { type: 'exponential', delay: 500 }, removeOnComplete: true, removeOnFail: 1000 },
});
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function send(job) {
  const body = JSON.stringify({ to: job.data.to, type: 'text', text: job.data.text });
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: sandbox.hostname, port: sandbox.port, path: '/external/messages/whatsapp', method: 'POST', agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'certification-code': code } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => { text += c; });
        res.on('end', () => (res.statusCode < 300 ? resolve(text) : reject(new Error(`sandbox answered ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const stats = { completed: 0, failed: 0, last_completed_ms: 0 };
const worker = new Worker('sends', send, { connection, concurrency: 64 });
worker.on('completed', () => { stats.completed += 1; stats.last_completed_ms = Date.now(); });
worker.on('failed', () => { stats.failed += 1; });

function reply(res, status, obj) {
  const text = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') return reply(res, 200, stats);
  if (req.method === 'GET' && req.url === '/health') return reply(res, 200, { ok: true });
  if (req.method !== 'POST' || req.url !== '/v1/messages') return reply(res, 404, { error: 'not found' });
  let raw = '';
  req.setEncoding('utf8');
  req.on('data', (c) => { raw += c; });
  req.on('end', async () => {
    let m;
    try { m = JSON.parse(raw); } catch { return reply(res, 400, { error: 'invalid JSON' }); }
    if (typeof m.to !== 'string' || typeof m.text !== 'string') return reply(res, 422, { error: '`to` and `text` are required' });
    try {
      const job = await queue.add('send', { to: m.to, text: m.text });
      reply(res, 202, { id: job.id, status: 'queued' });
    } catch (e) {
      reply(res, 503, { error: String(e) });
    }
  });
});
server.keepAliveTimeout = 60000;
server.listen(port, '127.0.0.1');

async function stop() {
  server.close();
  await worker.close();
  await queue.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
