// Numbers and dates for the viewer's locale (Intl), created once.

const locales: string[] = (() => {
  const found = [...(navigator.languages ?? []), navigator.language].filter(Boolean);
  return found.length ? found : ["en"];
})();

const number = new Intl.NumberFormat(locales, { maximumFractionDigits: 2 });
const compact = new Intl.NumberFormat(locales, { notation: "compact", maximumFractionDigits: 1 });
const percent = new Intl.NumberFormat(locales, {
  style: "percent",
  maximumFractionDigits: 1,
  signDisplay: "exceptZero",
});
const share = new Intl.NumberFormat(locales, { style: "percent", maximumFractionDigits: 1 });
const dates: Record<string, Intl.DateTimeFormat> = {
  hour: new Intl.DateTimeFormat(locales, { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" }),
  day: new Intl.DateTimeFormat(locales, { month: "short", day: "numeric" }),
  week: new Intl.DateTimeFormat(locales, { month: "short", day: "numeric" }),
  month: new Intl.DateTimeFormat(locales, { year: "numeric", month: "short" }),
};
const timeOnly = new Intl.DateTimeFormat(locales, { hour: "numeric", minute: "2-digit" });

export function formatNumber(value: number | null | undefined, unit?: string): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  const text = number.format(value);
  return unit ? `${text} ${unit}` : text;
}

export function formatCompact(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "";
  return Math.abs(value) < 10_000 ? number.format(value) : compact.format(value);
}

export function formatChange(ratio: number): string {
  return percent.format(ratio);
}

export function formatShare(ratio: number): string {
  return share.format(ratio);
}

export function formatBucket(iso: string | number, granularity = "day"): string {
  const date = typeof iso === "number" ? new Date(iso * 1000) : new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return (dates[granularity] ?? dates.day).format(date);
}

/** An axis tick: hourly axes show the time, and the date where a day starts. */
export function formatTick(seconds: number, granularity = "day"): string {
  const date = new Date(seconds * 1000);
  if (granularity === "hour" && (date.getHours() !== 0 || date.getMinutes() !== 0)) {
    return timeOnly.format(date);
  }
  return (dates[granularity === "hour" ? "day" : granularity] ?? dates.day).format(date);
}

export const PERIOD_LABELS: Record<string, string> = {
  "1h": "Last hour",
  "24h": "Last 24 hours",
  "7d": "Last 7 days",
  "30d": "Last 30 days",
  "90d": "Last 90 days",
};
