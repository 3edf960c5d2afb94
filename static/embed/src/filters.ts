// The setFilters payload: parsing, the session's permissions checked in the browser (the server
// checks them again on every request), and the filter event's shape.

import { PERIODS, type DateRange, type Filters, type NumericRange, type Permissions } from "./types";

const PROPERTY_KEY = /^[A-Za-z0-9_.:\-/]{1,64}$/;
const MAX_ITEMS = 50;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

export function emptyFilters(): Filters {
  return { period: null, dimensions: {}, numericRanges: {}, dateRanges: {} };
}

export function cloneFilters(filters: Filters): Filters {
  return JSON.parse(JSON.stringify(filters)) as Filters;
}

export function sameFilters(a: Filters, b: Filters): boolean {
  return canonical(a) === canonical(b);
}

function canonical(filters: Filters): string {
  const sort = (value: unknown): unknown => {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(value).sort()) out[key] = sort((value as Record<string, unknown>)[key]);
      return out;
    }
    return value;
  };
  return JSON.stringify(sort(filters));
}

export class FilterError extends Error {}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** The next filter state for a setFilters payload: each part given replaces the current one
 * (`period: null` goes back to each widget's own period); parts not given are kept. */
export function parseSetFilters(payload: unknown, current: Filters): Filters {
  if (!isObject(payload)) throw new FilterError("setFilters needs a filters object");
  for (const key of Object.keys(payload)) {
    if (!["period", "dimensions", "numericRanges", "dateRanges"].includes(key)) {
      throw new FilterError(`setFilters: ${key} is not a filter (use period, dimensions, numericRanges, dateRanges)`);
    }
  }
  const next = cloneFilters(current);
  if ("period" in payload) {
    const period = payload.period;
    if (period !== null && (typeof period !== "string" || !(PERIODS as readonly string[]).includes(period))) {
      throw new FilterError(`period ${String(period)} is not one of ${PERIODS.join(", ")}`);
    }
    next.period = period as string | null;
  }
  if ("dimensions" in payload) {
    const given = payload.dimensions ?? {};
    if (!isObject(given) || Object.keys(given).length > MAX_ITEMS) {
      throw new FilterError(`dimensions must be an object of at most ${MAX_ITEMS} values`);
    }
    next.dimensions = {};
    for (const [key, value] of Object.entries(given)) {
      if (!PROPERTY_KEY.test(key)) throw new FilterError(`${key} is not a dimension name`);
      if (value === null || value === undefined || value === "") continue;
      if (typeof value !== "string" || value.length > 200) {
        throw new FilterError(`dimensions.${key} must be a string of at most 200 characters`);
      }
      next.dimensions[key] = value;
    }
  }
  if ("numericRanges" in payload) {
    const given = payload.numericRanges ?? {};
    if (!isObject(given) || Object.keys(given).length > MAX_ITEMS) {
      throw new FilterError("numericRanges must be an object of {min?, max?} ranges");
    }
    next.numericRanges = {};
    for (const [key, bounds] of Object.entries(given)) {
      if (!PROPERTY_KEY.test(key)) throw new FilterError(`${key} is not a property name`);
      if (bounds === null || bounds === undefined) continue;
      if (!isObject(bounds)) throw new FilterError(`numericRanges.${key} must be {min?, max?}`);
      const range: NumericRange = {};
      for (const [bound, value] of Object.entries(bounds)) {
        if (bound !== "min" && bound !== "max") throw new FilterError(`numericRanges.${key}.${bound}: use min and max`);
        if (value === null || value === undefined) continue;
        if (typeof value !== "number" || !Number.isFinite(value)) {
          throw new FilterError(`numericRanges.${key}.${bound} must be a number`);
        }
        range[bound] = value;
      }
      if (range.min != null && range.max != null && range.min > range.max) {
        throw new FilterError(`numericRanges.${key}: min must not be above max`);
      }
      if (range.min != null || range.max != null) next.numericRanges[key] = range;
    }
  }
  if ("dateRanges" in payload) {
    const given = payload.dateRanges ?? {};
    if (!isObject(given)) throw new FilterError("dateRanges must be {timestamp: {from, to}}");
    next.dateRanges = {};
    for (const [key, range] of Object.entries(given)) {
      if (key !== "timestamp") throw new FilterError(`dateRanges.${key}: only timestamp can be ranged`);
      if (range === null || range === undefined) continue;
      if (!isObject(range) || typeof range.from !== "string" || typeof range.to !== "string") {
        throw new FilterError("dateRanges.timestamp must be {from, to} (ISO 8601)");
      }
      const from = Date.parse(range.from);
      const to = Date.parse(range.to);
      if (Number.isNaN(from) || Number.isNaN(to)) throw new FilterError("dateRanges.timestamp: from and to must be ISO 8601 date-times");
      if (from >= to) throw new FilterError("dateRanges.timestamp: from must be before to");
      next.dateRanges.timestamp = { from: range.from, to: range.to } satisfies DateRange;
    }
  }
  return next;
}

/** Why the session refuses these filters, or null when it allows them (the same rules as the
 * server's embed_spec). */
export function refusal(filters: Filters, permissions: Permissions): string | null {
  if (filters.period !== null && !permissions.periods.includes(filters.period)) {
    return `The period ${filters.period} is not allowed in this embed.`;
  }
  for (const [key, value] of Object.entries(filters.dimensions)) {
    const locked = permissions.lockedFilters[key];
    if (locked !== undefined) {
      if (value !== locked) return `${key} is locked to "${locked}" in this embed.`;
      continue;
    }
    if (permissions.allowedDimensions.length && !permissions.allowedDimensions.includes(key)) {
      return `Filtering by ${key} is not allowed in this embed.`;
    }
  }
  const range = filters.dateRanges.timestamp;
  if (range && permissions.maxDateRangeDays !== null) {
    if (Date.parse(range.to) - Date.parse(range.from) > permissions.maxDateRangeDays * DAY_MS) {
      return `Date ranges longer than ${permissions.maxDateRangeDays} days are not allowed in this embed.`;
    }
  }
  if (range) {
    const from = Date.parse(range.from);
    const to = Date.parse(range.to);
    for (const [words, start, end] of dateRangeBounds(permissions, Date.now())) {
      if (from < start || to > end) return `Date ranges must lie within ${words} in this embed.`;
    }
  }
  // Numeric ranges are checked by the server only: which properties the visible widgets measure
  // is not sent to the browser.
  return null;
}

const PERIOD_MS: Record<string, number> = {
  "1h": HOUR_MS,
  "24h": DAY_MS,
  "7d": 7 * DAY_MS,
  "30d": 30 * DAY_MS,
  "90d": 90 * DAY_MS,
};

const floorTo = (moment: number, unit: number): number => moment - (moment % unit);

/** The windows a date range must lie in (the server's date_range_bounds): the longest allowed
 * period as it shows (whole hours for 1h/24h, whole UTC days otherwise), and the last
 * maxDateRangeDays days from the start of the current hour. */
export function dateRangeBounds(permissions: Permissions, now: number): [string, number, number][] {
  const bounds: [string, number, number][] = [];
  if (permissions.allowedPeriods.length) {
    const longest = permissions.allowedPeriods.reduce((a, b) => (PERIOD_MS[b] > PERIOD_MS[a] ? b : a));
    const unit = longest === "1h" || longest === "24h" ? HOUR_MS : DAY_MS;
    bounds.push([
      `the last ${longest} (the longest allowed period)`,
      floorTo(now - PERIOD_MS[longest], unit),
      floorTo(now, unit) + unit,
    ]);
  }
  if (permissions.maxDateRangeDays !== null) {
    const hour = floorTo(now, HOUR_MS);
    bounds.push([`the last ${permissions.maxDateRangeDays} days`, hour - permissions.maxDateRangeDays * DAY_MS, hour + HOUR_MS]);
  }
  return bounds;
}

/** The filter event's payload (spec: {period, filters, numericRanges, dateRanges}). */
export function filterEvent(filters: Filters): Record<string, unknown> {
  return {
    period: filters.period,
    filters: { ...filters.dimensions },
    numericRanges: cloneFilters(filters).numericRanges,
    dateRanges: cloneFilters(filters).dateRanges,
  };
}
