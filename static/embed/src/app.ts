// The embed runtime: load the published dashboard and its data over GraphQL, draw it, keep the
// live subscription open, and speak the host contract (bridge.ts).

import { HostBridge, type Command } from "./bridge";
import { errorEffect } from "./errors";
import { FilterError, filterEvent, parseSetFilters, refusal } from "./filters";
import { ApiError, filtersInput, gql, LiveSocket } from "./gql";
import { dashboardOf, EMBED_DASHBOARD, EMBED_PROBE, EMBED_WIDGET, permissionsOf } from "./operations";
import { applyTheme, currentColors, ThemeError } from "./theme";
import { Toolbar } from "./toolbar";
import { initialSession, reduce, type Session, type SessionEvent } from "./session";
import type { EmbedDashboardQuery } from "./generated/graphql";
import type { Dashboard, Drill, Filters, LiveEvent, Permissions, Result, Widget } from "./types";
import { WidgetView, type RenderContext } from "./widgets";

const MESSAGES = {
  expired: "This embed session has expired.",
  invalid: "This embed link is not valid.",
  noToken: "This embed link has no session token.",
  notPublished: "This dashboard is not published.",
  refresh: "Couldn't refresh this dashboard",
  load: "Couldn't load this dashboard",
};
const LIVE_WAIT_MS = 3000;

type Outcome = { ok: true; result: Result } | { ok: false; error: ApiError };

const EMPTY_RESULT: Result = { data: [], meta: {} };

function asApiError(error: unknown): ApiError {
  return error instanceof ApiError ? error : new ApiError(String(error), null, null, true);
}

/** A refusal of what was asked (filters, drill), as opposed to a widget that cannot load. */
function isRefusal(error: ApiError): boolean {
  return errorEffect(error.reason, error.field) === "refused";
}

/** The first data the page carries (emban/embed_boot.py): the answers the runtime's first
 * EmbedDashboard request and first EmbedWidget requests (no filters, no drill) would get, for
 * the widgets the server could answer; the others are requested as usual. */
export interface Boot {
  embed: EmbedDashboardQuery["embed"];
  widgets: Record<string, Result>;
}

/** The page's boot data, removed from the document (read once). */
export function takeBoot(): Boot | null {
  const element = document.getElementById("emban-boot");
  if (!element) return null;
  element.remove();
  try {
    const boot = JSON.parse(element.textContent ?? "") as Boot;
    return boot && typeof boot === "object" && boot.embed && boot.widgets ? boot : null;
  } catch {
    return null;
  }
}

function noFilters(filters: Filters): boolean {
  return (
    filters.period === null &&
    !Object.keys(filters.dimensions).length &&
    !Object.keys(filters.numericRanges).length &&
    !Object.keys(filters.dateRanges).length
  );
}

function tokenExpiry(token: string): number | null {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
    return typeof claims.exp === "number" ? claims.exp : null;
  } catch {
    return null;
  }
}

export class EmbedApp {
  /** The session's state: replaced by `dispatch`, never mutated (see session.ts). */
  private session: Session = initialSession();
  private readonly views = new Map<string, WidgetView>();
  private readonly live: LiveSocket;
  private lastHeight = -1;
  private liveSeen: (() => void) | null = null;
  private expiryTimer: number | undefined;
  private readonly toolbar: Toolbar;
  private readonly grid: HTMLElement;
  private readonly notice: HTMLElement;
  private bootEmbed: Boot["embed"] | null;
  private bootWidgets: Record<string, Result> | null;

