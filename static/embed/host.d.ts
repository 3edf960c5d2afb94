// Type declarations for Emban's host helper (static/embed/host.js, served at
// /static/embed/host.js). The postMessage contract is the spec's "Browser Runtime" tables.
// Generated from host.ts by build.mjs (tsc --emitDeclarationOnly): edit that.
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
    dateRanges?: {
        timestamp?: DateRange | null;
    };
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
    dateRanges: {
        timestamp?: DateRange;
    };
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
export {};
