// GraphiQL for /graphql, served from this package (no CDN): bundled by build.mjs into
// dist/graphiql-<hash>.{js,css}; the page (emban/graphiql_page.py) allows 'self' only.
//
// Queries and mutations go over POST /graphql with the browser's session cookie (same origin).
// Subscriptions go over graphql-transport-ws on the same URL; GraphiQL's Headers pane is sent as
// the connection_init payload, so {"token": "<embed token>"} there runs Subscription.embedLive.
import "graphiql/style.css";
import "./page.css";
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { GraphiQL } from "graphiql";
import { createElement, StrictMode } from "react";
import { createRoot } from "react-dom/client";

const DEFAULT_QUERY = `# Emban GraphQL. Signed in to the console, queries run as you (the session cookie).
#
# Run a live embed subscription: put an embed session's token in Headers,
#   {"token": "<token from POST /v1/embed-sessions>"}
# and run: subscription { embedLive { type widgetId dashboard { name } } }

query Me {
  me {
    role
    org { name }
    environment { name }
  }
}
`;

const root = document.getElementById("graphiql");
if (root) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const fetcher = createGraphiQLFetcher({
    url: `${location.origin}/graphql`,
    subscriptionUrl: `${scheme}//${location.host}/graphql`,
  });
  createRoot(root).render(
    createElement(StrictMode, null, createElement(GraphiQL, { fetcher, defaultQuery: DEFAULT_QUERY })),
  );
}