  constructor(
    private readonly root: HTMLElement,
    private readonly dashboardId: string,
    private readonly token: string | null,
    private readonly bridge: HostBridge,
    boot: Boot | null = null,
  ) {
    // Used for the first load only: a retry or a republish asks the server again.
    this.bootEmbed = boot?.embed ?? null;
    this.bootWidgets = boot?.widgets ?? null;
    this.toolbar = new Toolbar({
      setPeriod: (period) => void this.setFilters({ period }),
      setDimension: (dimension, value) =>
        void this.setFilters({ dimensions: { ...this.session.filters.dimensions, [dimension]: value } }),
      clearDrill: () => void this.clearDrill(),
      drillDetail: () => {
        const drill = this.session.drill;
        if (drill) this.bridge.post({ type: "drill", ...drill, action: "detail" });
      },
    });
    this.grid = document.createElement("div");
    this.grid.className = "emban-grid";
    this.notice = document.createElement("div");
    this.notice.className = "emban-notice";
    this.notice.hidden = true;
    this.notice.setAttribute("role", "status");
    root.append(this.notice, this.toolbar.el, this.grid);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.live = new LiveSocket(`${scheme}//${location.host}/graphql`, token ?? "", {
      onEvent: (event) => this.onLive(event),
      onState: (state) => {
        this.dispatch({ type: "live", state });
        this.toolbar.setLive(state);
        this.root.dataset.live = state;
        if (state === "closed") this.liveSeen?.();
      },
      onRefused: () => void this.liveRefused(),
    });
  }

  private dispatch(event: SessionEvent): void {
    this.session = reduce(this.session, event);
  }

  async start(): Promise<void> {
    performance.mark("emban:start");
    this.bridge.listen((command) => this.command(command));
    new ResizeObserver(() => this.postResize()).observe(this.root);
    if (!this.token) {
      this.fail("invalid", MESSAGES.noToken);
      return;
    }
    await this.boot();
  }

  /** Load and draw everything, then go live and say ready (again after a retry, or when an
   * unpublished dashboard gets published while the page is open). */
  private async boot(): Promise<void> {
    this.dispatch({ type: "boot" });
    this.showNotice(null);
    if (!(await this.loadDashboard())) {
      // Unpublished: stay subscribed, a publish pushes the config and boots again.
      if (this.session.status === "not_published") this.live.start(this.session.filters);
      return;
    }
    await this.loadAllProgressively();
    if (!performance.getEntriesByName("emban:first-render").length) {
      performance.mark("emban:first-render");
      performance.measure("emban:render", "emban:start", "emban:first-render");
    }
    if (this.session.status !== "loading") return;
    // Live after the first render: its initial snapshot would compete with the widget queries.
    const liveFirst = new Promise<void>((resolve) => {
      this.liveSeen = resolve;
      window.setTimeout(resolve, LIVE_WAIT_MS);
      if (this.session.live === "live") resolve();
    });
    this.live.start(this.session.filters);
    await liveFirst;
    if (this.session.status !== "loading") return;
    const announced = this.session.announced;
    this.dispatch({ type: "ready" });
    if (announced) {
      this.postFilter(); // a retry: the state is reported again, ready was said once
      return;
    }
    this.root.setAttribute("aria-busy", "false");
    this.postFilter();
    this.postResize(true);
    this.bridge.post({ type: "ready", dashboardId: this.session.dashboard?.id ?? this.dashboardId });
    this.scheduleExpiryCheck();
    const queued = this.session.pending;
    this.dispatch({ type: "drain" });
    for (const command of queued) this.command(command);
  }

  // --- loading ---------------------------------------------------------------------------

  private async loadDashboard(): Promise<boolean> {
    const booted = this.bootEmbed;
    this.bootEmbed = null;
    if (booted) {
      this.setDashboard(dashboardOf(booted.dashboard), permissionsOf(booted.permissions));
      return true;
    }
    try {
      const data = await gql(this.token!, EMBED_DASHBOARD, {});
      this.setDashboard(dashboardOf(data.embed.dashboard), permissionsOf(data.embed.permissions));
      return true;
    } catch (error) {
      this.failFrom(asApiError(error), MESSAGES.load);
      return false;
    }
  }

