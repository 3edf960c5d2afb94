// Entry point of the iframe page (/embed/:dashboard_id?token=…).
import "uplot/dist/uPlot.min.css";
import "./embed.css";
import { EmbedApp, takeBoot } from "./app";
import { HostBridge, pageAllowedOrigins } from "./bridge";

/** The session token, removed from the visible URL (and so from history and screenshots). */
function takeToken(): string | null {
  const url = new URL(location.href);
  const token = url.searchParams.get("token");
  if (token !== null) {
    url.searchParams.delete("token");
    history.replaceState(history.state, "", `${url.pathname}${url.search}${url.hash}`);
  }
  return token;
}

const root = document.getElementById("emban-root");
if (root) {
  const dashboardId = root.dataset.dashboardId ?? location.pathname.split("/").pop() ?? "";
  const bridge = new HostBridge(pageAllowedOrigins(root));
  void new EmbedApp(root, dashboardId, takeToken(), bridge, takeBoot()).start();
}
