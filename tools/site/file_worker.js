// The course site read from a file:// URL: a page there may not start a Web
// Worker, and mkdocs-material runs its search in one. This stands in for
// Worker on file:// pages only: the worker's script runs in a hidden iframe
// of the page's own origin, and messages go back and forth as with a worker.
// (tools/site/course_site.py puts it on every page; on http:// it does nothing.)
(function () {
  "use strict";
  if (location.protocol !== "file:") return;

  class FileWorker extends EventTarget {
    constructor(url) {
      super();
      this.onmessage = null;
      this.onerror = null;
      const frame = document.createElement("iframe");
      frame.hidden = true;
      frame.setAttribute("aria-hidden", "true");
      (document.body || document.documentElement).appendChild(frame);
      this.frame = frame;
      const inner = frame.contentWindow;
      inner.postMessage = (data) => this.deliver("message", new MessageEvent("message", { data: structuredClone(data) }));
      inner.importScripts = () => {
        throw new Error("importScripts is not available to a worker of a file:// page");
      };
      const script = inner.document.createElement("script");
      script.src = new URL(url, location.href).href;
      this.ready = new Promise((resolve) => {
        script.onload = resolve;
        script.onerror = () => {
          this.deliver("error", new ErrorEvent("error", { message: `cannot load the worker ${script.src}` }));
        };
      });
      inner.document.head.appendChild(script);
    }

    deliver(type, event) {
      const handler = type === "message" ? this.onmessage : this.onerror;
      if (handler) handler.call(this, event);
      this.dispatchEvent(event);
    }

    postMessage(data) {
      const copy = structuredClone(data);
      this.ready.then(() => {
        const inner = this.frame.contentWindow;
        if (inner) inner.dispatchEvent(new inner.MessageEvent("message", { data: copy }));
      });
    }

    terminate() {
      this.frame.remove();
    }
  }

  window.Worker = FileWorker;
})();