  private setDashboard(dashboard: Dashboard, permissions?: Permissions): void {
    const before = this.session.dashboard;
    this.dispatch({ type: "config", dashboard, permissions });
    const widgets = [...dashboard.widgets].sort((a, b) => a.layout.y - b.layout.y || a.layout.x - b.layout.x);
    const keep = new Set(widgets.map((w) => w.id));
    for (const [id, view] of this.views) {
      if (!keep.has(id)) {
        view.destroy();
        this.views.delete(id);
      }
    }
    for (const widget of widgets) {
      const view = this.views.get(widget.id);
      if (view && JSON.stringify(view.widget) === JSON.stringify(widget)) continue;
      view?.destroy();
      const fresh = new WidgetView(widget);
      this.views.set(widget.id, fresh);
      if (widget.kind === "text") fresh.setResult(EMPTY_RESULT, this.context());
      else fresh.setLoading();
    }
    if (widgets.length) this.grid.replaceChildren(...widgets.map((w) => this.views.get(w.id)!.el));
    else this.grid.textContent = "This dashboard has no widgets yet.";
    if (!before || before.name !== dashboard.name) document.title = dashboard.name;
    this.renderToolbar();
  }

  private drillFor(widget: Widget, drill: Drill | null): Drill | null {
    if (!drill || widget.kind === "text") return null;
    return this.views.get(widget.id)?.drillDimension === drill.dimension ? null : drill;
  }

  private async fetchWidget(widget: Widget, filters: Filters, drill: Drill | null): Promise<Outcome> {
    if (widget.kind === "text") return { ok: true, result: EMPTY_RESULT };
    try {
      const data = await gql(this.token!, EMBED_WIDGET, {
        id: widget.id,
        filters: filtersInput(filters),
        drill: this.drillFor(widget, drill),
      });
      return { ok: true, result: data.embed.widgetData };
    } catch (error) {
      return { ok: false, error: asApiError(error) };
    }
  }

  private async loadAllProgressively(): Promise<void> {
    const { generation, filters, drill } = this.session;
    const widgets = this.session.dashboard?.widgets ?? [];
    const booted = (!drill && noFilters(filters) && this.bootWidgets) || {};
    this.bootWidgets = null;
    await Promise.all(
      widgets.map(async (widget) => {
        const first = widget.kind === "text" ? undefined : booted[widget.id];
        const outcome: Outcome = first ? { ok: true, result: first } : await this.fetchWidget(widget, filters, drill);
        if (generation !== this.session.generation) return;
        this.apply(widget.id, outcome);
      }),
    );
    this.renderToolbar();
  }

  private apply(widgetId: string, outcome: Outcome): void {
    const view = this.views.get(widgetId);
    if (!view) return;
    if (outcome.ok) {
      view.setResult(outcome.result, this.context());
      return;
    }
    const error = outcome.error;
    if (this.failFrom(error, null)) return;
    const effect = errorEffect(error.reason, error.field);
    if (effect === "widget_hidden") {
      view.setError("This widget is not available in this embed.");
    } else if (effect === "widget_gone") {
      view.setError("This widget is no longer available.");
    } else {
      view.setError("Couldn't load this widget.", () => void this.refreshWidget(widgetId));
    }
  }

  private async refreshWidget(widgetId: string): Promise<void> {
    const widget = this.session.dashboard?.widgets.find((w) => w.id === widgetId);
    const view = this.views.get(widgetId);
    if (!widget || !view) return;
    const { generation, filters, drill } = this.session;
    view.setLoading();
    const outcome = await this.fetchWidget(widget, filters, drill);
    if (generation === this.session.generation) this.apply(widgetId, outcome);
  }

