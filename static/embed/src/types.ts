// Shapes of the GraphQL embed surface (schema/schema.graphql: EmbedQuery, EmbedLiveEvent) and of
// the runtime's own state.

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

export interface Widget {
  id: string;
  kind: string; // metric | timeseries | breakdown | table | text
  title: string;
  viz: Viz | null;
  layout: Layout;
  text: string | null;
}

export interface Dashboard {
  id: string;
  name: string;
  widgets: Widget[];
}

export interface Point {
  bucket: string;
  value: number | null;
  group: string | null;
}

export interface Meta {
  period?: string;
  granularity?: string;
  groupBy?: string | null;
}

export interface Result {
  data: Point[];
  meta: Meta;
}

export interface Permissions {
  allowDrillDown: boolean;
  lockedFilters: Record<string, string>;
  allowedDimensions: string[];
  allowedPeriods: string[];
  maxDateRangeDays: number | null;
  periods: string[]; // the periods this session may choose
}

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

export interface LiveEvent {
  type: "config" | "data" | "not_published" | "error";
  widgetId: string | null;
  message: string | null;
  dashboard: Dashboard | null;
  data: Result | null;
}
