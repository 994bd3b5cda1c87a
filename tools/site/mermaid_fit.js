// Loaded right after the vendored Mermaid (tools/site/course_site.py). Mermaid 8
// scales a wide diagram down to the text column (width="100%") but keeps its
// full height in a height attribute, which leaves a band of empty space above
// and below it. mkdocs-material puts the drawing into a shadow root, out of
// reach of the page's CSS, so the attribute is dropped from the drawing
// itself, on its way from Mermaid to material: the height then follows the
// width through the viewBox.
(function () {
  "use strict";
  if (typeof mermaid === "undefined") return;
  const fit = (svg) =>
    typeof svg === "string" && /^<svg[^>]*\swidth="100%"/.test(svg)
      ? svg.replace(/^(<svg[^>]*?)\sheight="[0-9.]+"/, "$1")
      : svg;
  const api = mermaid.mermaidAPI;
  if (api && typeof api.render === "function" && api.render.length >= 3) {
    // Mermaid 8: mermaidAPI.render(id, text, callback) calls back with the drawing; the object
    // is frozen, so material is handed a copy whose render passes the drawing through fit()
    const render = api.render.bind(api);
    const own = Object.assign({}, api, {
      render: (id, text, callback, ...rest) => render(id, text, (svg, ...more) => callback(fit(svg), ...more), ...rest),
    });
    try {
      Object.defineProperty(mermaid, "mermaidAPI", { value: own, configurable: true, writable: true });
    } catch (e) {
      // a Mermaid whose object cannot take it: the diagrams keep their empty bands
    }
  }
})();