  /** Fetch every widget for a new state; commit it only if nothing was refused. Returns the
   * refusal, "stale" when a later change overtook this one, or null once committed. */
  private async transact(filters: Filters, drill: Drill | null, reloadConfig = false): Promise<ApiError | "stale" | null> {
    this.dispatch({ type: "change" });
    const generation = this.session.generation;
    this.showBusy();
    for (const view of this.views.values()) if (view.state === "ready" || view.state === "empty") view.setLoading();
    if (reloadConfig) {
      try {
        const data = await gql(this.token!, EMBED_DASHBOARD, {});
        if (generation !== this.session.generation) return "stale";
        this.setDashboard(dashboardOf(data.embed.dashboard), permissionsOf(data.embed.permissions));
      } catch (error) {
        if (generation !== this.session.generation) return "stale";
        this.settle();
        const failure = asApiError(error);
        this.failFrom(failure, null);
        return failure;
      }
    }
    const widgets = this.session.dashboard?.widgets ?? [];
    const outcomes = await Promise.all(widgets.map((w) => this.fetchWidget(w, filters, drill)));
    if (generation !== this.session.generation) return "stale";
    for (const outcome of outcomes) {
      if (!outcome.ok && (isRefusal(outcome.error) || this.failFrom(outcome.error, null))) {
        this.settle();
        return outcome.error;
      }
    }
    this.dispatch({ type: "committed", filters, drill });
    this.showBusy();
    widgets.forEach((widget, i) => this.apply(widget.id, outcomes[i]));
    this.renderToolbar();
    return null;
  }

  private settle(): void {
    this.dispatch({ type: "settled" });
    this.showBusy();
    for (const view of this.views.values()) view.settle();
  }

  // --- host commands and in-frame actions ----------------------------------------------------

  private command(command: Command): void {
    if (command.type === "setTheme") {
      try {
        applyTheme(command.theme);
      } catch (error) {
        this.postError(error instanceof ThemeError ? error.message : "setTheme failed");
        return;
      }
      this.rerender();
      return;
    }
    if (!this.session.announced) {
      if (this.session.status === "loading") this.dispatch({ type: "queue", command });
      else this.postError(this.statusMessage());
      return;
    }
    if (command.type === "reload") void this.reload();
    else if (command.type === "setFilters") {
      const payload = "filters" in command ? command.filters : (({ type: _type, _emban: _flag, ...rest }) => rest)(command as Record<string, unknown>);
      void this.setFilters(payload);
    }
  }

  private async setFilters(payload: unknown): Promise<void> {
    const { permissions, status } = this.session;
    if (!permissions || status !== "ready") {
      this.postError(this.statusMessage());
      return;
    }
    let next: Filters;
    try {
      next = parseSetFilters(payload, this.session.filters);
    } catch (error) {
      this.postError(error instanceof FilterError ? error.message : String(error));
      this.renderToolbar();
      return;
    }
    const refused = refusal(next, permissions);
    if (refused) {
      this.postError(refused);
      this.renderToolbar(); // puts an in-frame control back
      return;
    }
    const previous = this.session.filters;
    const outcome = await this.transact(next, this.session.drill);
    if (outcome === "stale") return;
    if (outcome) {
      if (this.session.status === "ready") this.postError(outcome.message);
      this.renderToolbar();
      return;
    }
    if (previous.period !== next.period) {
      this.bridge.post({ type: "period-change", previousPeriod: previous.period, period: next.period });
    }
    this.postFilter();
    this.live.subscribe(next);
  }

  private async reload(): Promise<void> {
    const outcome = await this.transact(this.session.filters, this.session.drill, true);
    if (outcome === "stale") return;
    if (outcome) {
      if (this.session.status === "ready") this.postError(outcome.network ? MESSAGES.refresh : outcome.message);
      return;
    }
    this.postFilter();
    this.live.subscribe(this.session.filters);
  }

  private async pick(dimension: string, value: string): Promise<void> {
    const { permissions, status, drill } = this.session;
    if (!permissions?.allowDrillDown || status !== "ready") return;
    if (drill && drill.dimension === dimension && drill.value === value) {
      await this.clearDrill();
      return;
    }
    const next = { dimension, value };
    const outcome = await this.transact(this.session.filters, next);
    if (outcome === "stale") return;
    if (outcome) {
      if (this.session.status === "ready") this.postError(outcome.message);
      return;
    }
    this.bridge.post({ type: "drill", dimension, value, action: "apply" });
  }

