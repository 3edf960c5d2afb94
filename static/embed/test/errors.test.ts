// The one code → effect mapping (src/errors.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { errorEffect } from "../src/errors";

test("each error code the runtime knows has its effect", () => {
  const cases: [string | null, string | null, string][] = [
    ["embed_token_expired", null, "expired"],
    ["embed_token_invalid", null, "invalid"],
    ["embed_token_required", null, "invalid"],
    ["UNAUTHENTICATED", null, "invalid"],
    ["dashboard_not_published", null, "not_published"],
    ["embed_filter_forbidden", "filters.period", "refused"],
    ["embed_filter_forbidden", "group_by", "widget_hidden"],
    ["embed_drill_forbidden", "drill", "refused"],
    ["invalid_field", "filters.dimensions", "refused"],
    ["widget_not_found", null, "widget_gone"],
  ];
  for (const [code, field, effect] of cases) assert.equal(errorEffect(code, field), effect, `${code} ${field}`);
});

test("unknown codes, no code and inherited names are 'other'", () => {
  for (const code of ["rate_limited", "INTERNAL_SERVER_ERROR", "toString", "__proto__", "", null]) {
    assert.equal(errorEffect(code, null), "other", String(code));
  }
});
