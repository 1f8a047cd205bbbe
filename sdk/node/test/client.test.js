import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";

import { createClient, StripeMeterError } from "../src/index.js";
import { startServer } from "./server.js";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

const FAST = { backoffMs: 20, maxBackoffMs: 100 };

test("track, flush, then read usage and projection back after the catch-up", async () => {
  const client = createClient({ apiUrl: server.url, apiKey: server.keys.acme, tenantId: "acme", customerId: "cus_A",
    maxAgeMs: 0, ...FAST });
  const key = await client.track({ metric: "api_calls", quantity: 100, ts: "2025-03-10T10:00:00Z",
    meta: { endpoint: "/v1/search" } });
  assert.match(key, /^sdk_[0-9a-f]{32}$/);
  await client.trackBatch([
    { metric: "api_calls", quantity: "0.5", ts: "2025-03-11T10:00:00Z" },
    { metric: "storage_gb", quantity: 7, ts: new Date("2025-03-12T00:00:00Z") },
  ]);
  assert.equal(client.pending, 3);
  assert.deepEqual(await client.flush(), { accepted: 3, rejected: [] });
  assert.equal(client.pending, 0);
  server.catchUp();

  const usage = await client.getUsage("cus_A");
  assert.equal(usage.asOf, "2025-03-20T12:00:00Z");
  assert.deepEqual(Object.fromEntries(usage.usage.map((u) => [u.metric, u.value])),
    { api_calls: "100.5", storage_gb: "7" });
  const projection = await client.getProjection();
  const calls = projection.projection.find((p) => p.metric === "api_calls");
  assert.equal(calls.costToDate, "1.01"); // 100.5 x 0.01 USD, rounded half up to cents
  assert.equal(calls.currency, "USD");
});

test("the server's refusals come back with their reasons", async () => {
  const client = createClient({ apiUrl: server.url, apiKey: server.keys.acme, tenantId: "acme", customerId: "cus_A",
    maxAgeMs: 0, ...FAST });
  await client.track({ metric: "api_calls", quantity: "lots", ts: "2025-03-10T10:00:00Z" });
  await client.track({ metric: "api_calls", quantity: 1, ts: "2025-03-10T10:00:00Z" });
  const result = await client.flush();
  assert.equal(result.accepted, 1);
  assert.deepEqual(result.rejected.map((r) => [r.index, r.reason]), [[0, "invalid_quantity"]]);
});

test("a full buffer flushes by itself, and so does an old one", async () => {
  const before = server.landingFiles().length;
  const client = createClient({ apiUrl: server.url, apiKey: server.keys.acme, tenantId: "acme", customerId: "cus_S",
    maxBatch: 3, maxAgeMs: 150, ...FAST });
  for (let i = 0; i < 3; i++) await client.track({ metric: "api_calls", ts: `2025-03-10T10:00:0${i}Z` });
  assert.equal(client.pending, 0);
  assert.equal(server.landingFiles().length, before + 1);
  await client.track({ metric: "api_calls", ts: "2025-03-10T10:00:09Z" });
  assert.equal(client.pending, 1);
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(client.pending, 0);
  assert.equal(server.landingFiles().length, before + 2);
});

test("503s and a dropped connection are retried with the same Idempotency-Key", async () => {
  // In front of the real server: the first request gets a 503, the second
  // reaches the server but its answer is dropped, the third goes through.
  const seen = [];
  let calls = 0;
  const flaky = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    seen.push(req.headers["idempotency-key"]);
    calls += 1;
    if (calls === 1) {
      res.writeHead(503, { "Retry-After": "0" }).end("busy");
      return;
    }
    const upstream = await fetch(server.url + req.url, { method: req.method, headers: {
      authorization: req.headers.authorization, "content-type": "application/json",
      "idempotency-key": req.headers["idempotency-key"] }, body: Buffer.concat(chunks) });
    const body = await upstream.text();
    if (calls === 2) {
      req.socket.destroy();
      return;
    }
    res.writeHead(upstream.status, { "content-type": "application/json" }).end(body);
  });
  await new Promise((r) => flaky.listen(0, "127.0.0.1", r));
  try {
    const before = server.landingFiles().length;
    const client = createClient({ apiUrl: `http://127.0.0.1:${flaky.address().port}`, apiKey: server.keys.acme,
      tenantId: "acme", customerId: "cus_R", maxAgeMs: 0, ...FAST });
    for (let i = 0; i < 5; i++) await client.track({ metric: "api_calls", ts: `2025-03-10T11:00:0${i}Z` });
    assert.deepEqual(await client.flush(), { accepted: 5, rejected: [] });
    assert.equal(calls, 3);
    assert.equal(new Set(seen).size, 1);
    // The answer lost on the way was stored by the server and replayed: one file.
    assert.equal(server.landingFiles().length, before + 1);
  } finally {
    flaky.close();
  }
});

test("another tenant's key is refused and the events stay buffered", async () => {
  const client = createClient({ apiUrl: server.url, apiKey: server.keys.globex, tenantId: "acme", customerId: "cus_A",
    maxAgeMs: 0, ...FAST });
  await client.track({ metric: "api_calls", ts: "2025-03-10T10:00:00Z" });
  await assert.rejects(client.flush(), (error) => error instanceof StripeMeterError && error.status === 403);
  assert.equal(client.pending, 1);
  await assert.rejects(createClient({ apiUrl: server.url, tenantId: "acme" }).getUsage("cus_A"),
    (error) => error.status === 401);
});