  private async clearDrill(): Promise<void> {
    const drill = this.session.drill;
    if (!drill) return;
    const outcome = await this.transact(this.session.filters, null);
    if (outcome === "stale") return;
    if (outcome) {
      if (this.session.status === "ready") this.postError(outcome.message);
      return;
    }
    this.bridge.post({ type: "drill", ...drill, action: "clear" });
  }

  // --- live ------------------------------------------------------------------------------

  private onLive(event: LiveEvent): void {
    this.liveSeen?.();
    if (this.session.status === "expired" || this.session.status === "invalid") return;
    if (event.type === "not_published") {
      this.notPublished();
      return;
    }
    if (event.type === "config" && event.dashboard) {
      if (this.session.status === "not_published") {
        if (!this.session.announced || !this.session.permissions) {
          void this.boot(); // it was never shown: load it as on a first visit
          return;
        }
        this.dispatch({ type: "republished" });
        this.showNotice(null);
      }
      if (JSON.stringify(event.dashboard) !== JSON.stringify(this.session.dashboard)) {
        this.setDashboard(event.dashboard);
      }
      return;
    }
    if (event.type === "data" && event.widgetId && event.data) {
      const view = this.views.get(event.widgetId);
      if (!view || view.widget.kind === "text") return;
      if (this.drillFor(view.widget, this.session.drill)) {
        void this.refreshWidget(event.widgetId); // the live cohort does not know the drill
        return;
      }
      if (view.result && JSON.stringify(view.result.data) === JSON.stringify(event.data.data)) return;
      if (this.session.busy) return; // a change in flight will load fresh data
      view.setResult(event.data, this.context());
      this.renderToolbar();
      return;
    }
    if (event.type === "error") {
      if (event.widgetId) {
        const view = this.views.get(event.widgetId);
        if (view && view.state !== "error") {
          view.setError("Couldn't refresh this widget.", () => void this.refreshWidget(event.widgetId!));
        }
      } else if (this.session.announced) {
        this.postError(MESSAGES.refresh);
      }
    }
  }

  // --- states ------------------------------------------------------------------------------

  /** Handle an error that ends the session's view (expired, invalid, unpublished). With a
   * fallback message, any other error ends it too. Returns whether it was handled. */
  private failFrom(error: ApiError, fallback: string | null): boolean {
    switch (errorEffect(error.reason, error.field)) {
      case "expired":
        this.expire();
        return true;
      case "invalid":
        this.fail("invalid", MESSAGES.invalid);
        return true;
      case "not_published":
        this.notPublished();
        return true;
      default:
        if (fallback === null) return false;
        this.fail("failed", fallback, () => void this.boot());
        return true;
    }
  }

  private expire(): void {
    if (this.session.status === "expired") return;
    this.fail("expired", MESSAGES.expired, undefined, "Reload the page to start a new session.");
  }

  private notPublished(): void {
    if (this.session.status === "not_published") return;
    const wasReady = this.session.announced;
    this.dispatch({ type: "not_published" });
    this.showNotice(MESSAGES.notPublished, undefined, "It will show here once it is published.");
    this.postError(MESSAGES.notPublished);
    if (!wasReady) this.root.setAttribute("aria-busy", "false");
  }

  private fail(status: "expired" | "invalid" | "failed", message: string, retry?: () => void, detail?: string): void {
    this.dispatch({ type: "failed", status });
    window.clearTimeout(this.expiryTimer);
    if (status === "expired" || status === "invalid") this.live.stop();
    this.root.setAttribute("aria-busy", "false");
    this.showNotice(message, retry, detail);
    this.postError(message);
  }

