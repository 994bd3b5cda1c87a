#!/usr/bin/env python3
"""The course as a website: `./course site` calls this.

    course_site.py vendor        fetch the pinned Mermaid build (./course deps)
    course_site.py build [--results RUN|none] [--out DIR] [--stage DIR] [--root TREE]

`build` lays an mkdocs tree out in a staging folder (build/site-src): the
course's Markdown pages copied in at their own paths, so that their relative
links hold, with what a browser needs changed on the way: links to source files
point at copies with a .txt name (a browser shows those as text), a code span
that names a file of the course links to it, quoted lesson code says which
file it is from, an exercise's hints are folded, and a link to a folder
without a README gets a page that lists its files. The "Your results" page is
the report of results/latest (./course report), its charts and files beside
it, or says how to make one. mkdocs (Debian's, with
mkdocs-material) then builds build/site with --strict, so a broken link fails
the build. Nothing is fetched at build time and no page loads anything from
outside the site: Mermaid is the pinned copy of tools/site/mermaid.lock, the
fonts are the system's.

Runs under any Python 3.9 or newer; mkdocs runs under its own interpreter.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path, PurePosixPath

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parents[1]
ROOT = CHECKOUT  # the course tree the site is built from (--root: a test's own tree)
CACHE = CHECKOUT / ".cache" / "site"  # git-ignored: the npm tarballs, checked before each use
LOCK = HERE / "mermaid.lock"
LOCK_SHOWN = "tools/site/mermaid.lock"
MERMAID_ASSET = "assets/vendor/mermaid/mermaid.min.js"
SIZE_LIMIT = 30 * 1024 * 1024

# Files a link may point at that the browser shows as they are; any other file
# of the course is copied as NAME.txt, so the browser shows it as text instead
# of offering a download.
AS_IS = {".txt", ".svg", ".png", ".jpg", ".jpeg", ".gif", ".pdf"}
SOURCE_EXT = {".cpp", ".hpp", ".h", ".cc", ".cmake", ".txt", ".json", ".csv", ".sh", ".py", ".in", ".supp"}


class SiteError(Exception):
    pass


def say(msg: str) -> None:
    print(f"site: {msg}", file=sys.stderr)


# ---------------------------------------------------------------- mkdocs


def mkdocs_command() -> list[str]:
    exe = shutil.which("mkdocs")
    if not exe:
        raise SiteError("mkdocs is not installed: ./course deps installs mkdocs and mkdocs-material")
    return [exe]


def mkdocs_python() -> str:
    """The interpreter mkdocs runs under (its script's #! line)."""
    exe = mkdocs_command()[0]
    with open(exe, "rb") as f:
        first = f.readline().decode(errors="replace").strip()
    if first.startswith("#!"):
        parts = first[2:].split()
        if parts and os.path.basename(parts[0]) != "env" and os.access(parts[0], os.X_OK):
            return parts[0]
        if len(parts) >= 2 and os.path.basename(parts[0]) == "env":
            found = shutil.which(parts[1])
            if found:
                return found
    return sys.executable


def material_info() -> dict:
    """mkdocs's and mkdocs-material's versions and the Mermaid version material's bundle asks for."""
    probe = r"""
import glob, json, os, re
import mkdocs
from mkdocs.utils import get_theme_dir
theme = get_theme_dir("material")
version = "unknown"
try:
    from importlib import metadata
    version = metadata.version("mkdocs-material")
except Exception:
    pass
asks = None
for bundle in glob.glob(os.path.join(theme, "assets", "javascripts", "bundle.*.min.js")):
    m = re.search(r"unpkg\.com/mermaid@([0-9A-Za-z.\-]+)/", open(bundle, encoding="utf-8").read())
    if m:
        asks = m.group(1)
print(json.dumps({"mkdocs": mkdocs.__version__, "material": version, "theme": theme, "asks": asks}))
"""
    out = subprocess.run([mkdocs_python(), "-c", probe], capture_output=True, text=True)
    if out.returncode != 0:
        raise SiteError("cannot find mkdocs-material's theme (./course deps installs mkdocs-material):\n" + out.stderr)
    info = json.loads(out.stdout)
    if not info["asks"]:
        raise SiteError(f"mkdocs-material's bundle in {info['theme']} names no Mermaid version; cannot vendor one")
    return info


# ---------------------------------------------------------------- Mermaid, vendored


def read_lock() -> dict[str, tuple[str, str]]:
    pins = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            asks, version, integrity = line.split()[:3]
            pins[asks] = (version, integrity)
    return pins


def pinned_mermaid(asks: str) -> tuple[str, str]:
    pins = read_lock()
    if asks not in pins:
        raise SiteError(
            f"this mkdocs-material asks for mermaid@{asks}, which {LOCK_SHOWN} does not pin; "
            f"add a line for it (`npm view mermaid@{asks} version dist.integrity`)"
        )
    return pins[asks]


def integrity_of(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def tarball_path(version: str) -> Path:
    return CACHE / f"mermaid-{version}.tgz"


def fetch_mermaid(version: str, integrity: str) -> Path:
    """npm pack mermaid@VERSION into the cache (the registry's own tarball), checked against its pin."""
    CACHE.mkdir(parents=True, exist_ok=True)
    dest = tarball_path(version)
    if dest.exists() and integrity_of(dest.read_bytes()) == integrity:
        return dest
    dest.unlink(missing_ok=True)
    npm = shutil.which("npm")
    if npm:
        say(f"npm pack mermaid@{version} (the site's diagrams; pinned in {LOCK_SHOWN})")
        done = subprocess.run(
            [npm, "pack", f"mermaid@{version}", "--pack-destination", str(CACHE), "--silent"],
            stdout=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise SiteError(f"npm pack mermaid@{version} failed (is the npm registry reachable?)")
    else:
        # No npm on this machine: the registry's tarball at its documented address, the same bytes.
        url = f"https://registry.npmjs.org/mermaid/-/mermaid-{version}.tgz"
        say(f"fetching {url} (no npm here; the site's diagrams, pinned in {LOCK_SHOWN})")
        try:
            with urllib.request.urlopen(url, timeout=60) as r:
                dest.write_bytes(r.read())
        except OSError as e:
            raise SiteError(f"cannot fetch mermaid {version} from the npm registry: {e}") from e
    got = integrity_of(dest.read_bytes())
    if got != integrity:
        dest.unlink(missing_ok=True)
        raise SiteError(f"mermaid-{version}.tgz does not match its pin: {got} != {integrity}; removed it")
    return dest


def mermaid_files(version: str, integrity: str) -> dict[str, bytes]:
    """mermaid.min.js and its licence from the cached tarball, after checking it against the pin."""
    path = tarball_path(version)
    if not path.exists():
        raise SiteError(f"mermaid {version} is not fetched yet: run ./course deps (it needs the npm registry once)")
    data = path.read_bytes()
    if integrity_of(data) != integrity:
        raise SiteError(f"{path} does not match its pin in {LOCK_SHOWN}: remove it and run ./course deps")
    files = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for name, key in (("package/dist/mermaid.min.js", "mermaid.min.js"), ("package/LICENSE", "LICENSE")):
            member = tar.extractfile(name)
            if member is None:
                raise SiteError(f"{path} has no {name}")
            files[key] = member.read()
    return files


def cmd_vendor(_args) -> None:
    info = material_info()
    version, integrity = pinned_mermaid(info["asks"])
    path = fetch_mermaid(version, integrity)
    say(f"mermaid {version} for mkdocs-material {info['material']}: {path.relative_to(CHECKOUT)} (checked)")


# ---------------------------------------------------------------- Markdown, rewritten for the site

FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")
LINK = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*(<[^>]*>|[^()\s]+)(\s+\"[^\"]*\")?\s*\)")
REFDEF = re.compile(r"^(\s{0,3}\[[^\]]+\]:\s*)(\S+)(.*)$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
SNIPPET = re.compile(r"^<!--\s*snippet:\s*([^#\s]+)(?:#(\S+))?\s*-->\s*$")


def is_external(target: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target)) or target.startswith("//")


class Site:
    """The staging tree: which course file lands where, and the rewriting of each page."""

    def __init__(self, stage: Path, results: Path | None):
        self.stage = stage
        self.pages_dir = stage / "pages"
        self.results = results.resolve() if results else None
        self.placed: dict[str, str] = {}  # course path (or results file) -> site path
        self.queue: list[tuple[Path, str]] = []
        self.mermaid_blocks: dict[str, int] = {}

    # where a course file goes on the site
    def site_path_for(self, src: Path) -> str | None:
        src = src.resolve() if src.exists() else src
        if self.results and (src.parent == self.results):
            return "results/index.md" if src.name == "report.md" else f"results/{self.shown_name(src.name)}"
        try:
            rel = src.relative_to(ROOT).as_posix()
        except ValueError:
            return None
        if rel.startswith(("build/", ".git/", ".cache/")) or rel == "build" or rel == ".git":
            return None
        if rel.startswith("results/"):
            return None  # only the run the site was built from is on it
        if src.suffix == ".md":
            return rel
        return self.shown_name(rel)

    @staticmethod
    def shown_name(rel: str) -> str:
        suffix = PurePosixPath(rel).suffix.lower()
        return rel if suffix in AS_IS else rel + ".txt"

    def place(self, src: Path) -> str | None:
        """Puts a course file on the site (once) and returns its site path."""
        key = str(src.resolve())
        if key in self.placed:
            return self.placed[key]
        site = self.site_path_for(src)
        if site is None or not src.is_file():
            return None
        self.placed[key] = site
        if src.suffix == ".md":
            self.queue.append((src, site))
        else:
            out = self.pages_dir / site
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out)
        return site

    def resolve(self, page_src: Path, target: str) -> Path | None:
        path = target.split("#", 1)[0]
        if not path or path.startswith("/"):
            return None
        bases = [page_src.parent]
        if self.results and page_src.parent == self.results:
            # a report is written to be read from results/<run>/: a copy kept elsewhere reads the same
            bases.append(ROOT / "results" / self.results.name)
        for base in bases:
            cand = Path(os.path.normpath(base / path))
            if cand.is_dir() and (cand / "README.md").is_file():
                return cand / "README.md"
            if cand.is_file():
                return cand
        return None

    def rewrite_target(self, page_src: Path, page_site: str, target: str) -> str | None:
        """The link to use on the site for TARGET in PAGE, or None when it leads nowhere the site has."""
        if is_external(target) or target.startswith("#"):
            return target
        if page_site != "results/index.md" and self.in_results(page_src, target.split("#", 1)[0]):
            return self.relative(page_site, "results/index.md")
        src = self.resolve(page_src, target)
        if src is None:
            folder = Path(os.path.normpath(page_src.parent / target.split("#", 1)[0]))
            listing = self.place_folder(folder) if target.split("#", 1)[0] and folder.is_dir() else None
            return self.relative(page_site, listing) if listing else None
        site = self.place(src)
        if site is None:
            return None
        anchor = "#" + target.split("#", 1)[1] if "#" in target else ""
        rel = os.path.relpath(site, os.path.dirname(page_site) or ".")
        return PurePosixPath(rel).as_posix() + anchor

    @staticmethod
    def relative(page_site: str, site: str) -> str:
        return PurePosixPath(os.path.relpath(site, os.path.dirname(page_site) or ".")).as_posix()

    @staticmethod
    def in_results(page_src: Path, path: str) -> bool:
        """A link into results/, the student's own runs: on the site, that is the "Your results" page."""
        if not path or path.startswith("/"):
            return False
        target = Path(os.path.normpath(page_src.parent / path))
        try:
            rel = target.relative_to(ROOT).as_posix()
        except ValueError:
            return False
        return rel == "results" or rel.startswith("results/")

    def place_folder(self, folder: Path) -> str | None:
        """A link to a folder without a README: a page that lists its files, each linked as text."""
        try:
            rel = folder.resolve().relative_to(ROOT).as_posix()
        except ValueError:
            return None
        if rel.startswith(("build", ".git", ".cache")) or rel == ".":
            return None
        page = f"{rel}/index.md"
        key = str(folder.resolve()) + "/"
        if key not in self.placed:
            self.placed[key] = page
            lines = [f"# {rel}/", "", f"The files in the course's `{rel}/` folder:", ""]
            for f in sorted(folder.iterdir()):
                if f.is_file():
                    site = self.place(f)
                    if site:
                        lines.append(f"- [`{f.name}`]({self.relative(page, site)})")
                elif f.is_dir() and not f.name.startswith("."):
                    lines.append(f"- `{f.name}/`")
            out = self.pages_dir / page
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("\n".join(lines) + "\n", encoding="utf-8")
            self.mermaid_blocks[page] = 0
        return page

    def code_span_target(self, page_src: Path, text: str) -> Path | None:
        """A code span that is exactly the path of a file of the course, e.g. `lib/include/corelab/reduce.hpp`."""
        if not re.fullmatch(r"[A-Za-z0-9_.\-/]+", text) or "/" not in text and "." not in text:
            return None
        if text.startswith(("/", "-")) or text.endswith("/"):
            return None
        for base in (page_src.parent, ROOT, ROOT / "lib" / "include" / "corelab"):
            cand = Path(os.path.normpath(base / text))
            if cand.is_file() and (cand.suffix in SOURCE_EXT or cand.suffix == ".md" or "." not in cand.name):
                try:
                    cand.relative_to(ROOT)
                except ValueError:
                    continue
                return cand
        return None

    def rewrite_line(self, line: str, page_src: Path, page_site: str, strict_links: bool) -> str:
        out, pos = [], 0
        for m in LINK.finditer(line):
            out.append(self.link_code_spans(line[pos : m.start()], page_src, page_site))
            bang, text, target, title = m.group(1), m.group(2), m.group(3), m.group(4) or ""
            raw = target[1:-1] if target.startswith("<") else target
            new = self.rewrite_target(page_src, page_site, raw)
            if new is None and not strict_links:
                out.append(text if not bang else f"*{text}*")  # a report's link to a file it does not have
            else:
                out.append(f"{bang}[{text}]({new if new is not None else raw}{title})")
            pos = m.end()
        out.append(self.link_code_spans(line[pos:], page_src, page_site))
        return "".join(out)

    def link_code_spans(self, text: str, page_src: Path, page_site: str) -> str:
        def sub(m: re.Match) -> str:
            text = m.group(2).strip()
            if re.fullmatch(r"results/[A-Za-z0-9_.\-/<>]*", text) and page_site != "results/index.md":
                return f"[{m.group(0)}]({self.relative(page_site, 'results/index.md')})"
            src = self.code_span_target(page_src, text)
            if src is None or src.resolve() == page_src.resolve():
                return m.group(0)
            site = self.place(src)
            if site is None:
                return m.group(0)
            rel = PurePosixPath(os.path.relpath(site, os.path.dirname(page_site) or ".")).as_posix()
            return f"[{m.group(0)}]({rel})"

        return CODE_SPAN.sub(sub, text)

    def rewrite_markdown(self, text: str, page_src: Path, page_site: str, strict_links: bool = True) -> str:
        lines = text.splitlines()
        out: list[str] = []
        fence: str | None = None
        blocks = 0
        for line in lines:
            m = FENCE.match(line)
            if fence is None and m:
                fence = m.group(2)
                if m.group(3).strip().startswith("mermaid"):
                    blocks += 1
                out.append(line)
                continue
            if fence is not None:
                if m and m.group(2).startswith(fence[0] * len(fence)) and not m.group(3).strip():
                    fence = None
                out.append(line)
                continue
            snip = SNIPPET.match(line)
            if snip:
                out.append(line)
                src = Path(os.path.normpath(ROOT / snip.group(1)))
                site = self.place(src) if src.is_file() else None
                if site:
                    rel = PurePosixPath(os.path.relpath(site, os.path.dirname(page_site) or ".")).as_posix()
                    out += ["", f"From [`{snip.group(1)}`]({rel}):", "{: .corelab-source }", ""]
                continue
            ref = REFDEF.match(line)
            if ref:
                new = self.rewrite_target(page_src, page_site, ref.group(2))
                out.append(ref.group(1) + (new or ref.group(2)) + ref.group(3))
                continue
            out.append(self.rewrite_line(line, page_src, page_site, strict_links))
        self.mermaid_blocks[page_site] = blocks
        return "\n".join(out) + "\n"


# ---------------------------------------------------------------- exercises: files linked, hints folded

HINTS_HEADING = re.compile(r"^(#{2,3})\s+Hints?\b.*$", re.IGNORECASE)
ITEM = re.compile(r"^(\d+)[.)]\s+(.*)$")
LABEL = re.compile(r"^\*([^*]+?)\.?\*\.?\s*(.*)$")


def fold_hints(text: str) -> str:
    """Each item of a README's "## Hints" list becomes a closed fold, so that reading the task does not show them."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = HINTS_HEADING.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        level = len(m.group(1))
        out.append(lines[i])
        i += 1
        section: list[str] = []
        while i < len(lines) and not re.match(r"^#{1,%d}\s" % level, lines[i]):
            section.append(lines[i])
            i += 1
        out += fold_items(section)
    text = "\n".join(out) + "\n"
    # A fold written as HTML keeps its Markdown on the site too (md_in_html).
    return re.sub(r"<details(?![^>]*\bmarkdown=)", '<details markdown="1"', text)


def fold_items(section: list[str]) -> list[str]:
    out: list[str] = []
    item: list[str] | None = None
    number = ""

    def flush() -> None:
        if item is None:
            return
        first = item[0]
        title = f"Hint {number}"
        lab = LABEL.match(first)
        if lab:
            title += f": {lab.group(1).strip()}"
            first = lab.group(2)
        body = [first] + item[1:]
        out.append(f'??? tip "{title}"')
        out.extend(("    " + b.strip()) if b.strip() else "" for b in body)
        out.append("")

    for line in section:
        m = ITEM.match(line)
        if m:
            flush()
            number, item = m.group(1), [m.group(2)]
        elif item is not None and (line.startswith((" ", "\t")) or not line.strip()):
            item.append(line)
        else:
            flush()
            item = None
            out.append(line)
    flush()
    return out


def exercise_page(readme: Path, text: str) -> str:
    """An exercise's README, with links to its files (as text) under its title and its hints folded."""
    folder = readme.parent
    files = [p.name for p in sorted(folder.iterdir()) if p.is_file() and p.suffix in {".cpp", ".hpp"}]
    files.sort(key=lambda n: (n != "student.cpp", n != "exercise.hpp", n))
    extra_hints = [p for p in sorted(folder.glob("hints*.md")) + sorted(folder.glob("HINTS*.md"))]
    lines = text.splitlines()
    if files:
        links = " · ".join(f"[`{n}`]({n})" + (" (the file you edit)" if n == "student.cpp" else "") for n in files)
        at = next((k + 1 for k, l in enumerate(lines) if l.startswith("# ")), 0)
        lines[at:at] = ["", f"Files: {links}", "{: .corelab-files }"]
    text = "\n".join(lines) + "\n"
    for h in extra_hints:  # hints kept in a file of their own
        body = h.read_text(encoding="utf-8")
        if not HINTS_HEADING.search(body):
            body = "## Hints\n\n" + body
        text += "\n" + body
    return fold_hints(text)


# ---------------------------------------------------------------- the build

LESSON_PAGE = re.compile(r"^(\d\d)_(.+)\.md$")
EXERCISE_DIR = re.compile(r"^(\d\d)_[a-z0-9_]+$")
EXERCISE = re.compile(r"^(\d+)_(.+)$")

NO_RESULTS = """# Your results

No report of yours is here yet. Run every lesson on this machine, make the
report, then build the site again:

```sh
./course lessons    # runs each lesson and records the run under results/
./course report     # writes results/<run>/report.md and its charts
./course site       # this site, now with your report on this page
```

The report's charts (speed-up against workers, GB/s against the bandwidth
limit) are the starting point of your lab report: the lesson pages say what
to look for in each.
"""


def stage_site(stage: Path, results: Path | None, info: dict) -> tuple[Site, list]:
    if stage.exists():
        shutil.rmtree(stage)
    site = Site(stage, results)
    site.pages_dir.mkdir(parents=True)

    nav: list = []
    site.place(ROOT / "README.md")
    nav.append(("Home", "README.md"))

    lessons = [("Overview", site.place(ROOT / "docs" / "README.md"))]
    for p in sorted((ROOT / "docs").glob("*.md")):
        m = LESSON_PAGE.match(p.name)
        if m:
            lessons.append((f"{m.group(1)} {m.group(2)}", site.place(p)))
    nav.append(("Lessons", lessons))

    exercises = [("Overview", site.place(ROOT / "exercises" / "README.md"))]
    for lesson in sorted((ROOT / "exercises").iterdir()):
        if not (lesson.is_dir() and EXERCISE_DIR.match(lesson.name)):
            continue
        for ex in sorted(lesson.iterdir(), key=lambda d: (len(d.name.split("_")[0]), d.name)):
            m = EXERCISE.match(ex.name)
            if m and (ex / "README.md").is_file():
                exercises.append((f"{lesson.name[:2]}.{m.group(1)} {m.group(2)}", site.place(ex / "README.md")))
    nav.append(("Exercises", exercises))

    if (ROOT / "benchmarks" / "README.md").is_file():
        nav.append(("Benchmarks", site.place(ROOT / "benchmarks" / "README.md")))

    # Your results: the run's report with every file beside it, or how to make one.
    report = results / "report.md" if results else None
    if report and report.is_file():
        for f in sorted(results.iterdir()):
            if f.is_file() and f.name != "report.md" and f.stat().st_size < 5 * 1024 * 1024:
                site.place(f)
        site.placed[str(report.resolve())] = "results/index.md"
        text = report.read_text(encoding="utf-8")
        try:
            shown = results.relative_to(ROOT).as_posix()
        except ValueError:
            shown = results.name
        note = (f"This is `{shown}/report.md`, made by `./course report` from your own run; "
                "`./course site` shows the newest one. Run the lessons again, then `./course report` "
                "and `./course site`, to refresh it.\n{: .corelab-source }\n")
        if re.search(r"^# ", text, re.M):
            text = re.sub(r"^(# .*)$", lambda m: m.group(1) + "\n\n" + note, text, count=1, flags=re.M)
        else:
            text = "# Your results\n\n" + note + "\n" + text
        out = site.rewrite_markdown(text, report.resolve(), "results/index.md", strict_links=False)
        (site.pages_dir / "results").mkdir(parents=True, exist_ok=True)
        (site.pages_dir / "results" / "index.md").write_text(out, encoding="utf-8")
    else:
        (site.pages_dir / "results").mkdir(parents=True, exist_ok=True)
        (site.pages_dir / "results" / "index.md").write_text(NO_RESULTS, encoding="utf-8")
        site.mermaid_blocks["results/index.md"] = 0
    nav.append(("Your results", "results/index.md"))

    # every page, and the pages those link to
    while site.queue:
        src, dest = site.queue.pop(0)
        text = src.read_text(encoding="utf-8")
        if re.match(r"^exercises/\d\d_[^/]+/[^/]+/README\.md$", dest):
            text = exercise_page(src, text)
        out = site.rewrite_markdown(text, src, dest)
        path = site.pages_dir / dest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(out, encoding="utf-8")

    # assets: the vendored Mermaid and the course's own few CSS rules
    version, integrity = pinned_mermaid(info["asks"])
    vendor = site.pages_dir / MERMAID_ASSET
    vendor.parent.mkdir(parents=True, exist_ok=True)
    for name, data in mermaid_files(version, integrity).items():
        (vendor.parent / name).write_bytes(data)
    (vendor.parent / "VERSION").write_text(f"mermaid {version} ({integrity}), from the npm registry\n")
    shutil.copyfile(HERE / "corelab.css", site.pages_dir / "assets" / "corelab.css")
    shutil.copyfile(HERE / "file_worker.js", site.pages_dir / "assets" / "corelab-file-worker.js")
    shutil.copyfile(HERE / "mermaid_fit.js", site.pages_dir / "assets" / "corelab-mermaid-fit.js")
    return site, nav


def yaml_nav(nav: list, indent: int = 2) -> str:
    lines = []
    for title, target in nav:
        pad = " " * indent
        if isinstance(target, list):
            lines.append(f"{pad}- {json.dumps(title)}:")
            lines.append(yaml_nav(target, indent + 4))
        else:
            lines.append(f"{pad}- {json.dumps(title)}: {json.dumps(target)}")
    return "\n".join(lines)


def mkdocs_config(site: Site, nav: list, out: Path, info: dict) -> str:
    major = int(info["mkdocs"].split(".")[0]) * 100 + int(info["mkdocs"].split(".")[1])
    validation = ""
    if major >= 106:
        # mkdocs 1.6 can also check #anchors; 1.4 does not know the key (and --strict would reject it).
        validation = "validation:\n  links:\n    anchors: warn\n    unrecognized_links: warn\n"
    return f"""# Generated by tools/site/course_site.py for ./course site; edit that, not this.
site_name: corelab
site_description: A C++20 course on parallel computing, cell by cell from a Python notebook
docs_dir: {json.dumps(str(site.pages_dir))}
site_dir: {json.dumps(str(out))}
use_directory_urls: false   # page.html links: the site reads from a file:// URL too
{validation}theme:
  name: material
  custom_dir: {json.dumps(str(HERE / "overrides"))}
  language: en
  font: false               # the system's fonts; material would fetch Google Fonts otherwise
  palette:
    - media: "(prefers-color-scheme: light)"
      scheme: default
      primary: indigo
      accent: indigo
      toggle:
        icon: material/weather-night
        name: Switch to dark mode
    - media: "(prefers-color-scheme: dark)"
      scheme: slate
      primary: indigo
      accent: indigo
      toggle:
        icon: material/weather-sunny
        name: Switch to light mode
  features:
    - navigation.sections
    - navigation.top
    - search.highlight
    - content.code.copy
plugins:
  - search
markdown_extensions:
  - toc:
      permalink: true
  - tables
  - admonition
  - attr_list
  - md_in_html
  - pymdownx.details
  - pymdownx.highlight
  - pymdownx.inlinehilite
  - pymdownx.superfences:
      custom_fences:
        - name: mermaid
          class: mermaid
          format: !!python/name:pymdownx.superfences.fence_code_format
extra:
  corelab_file_search: {"true" if info["material"].startswith(("7.", "8.")) else "false"}
extra_javascript:
  - {MERMAID_ASSET}
  - assets/corelab-mermaid-fit.js
extra_css:
  - assets/corelab.css
nav:
{yaml_nav(nav)}
"""


def tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def cmd_build(args) -> None:
    start = time.monotonic()
    out = Path(args.out).resolve()
    stage = Path(args.stage).resolve()
    if args.results == "none":
        results = None
    else:
        results = Path(args.results) if args.results else ROOT / "results" / "latest"
        results = results.resolve() if (results / "report.md").is_file() else None
    info = material_info()
    site, nav = stage_site(stage, results, info)
    config = stage / "mkdocs.yml"
    config.write_text(mkdocs_config(site, nav, out, info), encoding="utf-8")
    (stage / "mermaid_blocks.json").write_text(json.dumps(site.mermaid_blocks, indent=1, sort_keys=True))
    cmd = mkdocs_command() + ["build", "--strict", "--config-file", str(config)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    shown = True
    for line in done.stdout.splitlines():  # its warnings (a broken link, a page missing), not its INFO records
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        if re.match(r"^[A-Z]+\s+-", line):
            shown = not line.startswith("INFO")
        if shown and line.strip():
            print(line, file=sys.stderr)
    if done.returncode != 0:
        raise SiteError(f"mkdocs build --strict failed (the pages it built from: {site.pages_dir})")
    # The search index as a script too: a page read from a file:// URL may load a script but not fetch JSON
    # (material 9 looks for this file by itself; material 8 through overrides/main.html).
    index = out / "search" / "search_index.json"
    if index.is_file():
        (out / "search" / "search_index.js").write_text("var __index = " + index.read_text(encoding="utf-8") + ";\n",
                                                        encoding="utf-8")
    size = tree_size(out)
    secs = time.monotonic() - start
    pages = sum(1 for _ in out.rglob("*.html"))
    say(f"built {out} in {secs:.1f} s: {pages} pages, {size / 1e6:.1f} MB "
        f"(mkdocs {info['mkdocs']}, mkdocs-material {info['material']}, "
        f"{'your results from ' + str(results) if results else 'no results yet'})")
    if size > SIZE_LIMIT:
        raise SiteError(f"the site is {size / 1e6:.1f} MB, over its {SIZE_LIMIT / 1e6:.0f} MB limit")


def main() -> int:
    ap = argparse.ArgumentParser(prog="course_site.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    sub.add_parser("vendor", help="fetch the pinned Mermaid build into .cache/site")
    b = sub.add_parser("build", help="stage the pages and build the site with mkdocs --strict")
    b.add_argument("--results", help="a run folder with report.md (default results/latest), or none")
    b.add_argument("--out", default=str(CHECKOUT / "build" / "site"))
    b.add_argument("--stage", default=str(CHECKOUT / "build" / "site-src"))
    b.add_argument("--root", default=str(CHECKOUT), help="the course tree to build from (default: this one)")
    args = ap.parse_args()
    global ROOT
    ROOT = Path(getattr(args, "root", None) or CHECKOUT).resolve()
    try:
        {"vendor": cmd_vendor, "build": cmd_build}[args.verb](args)
    except SiteError as e:
        print(f"site: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
