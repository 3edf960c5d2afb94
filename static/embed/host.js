/*!
 * Emban host helper — mounts a signed embed URL in an iframe and speaks the postMessage contract.
 * <script src="https://your-emban/static/embed/host.js"></script>
 *
 *   const embed = Emban.mount(document.getElementById("analytics"), { url: signedEmbedUrl });
 *   embed.on("filter", (event) => console.log(event.period, event.filters));
 *   embed.setFilters({ period: "7d", dimensions: { model: "gpt-4" } });
 *   embed.setTheme({ primaryColor: "#0f9d58" });
 *   embed.setEmbedUrl(nextSignedUrl); // swap the session, keep the filters → "session-swapped"
 *
 * Types: host.d.ts (served next to this file). Generated from host.ts by build.mjs: edit that.
 */
"use strict";
(() => {
  // host.ts
  var EVENTS = ["ready", "resize", "filter", "period-change", "drill", "error"];
  var SWAP_TIMEOUT_MS = 2e4;
  function isObject(value) {
    return typeof value === "object" && value !== null && !Array.isArray(value);
  }
  function copy(value) {
    return value === void 0 ? value : JSON.parse(JSON.stringify(value));
  }
  function mount(target, options) {
    const element = typeof target === "string" ? document.querySelector(target) : target;
    if (!element || typeof element.appendChild !== "function") {
      throw new Error("Emban.mount: a container element is required");
    }
    if (!options || typeof options.url !== "string" || !options.url) {
      throw new Error("Emban.mount: options.url (a signed embed URL) is required");
    }
    let handlers = {};
    let lastFilters = null;
    let lastTheme = null;
    let destroyed = false;
    let current = null;
    let pending = null;
    function emit(type, event) {
      const list = (handlers[type] || []).concat(handlers["*"] || []);
      for (const handler of list) {
        try {
          handler(event);
        } catch (error) {
          setTimeout(() => {
            throw error;
          });
        }
      }
    }
    function createFrame(url) {
      const absolute = new URL(url, window.location.href);
      const iframe = document.createElement("iframe");
      iframe.src = absolute.href;
      iframe.title = options.title || "Analytics dashboard";
      iframe.setAttribute("sandbox", "allow-scripts allow-same-origin allow-popups allow-popups-to-escape-sandbox");
      iframe.setAttribute("referrerpolicy", "strict-origin");
      iframe.style.display = "block";
      iframe.style.width = "100%";
      iframe.style.border = "0";
      iframe.style.colorScheme = "normal";
      iframe.style.height = (options.height || 400) + "px";
      const frame = { iframe, origin: absolute.origin, loaded: false, ready: false, queue: [], filter: null };
      iframe.addEventListener("load", () => {
        frame.loaded = true;
        flush(frame);
      });
      return frame;
    }
    function send(frame, message) {
      message._emban = true;
      const now = frame.ready || frame.loaded && message.type === "setTheme";
      if (now && frame.iframe.contentWindow) {
        frame.iframe.contentWindow.postMessage(message, frame.origin);
      } else {
        frame.queue.push(message);
      }
    }
    function flush(frame) {
      const queue = frame.queue;
      frame.queue = [];
      for (const message of queue) send(frame, message);
    }
    function asSetFilters(event) {
      return {
        period: event.period === void 0 ? null : event.period,
        dimensions: copy(event.filters) || {},
        numericRanges: copy(event.numericRanges) || {},
        dateRanges: copy(event.dateRanges) || {}
      };
    }
    function onMessage(event) {
      let frame = null;
      if (current && event.source === current.iframe.contentWindow) frame = current;
      else if (pending && event.source === pending.frame.iframe.contentWindow) frame = pending.frame;
      if (!frame || event.origin !== frame.origin) return;
      const data = event.data;
      if (!isObject(data) || data._emban !== true || EVENTS.indexOf(data.type) === -1) return;
      if (pending && frame === pending.frame) {
        onPendingMessage(pending, data);
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
    function onPendingMessage(swap, data) {
      const frame = swap.frame;
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
      const out = {};
      for (const key of Object.keys(value).sort()) out[key] = normalize(value[key]);
      return out;
    }
    function promote() {
      const swap = pending;
      pending = null;
      clearTimeout(swap.timer);
      const frame = swap.frame;
      const old = current;
      current = frame;
      frame.iframe.style.position = "";
      frame.iframe.style.visibility = "";
      frame.iframe.style.left = "";
      frame.iframe.style.top = "";
      frame.iframe.style.width = "100%";
      frame.iframe.style.pointerEvents = "";
      frame.iframe.removeAttribute("aria-hidden");
      frame.iframe.tabIndex = 0;
      if (frame.height !== void 0) frame.iframe.style.height = frame.height + "px";
      if (old) old.iframe.remove();
      flush(frame);
      if (frame.filter) lastFilters = frame.filter;
      const event = { _emban: true, type: "session-swapped", filters: copy(lastFilters) };
      emit("session-swapped", event);
      swap.resolve(event);
    }
    function abort(errorEvent) {
      const swap = pending;
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
      const frame = createFrame(nextUrl);
      frame.iframe.style.position = "absolute";
      frame.iframe.style.visibility = "hidden";
      frame.iframe.style.pointerEvents = "none";
      frame.iframe.style.left = "-10000px";
      frame.iframe.style.top = "0";
      frame.iframe.style.width = (current ? current.iframe.clientWidth : element.clientWidth) + "px";
      frame.iframe.setAttribute("aria-hidden", "true");
      frame.iframe.tabIndex = -1;
      return new Promise((resolve, reject) => {
        const swap = { frame, resolve, reject, waitingForFilters: false };
        pending = swap;
        swap.timer = setTimeout(() => {
          if (pending && pending.frame === frame) {
            abort({ _emban: true, type: "error", message: "The new embed session did not load." });
          }
        }, options.swapTimeout || SWAP_TIMEOUT_MS);
        element.appendChild(frame.iframe);
      });
    }
    current = createFrame(options.url);
    element.appendChild(current.iframe);
    window.addEventListener("message", onMessage);
    return {
      get iframe() {
        return current ? current.iframe : null;
      },
      setFilters(filters) {
        if (!destroyed) send(current, { type: "setFilters", filters: copy(filters) || {} });
      },
      setTheme(theme) {
        if (destroyed) return;
        lastTheme = Object.assign({}, lastTheme || {}, copy(theme) || {});
        send(current, { type: "setTheme", theme: copy(theme) || {} });
      },
      reload() {
        if (!destroyed) send(current, { type: "reload" });
      },
      setEmbedUrl,
      on(type, handler) {
        (handlers[type] = handlers[type] || []).push(handler);
        return function off() {
          const list = handlers[type] || [];
          const at = list.indexOf(handler);
          if (at !== -1) list.splice(at, 1);
        };
      },
      destroy() {
        if (destroyed) return;
        destroyed = true;
        window.removeEventListener("message", onMessage);
        if (pending) {
          clearTimeout(pending.timer);
          pending.frame.iframe.remove();
          pending = null;
        }
        if (current) current.iframe.remove();
        current = null;
        handlers = {};
      }
    };
  }
  window.Emban = { mount, version: "1" };
})();