  private showNotice(message: string | null, retry?: () => void, detail?: string): void {
    this.root.dataset.status = message ? this.session.status : "ok";
    this.notice.replaceChildren();
    this.notice.hidden = message === null;
    this.toolbar.el.hidden = message !== null;
    this.grid.hidden = message !== null;
    if (message === null) return;
    const strong = document.createElement("strong");
    strong.textContent = message;
    this.notice.append(strong);
    if (detail) {
      const p = document.createElement("p");
      p.textContent = detail;
      this.notice.append(p);
    }
    if (retry) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "emban-retry";
      button.textContent = "Retry";
      button.addEventListener("click", retry);
      this.notice.append(button);
    }
  }

  private statusMessage(): string {
    switch (this.session.status) {
      case "expired":
        return MESSAGES.expired;
      case "invalid":
        return MESSAGES.invalid;
      case "not_published":
        return MESSAGES.notPublished;
      default:
        return MESSAGES.load;
    }
  }

  /** At the token's expiry, ask the server (its clock decides); retry while it still accepts. */
  private scheduleExpiryCheck(): void {
    const exp = this.token ? tokenExpiry(this.token) : null;
    if (exp === null) return;
    const wait = Math.max(0, exp * 1000 - Date.now()) + 250;
    if (wait < 2 ** 31 - 1) this.expiryTimer = window.setTimeout(() => void this.probe(0), wait);
  }

  /** The server closed the live socket (4403): an expired token ends the session, otherwise
   * try the socket again a little later. */
  private async liveRefused(): Promise<void> {
    try {
      await gql(this.token!, EMBED_PROBE, {});
    } catch (error) {
      const failure = asApiError(error);
      if (!failure.network && this.failFrom(failure, null)) return;
    }
    window.setTimeout(() => {
      const { status, filters } = this.session;
      if (status === "ready" || status === "not_published") this.live.start(filters);
    }, 5000);
  }

  private async probe(attempt: number): Promise<void> {
    if (this.session.status === "expired" || this.session.status === "invalid") return;
    try {
      await gql(this.token!, EMBED_PROBE, {});
    } catch (error) {
      const failure = asApiError(error);
      if (!failure.network && this.failFrom(failure, null)) return;
    }
    if (attempt < 24) this.expiryTimer = window.setTimeout(() => void this.probe(attempt + 1), 5000);
  }

  // --- rendering and events ----------------------------------------------------------------

  private context(): RenderContext {
    return {
      colors: currentColors(),
      drill: this.session.drill,
      onPick: this.session.permissions?.allowDrillDown ? (dimension, value) => void this.pick(dimension, value) : null,
    };
  }

  private rerender(): void {
    const context = this.context();
    for (const view of this.views.values()) {
      if (view.state === "ready" || view.state === "empty") view.render(context);
    }
  }

  private renderToolbar(): void {
    const { permissions, dashboard, filters, drill, busy } = this.session;
    if (!permissions || !dashboard) return;
    const values = new Map<string, Set<string>>();
    for (const view of this.views.values()) {
      const dimension = view.widget.kind === "breakdown" ? view.result?.meta.groupBy : null;
      if (!dimension || !view.result) continue;
      const seen = values.get(dimension) ?? new Set<string>();
      for (const point of view.result.data) seen.add(point.group ?? "");
      values.set(dimension, seen);
    }
    this.toolbar.render({
      name: dashboard.name,
      permissions,
      filters,
      drill,
      values,
      busy,
    });
  }

  /** Show whether a change is in flight (session.busy). */
  private showBusy(): void {
    const busy = this.session.busy;
    this.toolbar.el.classList.toggle("emban-busy", busy);
    this.root.dataset.busy = String(busy);
  }

  private postFilter(): void {
    this.bridge.post({ type: "filter", ...filterEvent(this.session.filters) } as never);
  }

  private postError(message: string): void {
    this.bridge.post({ type: "error", message });
  }

  private postResize(force = false): void {
    const height = Math.ceil(this.root.getBoundingClientRect().height);
    if (height === this.lastHeight && !force) return;
    this.lastHeight = height;
    this.bridge.post({ type: "resize", height });
  }
}
