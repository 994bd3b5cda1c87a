#!/usr/bin/env python3
"""Opens every page of the built course site in headless Chromium, offline, and checks what a student would see.

    browser_check.py SITE_DIR --stage STAGE_DIR --out OUT_DIR [--expect-results]

Chromium (Debian's) is driven through the DevTools protocol over a pipe
(--remote-debugging-pipe: NUL-separated JSON on file descriptors 3 and 4), so
nothing but the Python standard library is needed. The network is blocked
three ways: as root the whole check runs in a network namespace of its own
with only a loopback interface; Chromium resolves every host name to nothing
and sends everything through a proxy that does not exist; and every request a
page makes is recorded and must be a file:// URL of the site (or, for the
search check, http://127.0.0.1 where the site is served from inside the
namespace).

For every page: the load ends, every Mermaid block has become an <svg> of
some size (material draws them in a closed shadow root: a script run before
the page's own keeps a reference to each shadow root it attaches), every
image has loaded, the console and the page show no error, and no request left
the machine. The built files hold no http:// or https:// URL that a page
loads (resource attributes, CSS url() and @import). The search box finds a
lesson when the site is served as ./course site --serve serves it. Screenshots
of the lesson 03 page, the exercises index and the results page, in the light
and the dark scheme, are written to OUT_DIR.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import functools
import html.parser
import http.server
import json
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SHOTS = {
    "docs/03_two_process_mean.html": "lesson03",
    "exercises/index.html": "exercises",
    "results/index.html": "results",
}
WIDTH, HEIGHT, SHOT_MAX_HEIGHT = 1280, 900, 7000

# Before any script of the page: keep each shadow root material attaches, so the
# check can look inside the closed ones it draws the diagrams in.
SHADOW_HOOK = """
(() => {
  const attach = Element.prototype.attachShadow;
  window.__corelabShadows = [];
  Element.prototype.attachShadow = function (init) {
    const root = attach.call(this, init);
    window.__corelabShadows.push([this, root]);
    return root;
  };
})();
"""

PAGE_STATE = """
(() => {
  const hosts = (window.__corelabShadows || []).filter(([h]) => h.isConnected && h.classList.contains('mermaid'));
  const svgs = hosts.map(([h, r]) => {
    const s = r.querySelector('svg');
    if (!s) return null;
    const b = s.getBoundingClientRect();
    const host = h.getBoundingClientRect();
    return {w: Math.round(b.width), h: Math.round(b.height), text: r.textContent.slice(0, 200),
            x: Math.round(host.left + scrollX), y: Math.round(host.top + scrollY),
            hw: Math.round(host.width), hh: Math.round(host.height)};
  });
  const imgs = [...document.images].map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0,
                                                done: i.complete, w: Math.round(i.getBoundingClientRect().width)}));
  return JSON.stringify({
    svgs, imgs,
    left: document.querySelectorAll('pre.mermaid').length,
    scheme: document.body.getAttribute('data-md-color-scheme'),
    height: document.documentElement.scrollHeight,
    title: document.title,
  });
})()
"""


class CheckError(Exception):
    pass


# ---------------------------------------------------------------- the network namespace


def bring_loopback_up() -> None:
    """ip link set lo up, by ioctl (a new network namespace starts with lo down)."""
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def in_new_netns() -> bool:
    """Moves this process into a network namespace of its own (root only); False where the kernel refuses."""
    if os.geteuid() != 0:
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        CLONE_NEWNET = 0x40000000
        if libc.unshare(CLONE_NEWNET) != 0:
            return False
        bring_loopback_up()
        return True
    except OSError:
        return False


def interfaces() -> list[str]:
    return sorted(name for _, name in socket.if_nameindex())


# ---------------------------------------------------------------- Chromium over a pipe


class Browser:
    def __init__(self, chromium: str, profile: Path, log: Path):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        args = [
            chromium,
            "--headless",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-features=Translate,MediaRouter,OptimizationHints",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--proxy-server=http://127.0.0.1:9",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            f"--window-size={WIDTH},{HEIGHT}",
            "--lang=en-US",
            "about:blank",
        ]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium's sandbox refuses to run as root

        # Chromium reads commands on fd 3 and answers on fd 4: bash puts the pipe ends there,
        # from numbers above 9 so that neither is overwritten on the way.
        hi = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_chrome_r, from_chrome_w)]
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        to_chrome_r, from_chrome_w = hi
        script = f'exec 3<&{to_chrome_r} 4>&{from_chrome_w} {to_chrome_r}<&- {from_chrome_w}>&-; exec "$0" "$@"'
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(["/bin/bash", "-c", script] + args, pass_fds=(to_chrome_r, from_chrome_w),
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []

    def close(self) -> None:
        try:
            self.send("Browser.close", wait=False)
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.to_chrome, self.from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        self.log.close()

    def _read(self, timeout: float) -> dict | None:
        while b"\0" not in self.buf:
            ready, _, _ = select.select([self.from_chrome], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self.from_chrome, 1 << 20)
            if not chunk:
                raise CheckError(f"Chromium closed its pipe (exit status {self.proc.poll()}); see {self.log.name}")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             wait: bool = True, timeout: float = 30) -> dict:
        self.next_id += 1
        mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        if not wait:
            return {}
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            reply = self._read(max(left, 0))
            if reply is None:
                raise CheckError(f"Chromium did not answer {method} within {timeout:.0f} s")
            if reply.get("id") == mid:
                if "error" in reply:
                    raise CheckError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def pump(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            ev = self._read(left)
            if ev is None:
                return
            self.events.append(ev)

    def wait_event(self, method: str, session: str, timeout: float, since: int = 0) -> dict:
        end = time.monotonic() + timeout
        while True:
            for ev in self.events[since:]:
                if ev.get("method") == method and ev.get("sessionId") == session:
                    return ev
            left = end - time.monotonic()
            if left <= 0:
                raise CheckError(f"no {method} within {timeout:.0f} s")
            ev = self._read(left)
            if ev is not None:
                self.events.append(ev)


class Tab:
    def __init__(self, browser: Browser, dark: bool):
        self.b = browser
        # a browser context of its own: no storage shared with another tab (material keeps the scheme there)
        context = browser.send("Target.createBrowserContext")["browserContextId"]
        target = browser.send("Target.createTarget", {"url": "about:blank", "browserContextId": context})["targetId"]
        self.s = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for m in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
            self.call(m)
        self.call("Page.addScriptToEvaluateOnNewDocument", {"source": SHADOW_HOOK})
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
        self.call("Emulation.setEmulatedMedia",
                  {"features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]})

    def call(self, method: str, params: dict | None = None, timeout: float = 30) -> dict:
        return self.b.send(method, params, session=self.s, timeout=timeout)

    def evaluate(self, expr: str, timeout: float = 30):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True},
                      timeout=timeout)
        if "exceptionDetails" in r:
            raise CheckError(f"page script failed: {r['exceptionDetails'].get('text')}")
        return r["result"].get("value")

    def open(self, url: str, timeout: float = 30) -> int:
        since = len(self.b.events)
        self.call("Page.navigate", {"url": url})
        self.b.wait_event("Page.loadEventFired", self.s, timeout, since)
        return since

    def problems_since(self, since: int, allowed_origin: str) -> tuple[list[str], list[str]]:
        """(console and page errors, requests that were not to the site) among the events since SINCE."""
        errors, leaks = [], []
        for ev in self.b.events[since:]:
            if ev.get("sessionId") != self.s:
                continue
            m, p = ev.get("method"), ev.get("params", {})
            if m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                errors.append("uncaught: " + (d.get("exception", {}).get("description") or d.get("text", "?")))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errors.append("console.error: " + " ".join(str(a.get("value", a.get("description", "")))
                                                            for a in p.get("args", [])))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                e = p["entry"]
                errors.append(f"{e.get('source')}: {e.get('text')} {e.get('url', '')}".strip())
            elif m == "Network.requestWillBeSent":
                url = p.get("request", {}).get("url", "")
                if not (url.startswith(("data:", "blob:", "about:")) or url.startswith(allowed_origin)):
                    leaks.append(url)
            elif m == "Network.loadingFailed" and not p.get("canceled"):
                errors.append(f"a request failed: {p.get('errorText')} ({p.get('type')})")
        return errors, leaks

    def screenshot(self, path: Path, y: int, height: int, x: int = 0, width: int = WIDTH) -> None:
        clip = {"x": max(x, 0), "y": max(y, 0), "width": width, "height": min(height, SHOT_MAX_HEIGHT), "scale": 1}
        shot = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip},
                         timeout=60)
        path.write_bytes(base64.b64decode(shot["data"]))


# ---------------------------------------------------------------- the built files


class Resources(html.parser.HTMLParser):
    """The URLs an HTML file makes the browser load (not the ones it only links to)."""

    def __init__(self):
        super().__init__()
        self.loads: list[str] = []
        self.links: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag in ("script", "img", "iframe", "embed", "source", "audio", "video", "track", "input") and a.get("src"):
            self.loads.append(a["src"])
        if tag == "link" and a.get("href"):
            rel = (a.get("rel") or "").lower()
            if any(r in rel for r in ("stylesheet", "icon", "preload", "prefetch", "preconnect", "manifest",
                                      "modulepreload", "dns-prefetch")):
                self.loads.append(a["href"])
        for key in ("srcset", "data", "poster", "background"):
            if a.get(key):
                self.loads.extend(part.strip().split(" ")[0] for part in a[key].split(","))
        if a.get("style"):
            self.styles.append(a["style"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""")


