// One card per widget on the 12-column grid: loading, empty, error and ready states, and the
// renderer for each kind and viz.type.

import { categoryBars, groupLabel, groupValue, pieChart, shareBar, timeChart, type Chart } from "./charts";
import { formatBucket, formatChange, formatNumber, formatShare, PERIOD_LABELS } from "./format";
import { renderMarkdown } from "./markdown";
import type { Colors } from "./theme";
import type { Drill, Result, Widget } from "./types";

export interface RenderContext {
  colors: Colors;
  drill: Drill | null;
  /** Set when the session allows drill-down: called with the breakdown's dimension and value. */
  onPick: ((dimension: string, value: string) => void) | null;
}

const TIME_TYPES = ["line", "area", "bar", "stacked_bar", "table"];
const BREAKDOWN_TYPES = ["bar", "stacked_bar", "pie", "donut", "table"];
const MAX_TABLE_ROWS = 500;

/** The viz.type drawn for a widget (an unknown type falls back to the kind's first). */
export function vizType(widget: Widget): string {
  const type = widget.viz?.type ?? "";
  switch (widget.kind) {
    case "metric":
      return "number";
    case "timeseries":
      return TIME_TYPES.includes(type) ? type : "line";
    case "breakdown":
      return BREAKDOWN_TYPES.includes(type) ? type : "bar";
    case "table":
      return "table";
    default:
      return "text";
  }
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class WidgetView {
  readonly el: HTMLElement;
  private readonly body: HTMLElement;
  private chart: Chart | null = null;
  private chartHost: HTMLElement | null = null;
  private observer: ResizeObserver | null = null;
  result: Result | null = null;
  state: "loading" | "ready" | "empty" | "error" = "loading";

  constructor(public widget: Widget) {
    this.el = el("article", "emban-card");
    this.el.dataset.widgetId = widget.id;
    this.el.dataset.kind = widget.kind;
    this.el.dataset.viz = vizType(widget);
    this.place();
    const header = el("header", "emban-card-header");
    header.append(el("h2", "emban-card-title", widget.title));
    this.body = el("div", "emban-card-body");
    this.el.append(header, this.body);
    this.el.setAttribute("aria-label", widget.title);
  }

  place(): void {
    const { x, y, w, h } = this.widget.layout;
    this.el.style.gridColumn = `${x + 1} / span ${w}`;
    this.el.style.gridRow = `${y + 1} / span ${h}`;
    this.el.style.setProperty("--h", String(h));
  }

  get drillDimension(): string | null {
    return this.widget.kind === "breakdown" ? (this.result?.meta.groupBy ?? null) : null;
  }

  setLoading(): void {
    if (this.state === "ready" || this.state === "empty") {
      this.el.classList.add("emban-refreshing");
      return;
    }
    this.state = "loading";
    this.el.dataset.state = "loading";
    this.el.setAttribute("aria-busy", "true");
    this.clear();
    const box = el("div", "emban-state emban-loading");
    box.append(el("span", "emban-spinner"), el("span", "", "Loading…"));
    this.body.append(box);
  }

  /** A refresh that changed nothing (refused or overtaken): drop the refreshing look. */
  settle(): void {
    this.el.classList.remove("emban-refreshing");
  }

  setError(message: string, retry?: () => void): void {
    this.state = "error";
    this.result = null;
    this.el.dataset.state = "error";
    this.el.removeAttribute("aria-busy");
    this.el.classList.remove("emban-refreshing");
    this.clear();
    const box = el("div", "emban-state emban-error");
    box.setAttribute("role", "alert");
    box.append(el("span", "", message));
    if (retry) {
      const button = el("button", "emban-retry", "Retry");
      button.type = "button";
      button.addEventListener("click", retry);
      box.append(button);
    }
    this.body.append(box);
  }

  setResult(result: Result, context: RenderContext): void {
    this.result = result;
    this.render(context);
  }

  /** Draw (again) from the current result: new data, a theme change, a drill. */
  render(context: RenderContext): void {
    const result = this.result;
    this.el.removeAttribute("aria-busy");
    this.el.classList.remove("emban-refreshing");
    if (this.widget.kind === "text") {
      this.clear();
      const text = el("div", "emban-text");
      text.append(renderMarkdown(this.widget.text ?? ""));
      this.body.append(text);
      this.state = "ready";
      this.el.dataset.state = "ready";
      return;
    }
    if (!result) return;
    const points = result.data.filter((p) => p.value !== null);
    this.clear();
    // A number is an answer even when it is 0; a chart or table of zero-filled buckets is not.
    const nothing = this.widget.kind === "metric" ? !points.length : points.every((p) => p.value === 0);
    if (nothing) {
      this.state = "empty";
      this.el.dataset.state = "empty";
      this.body.append(el("div", "emban-state emban-empty", "No data for this period"));
      return;
    }
    this.state = "ready";
    this.el.dataset.state = "ready";
    const total = points.reduce((sum, p) => sum + (p.value ?? 0), 0);
    this.el.dataset.total = String(total);
    const type = vizType(this.widget);
    if (type === "number") this.number(result);
    else if (type === "table") this.table(result, context);
    else this.draw(type, result, context);
  }

  destroy(): void {
    this.clear();
    this.el.remove();
  }

  private clear(): void {
    this.observer?.disconnect();
    this.observer = null;
    this.chart?.destroy();
    this.chart = null;
    this.chartHost = null;
    this.body.replaceChildren();
  }

  private pickFor(context: RenderContext): ((value: string) => void) | undefined {
    const dimension = this.drillDimension;
    if (!context.onPick || !dimension) return undefined;
    const pick = context.onPick;
    return (value: string) => pick(dimension, value);
  }

  private selectedFor(context: RenderContext): string | null {
    const dimension = this.drillDimension;
    return context.drill && dimension === context.drill.dimension ? context.drill.value : null;
  }

  private number(result: Result): void {
    const current = result.data.find((p) => p.group === "current")?.value ?? null;
    const previous = result.data.find((p) => p.group === "previous")?.value ?? null;
    const unit = typeof this.widget.viz?.unit === "string" ? this.widget.viz.unit : undefined;
    const box = el("div", "emban-number");
    box.append(el("div", "emban-number-value", formatNumber(current, unit)));
    const change = el("div", "emban-number-change");
    const period = result.meta.period ? PERIOD_LABELS[result.meta.period]?.toLowerCase() : null;
    const previousWindow = period ? `the previous ${period.replace(/^last /, "")}` : "the previous period";
    if (current !== null && previous !== null && previous !== 0) {
      const ratio = (current - previous) / Math.abs(previous);
      change.dataset.direction = ratio > 0 ? "up" : ratio < 0 ? "down" : "flat";
      const arrow = ratio > 0 ? "▲" : ratio < 0 ? "▼" : "■";
      change.append(el("span", "emban-change-value", `${arrow} ${formatChange(ratio)}`), ` vs ${previousWindow}`);
    } else if (current !== null && previous === 0 && current !== 0) {
      change.dataset.direction = current > 0 ? "up" : "down";
      change.append(el("span", "emban-change-value", current > 0 ? "▲" : "▼"), ` from ${formatNumber(0, unit)} in ${previousWindow}`);
    } else if (current !== null && previous === null) {
      change.dataset.direction = "none";
      change.append(`No data for ${previousWindow}`);
    } else {
      change.dataset.direction = "flat";
      change.append(`No change vs ${previousWindow}`);
    }
    box.append(change);
    this.body.append(box);
  }

  private table(result: Result, context: RenderContext): void {
    const breakdown = this.widget.kind === "breakdown";
    const dimension = result.meta.groupBy ?? "Group";
    const hasGroups = result.data.some((p) => p.group !== null);
    const wrap = el("div", "emban-table-wrap");
    const table = el("table", "emban-table");
    const head = el("tr");
    const headers = breakdown
      ? [dimension, "Value", "Share"]
      : hasGroups
        ? ["Time", dimension, "Value"]
        : ["Time", "Value"];
    for (const name of headers) head.append(el("th", "", name));
    table.createTHead().append(head);
    const body = table.createTBody();
    const unit = typeof this.widget.viz?.unit === "string" ? this.widget.viz.unit : undefined;
    const total = result.data.reduce((sum, p) => sum + Math.max(0, p.value ?? 0), 0);
    const pick = breakdown ? this.pickFor(context) : undefined;
    const selected = this.selectedFor(context);
    for (const point of result.data.slice(0, MAX_TABLE_ROWS)) {
      const row = el("tr");
      if (breakdown) {
        const label = groupLabel(point.group);
        row.dataset.value = groupValue(label);
        row.append(
          el("td", "", label),
          el("td", "emban-num", formatNumber(point.value, unit)),
          el("td", "emban-num", total ? formatShare((point.value ?? 0) / total) : "–"),
        );
        if (selected !== null && groupValue(label) !== selected) row.classList.add("emban-faded");
        if (pick) {
          row.classList.add("emban-pickable");
          row.tabIndex = 0;
          row.addEventListener("click", () => pick(groupValue(label)));
          row.addEventListener("keydown", (event) => {
            if (event.key === "Enter" || event.key === " ") {
              event.preventDefault();
              pick(groupValue(label));
            }
          });
        }
      } else {
        row.append(el("td", "", formatBucket(point.bucket, result.meta.granularity)));
        if (hasGroups) row.append(el("td", "", groupLabel(point.group)));
        row.append(el("td", "emban-num", formatNumber(point.value, unit)));
      }
      body.append(row);
    }
    wrap.append(table);
    this.body.append(wrap);
  }

  private draw(type: string, result: Result, context: RenderContext): void {
    const unit = typeof this.widget.viz?.unit === "string" ? this.widget.viz.unit : undefined;
    const options = {
      colors: context.colors,
      unit,
      granularity: result.meta.granularity,
      label: this.widget.title,
      selected: this.selectedFor(context),
      onPick: this.pickFor(context),
    };
    const total = Number(this.el.dataset.total ?? 0);
    this.el.dataset.summary = `${result.data.length} points, total ${total}`;
    if (this.widget.kind === "breakdown" && (type === "pie" || type === "donut")) {
      this.chart = pieChart(this.body, result.data, type === "donut", options);
      return;
    }
    if (this.widget.kind === "breakdown" && type === "stacked_bar") {
      this.chart = shareBar(this.body, result.data, options);
      return;
    }
    const host = el("div", "emban-chart");
    host.setAttribute("role", "img");
    host.setAttribute("aria-label", `${this.widget.title}: ${result.data.length} points`);
    this.body.append(host);
    this.chartHost = host;
    const width = Math.max(100, host.clientWidth);
    const height = Math.max(60, host.clientHeight);
    this.chart =
      this.widget.kind === "breakdown"
        ? categoryBars(host, result.data, options, width, height)
        : timeChart(host, result.data, type, options, width, height);
    let last = `${width}x${height}`;
    this.observer = new ResizeObserver(() => {
      if (!this.chartHost || !this.chart) return;
      const w = Math.max(100, this.chartHost.clientWidth);
      const h = Math.max(60, this.chartHost.clientHeight);
      if (`${w}x${h}` === last) return;
      last = `${w}x${h}`;
      this.chart.resize(w, h);
    });
    this.observer.observe(host);
  }
}
