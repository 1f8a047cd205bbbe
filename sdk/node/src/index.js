// The stripemeter Node SDK: the original StripeMeter's client surface over
// `stripemeter serve`. No runtime dependencies: Node >= 20's fetch.
//
// Events are buffered and sent in batches (size or age), each event with the
// idempotency key it got in track(), so a batch re-sent after a lost answer
// never counts twice. A batch keeps its Idempotency-Key until it is answered,
// so the server replays its first answer to a retry. The server checks every
// event (the same checks as its file ingest) and answers the refused ones
// with their reasons: the SDK does not keep a second copy of those rules.

import { randomUUID } from "node:crypto";

const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);

export class StripeMeterError extends Error {
  constructor(status, message) {
    super(`HTTP ${status}: ${message}`);
    this.name = "StripeMeterError";
    this.status = status;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function newKey() {
  return "sdk_" + randomUUID().replaceAll("-", "");
}

export function createClient(options) {
  return new StripeMeterClient(options);
}

export class StripeMeterClient {
  constructor({
    apiUrl,
    apiKey,
    tenantId,
    customerId,
    maxBatch = 500,
    maxAgeMs = 5000,
    maxAttempts = 6,
    backoffMs = 200,
    maxBackoffMs = 10_000,
    timeoutMs = 30_000,
    fetch: fetchImpl = globalThis.fetch,
  } = {}) {
    if (!apiUrl) throw new TypeError("apiUrl is required");
    if (!tenantId) throw new TypeError("tenantId is required");
    this.apiUrl = apiUrl.replace(/\/+$/, "");
    this.apiKey = apiKey;
    this.tenantId = tenantId;
    this.customerId = customerId;
    this.maxBatch = maxBatch;
    this.maxAgeMs = maxAgeMs;
    this.maxAttempts = maxAttempts;
    this.backoffMs = backoffMs;
    this.maxBackoffMs = maxBackoffMs;
    this.timeoutMs = timeoutMs;
    this.fetch = fetchImpl;
    this.lastError = null;
    this.lastRejected = [];
    this.buffer = [];
    this.inflight = null; // {events, key}: the batch being sent, kept until answered
    this.timer = null;
    this.flushing = Promise.resolve();
  }

  get pending() {
    return this.buffer.length + (this.inflight ? this.inflight.events.length : 0);
  }

  /** Buffers one event; resolves to its idempotency key. */
  async track(event) {
    const [key] = await this.trackBatch([event]);
    return key;
  }

  /** Buffers events (each gets its key now); flushes when the buffer is full. */
  async trackBatch(events) {
    const records = events.map((event) => {
      if (!event || typeof event !== "object") throw new TypeError("an event must be an object");
      if (!event.metric) throw new TypeError("metric is required");
      const customerRef = event.customerRef ?? this.customerId;
      if (!customerRef) throw new TypeError("customerRef is required (or give customerId to createClient)");
      const record = {
        tenantId: this.tenantId,
        metric: event.metric,
        customerRef,
        quantity: event.quantity ?? 1,
        // Fixed now, so a re-sent event is the same event.
        ts: event.ts instanceof Date ? event.ts.toISOString() : (event.ts ?? new Date().toISOString()),
        idempotencyKey: event.idempotencyKey ?? newKey(),
      };
      if (event.resourceId != null) record.resourceId = event.resourceId;
      if (event.meta != null) record.meta = event.meta;
      return record;
    });
    this.buffer.push(...records);
    if (this.buffer.length >= this.maxBatch) {
      await this.flush();
    } else if (this.buffer.length && !this.timer && this.maxAgeMs > 0) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.flush().catch((error) => {
          this.lastError = error;
        });
      }, this.maxAgeMs);
      this.timer.unref?.();
    }
    return records.map((record) => record.idempotencyKey);
  }

  /** Sends everything buffered; resolves to the totals of the answers. On
   * failure (after retries) it rejects and the events stay buffered. */
  flush() {
    const run = this.flushing.catch(() => {}).then(() => this.#flushNow());
    this.flushing = run;
    return run;
  }

  async #flushNow() {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const total = { accepted: 0, rejected: [] };
    while (this.inflight || this.buffer.length) {
      if (!this.inflight) {
        this.inflight = { events: this.buffer.splice(0, this.maxBatch), key: "sdk-batch-" + randomUUID() };
      }
      const answer = await this.#request("POST", "/v1/events/ingest", { events: this.inflight.events }, {
        "Idempotency-Key": this.inflight.key,
      });
      this.inflight = null;
      total.accepted += answer.accepted;
      total.rejected.push(...answer.rejected);
    }
    this.lastRejected = total.rejected;
    this.lastError = null;
    return total;
  }

  /** Usage of the customer's open billing period, as of the analyst snapshot. */
  getUsage(customerRef = this.customerId) {
    const query = new URLSearchParams({ tenantId: this.tenantId });
    return this.#request("GET", `/v1/usage/${encodeURIComponent(customerRef)}?${query}`);
  }

  /** The customer's cost projection for the open period. */
  getProjection(customerRef = this.customerId) {
    return this.#request("POST", "/v1/usage/projection", { tenantId: this.tenantId, customerRef });
  }

  /** Flushes and stops the age timer. */
  async close() {
    await this.flush();
  }

  async #request(method, path, body, headers = {}) {
    let lastError;
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      let response;
      try {
        response = await this.fetch(this.apiUrl + path, {
          method,
          headers: {
            ...(this.apiKey ? { Authorization: `Bearer ${this.apiKey}` } : {}),
            ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
            ...headers,
          },
          body: body !== undefined ? JSON.stringify(body) : undefined,
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (error) {
        lastError = error; // connection refused, reset, timeout: retry
      }
      if (response) {
        if (response.ok) return response.json();
        const text = await response.text();
        lastError = new StripeMeterError(response.status, text.slice(0, 500));
        if (!RETRY_STATUSES.has(response.status)) throw lastError;
      }
      if (attempt < this.maxAttempts) await sleep(this.#delay(attempt, response));
    }
    throw lastError;
  }

  #delay(attempt, response) {
    const after = response?.headers.get("retry-after");
    if (after && /^\d+$/.test(after)) return Math.min(Number(after) * 1000, this.maxBackoffMs);
    const exp = Math.min(this.backoffMs * 2 ** (attempt - 1), this.maxBackoffMs);
    return exp / 2 + Math.random() * (exp / 2);
  }
}