def static_check(site: Path) -> tuple[list[str], list[str]]:
    """(URLs outside the machine that a built file loads, relative links that lead to no file)."""
    outside, broken = [], []
    for f in sorted(site.rglob("*")):
        if f.suffix == ".html":
            p = Resources()
            p.feed(f.read_text(encoding="utf-8"))
            loads = list(p.loads)
            for css in p.styles:
                loads += [a or b for a, b in CSS_URL.findall(css)]
            outside += [f"{f.relative_to(site)}: {u}" for u in loads if re.match(r"^(https?:)?//", u)]
            # 404.html is for a web server, which serves it at any depth: its links start at the root
            for href in [] if f.name == "404.html" else p.links + [u for u in p.loads if not re.match(r"^[a-z]+:|^//", u)]:
                if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//|^#", href):
                    continue
                target = (f.parent / href.split("#")[0].split("?")[0]).resolve()
                if href.split("#")[0] and not (target.is_file() or (target / "index.html").is_file()):
                    broken.append(f"{f.relative_to(site)}: {href}")
        elif f.suffix == ".css":
            for a, b in CSS_URL.findall(f.read_text(encoding="utf-8", errors="replace")):
                u = a or b
                if re.match(r"^(https?:)?//", u):
                    outside.append(f"{f.relative_to(site)}: {u}")
    return outside, broken


