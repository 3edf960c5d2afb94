/*!
 * Emban host helper — mounts a signed embed URL in an iframe and speaks the postMessage contract.
 * Plain JavaScript, no build step: <script src="https://your-emban/static/embed/host.js"></script>
 *
 *   const embed = Emban.mount(document.getElementById("analytics"), { url: signedEmbedUrl });
 *   embed.on("filter", (event) => console.log(event.period, event.filters));
 *   embed.setFilters({ period: "7d", dimensions: { model: "gpt-4" } });
 *   embed.setTheme({ primaryColor: "#0f9d58" });
 *   embed.setEmbedUrl(nextSignedUrl); // swap the session, keep the filters → "session-swapped"
 *
 * Types: host.d.ts (served next to this file).
 */
(function (global) {
  "use strict";

  var EVENTS = ["ready", "resize", "filter", "period-change", "drill", "error"];
  var SWAP_TIMEOUT_MS = 20000;

  function isObject(value) {
    return typeof value === "object" && value !== null && !Array.isArray(value);
  }

  function copy(value) {
    return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
  }

  function mount(element, options) {
    if (typeof element === "string") element = document.querySelector(element);
    if (!element || typeof element.appendChild !== "function") {
      throw new Error("Emban.mount: a container element is required");
    }
    if (!options || typeof options.url !== "string" || !options.url) {
      throw new Error("Emban.mount: options.url (a signed embed URL) is required");
    }

    var handlers = {}; // type -> [handler]; "*" gets every event
    var lastFilters = null; // the embed's last reported state, as a setFilters payload
    var lastTheme = null; // merged setTheme tokens, re-applied after a swap
    var destroyed = false;
    var current = null;
    var pending = null; // the frame being swapped in by setEmbedUrl

    function emit(type, event) {
      var list = (handlers[type] || []).concat(handlers["*"] || []);
      for (var i = 0; i < list.length; i++) {
        try {
          list[i](event);
        } catch (error) {
          setTimeout(function () {
            throw error;
          });
        }
      }
    }

    function createFrame(url) {
      var absolute = new URL(url, global.location.href);
      var iframe = document.createElement("iframe");
      iframe.src = absolute.href;
      iframe.title = options.title || "Analytics dashboard";
      iframe.setAttribute(
        "sandbox",
        "allow-scripts allow-same-origin allow-popups allow-popups-to-escape-sandbox",
      );
      // Your page's origin, never its path: the runtime takes its targetOrigin from it where the
      // browser has no location.ancestorOrigins (Firefox).
      iframe.setAttribute("referrerpolicy", "strict-origin");
      iframe.style.display = "block";
      iframe.style.width = "100%";
      iframe.style.border = "0";
      iframe.style.colorScheme = "normal";
      iframe.style.height = (options.height || 400) + "px";
      var frame = {
        iframe: iframe,
        origin: absolute.origin,
        loaded: false,
        ready: false,
        queue: [],
        filter: null,
      };
      // The runtime listens from the moment its page has loaded; a theme sent then is applied
      // before the first chart is drawn. Other commands wait for ready.
      iframe.addEventListener("load", function () {
        frame.loaded = true;
        var queue = frame.queue;
        frame.queue = [];
        for (var i = 0; i < queue.length; i++) send(frame, queue[i]);
      });
      return frame;
    }

    function send(frame, message) {
      message._emban = true;
      var now = frame.ready || (frame.loaded && message.type === "setTheme");
      if (now && frame.iframe.contentWindow) {
        frame.iframe.contentWindow.postMessage(message, frame.origin);
      } else {
        frame.queue.push(message);
      }
    }

    function flush(frame) {
      var queue = frame.queue;
      frame.queue = [];
      for (var i = 0; i < queue.length; i++) send(frame, queue[i]);
    }

    function asSetFilters(event) {
      return {
        period: event.period === undefined ? null : event.period,
        dimensions: copy(event.filters) || {},
        numericRanges: copy(event.numericRanges) || {},
        dateRanges: copy(event.dateRanges) || {},
      };
    }

    function onMessage(event) {
      var frame = null;
      if (current && event.source === current.iframe.contentWindow) frame = current;
      else if (pending && event.source === pending.frame.iframe.contentWindow) frame = pending.frame;
      if (!frame || event.origin !== frame.origin) return;
      var data = event.data;
      if (!isObject(data) || data._emban !== true || EVENTS.indexOf(data.type) === -1) return;
      if (pending && frame === pending.frame) {
        onPendingMessage(data);
        return;
      }
      if (data.type === "ready") {
        frame.ready = true;
        flush(frame);
      } else if (data.type === "resize" && typeof data.height === "number" && isFinite(data.height)) {
        frame.iframe.style.height = Math.max(0, Math.ceil(data.height)) + "px";
      } else if (data.type === "filter") {
        lastFilters = asSetFilters(data);
      }
      emit(data.type, data);
    }

    // --- setEmbedUrl: load the next session beside the current one, re-apply the filters
    // (and theme) once it is ready, then swap. Its own ready/filter/resize stay internal.
    function onPendingMessage(data) {
      var swap = pending;
      var frame = swap.frame;
      if (data.type === "resize" && typeof data.height === "number") {
        frame.height = Math.max(0, Math.ceil(data.height));
      } else if (data.type === "filter") {
        frame.filter = asSetFilters(data);
        if (swap.waitingForFilters) promote();
      } else if (data.type === "ready") {
        frame.ready = true;
        if (lastTheme) send(frame, { type: "setTheme", theme: copy(lastTheme) });
        if (lastFilters && !sameFilters(lastFilters, frame.filter)) {
          swap.waitingForFilters = true;
          send(frame, { type: "setFilters", filters: copy(lastFilters) });
        } else {
          promote();
        }
      } else if (data.type === "error") {
        if (!frame.ready) {
          abort(data);
        } else {
          // The new session refused the old filters: it is still the session now.
          emit("error", data);
          promote();
        }
      }
    }

    function sameFilters(a, b) {
      return !!b && JSON.stringify(normalize(a)) === JSON.stringify(normalize(b));
    }

    function normalize(value) {
      if (!isObject(value)) return value;
      var out = {};
      Object.keys(value)
        .sort()
        .forEach(function (key) {
          out[key] = normalize(value[key]);
        });
      return out;
    }

    function promote() {
      var swap = pending;
      pending = null;
      clearTimeout(swap.timer);
      var frame = swap.frame;
      var old = current;
      current = frame;
      frame.iframe.style.position = "";
      frame.iframe.style.visibility = "";
      frame.iframe.style.left = "";
      frame.iframe.style.top = "";
      frame.iframe.style.width = "100%";
      frame.iframe.style.pointerEvents = "";
      frame.iframe.removeAttribute("aria-hidden");
      frame.iframe.tabIndex = 0;
      if (frame.height !== undefined) frame.iframe.style.height = frame.height + "px";
      if (old) old.iframe.remove();
      flush(frame);
      if (frame.filter) lastFilters = frame.filter;
      var event = { _emban: true, type: "session-swapped", filters: copy(lastFilters) };
      emit("session-swapped", event);
      swap.resolve(event);
    }

    function abort(errorEvent) {
      var swap = pending;
      pending = null;
      clearTimeout(swap.timer);
      swap.frame.iframe.remove();
      emit("error", errorEvent);
      swap.reject(new Error(errorEvent.message));
    }

    function setEmbedUrl(nextUrl) {
      if (destroyed) return Promise.reject(new Error("Emban: this embed was destroyed"));
      if (typeof nextUrl !== "string" || !nextUrl) {
        return Promise.reject(new Error("Emban.setEmbedUrl: a signed embed URL is required"));
      }
      if (pending) {
        clearTimeout(pending.timer);
        pending.frame.iframe.remove();
        pending.reject(new Error("Emban: replaced by a newer setEmbedUrl"));
        pending = null;
      }
      var frame = createFrame(nextUrl);
      // Laid out at the current width so the new dashboard measures itself right, but unseen.
      frame.iframe.style.position = "absolute";
      frame.iframe.style.visibility = "hidden";
      frame.iframe.style.pointerEvents = "none";
      frame.iframe.style.left = "-10000px";
      frame.iframe.style.top = "0";
      frame.iframe.style.width = (current ? current.iframe.clientWidth : element.clientWidth) + "px";
      frame.iframe.setAttribute("aria-hidden", "true");
      frame.iframe.tabIndex = -1;
      return new Promise(function (resolve, reject) {
        pending = { frame: frame, resolve: resolve, reject: reject, waitingForFilters: false };
        pending.timer = setTimeout(function () {
          if (pending && pending.frame === frame) {
            abort({ _emban: true, type: "error", message: "The new embed session did not load." });
          }
        }, options.swapTimeout || SWAP_TIMEOUT_MS);
        element.appendChild(frame.iframe);
      });
    }

    current = createFrame(options.url);
    element.appendChild(current.iframe);
    global.addEventListener("message", onMessage);

    return {
      get iframe() {
        return current ? current.iframe : null;
      },
      setFilters: function (filters) {
        if (!destroyed) send(current, { type: "setFilters", filters: copy(filters) || {} });
      },
      setTheme: function (theme) {
        if (destroyed) return;
        lastTheme = Object.assign({}, lastTheme || {}, copy(theme) || {});
        send(current, { type: "setTheme", theme: copy(theme) || {} });
      },
      reload: function () {
        if (!destroyed) send(current, { type: "reload" });
      },
      setEmbedUrl: setEmbedUrl,
      on: function (type, handler) {
        (handlers[type] = handlers[type] || []).push(handler);
        return function off() {
          var list = handlers[type] || [];
          var at = list.indexOf(handler);
          if (at !== -1) list.splice(at, 1);
        };
      },
      destroy: function () {
        if (destroyed) return;
        destroyed = true;
        global.removeEventListener("message", onMessage);
        if (pending) {
          clearTimeout(pending.timer);
          pending.frame.iframe.remove();
          pending = null;
        }
        if (current) current.iframe.remove();
        current = null;
        handlers = {};
      },
    };
  }

  global.Emban = { mount: mount, version: "1" };
})(typeof window !== "undefined" ? window : this);
