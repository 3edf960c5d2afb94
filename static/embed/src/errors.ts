// What the runtime shows for an error the server answered: the one place that reads error codes.

import type {
  DashboardErrorCode,
  EmbedErrorCode,
  ErrorCategory,
  RequestErrorCode,
} from "./generated/graphql";

/** The codes the runtime tells apart (`extensions.reason`, else `extensions.code`), as the unions
 * graphql-codegen generates from the schema's enums (src/generated/graphql.ts): every embed code
 * and every category needs a row in EFFECTS, so a code added to the schema fails the type check
 * until the runtime says what it does with it. */
export type ErrorCode =
  | EmbedErrorCode
  | ErrorCategory
  | Extract<RequestErrorCode, "invalid_field">
  | Extract<DashboardErrorCode, "widget_not_found">;

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
  embed_token_revoked: "invalid",
  embed_session_not_found: "invalid",
  demo_not_seeded: "other",
  UNAUTHENTICATED: "invalid",
  BAD_REQUEST: "other",
  FORBIDDEN: "other",
  NOT_FOUND: "other",
  CONFLICT: "other",
  PLAN_LIMIT: "other",
  RATE_LIMITED: "other",
  BAD_GATEWAY: "other",
  SERVICE_UNAVAILABLE: "other",
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