# ---------------------------------------------------------------- the check


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def wait_drawn(tab: Tab, expected: int, since: int, timeout: float = 60) -> dict:
    """The page's state once every diagram is drawn and every image loaded or failed (or an error showed)."""
    end = time.monotonic() + timeout
    while True:
        state = json.loads(tab.evaluate(PAGE_STATE))
        drawn = [s for s in state["svgs"] if s and s["w"] > 20 and s["h"] > 20]
        settled = len(drawn) >= expected and state["left"] == 0 and all(i["done"] for i in state["imgs"])
        failed = bool(tab.problems_since(since, "")[0])
        if settled or time.monotonic() > end or (failed and time.monotonic() > end - timeout + 2):
            state["drawn"] = len(drawn)
            return state
        tab.b.pump(0.1)


def search_query(site: Path) -> str:
    """Lesson 03's title, from the site's own search index (so the check follows the page's text)."""
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    for doc in index["docs"]:
        if doc["location"] == "docs/03_two_process_mean.html":
            return re.sub(r"[^A-Za-z0-9 ]+", " ", doc["title"]).strip()
    raise CheckError("the search index has no entry for docs/03_two_process_mean.html")


def search_check(tab: Tab, base: str, allowed: str, query: str, results: dict) -> list[str]:
    """Types lesson 03's title into the search box of the home page: a result must lead to lesson 03."""
    failures = []
    since = tab.open(base + "index.html")
    found, meta = "", ""
    end = time.monotonic() + 90  # the index is built in a worker: slow on a loaded machine
    while time.monotonic() < end and "03_two_process_mean" not in found:
        # typed again until the index is ready (material searches only when the query changes)
        for word in (query[:-1], query):
            tab.evaluate("""(() => { const q = document.querySelector('input[data-md-component="search-query"]');
                q.focus(); q.value = %s; q.dispatchEvent(new Event('input', {bubbles: true})); return 1; })()""" % json.dumps(word))
            tab.b.pump(0.5)
        found = tab.evaluate("""[...document.querySelectorAll('.md-search-result__item a')]
                                 .map(a => a.getAttribute('href')).join(' ')""") or ""
        meta = tab.evaluate("(document.querySelector('.md-search-result__meta') || {}).innerText") or ""
    mode = base.split(":")[0]
    errors, leaks = tab.problems_since(since, allowed)
    failures += [f"search ({mode}): {e}" for e in errors]
    failures += [f"search ({mode}): a request left the site: {u}" for u in leaks]
    if "03_two_process_mean" not in found:
        failures.append(f"search ({mode}) for {query!r} did not find lesson 03 (found: {found or 'nothing'}; the box said: {meta!r})")
    results.setdefault("search", {})[mode] = found.split()
    return failures


