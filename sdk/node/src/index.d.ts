/** One usage event as `track` takes it (the contract's camelCase). */
export interface UsageEvent {
  metric: string;
  /** Defaults to the client's `customerId`. */
  customerRef?: string;
  /** A number or an exact decimal string; default 1. */
  quantity?: number | string;
  /** RFC 3339 time or a Date; default: now, fixed at `track` time. */
  ts?: string | Date;
  /** Generated at `track` time when absent, so a re-sent event counts once. */
  idempotencyKey?: string;
  resourceId?: string;
  meta?: Record<string, unknown>;
}

export interface ClientOptions {
  apiUrl: string;
  /** Bearer key for `Authorization: Bearer <key>`. */
  apiKey?: string;
  tenantId: string;
  customerId?: string;
  /** Flush when this many events are buffered (default 500). */
  maxBatch?: number;
  /** Flush this long after the first buffered event (default 5000 ms; 0: only explicit flushes). */
  maxAgeMs?: number;
  /** Attempts per request on 429/5xx/connection errors (default 6). */
  maxAttempts?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
  timeoutMs?: number;
  fetch?: typeof globalThis.fetch;
}

export interface Rejection {
  index: number;
  /** The ingest's quarantine reason: missing_field, invalid_quantity, future_timestamp, ... */
  reason: string;
  field: string;
  detail: string;
}

export interface FlushResult {
  accepted: number;
  rejected: Rejection[];
}

export interface UsageRow {
  metric: string;
  periodStart: string;
  periodEnd: string;
  aggregation: "sum" | "count" | "max" | "last";
  /** Exact decimal as a string. */
  value: string;
  eventCount: number;
  watermark: string;
}

export interface Usage {
  tenantId: string;
  customerRef: string;
  /** The analyst snapshot's as-of time. */
  asOf: string;
  usage: UsageRow[];
}

export interface ProjectionRow {
  metric: string;
  periodStart: string;
  periodEnd: string;
  aggregation: string;
  usageToDate: string;
  elapsedFraction: string;
  projectedUsage: string | null;
  isEstimate: boolean;
  priced: boolean;
  currency: string | null;
  costToDate: string | null;
  projectedCost: string | null;
  note: string | null;
}

export interface Projection {
  tenantId: string;
  customerRef: string;
  asOf: string;
  projection: ProjectionRow[];
}

export declare class StripeMeterError extends Error {
  readonly status: number;
}

export declare class StripeMeterClient {
  constructor(options: ClientOptions);
  readonly pending: number;
  lastError: unknown;
  lastRejected: Rejection[];
  track(event: UsageEvent): Promise<string>;
  trackBatch(events: UsageEvent[]): Promise<string[]>;
  flush(): Promise<FlushResult>;
  getUsage(customerRef?: string): Promise<Usage>;
  getProjection(customerRef?: string): Promise<Projection>;
  close(): Promise<void>;
}

export declare function createClient(options: ClientOptions): StripeMeterClient;
export declare function newKey(): string;
