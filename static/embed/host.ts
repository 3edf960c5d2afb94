// Emban's host helper, the one source of host.js and host.d.ts (build.mjs generates both; they
// are committed and `node build.mjs --check` keeps them in step). It runs on the customer's page:
// it mounts a signed embed URL in an iframe and speaks the postMessage contract (the spec's
// "Browser Runtime" tables).

export type Period = "1h" | "24h" | "7d" | "30d" | "90d";

export interface NumericRange {
  min?: number | null;
  max?: number | null;
}

export interface DateRange {
  /** ISO 8601; offset-less times are UTC. */
  from: string;
  to: string;
}

/** setFilters payload. Each part given replaces the current one; parts left out are kept.
 * `period: null` goes back to each widget's own period; a `null` dimension value clears it. */
export interface EmbanFilters {
  period?: Period | null;
  dimensions?: Record<string, string | null>;
  numericRanges?: Record<string, NumericRange | null>;
  dateRanges?: { timestamp?: DateRange | null };
}

/** The six theme tokens (any CSS colour). setTheme applies the given ones at once. */
export interface EmbanTheme {
  primaryColor?: string;
  backgroundColor?: string;
  cardBackground?: string;
  cardBorder?: string;
  textColor?: string;
  mutedColor?: string;
}

interface EmbanMessage {
  _emban: true;
}

export interface ReadyEvent extends EmbanMessage {
  type: "ready";
  dashboardId: string;
}

export interface ResizeEvent extends EmbanMessage {
  type: "resize";
  height: number;
}

export interface FilterEvent extends EmbanMessage {
  type: "filter";
  /** null: each widget shows its own period. */
  period: Period | null;
  filters: Record<string, string>;
  numericRanges: Record<string, NumericRange>;
  dateRanges: { timestamp?: DateRange };
}

export interface PeriodChangeEvent extends EmbanMessage {
  type: "period-change";
  previousPeriod: Period | null;
  period: Period | null;
}

export interface DrillEvent extends EmbanMessage {
  type: "drill";
  dimension: string;
  value: string;
  action: "apply" | "clear" | "detail";
}

export interface ErrorEvent extends EmbanMessage {
  type: "error";
  message: string;
}

/** Emitted by host.js itself (never by the iframe) when setEmbedUrl has swapped the session. */
export interface SessionSwappedEvent extends EmbanMessage {
  type: "session-swapped";
  /** The filter state carried over to the new session (a setFilters payload). */
  filters: Required<EmbanFilters> | null;
}

export interface EmbanEventMap {
  ready: ReadyEvent;
  resize: ResizeEvent;
  filter: FilterEvent;
  "period-change": PeriodChangeEvent;
  drill: DrillEvent;
  error: ErrorEvent;
  "session-swapped": SessionSwappedEvent;
  "*": EmbanEventMap[Exclude<keyof EmbanEventMap, "*">];
}

export interface MountOptions {
  /** The signed embed_url your server got from POST /v1/embed-sessions. */
  url: string;
  /** The iframe's accessible title (default "Analytics dashboard"). */
  title?: string;
  /** Height in px until the first resize event (default 400). */
  height?: number;
  /** How long setEmbedUrl waits for the new session to be ready (default 20000 ms). */
  swapTimeout?: number;
}

export interface EmbanEmbed {
  /** The current iframe (it changes after setEmbedUrl). */
  readonly iframe: HTMLIFrameElement | null;
  setFilters(filters: EmbanFilters): void;
  setTheme(theme: EmbanTheme): void;
  reload(): void;
  /** Swap in the next signed URL of the same dashboard, keeping the current filters and theme.
   * Resolves (and emits "session-swapped") once the new session shows them. */
  setEmbedUrl(nextSignedUrl: string): Promise<SessionSwappedEvent>;
  /** Listen to an event ("*" for all); returns a function that removes the handler. */
  on<K extends keyof EmbanEventMap>(type: K, handler: (event: EmbanEventMap[K]) => void): () => void;
  destroy(): void;
}

export interface EmbanStatic {
  mount(element: HTMLElement | string, options: MountOptions): EmbanEmbed;
  readonly version: string;
}

declare global {
  interface Window {
    Emban: EmbanStatic;
  }
  const Emban: EmbanStatic;
}

// --- the implementation (not part of the declarations) -----------------------------------------

type Message = { type: string; _emban?: true; [key: string]: unknown };
type Handler = (event: never) => void;

interface Frame {
  iframe: HTMLIFrameElement;
  origin: string;
  loaded: boolean;
  ready: boolean;
  queue: Message[];
  filter: Required<EmbanFilters> | null;
  height?: number;
}

interface Swap {
  frame: Frame;
  resolve(event: SessionSwappedEvent): void;
  reject(error: Error): void;
  waitingForFilters: boolean;
  timer?: ReturnType<typeof setTimeout>;
}

