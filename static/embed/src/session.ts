// The embed session's state as a state machine: one immutable value and a pure reducer
// (state, event) -> state. EmbedApp (app.ts) dispatches events and draws from the state; the
// transitions are unit-tested without a browser (test/session.test.ts, `npm test`).

import type { Command } from "./bridge";
import { emptyFilters } from "./filters";
import type { Dashboard, Drill, Filters, Permissions } from "./types";

/** loading → ready; any → expired | invalid | failed | not_published; not_published → ready
 * (published again); failed → loading (retry). */
export type Status = "loading" | "ready" | "expired" | "invalid" | "not_published" | "failed";
export type LiveState = "connecting" | "live" | "closed";

export interface Session {
  readonly status: Status;
  /** "ready" was posted to the host (once per page: a retry reports its state again instead). */
  readonly announced: boolean;
  readonly permissions: Permissions | null;
  readonly dashboard: Dashboard | null;
  /** The committed filter state (a change is committed once every widget accepted it). */
  readonly filters: Filters;
  readonly drill: Drill | null;
  /** Bumped by every change: a result fetched for an older generation is stale. */
  readonly generation: number;
  /** A change is in flight. */
  readonly busy: boolean;
  readonly live: LiveState;
  /** Host commands that arrived while loading, run once ready. */
  readonly pending: readonly Command[];
}

export type SessionEvent =
  | { type: "boot" }
  | { type: "config"; dashboard: Dashboard; permissions?: Permissions }
  | { type: "ready" }
  | { type: "change" }
  | { type: "settled" }
  | { type: "committed"; filters: Filters; drill: Drill | null }
  | { type: "failed"; status: "expired" | "invalid" | "failed" }
  | { type: "not_published" }
  | { type: "republished" }
  | { type: "live"; state: LiveState }
  | { type: "queue"; command: Command }
  | { type: "drain" };

export function initialSession(): Session {
  return {
    status: "loading",
    announced: false,
    permissions: null,
    dashboard: null,
    filters: emptyFilters(),
    drill: null,
    generation: 0,
    busy: false,
    live: "closed",
    pending: [],
  };
}

export function reduce(state: Session, event: SessionEvent): Session {
  switch (event.type) {
    case "boot":
      return { ...state, status: "loading" };
    case "config":
      return { ...state, dashboard: event.dashboard, permissions: event.permissions ?? state.permissions };
    case "ready":
      // Only a load in progress becomes ready (a failure or an unpublish may have overtaken it).
      return state.status === "loading" ? { ...state, status: "ready", announced: true } : state;
    case "change":
      return { ...state, generation: state.generation + 1, busy: true };
    case "settled":
      return { ...state, busy: false };
    case "committed":
      return { ...state, filters: event.filters, drill: event.drill, busy: false };
    case "failed":
      return { ...state, status: event.status };
    case "not_published":
      return { ...state, status: "not_published" };
    case "republished":
      return state.status === "not_published" ? { ...state, status: "ready" } : state;
    case "live":
      return { ...state, live: event.state };
    case "queue":
      // Commands wait for the first ready only; later, or after a failure, they are answered.
      return state.status === "loading" && !state.announced
        ? { ...state, pending: [...state.pending, event.command] }
        : state;
    case "drain":
      return state.pending.length ? { ...state, pending: [] } : state;
  }
}
