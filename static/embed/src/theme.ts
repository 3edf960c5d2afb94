// Host-driven theme: the spec's six tokens as CSS variables on <html>, applied in one pass.

export const THEME_TOKENS = {
  primaryColor: "--emban-primary",
  backgroundColor: "--emban-bg",
  cardBackground: "--emban-card-bg",
  cardBorder: "--emban-card-border",
  textColor: "--emban-text",
  mutedColor: "--emban-muted",
} as const;

export type ThemeToken = keyof typeof THEME_TOKENS;

export class ThemeError extends Error {}

/** Validate every given token first, then set them all: a bad value changes nothing. */
export function applyTheme(theme: unknown): void {
  if (typeof theme !== "object" || theme === null || Array.isArray(theme)) {
    throw new ThemeError("setTheme needs a theme object");
  }
  const updates: [string, string][] = [];
  for (const [key, value] of Object.entries(theme)) {
    const variable = THEME_TOKENS[key as ThemeToken];
    if (variable === undefined) {
      throw new ThemeError(`setTheme: ${key} is not a theme token (use ${Object.keys(THEME_TOKENS).join(", ")})`);
    }
    if (typeof value !== "string" || value.length > 100 || !CSS.supports("color", value)) {
      throw new ThemeError(`setTheme: ${key} must be a CSS colour`);
    }
    updates.push([variable, value]);
  }
  const style = document.documentElement.style;
  for (const [variable, value] of updates) style.setProperty(variable, value);
}

export interface Colors {
  primary: string;
  text: string;
  muted: string;
  border: string;
  card: string;
  series: string[];
}

const EXTRA_SERIES = ["#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16", "#64748b"];

export function currentColors(): Colors {
  const style = getComputedStyle(document.documentElement);
  const read = (token: ThemeToken) => style.getPropertyValue(THEME_TOKENS[token]).trim();
  const primary = read("primaryColor") || "#4f46e5";
  return {
    primary,
    text: read("textColor") || "#111827",
    muted: read("mutedColor") || "#6b7280",
    border: read("cardBorder") || "#e3e6eb",
    card: read("cardBackground") || "#ffffff",
    series: [primary, ...EXTRA_SERIES],
  };
}

let probe: CanvasRenderingContext2D | null = null;

/** Any CSS colour with an alpha, for area fills and faded slices. */
export function withAlpha(color: string, alpha: number): string {
  probe ??= document.createElement("canvas").getContext("2d");
  if (!probe) return color;
  probe.fillStyle = "#000";
  probe.fillStyle = color;
  const normal = String(probe.fillStyle);
  const hex = /^#([0-9a-f]{6})$/i.exec(normal);
  if (hex) {
    const n = parseInt(hex[1], 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
  }
  const rgba = /^rgba?\(([^)]+)\)$/.exec(normal);
  if (rgba) {
    const [r, g, b] = rgba[1].split(",").map((part) => part.trim());
    return `rgba(${r}, ${g}, ${b}, ${alpha})`;
  }
  return color;
}