const EVENTS = ["ready", "resize", "filter", "period-change", "drill", "error"];
const SWAP_TIMEOUT_MS = 20000;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function copy<T>(value: T): T {
  return value === undefined ? value : JSON.parse(JSON.stringify(value));
}

function mount(target: HTMLElement | string, options: MountOptions): EmbanEmbed {
  const element = typeof target === "string" ? document.querySelector<HTMLElement>(target) : target;
  if (!element || typeof element.appendChild !== "function") {
    throw new Error("Emban.mount: a container element is required");
  }
  if (!options || typeof options.url !== "string" || !options.url) {
    throw new Error("Emban.mount: options.url (a signed embed URL) is required");
  }

  let handlers: Record<string, Handler[]> = {}; // type -> [handler]; "*" gets every event
  let lastFilters: Required<EmbanFilters> | null = null; // the embed's last reported state, as a setFilters payload
  let lastTheme: EmbanTheme | null = null; // merged setTheme tokens, re-applied after a swap
  let destroyed = false;
  let current: Frame | null = null;
  let pending: Swap | null = null; // the frame being swapped in by setEmbedUrl

  function emit(type: string, event: unknown): void {
    const list = (handlers[type] || []).concat(handlers["*"] || []);
    for (const handler of list) {
      try {
        handler(event as never);
      } catch (error) {
        setTimeout(() => {
          throw error;
        });
      }
    }
  }

  function createFrame(url: string): Frame {
    const absolute = new URL(url, window.location.href);
    const iframe = document.createElement("iframe");
    iframe.src = absolute.href;
    iframe.title = options.title || "Analytics dashboard";
    iframe.setAttribute("sandbox", "allow-scripts allow-same-origin allow-popups allow-popups-to-escape-sandbox");
    // Your page's origin, never its path: the runtime takes its targetOrigin from it where the
    // browser has no location.ancestorOrigins (Firefox).
    iframe.setAttribute("referrerpolicy", "strict-origin");
    iframe.style.display = "block";
    iframe.style.width = "100%";
    iframe.style.border = "0";
    iframe.style.colorScheme = "normal";
    iframe.style.height = (options.height || 400) + "px";
    const frame: Frame = { iframe, origin: absolute.origin, loaded: false, ready: false, queue: [], filter: null };
    // The runtime listens from the moment its page has loaded; a theme sent then is applied
    // before the first chart is drawn. Other commands wait for ready.
    iframe.addEventListener("load", () => {
      frame.loaded = true;
      flush(frame);
    });
    return frame;
  }

  function send(frame: Frame, message: Message): void {
    message._emban = true;
    const now = frame.ready || (frame.loaded && message.type === "setTheme");
    if (now && frame.iframe.contentWindow) {
      frame.iframe.contentWindow.postMessage(message, frame.origin);
    } else {
      frame.queue.push(message);
    }
  }

  function flush(frame: Frame): void {
    const queue = frame.queue;
    frame.queue = [];
    for (const message of queue) send(frame, message);
  }

  function asSetFilters(event: Record<string, unknown>): Required<EmbanFilters> {
    return {
      period: event.period === undefined ? null : (event.period as Period | null),
      dimensions: copy(event.filters as Record<string, string>) || {},
      numericRanges: copy(event.numericRanges as Record<string, NumericRange>) || {},
      dateRanges: copy(event.dateRanges as { timestamp?: DateRange }) || {},
    };
  }

  function onMessage(event: MessageEvent): void {
    let frame: Frame | null = null;
    if (current && event.source === current.iframe.contentWindow) frame = current;
    else if (pending && event.source === pending.frame.iframe.contentWindow) frame = pending.frame;
    if (!frame || event.origin !== frame.origin) return;
    const data: unknown = event.data;
    if (!isObject(data) || data._emban !== true || EVENTS.indexOf(data.type as string) === -1) return;
    if (pending && frame === pending.frame) {
      onPendingMessage(pending, data);
      return;
    }
    if (data.type === "ready") {
      frame.ready = true;
      flush(frame);
    } else if (data.type === "resize" && typeof data.height === "number" && isFinite(data.height)) {
      frame.iframe.style.height = Math.max(0, Math.ceil(data.height)) + "px";
    } else if (data.type === "filter") {
      lastFilters = asSetFilters(data);
    }
    emit(data.type as string, data);
  }

  // --- setEmbedUrl: load the next session beside the current one, re-apply the filters
  // (and theme) once it is ready, then swap. Its own ready/filter/resize stay internal.
  function onPendingMessage(swap: Swap, data: Record<string, unknown>): void {
    const frame = swap.frame;
    if (data.type === "resize" && typeof data.height === "number") {
      frame.height = Math.max(0, Math.ceil(data.height));
    } else if (data.type === "filter") {
      frame.filter = asSetFilters(data);
      if (swap.waitingForFilters) promote();
    } else if (data.type === "ready") {
      frame.ready = true;
      if (lastTheme) send(frame, { type: "setTheme", theme: copy(lastTheme) });
      if (lastFilters && !sameFilters(lastFilters, frame.filter)) {
        swap.waitingForFilters = true;
        send(frame, { type: "setFilters", filters: copy(lastFilters) });
      } else {
        promote();
      }
    } else if (data.type === "error") {
      if (!frame.ready) {
        abort(data as unknown as ErrorEvent);
      } else {
        // The new session refused the old filters: it is still the session now.
        emit("error", data);
        promote();
      }
    }
  }

  function sameFilters(a: unknown, b: unknown): boolean {
    return !!b && JSON.stringify(normalize(a)) === JSON.stringify(normalize(b));
  }

  function normalize(value: unknown): unknown {
    if (!isObject(value)) return value;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = normalize(value[key]);
    return out;
  }

  function promote(): void {
    const swap = pending!;
    pending = null;
    clearTimeout(swap.timer);
    const frame = swap.frame;
    const old = current;
    current = frame;
    frame.iframe.style.position = "";
    frame.iframe.style.visibility = "";
    frame.iframe.style.left = "";
    frame.iframe.style.top = "";
    frame.iframe.style.width = "100%";
    frame.iframe.style.pointerEvents = "";
    frame.iframe.removeAttribute("aria-hidden");
    frame.iframe.tabIndex = 0;
    if (frame.height !== undefined) frame.iframe.style.height = frame.height + "px";
    if (old) old.iframe.remove();
    flush(frame);
    if (frame.filter) lastFilters = frame.filter;
    const event: SessionSwappedEvent = { _emban: true, type: "session-swapped", filters: copy(lastFilters) };
    emit("session-swapped", event);
    swap.resolve(event);
  }

  function abort(errorEvent: ErrorEvent): void {
    const swap = pending!;
    pending = null;
    clearTimeout(swap.timer);
    swap.frame.iframe.remove();
    emit("error", errorEvent);
    swap.reject(new Error(errorEvent.message));
  }

  function setEmbedUrl(nextUrl: string): Promise<SessionSwappedEvent> {
    if (destroyed) return Promise.reject(new Error("Emban: this embed was destroyed"));
    if (typeof nextUrl !== "string" || !nextUrl) {
      return Promise.reject(new Error("Emban.setEmbedUrl: a signed embed URL is required"));
    }
    if (pending) {
      clearTimeout(pending.timer);
      pending.frame.iframe.remove();
      pending.reject(new Error("Emban: replaced by a newer setEmbedUrl"));
      pending = null;
    }
    const frame = createFrame(nextUrl);
    // Laid out at the current width so the new dashboard measures itself right, but unseen.
    frame.iframe.style.position = "absolute";
    frame.iframe.style.visibility = "hidden";
    frame.iframe.style.pointerEvents = "none";
    frame.iframe.style.left = "-10000px";
    frame.iframe.style.top = "0";
    frame.iframe.style.width = (current ? current.iframe.clientWidth : element!.clientWidth) + "px";
    frame.iframe.setAttribute("aria-hidden", "true");
    frame.iframe.tabIndex = -1;
    return new Promise((resolve, reject) => {
      const swap: Swap = { frame, resolve, reject, waitingForFilters: false };
      pending = swap;
      swap.timer = setTimeout(() => {
        if (pending && pending.frame === frame) {
          abort({ _emban: true, type: "error", message: "The new embed session did not load." });
        }
      }, options.swapTimeout || SWAP_TIMEOUT_MS);
      element!.appendChild(frame.iframe);
    });
  }

  current = createFrame(options.url);
  element.appendChild(current.iframe);
  window.addEventListener("message", onMessage);

  return {
    get iframe() {
      return current ? current.iframe : null;
    },
    setFilters(filters) {
      if (!destroyed) send(current!, { type: "setFilters", filters: copy(filters) || {} });
    },
    setTheme(theme) {
      if (destroyed) return;
      lastTheme = Object.assign({}, lastTheme || {}, copy(theme) || {});
      send(current!, { type: "setTheme", theme: copy(theme) || {} });
    },
    reload() {
      if (!destroyed) send(current!, { type: "reload" });
    },
    setEmbedUrl,
    on(type, handler) {
      (handlers[type] = handlers[type] || []).push(handler as Handler);
      return function off() {
        const list = handlers[type] || [];
        const at = list.indexOf(handler as Handler);
        if (at !== -1) list.splice(at, 1);
      };
    },
    destroy() {
      if (destroyed) return;
      destroyed = true;
      window.removeEventListener("message", onMessage);
      if (pending) {
        clearTimeout(pending.timer);
        pending.frame.iframe.remove();
        pending = null;
      }
      if (current) current.iframe.remove();
      current = null;
      handlers = {};
    },
  };
}

window.Emban = { mount, version: "1" };
