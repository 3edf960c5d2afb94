// The in-frame controls: the dashboard's name, the period picker (only the session's periods),
// dimension filters (only allowed dimensions), locked filters, the drill chip, the live dot.

import { PERIOD_LABELS } from "./format";
import type { Drill, Filters, Permissions } from "./types";

export interface ToolbarModel {
  name: string;
  permissions: Permissions;
  filters: Filters;
  drill: Drill | null;
  /** Values seen per dimension (breakdown groups), for the dimension selects. */
  values: Map<string, Set<string>>;
  busy: boolean;
}

export interface ToolbarActions {
  setPeriod(period: string | null): void;
  setDimension(dimension: string, value: string | null): void;
  clearDrill(): void;
  drillDetail(): void;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class Toolbar {
  readonly el = el("header", "emban-toolbar");
  private readonly live = el("span", "emban-live", "Live");

  constructor(private readonly actions: ToolbarActions) {
    this.live.title = "Connecting…";
    this.live.dataset.state = "connecting";
  }

  setLive(state: "connecting" | "live" | "closed"): void {
    this.live.dataset.state = state;
    this.live.title = state === "live" ? "Updates live" : state === "closed" ? "Reconnecting…" : "Connecting…";
  }

  render(model: ToolbarModel): void {
    const { permissions, filters } = model;
    this.el.replaceChildren();
    this.el.classList.toggle("emban-busy", model.busy);
    const title = el("h1", "emban-title", model.name);
    const controls = el("div", "emban-controls");

    if (permissions.periods.length) {
      const label = el("label", "emban-control");
      label.append(el("span", "emban-control-label", "Period"));
      const select = el("select");
      select.name = "period";
      select.append(new Option("Default", ""));
      for (const period of permissions.periods) select.append(new Option(PERIOD_LABELS[period] ?? period, period));
      select.value = filters.period ?? "";
      select.addEventListener("change", () => this.actions.setPeriod(select.value || null));
      label.append(select);
      controls.append(label);
    }

    const locked = permissions.lockedFilters;
    const dimensions = permissions.allowedDimensions.length
      ? permissions.allowedDimensions
      : [...model.values.keys(), ...Object.keys(filters.dimensions)];
    for (const dimension of [...new Set(dimensions)]) {
      if (dimension in locked) continue;
      const known = new Set(model.values.get(dimension) ?? []);
      const active = filters.dimensions[dimension];
      if (active !== undefined) known.add(active);
      if (!known.size) continue;
      const label = el("label", "emban-control");
      label.append(el("span", "emban-control-label", dimension));
      const select = el("select");
      select.name = `dimension:${dimension}`;
      select.dataset.dimension = dimension;
      select.append(new Option("All", ""));
      for (const value of [...known].sort()) select.append(new Option(value === "" ? "(none)" : value, value));
      select.value = active ?? "";
      select.addEventListener("change", () => this.actions.setDimension(dimension, select.value || null));
      label.append(select);
      controls.append(label);
    }

    for (const [dimension, value] of Object.entries(locked)) {
      const chip = el("span", "emban-chip emban-locked", `${dimension}: ${value}`);
      chip.title = "Set by this embed";
      controls.append(chip);
    }

    if (model.drill) {
      const chip = el("span", "emban-chip emban-drill");
      chip.dataset.dimension = model.drill.dimension;
      chip.dataset.value = model.drill.value;
      chip.append(el("span", "", `${model.drill.dimension} = ${model.drill.value || "(none)"}`));
      const detail = el("button", "emban-chip-button emban-drill-detail", "Details");
      detail.type = "button";
      detail.addEventListener("click", () => this.actions.drillDetail());
      const clear = el("button", "emban-chip-button emban-drill-clear", "×");
      clear.type = "button";
      clear.setAttribute("aria-label", "Clear drill-down");
      clear.addEventListener("click", () => this.actions.clearDrill());
      chip.append(detail, clear);
      controls.append(chip);
    }
    controls.append(this.live);
    this.el.append(title, controls);
  }
}