def check(site: Path, stage: Path, out: Path, chromium: str, expect_results: bool,
          only: list[str] | None = None, search: bool = True) -> list[str]:
    failures: list[str] = []
    blocks = json.loads((stage / "mermaid_blocks.json").read_text())

    outside, broken = static_check(site)
    failures += [f"{u.split(': ', 1)[0]}: loads {u.split(': ', 1)[1]}, from outside the site" for u in outside]
    failures += [f"a link leads to no file: {u}" for u in broken]

    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html") if p.name != "404.html")
    if only:
        missing = [p for p in only if p not in pages]
        if missing:
            raise CheckError(f"no such page(s) in {site}: {', '.join(missing)}")
        pages = only
    out.mkdir(parents=True, exist_ok=True)
    profile = Path(tempfile.mkdtemp(prefix="corelab-site-chromium."))
    browser = Browser(chromium, profile, out / "chromium.log")
    results = {"pages": {}, "network_namespace": None}
    try:
        for dark in (False, True):
            tab = Tab(browser, dark)
            for rel in pages if not dark else [p for p in pages if p in SHOTS]:
                md = re.sub(r"index\.html$", "", rel)
                md = (md + "README.md") if md.endswith("/") or md == "" else re.sub(r"\.html$", ".md", rel)
                if rel == "results/index.html":
                    md = "results/index.md"
                expected = blocks.get(md)
                if expected is None:
                    expected = 0
                html_text = (site / rel).read_text(encoding="utf-8")
                in_html = len(re.findall(r'<pre class="mermaid"', html_text))
                if in_html != expected:
                    failures.append(f"{rel}: {expected} mermaid block(s) in its Markdown, {in_html} in its HTML")
                if "language-mermaid" in html_text:
                    failures.append(f"{rel}: a mermaid block was built as plain code")
                since = tab.open((site / rel).as_uri())
                state = wait_drawn(tab, expected, since)
                tab.b.pump(0.2)
                errors, leaks = tab.problems_since(since, "file://")
                scheme = "dark" if dark else "light"
                where = f"{rel} ({scheme})"
                failures += [f"{where}: {e}" for e in errors]
                failures += [f"{where}: a request left the site: {u}" for u in leaks]
                if state["drawn"] != expected:
                    failures.append(f"{where}: {state['drawn']} of {expected} mermaid diagram(s) drawn as <svg>")
                for s in state["svgs"]:
                    if s and re.search(r"syntax error|parse error", s["text"], re.I):
                        failures.append(f"{where}: mermaid drew an error: {s['text'][:120]}")
                for i in state["imgs"]:
                    if not i["ok"] or i["w"] < 50:
                        failures.append(f"{where}: image {i['src']} did not load ({i})")
                want = "slate" if dark else "default"
                if state["scheme"] != want:
                    failures.append(f"{where}: colour scheme {state['scheme']}, not {want}")
                if rel == "results/index.html":
                    charts = [i for i in state["imgs"] if i["src"].endswith(".svg") and i["ok"]]
                    if expect_results and len(charts) < 2:
                        failures.append(f"{where}: {len(charts)} chart(s) shown, the report has at least 2")
                    if not expect_results and "./course report" not in tab.evaluate("document.body.innerText"):
                        failures.append(f"{where}: without a report the page does not say how to make one")
                if rel in SHOTS:  # the whole page (up to 7000 px), its top, and each diagram with its surroundings
                    name = f"{SHOTS[rel]}-{scheme}"
                    tab.screenshot(out / f"{name}.png", 0, state["height"])
                    tab.screenshot(out / f"{name}-top.png", 0, HEIGHT)
                    for k, d in enumerate(s for s in state["svgs"] if s):
                        tab.screenshot(out / f"{name}-diagram{k + 1}.png", d["y"] - 120, d["hh"] + 240)
                results["pages"].setdefault(rel, {})[scheme] = {
                    "diagrams": [s for s in state["svgs"] if s], "images": state["imgs"], "errors": errors,
                    "leaks": leaks}

        if search:  # read from file:// URLs, and as ./course site --serve serves the site
            query = search_query(site)
            failures += search_check(Tab(browser, False), site.as_uri() + "/", "file://", query, results)
            server, origin = serve(site)
            try:
                failures += search_check(Tab(browser, False), origin, origin, query, results)
            finally:
                server.shutdown()
                server.server_close()
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)
    (out / "pages.json").write_text(json.dumps(results, indent=1))
    return failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("site")
    ap.add_argument("--stage", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    ap.add_argument("--expect-results", action="store_true", help="the site was built with a report")
    ap.add_argument("--only", help="these pages only, comma-separated (e.g. results/index.html); no search check")
    args = ap.parse_args()
    if not args.chromium:
        print("browser_check: chromium is not installed (./course deps installs it)", file=sys.stderr)
        return 1
    netns = in_new_netns()
    print(f"browser_check: network: {'a namespace of its own, interfaces ' + ','.join(interfaces()) if netns else 'host namespace (not root): proxy to nowhere and no name resolution'}")
    start = time.monotonic()
    try:
        only = [p.strip() for p in args.only.split(",")] if args.only else None
        failures = check(Path(args.site).resolve(), Path(args.stage).resolve(), Path(args.out).resolve(),
                         args.chromium, args.expect_results, only, search=only is None)
    except CheckError as e:
        failures = [str(e)]
    pages = json.loads((Path(args.out) / "pages.json").read_text())["pages"] if (Path(args.out) / "pages.json").exists() else {}
    diagrams = sum(len(v.get("light", {}).get("diagrams", [])) for v in pages.values())
    print(f"browser_check: {len(pages)} pages opened, {diagrams} diagrams drawn, in {time.monotonic() - start:.1f} s; "
          f"screenshots in {args.out}")
    for f in failures:
        print(f"FAIL {f}")
    print(f"browser_check: {'no problem' if not failures else str(len(failures)) + ' problem(s)'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
