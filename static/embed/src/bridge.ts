// The postMessage contract with the host page (spec: Browser Runtime). Every message carries
// `_emban: true`. Commands are accepted only from the parent window and only from an origin the
// environment allows; events go to the parent only, always with an explicit targetOrigin (never
// "*": an event must not reach a page the environment did not allow, even if it framed us).
//
// The allowed origins come from the page (`data-allowed-origins`, the environment's
// `allowed_origins`, printed by the server after checking the token's signature); the same list is
// the page's CSP `frame-ancestors`, so the browser refuses to render us inside any other site.
// Which of them is our parent:
// - `location.ancestorOrigins[0]` where the browser has it (Chromium, WebKit);
// - else the origin of `document.referrer` (host.js sends `referrerpolicy="strict-origin"`);
// - else the first accepted command's `event.origin`.
// Until it is known, an explicit list is posted to one origin at a time (the browser delivers a
// message only when the parent's origin is its targetOrigin, so exactly one copy arrives), and
// with `*` events wait in a short queue for the first command to name the origin.

export type Command =
  | { type: "setFilters"; filters?: unknown; [key: string]: unknown }
  | { type: "setTheme"; theme?: unknown }
  | { type: "reload" };

export type EmbedEvent =
  | { type: "ready"; dashboardId: string }
  | { type: "resize"; height: number }
  | { type: "filter"; period: string | null; filters: Record<string, string>; numericRanges: unknown; dateRanges: unknown }
  | { type: "period-change"; previousPeriod: string | null; period: string | null }
  | { type: "drill"; dimension: string; value: string; action: "apply" | "clear" | "detail" }
  | { type: "error"; message: string };

const COMMANDS = new Set(["setFilters", "setTheme", "reload"]);
const ANY_ORIGIN = "*";
const MAX_QUEUED = 100;

/** The allowed origins the page was served with (space-separated; empty: none). */
export function pageAllowedOrigins(root: HTMLElement): string[] {
  return (root.dataset.allowedOrigins ?? "").split(" ").filter((origin) => origin !== "");
}

function originOf(url: string): string | null {
  try {
    const origin = new URL(url).origin;
    return origin === "null" ? null : origin;
  } catch {
    return null;
  }
}

export class HostBridge {
  private readonly framed = window.parent !== window;
  private readonly anyOrigin: boolean;
  private readonly allowed: ReadonlySet<string>;
  /** The parent's origin, once known and allowed. */
  private hostOrigin: string | null = null;
  /** True when the browser says the parent is not allowed: nothing goes out, nothing comes in. */
  private refused = false;
  private queue: EmbedEvent[] = [];

  constructor(allowedOrigins: readonly string[]) {
    this.anyOrigin = allowedOrigins.includes(ANY_ORIGIN);
    this.allowed = new Set(allowedOrigins.filter((origin) => origin !== ANY_ORIGIN));
    const ancestors = (location as Location & { ancestorOrigins?: DOMStringList }).ancestorOrigins;
    const parent = ancestors && ancestors.length ? ancestors[0] : null;
    if (parent && parent !== "null") {
      // The browser's own word: authoritative.
      if (this.permits(parent)) this.hostOrigin = parent;
      else this.refused = true;
    } else if (document.referrer) {
      // A hint only (a stale or stripped referrer must not lock the host out).
      const hinted = originOf(document.referrer);
      if (hinted && this.permits(hinted)) this.hostOrigin = hinted;
    }
  }

  private permits(origin: string): boolean {
    return this.anyOrigin || this.allowed.has(origin);
  }

  /** The targetOrigins one event goes to: the parent's, or each allowed one while unknown. */
  private targets(): string[] {
    if (this.refused) return [];
    if (this.hostOrigin) return [this.hostOrigin];
    return this.anyOrigin ? [] : [...this.allowed];
  }

  post(event: EmbedEvent): void {
    if (!this.framed || this.refused) return;
    const targets = this.targets();
    if (targets.length === 0) {
      if (this.anyOrigin) {
        this.queue.push(event);
        if (this.queue.length > MAX_QUEUED) this.queue.shift();
      }
      return;
    }
    for (const origin of targets) window.parent.postMessage({ _emban: true, ...event }, origin);
  }

  listen(handler: (command: Command) => void): void {
    window.addEventListener("message", (event: MessageEvent) => {
      if (!this.framed || this.refused || event.source !== window.parent) return;
      if (event.origin === "null") return; // an opaque origin cannot be answered by name
      if (this.hostOrigin ? event.origin !== this.hostOrigin : !this.permits(event.origin)) return;
      const data = event.data as Record<string, unknown> | null;
      if (!data || typeof data !== "object" || data._emban !== true) return;
      if (typeof data.type !== "string" || !COMMANDS.has(data.type)) return;
      if (!this.hostOrigin) this.learn(event.origin);
      handler(data as Command);
    });
  }

  private learn(origin: string): void {
    this.hostOrigin = origin;
    const queued = this.queue;
    this.queue = [];
    for (const event of queued) this.post(event);
  }
}
