// Charts. uPlot draws everything on a time axis (line, area, bar, stacked bar) and the bars of a
// breakdown; pie, donut and the stacked share of a breakdown are small SVG/HTML of our own
// (uPlot has no radial charts). Every chart is re-created on a theme change or new data.

import uPlot from "uplot";
import { formatBucket, formatCompact, formatNumber, formatShare, formatTick } from "./format";
import { withAlpha, type Colors } from "./theme";
import type { Point } from "./types";

export interface Chart {
  resize(width: number, height: number): void;
  destroy(): void;
}

export interface ChartOptions {
  colors: Colors;
  unit?: string;
  granularity?: string;
  label: string;
  /** Breakdown charts: the selected (drilled) value, and the click handler when drill is on. */
  selected?: string | null;
  onPick?: (value: string) => void;
}

const NONE = "(none)";
export const groupLabel = (group: string | null): string => (group === null || group === "" ? NONE : group);
export const groupValue = (label: string): string => (label === NONE ? "" : label);

interface Series {
  label: string;
  values: (number | null)[];
}

/** Points (bucket, group, value) → shared x (unix seconds) and one series per group. */
export function toSeries(points: Point[], fallbackLabel: string): { xs: number[]; series: Series[] } {
  const xs = [...new Set(points.map((p) => Date.parse(p.bucket) / 1000))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const groups = new Map<string, (number | null)[]>();
  for (const point of points) {
    const key = point.group ?? "\u0000";
    let values = groups.get(key);
    if (!values) {
      values = new Array<number | null>(xs.length).fill(null);
      groups.set(key, values);
    }
    values[index.get(Date.parse(point.bucket) / 1000) ?? 0] = point.value;
  }
  const series = [...groups.entries()].map(([key, values]) => ({
    label: key === "\u0000" ? fallbackLabel : groupLabel(key),
    values,
  }));
  return { xs, series };
}

function step(xs: number[]): number {
  if (xs.length < 2) return 3600;
  let smallest = Infinity;
  for (let i = 1; i < xs.length; i++) smallest = Math.min(smallest, xs[i] - xs[i - 1]);
  return smallest;
}

/** A hover tooltip inside the plot (uPlot's own legend is off: it would take height). */
function tooltipPlugin(format: (u: uPlot, idx: number) => [string, string, string][]): uPlot.Plugin {
  let tip: HTMLDivElement;
  return {
    hooks: {
      init: (u) => {
        tip = document.createElement("div");
        tip.className = "emban-tip";
        tip.hidden = true;
        u.over.append(tip);
        u.over.addEventListener("mouseleave", () => (tip.hidden = true));
      },
      setCursor: (u) => {
        const idx = u.cursor.idx;
        if (idx === null || idx === undefined || u.cursor.left === undefined || u.cursor.left < 0) {
          tip.hidden = true;
          return;
        }
        tip.replaceChildren();
        for (const [color, label, value] of format(u, idx)) {
          const row = document.createElement("div");
          if (color) {
            const swatch = document.createElement("span");
            swatch.className = "emban-swatch";
            swatch.style.background = color;
            row.append(swatch);
          }
          const name = document.createElement("span");
          name.textContent = label;
          const strong = document.createElement("strong");
          strong.textContent = value;
          row.append(name, " ", strong);
          tip.append(row);
        }
        tip.hidden = false;
        const left = u.cursor.left;
        const flip = left > u.over.clientWidth / 2;
        tip.style.left = flip ? "" : `${left + 12}px`;
        tip.style.right = flip ? `${u.over.clientWidth - left + 12}px` : "";
        tip.style.top = `${Math.max(0, (u.cursor.top ?? 0) - 12)}px`;
      },
    },
  };
}

function axes(colors: Colors, x: Partial<uPlot.Axis>): uPlot.Axis[] {
  const common = {
    stroke: colors.muted,
    font: "11px system-ui, sans-serif",
    grid: { stroke: withAlpha(colors.border, 0.9), width: 1 },
    ticks: { stroke: colors.border, width: 1, size: 4 },
  };
  return [
    { ...common, ...x },
    {
      ...common,
      size: 48,
      values: (_u: uPlot, splits: number[]) => splits.map((v) => formatCompact(v)),
    },
  ];
}

/** line | area | bar | stacked_bar over time. */
export function timeChart(
  host: HTMLElement,
  points: Point[],
  type: string,
  options: ChartOptions,
  width: number,
  height: number,
): Chart {
  const { xs, series } = toSeries(points, options.label);
  const granularity = options.granularity ?? "day";
  const palette = options.colors.series;
  const bars = type === "bar" || type === "stacked_bar";
  const stacked = type === "stacked_bar" && series.length > 1;
  const gap = step(xs);
  const n = series.length;
  // Stacked: each series drawn from the running total below it to the one including it.
  const lower: number[][] = [];
  const upper: number[][] = [];
  let maxTotal = 0;
  if (stacked) {
    const running = new Array<number>(xs.length).fill(0);
    for (const s of series) {
      lower.push([...running]);
      s.values.forEach((v, i) => (running[i] += v ?? 0));
      upper.push([...running]);
    }
    maxTotal = Math.max(0, ...running);
  }
  const uSeries: uPlot.Series[] = [
    {},
    ...series.map((s, k): uPlot.Series => {
      const color = palette[k % palette.length];
      const base: uPlot.Series = {
        label: s.label,
        stroke: color,
        width: bars ? 0 : 2,
        points: { show: !bars && xs.length <= 40, size: 5, fill: color },
        spanGaps: false,
      };
      if (type === "area") base.fill = withAlpha(color, n > 1 ? 0.12 : 0.18);
      if (bars) {
        base.fill = color;
        let disp: Record<string, unknown> | undefined;
        if (stacked) {
          disp = {
            y0: { unit: 1, values: () => lower[k] },
            y1: { unit: 1, values: () => upper[k] },
          };
        } else if (n > 1) {
          const width = (gap * 0.8) / n;
          disp = {
            x0: { unit: 1, values: () => xs.map((x) => x - gap * 0.4 + k * width) },
            size: { unit: 1, values: () => [width] },
          };
        }
        base.paths = uPlot.paths.bars!({ size: [n > 1 && !stacked ? 1 : 0.7, 64], align: 0, disp } as never);
      }
      return base;
    }),
  ];
  const data: uPlot.AlignedData = [xs, ...series.map((s) => s.values)];
  const opts: uPlot.Options = {
    width,
    height,
    padding: [10, 28, 0, 4],
    legend: { show: false },
    cursor: { drag: { x: false, y: false, setScale: false }, points: { show: !bars } },
    scales: {
      x: {
        time: true,
        range: (_u, min, max) => (bars || min === max ? [min - gap / 2, max + gap / 2] : [min, max]),
      },
      y: {
        range: (_u, min, max) => {
          const top = stacked ? maxTotal : max;
          const low = Math.min(0, min ?? 0);
          return [low, top > low ? top * 1.08 : low + 1];
        },
      },
    },
    axes: axes(options.colors, {
      values: (_u: uPlot, splits: number[]) => splits.map((s) => formatTick(s, granularity)),
    }),
    series: uSeries,
    plugins: [
      tooltipPlugin((u, idx) => [
        ["", formatBucket(xs[idx], granularity), ""],
        ...series.map((s, k): [string, string, string] => [
          palette[k % palette.length],
          s.label,
          formatNumber(u.data[k + 1][idx] ?? null, options.unit),
        ]),
      ]),
    ],
  };
  const plot = new uPlot(opts, data, host);
  return { resize: (w, h) => plot.setSize({ width: w, height: h }), destroy: () => plot.destroy() };
}

/** A breakdown as vertical bars, one per group (x = the group's index). */
export function categoryBars(
  host: HTMLElement,
  points: Point[],
  options: ChartOptions,
  width: number,
  height: number,
): Chart {
  const labels = points.map((p) => groupLabel(p.group));
  const values = points.map((p) => p.value);
  const xs = labels.map((_, i) => i);
  const { primary } = options.colors;
  const faded = withAlpha(primary, 0.35);
  const fills = () =>
    labels.map((label) => (options.selected == null || groupValue(label) === options.selected ? primary : faded));
  const opts: uPlot.Options = {
    width,
    height,
    padding: [10, 28, 0, 4],
    legend: { show: false },
    cursor: { drag: { x: false, y: false, setScale: false }, points: { show: false } },
    scales: {
      x: { time: false, range: () => [-0.5, labels.length - 0.5] },
      y: { range: (_u, min, max) => [Math.min(0, min ?? 0), max > 0 ? max * 1.08 : 1] },
    },
    axes: axes(options.colors, {
      splits: () => xs,
      values: (_u: uPlot, splits: number[]) =>
        splits.map((s) => {
          const label = labels[s] ?? "";
          return label.length > 14 ? `${label.slice(0, 13)}…` : label;
        }),
      rotate: labels.length > 6 ? -35 : 0,
      size: labels.length > 6 ? 64 : 32,
    }),
    series: [
      {},
      {
        label: options.label,
        stroke: primary,
        fill: primary,
        width: 0,
        paths: uPlot.paths.bars!({ size: [0.7, 72], align: 0, disp: { fill: { unit: 3, values: fills } } } as never),
        points: { show: false },
      },
    ],
    plugins: [tooltipPlugin((_u, idx) => [[primary, labels[idx] ?? "", formatNumber(values[idx], options.unit)]])],
  };
  const plot = new uPlot(opts, [xs, values], host);
  if (options.onPick) {
    const pick = options.onPick;
    plot.over.classList.add("emban-pickable");
    plot.over.addEventListener("click", () => {
      const idx = plot.cursor.idx;
      if (idx !== null && idx !== undefined && labels[idx] !== undefined) pick(groupValue(labels[idx]));
    });
  }
  return { resize: (w, h) => plot.setSize({ width: w, height: h }), destroy: () => plot.destroy() };
}

function legend(points: Point[], options: ChartOptions, total: number): HTMLElement {
  const list = document.createElement("ul");
  list.className = "emban-legend";
  points.forEach((point, i) => {
    const label = groupLabel(point.group);
    const item = document.createElement("li");
    const button = document.createElement(options.onPick ? "button" : "span");
    button.className = "emban-legend-item";
    button.dataset.value = groupValue(label);
    if (options.selected != null && groupValue(label) !== options.selected) button.classList.add("emban-faded");
    if (options.onPick) {
      const pick = options.onPick;
      (button as HTMLButtonElement).type = "button";
      button.addEventListener("click", () => pick(groupValue(label)));
    }
    const swatch = document.createElement("span");
    swatch.className = "emban-swatch";
    swatch.style.background = options.colors.series[i % options.colors.series.length];
    const name = document.createElement("span");
    name.className = "emban-legend-label";
    name.textContent = label;
    const value = document.createElement("span");
    value.className = "emban-legend-value";
    const ratio = total > 0 ? (point.value ?? 0) / total : 0;
    value.textContent = `${formatNumber(point.value, options.unit)} · ${formatShare(ratio)}`;
    button.append(swatch, name, value);
    item.append(button);
    list.append(item);
  });
  return list;
}

const SVG = "http://www.w3.org/2000/svg";

/** pie | donut: SVG arcs and a legend whose items drill (keyboard-friendly). */
export function pieChart(host: HTMLElement, points: Point[], donut: boolean, options: ChartOptions): Chart {
  const positive = points.filter((p) => (p.value ?? 0) > 0);
  const total = positive.reduce((sum, p) => sum + (p.value ?? 0), 0);
  const wrap = document.createElement("div");
  wrap.className = "emban-pie";
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "-1.05 -1.05 2.1 2.1");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", options.label);
  const inner = donut ? 0.58 : 0;
  let angle = -Math.PI / 2;
  points.forEach((point, i) => {
    const value = point.value ?? 0;
    if (value <= 0 || total <= 0) return;
    const sweep = (value / total) * Math.PI * 2;
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", arc(angle, sweep, inner));
    const color = options.colors.series[i % options.colors.series.length];
    const label = groupLabel(point.group);
    const selected = options.selected == null || groupValue(label) === options.selected;
    path.style.fill = selected ? color : withAlpha(color, 0.3);
    path.style.stroke = positive.length > 1 ? options.colors.card : "none";
    path.style.strokeWidth = "0.015";
    path.dataset.value = groupValue(label);
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${label}: ${formatNumber(value, options.unit)} (${formatShare(value / total)})`;
    path.append(title);
    if (options.onPick) {
      const pick = options.onPick;
      path.classList.add("emban-pickable");
      path.addEventListener("click", () => pick(groupValue(label)));
    }
    svg.append(path);
    angle += sweep;
  });
  if (donut) {
    const text = document.createElementNS(SVG, "text");
    text.setAttribute("text-anchor", "middle");
    text.setAttribute("dominant-baseline", "central");
    text.setAttribute("class", "emban-donut-total");
    text.textContent = formatCompact(total);
    svg.append(text);
  }
  wrap.append(svg, legend(points, options, total));
  host.append(wrap);
  return { resize: () => undefined, destroy: () => wrap.remove() };
}

function arc(start: number, sweep: number, inner: number): string {
  if (sweep >= Math.PI * 2 - 1e-3) {
    // A whole ring: two half arcs (one arc cannot start and end at the same point).
    return arc(start, Math.PI, inner) + arc(start + Math.PI, Math.PI, inner);
  }
  const end = start + sweep;
  const large = sweep > Math.PI ? 1 : 0;
  const p = (r: number, a: number) => `${(r * Math.cos(a)).toFixed(4)} ${(r * Math.sin(a)).toFixed(4)}`;
  if (inner <= 0) return `M0 0L${p(1, start)}A1 1 0 ${large} 1 ${p(1, end)}Z`;
  return `M${p(1, start)}A1 1 0 ${large} 1 ${p(1, end)}L${p(inner, end)}A${inner} ${inner} 0 ${large} 0 ${p(inner, start)}Z`;
}

/** A breakdown's stacked bar: one 100 % bar split by group, with its legend. */
export function shareBar(host: HTMLElement, points: Point[], options: ChartOptions): Chart {
  const total = points.reduce((sum, p) => sum + Math.max(0, p.value ?? 0), 0);
  const wrap = document.createElement("div");
  wrap.className = "emban-share";
  const bar = document.createElement("div");
  bar.className = "emban-share-bar";
  bar.setAttribute("role", "img");
  bar.setAttribute("aria-label", options.label);
  points.forEach((point, i) => {
    const value = Math.max(0, point.value ?? 0);
    if (!value || !total) return;
    const segment = document.createElement("div");
    const label = groupLabel(point.group);
    segment.className = "emban-share-segment";
    segment.dataset.value = groupValue(label);
    segment.title = `${label}: ${formatNumber(value, options.unit)} (${formatShare(value / total)})`;
    segment.style.flexGrow = String(value);
    const color = options.colors.series[i % options.colors.series.length];
    const selected = options.selected == null || groupValue(label) === options.selected;
    segment.style.background = selected ? color : withAlpha(color, 0.3);
    if (options.onPick) {
      const pick = options.onPick;
      segment.classList.add("emban-pickable");
      segment.addEventListener("click", () => pick(groupValue(label)));
    }
    bar.append(segment);
  });
  wrap.append(bar, legend(points, options, total));
  host.append(wrap);
  return { resize: () => undefined, destroy: () => wrap.remove() };
}
