// The session state machine (src/session.ts): every transition, and that none mutates its input.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Command } from "../src/bridge";
import { initialSession, reduce, type Session, type SessionEvent } from "../src/session";
import type { Dashboard, Permissions } from "../src/types";

const DASHBOARD: Dashboard = {
  id: "d1",
  name: "Usage",
  widgets: [{ id: "calls", kind: "metric", title: "Calls", viz: { type: "number" }, layout: { x: 0, y: 0, w: 4, h: 2 }, text: null }],
};
const PERMISSIONS: Permissions = {
  allowDrillDown: true,
  lockedFilters: { plan: "pro" },
  allowedDimensions: [],
  allowedPeriods: [],
  maxDateRangeDays: null,
  periods: ["1h", "24h", "7d", "30d", "90d"],
};
const SEVEN_DAYS = { period: "7d", dimensions: { model: "gpt-4" }, numericRanges: {}, dateRanges: {} };
const RELOAD = { type: "reload" } as Command;

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** Apply events in order; every intermediate state is frozen, so a mutation would throw. */
function run(state: Session, ...events: SessionEvent[]): Session {
  return events.reduce((current, event) => reduce(deepFreeze(current), deepFreeze(event)), state);
}

test("a new session is loading with nothing loaded", () => {
  assert.deepEqual(initialSession(), {
    status: "loading",
    announced: false,
    permissions: null,
    dashboard: null,
    filters: { period: null, dimensions: {}, numericRanges: {}, dateRanges: {} },
    drill: null,
    generation: 0,
    busy: false,
    live: "closed",
    pending: [],
  });
});

test("config sets the dashboard, and the permissions when given", () => {
  const loaded = run(initialSession(), { type: "config", dashboard: DASHBOARD, permissions: PERMISSIONS });
  assert.equal(loaded.dashboard, DASHBOARD);
  assert.equal(loaded.permissions, PERMISSIONS);
  const pushed = { ...DASHBOARD, name: "Renamed" };
  const live = run(loaded, { type: "config", dashboard: pushed });
  assert.equal(live.dashboard, pushed);
  assert.equal(live.permissions, PERMISSIONS); // a live config push keeps them
});

test("ready: only from loading; it announces once", () => {
  const ready = run(initialSession(), { type: "ready" });
  assert.equal(ready.status, "ready");
  assert.equal(ready.announced, true);
  // A failure that overtook the load stays.
  const failed = run(initialSession(), { type: "failed", status: "expired" }, { type: "ready" });
  assert.equal(failed.status, "expired");
  assert.equal(failed.announced, false);
  // A retry boots again and becomes ready; it was announced already.
  const retried = run(ready, { type: "failed", status: "failed" }, { type: "boot" });
  assert.deepEqual([retried.status, retried.announced], ["loading", true]);
  assert.deepEqual([run(retried, { type: "ready" }).status, run(retried, { type: "ready" }).announced], ["ready", true]);
});

test("a change bumps the generation and is busy until committed or settled", () => {
  const started = run(initialSession(), { type: "ready" }, { type: "change" });
  assert.deepEqual([started.generation, started.busy], [1, true]);
  const overtaken = run(started, { type: "change" });
  assert.deepEqual([overtaken.generation, overtaken.busy], [2, true]);
  const drill = { dimension: "model", value: "gpt-4" };
  const committed = run(overtaken, { type: "committed", filters: SEVEN_DAYS, drill });
  assert.deepEqual(
    [committed.filters, committed.drill, committed.busy, committed.generation],
    [SEVEN_DAYS, drill, false, 2],
  );
  const refused = run(committed, { type: "change" }, { type: "settled" });
  assert.deepEqual([refused.filters, refused.drill, refused.busy, refused.generation], [SEVEN_DAYS, drill, false, 3]);
});

test("commands queue only while the first load is in progress, and drain once", () => {
  const queued = run(initialSession(), { type: "queue", command: RELOAD }, { type: "queue", command: RELOAD });
  assert.deepEqual(queued.pending, [RELOAD, RELOAD]);
  const drained = run(queued, { type: "ready" }, { type: "drain" });
  assert.deepEqual(drained.pending, []);
  assert.equal(run(drained, { type: "drain" }), drained); // nothing to drain: the same state
  // After the announcement (even while a retry loads) and after a failure, nothing queues.
  const retrying = run(drained, { type: "boot" });
  assert.equal(run(retrying, { type: "queue", command: RELOAD }), retrying);
  const failed = run(initialSession(), { type: "failed", status: "invalid" });
  assert.equal(run(failed, { type: "queue", command: RELOAD }), failed);
});

test("unpublished and published again", () => {
  const ready = run(initialSession(), { type: "ready" });
  const hidden = run(ready, { type: "not_published" });
  assert.equal(hidden.status, "not_published");
  assert.equal(run(hidden, { type: "republished" }).status, "ready");
  // Only an unpublished session is republished.
  const expired = run(ready, { type: "failed", status: "expired" });
  assert.equal(run(expired, { type: "republished" }), expired);
});

test("the live socket's state is kept", () => {
  const states = (["connecting", "live", "closed"] as const).map((state) => run(initialSession(), { type: "live", state }).live);
  assert.deepEqual(states, ["connecting", "live", "closed"]);
});
