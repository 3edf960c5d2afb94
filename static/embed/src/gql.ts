// GraphQL over HTTP (POST /graphql, Authorization: Bearer <embed token>) and a small
// graphql-transport-ws client for Subscription.embedLive (token in connection_init).

import type { EmbedFiltersInput, EmbedLiveSubscription } from "./generated/graphql";
import { EMBED_LIVE, liveEventOf, type Operation } from "./operations";
import type { Filters, LiveEvent } from "./types";

export class ApiError extends Error {
  constructor(
    message: string,
    /** extensions.reason (the REST code: embed_token_expired, embed_filter_forbidden …) */
    readonly reason: string | null,
    /** extensions.field, e.g. "filters.period" */
    readonly field: string | null,
    readonly network = false,
  ) {
    super(message);
  }
}

interface GraphQLErrorBody {
  message?: string;
  extensions?: { code?: string; reason?: string; field?: string };
}

export async function gql<Data, Variables>(
  token: string,
  operation: Operation<Data, Variables>,
  variables: Variables,
): Promise<Data> {
  let response: Response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: operation.document, variables }),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new ApiError("The server could not be reached.", null, null, true);
  }
  let body: { data?: Data | null; errors?: GraphQLErrorBody[] };
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`The server answered ${response.status}.`, null, null, true);
  }
  const error = body.errors?.[0];
  if (error) {
    const ext = error.extensions ?? {};
    throw new ApiError(error.message ?? "error", ext.reason ?? ext.code ?? null, ext.field ?? null);
  }
  if (!body.data) throw new ApiError(`The server answered ${response.status}.`, null, null, true);
  return body.data;
}

/** The filters as EmbedFiltersInput: only the parts in use. */
export function filtersInput(filters: Filters): EmbedFiltersInput | null {
  const input: EmbedFiltersInput = {};
  if (filters.period) input.period = filters.period;
  if (Object.keys(filters.dimensions).length) input.dimensions = filters.dimensions;
  if (Object.keys(filters.numericRanges).length) input.numericRanges = filters.numericRanges;
  if (Object.keys(filters.dateRanges).length) input.dateRanges = filters.dateRanges;
  return Object.keys(input).length ? input : null;
}

export interface LiveHandlers {
  onEvent(event: LiveEvent): void;
  onState(state: "connecting" | "live" | "closed"): void;
  /** The server refused the token (close code 4403): the runtime checks why. */
  onRefused(): void;
}

/** graphql-transport-ws: connection_init → connection_ack → subscribe / next / complete,
 * ping ↔ pong. One subscription at a time (a filter change completes the old one);
 * reconnects with backoff until closed. */
export class LiveSocket {
  private ws: WebSocket | null = null;
  private acked = false;
  private subscriptionId: string | null = null;
  private nextId = 1;
  private filters: Filters | null = null;
  private retries = 0;
  private stopped = false;
  private retryTimer: number | undefined;
  private pingTimer: number | undefined;

  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly handlers: LiveHandlers,
  ) {}

  start(filters: Filters): void {
    this.stopped = false;
    if (this.ws) {
      this.subscribe(filters);
      return;
    }
    this.filters = filters;
    this.connect();
  }

  subscribe(filters: Filters): void {
    this.filters = filters;
    if (this.ws && this.acked) this.sendSubscribe();
    else if (!this.ws && !this.stopped) this.connect();
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.retryTimer);
    window.clearInterval(this.pingTimer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, "done");
    }
  }

  private connect(): void {
    window.clearTimeout(this.retryTimer);
    this.handlers.onState("connecting");
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url, "graphql-transport-ws");
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.acked = false;
    this.subscriptionId = null;
    ws.onopen = () => this.send({ type: "connection_init", payload: { token: this.token } });
    ws.onmessage = (message) => this.receive(message.data);
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.acked = false;
      window.clearInterval(this.pingTimer);
      this.handlers.onState("closed");
      if (event.code === 4403) {
        this.stopped = true;
        this.handlers.onRefused();
        return;
      }
      if (!this.stopped) this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    const delay = Math.min(30_000, 1000 * 2 ** this.retries) * (0.75 + Math.random() / 2);
    this.retries += 1;
    this.retryTimer = window.setTimeout(() => this.connect(), delay);
  }

  private send(message: unknown): void {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  private sendSubscribe(): void {
    if (this.subscriptionId) this.send({ id: this.subscriptionId, type: "complete" });
    const id = String(this.nextId++);
    this.subscriptionId = id;
    const variables = { filters: this.filters ? filtersInput(this.filters) : null };
    this.send({ id, type: "subscribe", payload: { query: EMBED_LIVE.document, variables } });
  }

  private receive(raw: unknown): void {
    let message: { type?: string; id?: string; payload?: unknown };
    try {
      message = JSON.parse(String(raw));
    } catch {
      return;
    }
    switch (message.type) {
      case "connection_ack":
        this.acked = true;
        this.retries = 0;
        this.pingTimer = window.setInterval(() => this.send({ type: "ping" }), 25_000);
        this.sendSubscribe();
        break;
      case "ping":
        this.send({ type: "pong" });
        break;
      case "next": {
        if (message.id !== this.subscriptionId) return;
        const payload = message.payload as { data?: EmbedLiveSubscription | null } | undefined;
        const event = payload?.data?.embedLive;
        if (event) {
          this.handlers.onState("live");
          this.handlers.onEvent(liveEventOf(event));
        }
        break;
      }
      case "error":
        if (message.id !== this.subscriptionId) return;
        this.handlers.onEvent({
          type: "error",
          widgetId: null,
          message: "The live connection was refused.",
          dashboard: null,
          data: null,
        });
        break;
      default:
        break;
    }
  }
}
