// Shapes of the GraphQL embed surface, derived from the types graphql-codegen generates from
// schema/schema.graphql for src/graphql/*.graphql (src/generated/graphql.ts), and of the
// runtime's own state.

import type {
  EmbedDashboardFieldsFragment,
  EmbedDashboardQuery,
  EmbedLiveSubscription,
  WidgetResultFieldsFragment,
} from "./generated/graphql";

type WireWidget = EmbedDashboardFieldsFragment["widgets"][number];

export const PERIODS = ["1h", "24h", "7d", "30d", "90d"] as const;

export interface Layout {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Viz {
  type?: string;
  unit?: string;
  [option: string]: unknown;
}

/** A widget as the runtime draws it: the generated EmbedWidget type with its two JSON scalars
 * (`viz`, `layout`) given the shapes the server's widget config has. */
export type Widget = Omit<WireWidget, "viz" | "layout"> & { viz: Viz | null; layout: Layout };

export type Dashboard = Omit<EmbedDashboardFieldsFragment, "widgets"> & { widgets: Widget[] };

export type Point = WidgetResultFieldsFragment["data"][number];

/** A widget's result; a text widget's is empty (no meta). */
export interface Result {
  data: Point[];
  meta: Partial<WidgetResultFieldsFragment["meta"]>;
}

/** The session's permissions (EmbedSessionPermissions); `lockedFilters` is {dimension: value}. */
export type Permissions = Omit<EmbedDashboardQuery["embed"]["permissions"], "lockedFilters"> & {
  lockedFilters: Record<string, string>;
};

export interface NumericRange {
  min?: number | null;
  max?: number | null;
}

export interface DateRange {
  from: string;
  to: string;
}

/** The active filter state: the spec's setFilters payload, normalized. */
export interface Filters {
  period: string | null; // null: each widget's own period
  dimensions: Record<string, string>;
  numericRanges: Record<string, NumericRange>;
  dateRanges: Record<string, DateRange>;
}

export interface Drill {
  dimension: string;
  value: string;
}

/** One push of Subscription.embedLive, its dashboard typed as above. */
export type LiveEvent = Omit<EmbedLiveSubscription["embedLive"], "dashboard" | "type"> & {
  type: "config" | "data" | "not_published" | "error";
  dashboard: Dashboard | null;
};
