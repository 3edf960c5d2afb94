// What the runtime shows for an error the server answered: the one place that reads error codes.

/** The codes the runtime tells apart (`extensions.reason`, else `extensions.code`). When the schema
 * exports the embed domain's error codes as a GraphQL enum, graphql-codegen emits it as a string
 * union in src/generated/graphql.ts (enumsAsTypes): make this type that union and the compiler
 * then asks for a row in EFFECTS for every code. */
export type ErrorCode =
  | "embed_token_expired"
  | "embed_token_invalid"
  | "embed_token_required"
  | "UNAUTHENTICATED"
  | "dashboard_not_published"
  | "embed_filter_forbidden"
  | "embed_drill_forbidden"
  | "invalid_field"
  | "widget_not_found";

/**
 * - `expired`, `invalid`, `not_published`: the session's view ends (a notice replaces it);
 * - `refused`: what was asked (filters, a drill) is refused; the current state stays;
 * - `widget_hidden`: this widget is not available in this embed (its group_by is not allowed);
 * - `widget_gone`: the widget is no longer on the dashboard;
 * - `other`: anything else (a failure: the caller decides, usually a retry).
 */
export type ErrorEffect =
  | "expired"
  | "invalid"
  | "not_published"
  | "refused"
  | "widget_hidden"
  | "widget_gone"
  | "other";

const EFFECTS: Record<ErrorCode, ErrorEffect | ((field: string | null) => ErrorEffect)> = {
  embed_token_expired: "expired",
  embed_token_invalid: "invalid",
  embed_token_required: "invalid",
  UNAUTHENTICATED: "invalid",
  dashboard_not_published: "not_published",
  embed_filter_forbidden: (field) => (field === "group_by" ? "widget_hidden" : "refused"),
  embed_drill_forbidden: "refused",
  invalid_field: "refused",
  widget_not_found: "widget_gone",
};

/** The effect of an error with this code (and `extensions.field`); unknown codes are `other`. */
export function errorEffect(code: string | null, field: string | null): ErrorEffect {
  if (code === null || !Object.prototype.hasOwnProperty.call(EFFECTS, code)) return "other";
  const effect = EFFECTS[code as ErrorCode];
  return typeof effect === "function" ? effect(field) : effect;
}
