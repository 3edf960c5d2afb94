// The demo host page: mounts the seeded demo dashboard through host.js, sends each host → embed
// command from the controls, and logs every embed → host event (also in window.__events).
(function () {
  "use strict";

  var THEMES = {
    light: {
      primaryColor: "#4f46e5",
      backgroundColor: "#f6f7f9",
      cardBackground: "#ffffff",
      cardBorder: "#e2e5ea",
      textColor: "#111827",
      mutedColor: "#667085",
    },
    green: {
      primaryColor: "#0f9d58",
      backgroundColor: "#f7f9f7",
      cardBackground: "#ffffff",
      cardBorder: "#d8e2d9",
      textColor: "#101513",
      mutedColor: "#5d6c63",
    },
    dark: {
      primaryColor: "#8b9cff",
      backgroundColor: "#0f1115",
      cardBackground: "#181b22",
      cardBorder: "#2a2f3a",
      textColor: "#e8eaf0",
      mutedColor: "#9aa3b2",
    },
  };

  var events = (window.__events = []);
  var embed = null;
  var $ = function (id) {
    return document.getElementById(id);
  };

  function status(text, isError) {
    var box = $("status");
    box.textContent = text;
    box.hidden = !text;
    box.classList.toggle("error", !!isError);
  }

  function log(event) {
    events.push(event);
    var item = document.createElement("li");
    item.dataset.type = event.type;
    var time = document.createElement("time");
    time.textContent = new Date().toLocaleTimeString();
    var type = document.createElement("strong");
    type.textContent = event.type;
    var body = document.createElement("code");
    var shown = {};
    Object.keys(event).forEach(function (key) {
      if (key !== "_emban" && key !== "type") shown[key] = event[key];
    });
    body.textContent = JSON.stringify(shown);
    item.append(time, " ", type, " ", body);
    $("log").prepend(item);
  }

  // The demo route signs URLs with EMBAN_PUBLIC_URL; frame them from this page's own origin so
  // the demo works under whatever name the server is reached by.
  function sameOrigin(url) {
    var parsed = new URL(url, location.href);
    return location.origin + parsed.pathname + parsed.search;
  }

  function mint(tenant) {
    return fetch("/v1/demo/embed-url?tenant_id=" + encodeURIComponent(tenant), {
      credentials: "omit",
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body.error || "HTTP " + response.status);
        return sameOrigin(body.embed_url);
      });
    });
  }

  function currentFilters() {
    var period = $("period").value || null;
    var model = $("model").value || null;
    return { period: period, dimensions: { model: model } };
  }

  function start() {
    mint($("tenant").value)
      .then(function (url) {
        status("");
        embed = Emban.mount($("embed"), { url: url, title: "Demo: AI API usage" });
        embed.on("*", log);
        embed.on("filter", function (event) {
          $("period").value = event.period || "";
          $("model").value = (event.filters && event.filters.model) || "";
        });
      })
      .catch(function (error) {
        status(
          "No demo to show: " + error.message + ". Run `emban demo`, then `emban serve`.",
          true,
        );
      });
  }

  $("apply").addEventListener("click", function () {
    if (embed) embed.setFilters(currentFilters());
  });
  $("reload").addEventListener("click", function () {
    if (embed) embed.reload();
  });
  document.querySelectorAll("[data-theme]").forEach(function (button) {
    button.addEventListener("click", function () {
      var theme = THEMES[button.dataset.theme];
      document.body.dataset.theme = button.dataset.theme;
      if (embed) embed.setTheme(theme);
    });
  });
  $("swap").addEventListener("click", function () {
    if (!embed) return;
    mint($("tenant").value)
      .then(function (url) {
        return embed.setEmbedUrl(url);
      })
      .catch(function (error) {
        status("setEmbedUrl failed: " + error.message, true);
      });
  });
  $("tenant").addEventListener("change", function () {
    $("swap").click();
  });
  $("clear-log").addEventListener("click", function () {
    $("log").replaceChildren();
  });

  start();
})();
