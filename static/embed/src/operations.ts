// The runtime's GraphQL operations: the documents are src/graphql/*.graphql (bundled as text, the
// same files graphql-codegen reads), their types come from src/generated/graphql.ts. Each
// operation is sent with exactly the fragments it uses.

import embedDashboard from "./graphql/EmbedDashboard.graphql";
import dashboardFields from "./graphql/EmbedDashboardFields.graphql";
import embedLive from "./graphql/EmbedLive.graphql";
import embedProbe from "./graphql/EmbedProbe.graphql";
import embedWidget from "./graphql/EmbedWidget.graphql";
import resultFields from "./graphql/WidgetResultFields.graphql";
import type {
  EmbedDashboardFieldsFragment,
  EmbedDashboardQuery,
  EmbedDashboardQueryVariables,
  EmbedLiveSubscription,
  EmbedLiveSubscriptionVariables,
  EmbedProbeQuery,
  EmbedProbeQueryVariables,
  EmbedWidgetQuery,
  EmbedWidgetQueryVariables,
} from "./generated/graphql";
import type { Dashboard, LiveEvent, Permissions } from "./types";

/** A document with the types of its result and variables (the types exist at compile time only). */
export interface Operation<Data, Variables> {
  readonly document: string;
  readonly types?: { data: Data; variables: Variables };
}

function operation<Data, Variables>(...parts: string[]): Operation<Data, Variables> {
  return { document: parts.join("\n") };
}

export const EMBED_DASHBOARD = operation<EmbedDashboardQuery, EmbedDashboardQueryVariables>(
  embedDashboard,
  dashboardFields,
);
export const EMBED_WIDGET = operation<EmbedWidgetQuery, EmbedWidgetQueryVariables>(embedWidget, resultFields);
export const EMBED_PROBE = operation<EmbedProbeQuery, EmbedProbeQueryVariables>(embedProbe);
export const EMBED_LIVE = operation<EmbedLiveSubscription, EmbedLiveSubscriptionVariables>(
  embedLive,
  dashboardFields,
  resultFields,
);

// The schema types `viz`, `layout` and `lockedFilters` as JSON; the server's config gives them
// the shapes in types.ts. These are the only places the runtime narrows a JSON scalar.

export function dashboardOf(wire: EmbedDashboardFieldsFragment): Dashboard {
  return wire as Dashboard;
}

export function permissionsOf(wire: EmbedDashboardQuery["embed"]["permissions"]): Permissions {
  return wire as Permissions;
}

export function liveEventOf(wire: EmbedLiveSubscription["embedLive"]): LiveEvent {
  return { ...wire, type: wire.type as LiveEvent["type"], dashboard: wire.dashboard && dashboardOf(wire.dashboard) };
}
