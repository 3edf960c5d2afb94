// The postMessage contract with the host page (spec: Browser Runtime). Every message carries
// `_emban: true`. Commands are accepted only from the parent window (and, where the browser
// tells us the parent's origin, only from that origin); events go to the parent only.

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

export class HostBridge {
  private readonly framed = window.parent !== window;
  /** The host's origin when the browser exposes it (Chromium, WebKit); otherwise "*". */
  private readonly hostOrigin: string | null = (() => {
    const ancestors = (location as Location & { ancestorOrigins?: DOMStringList }).ancestorOrigins;
    const first = ancestors && ancestors.length ? ancestors[0] : null;
    return first && first !== "null" ? first : null;
  })();

  post(event: EmbedEvent): void {
    if (!this.framed) return;
    window.parent.postMessage({ _emban: true, ...event }, this.hostOrigin ?? "*");
  }

  listen(handler: (command: Command) => void): void {
    window.addEventListener("message", (event: MessageEvent) => {
      if (!this.framed || event.source !== window.parent) return;
      if (this.hostOrigin && event.origin !== this.hostOrigin) return;
      const data = event.data as Record<string, unknown> | null;
      if (!data || typeof data !== "object" || data._emban !== true) return;
      if (typeof data.type !== "string" || !COMMANDS.has(data.type)) return;
      handler(data as Command);
    });
  }
}
