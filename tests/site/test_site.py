#!/usr/bin/env python3
"""Tests of the course site's tools (tools/site/), run by ctest as site.*.

    test_site.py Staging Build          the staging rules and mkdocs --strict, on small course trees of their own
    test_site.py BrowserFaults          the browser check, on a copy of the built site with faults put in
                                        (CORELAB_SITE_BUILT, CORELAB_SITE_STAGE: the site.build fixture's folders)
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[2] / "tools" / "site"
sys.path.insert(0, str(TOOLS))
import course_site as site  # noqa: E402


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def small_course(root: Path) -> None:
    """A course tree with one lesson, one exercise and every kind of link the site rewrites."""
    write(root, "README.md", "# A course\n\nThe [lessons](docs/README.md) and [exercises](exercises/README.md).\n")
    write(root, "docs/README.md", "# Lessons\n\n[01](01_first.md)\n")
    write(root, "docs/01_first.md", """# Lesson 01 — first

The lesson's code: [01_first.cpp](../lessons/01_first.cpp); its header `lib/include/corelab/thing.hpp`,
the same by its short name `thing.hpp`; the tests' folder: [tests/](../tests/); your numbers:
[your report](../results/latest/report.md) and `results/latest/report.md`.

```mermaid
flowchart LR
    A --> B
```

<!-- snippet: lessons/01_first.cpp#main -->
```cpp
int main() {}
```
<!-- end snippet -->

```cpp
// a link in code stays as it is: [x](../lessons/01_first.cpp)
```

The exercise: [01.1](../exercises/01_first/1_task/README.md).
""")
    write(root, "lessons/01_first.cpp", "int main() {}\n")
    write(root, "lib/include/corelab/thing.hpp", "#pragma once\n")
    write(root, "tests/test_thing.cpp", "// a test\n")
    write(root, "tests/data.csv", "a,b\n1,2\n")
    write(root, "exercises/README.md", "# Exercises\n\n[01.1](01_first/1_task/README.md)\n")
    write(root, "exercises/01_first/1_task/README.md", """# Exercise 01.1 — a task

Edit `student.cpp`.

## Task

1. **Implement** it.

## Hints

1. *Concept.* The first hint,
   on two lines.
2. *Nearly the answer.* `return 42;`

## After the hints

<details><summary>More</summary>

**bold** inside a fold
</details>
""")
    write(root, "exercises/01_first/1_task/student.cpp", "int answer() { return 0; }  // TODO(exercise)\n")
    write(root, "exercises/01_first/1_task/exercise.hpp", "int answer();\n")
    write(root, "benchmarks/README.md", "# Benchmarks\n")


FAKE_INFO = {"mkdocs": "1.4.2", "material": "8.2.5", "theme": "", "asks": "8.13.3"}


class Staging(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="corelab-site-test."))
        self.root = self.tmp / "course"
        small_course(self.root)
        self.saved = (site.ROOT, site.mermaid_files)
        site.ROOT = self.root.resolve()
        site.mermaid_files = lambda version, integrity: {"mermaid.min.js": b"var mermaid = {};", "LICENSE": b"MIT"}

    def tearDown(self):
        site.ROOT, site.mermaid_files = self.saved
        shutil.rmtree(self.tmp)

    def stage(self, results: Path | None = None):
        s, nav = site.stage_site(self.tmp / "stage", results, FAKE_INFO)
        return s, nav, (self.tmp / "stage" / "pages")

    def test_links_to_sources_go_to_text_copies(self):
        _, _, pages = self.stage()
        lesson = (pages / "docs/01_first.md").read_text()
        self.assertIn("[01_first.cpp](../lessons/01_first.cpp.txt)", lesson)
        self.assertEqual((pages / "lessons/01_first.cpp.txt").read_text(), "int main() {}\n")
        # a code span naming a file of the course links to it, by its path or its header's short name
        self.assertIn("[`lib/include/corelab/thing.hpp`](../lib/include/corelab/thing.hpp.txt)", lesson)
        self.assertIn("[`thing.hpp`](../lib/include/corelab/thing.hpp.txt)", lesson)
        # code blocks are left alone
        self.assertIn("// a link in code stays as it is: [x](../lessons/01_first.cpp)", lesson)

    def test_quoted_code_names_its_file(self):
        _, _, pages = self.stage()
        lesson = (pages / "docs/01_first.md").read_text()
        self.assertRegex(lesson, r"<!-- snippet: lessons/01_first.cpp#main -->\n\nFrom \[`lessons/01_first.cpp`\]"
                                 r"\(\.\./lessons/01_first\.cpp\.txt\):\n\{: \.corelab-source \}\n\n```cpp")

    def test_a_folder_link_becomes_a_listing_and_results_links_the_results_page(self):
        _, _, pages = self.stage()
        lesson = (pages / "docs/01_first.md").read_text()
        self.assertIn("[tests/](../tests/index.md)", lesson)
        listing = (pages / "tests/index.md").read_text()
        self.assertIn("[`test_thing.cpp`](test_thing.cpp.txt)", listing)
        self.assertIn("[`data.csv`](data.csv.txt)", listing)
        self.assertIn("[your report](../results/index.md)", lesson)
        self.assertIn("[`results/latest/report.md`](../results/index.md)", lesson)

    def test_exercise_page_links_its_files_and_folds_its_hints(self):
        _, nav, pages = self.stage()
        page = (pages / "exercises/01_first/1_task/README.md").read_text()
        self.assertIn("Files: [`student.cpp`](student.cpp.txt) (the file you edit) · "
                      "[`exercise.hpp`](exercise.hpp.txt)", page)
        self.assertIn('??? tip "Hint 1: Concept"\n    The first hint,\n    on two lines.\n', page)
        self.assertIn('??? tip "Hint 2: Nearly the answer"\n    `return 42;`\n', page)
        self.assertNotIn("1. *Concept.*", page)
        # what follows the hints is not folded, and an HTML fold keeps its Markdown
        self.assertIn("## After the hints", page)
        self.assertIn('<details markdown="1"><summary>More</summary>', page)
        self.assertIn(("Exercises", [("Overview", "exercises/README.md"),
                                     ("01.1 task", "exercises/01_first/1_task/README.md")]), nav)

    def test_without_a_report_the_results_page_says_how_to_make_one(self):
        _, nav, pages = self.stage(None)
        text = (pages / "results/index.md").read_text()
        self.assertIn("./course lessons", text)
        self.assertIn("./course report", text)
        self.assertEqual(nav[-1], ("Your results", "results/index.md"))

    def test_a_report_brings_its_charts_and_drops_links_to_what_it_lacks(self):
        run = self.root / "results" / "2026-01-01T00-00-00Z-host"
        write(run, "report.md", "# Results\n\n![speed-up](a.svg)\n\n[rows](a.csv), [machine](run.json), "
                                "[lesson 01](../../docs/01_first.md)\n")
        write(run, "a.svg", '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
        write(run, "a.csv", "name,seconds\n")
        _, _, pages = self.stage(run)
        text = (pages / "results/index.md").read_text()
        self.assertIn("![speed-up](a.svg)", text)
        self.assertIn("[rows](a.csv.txt)", text)
        self.assertIn("[lesson 01](../docs/01_first.md)", text)
        self.assertIn(", machine, ", text)  # run.json is not in the run: its name stays, unlinked
        self.assertTrue((pages / "results/a.svg").is_file())
        self.assertIn("results/2026-01-01T00-00-00Z-host/report.md", text)  # the page says which run it shows

    def test_mermaid_blocks_are_counted_per_page(self):
        s, _, _ = self.stage()
        self.assertEqual(s.mermaid_blocks["docs/01_first.md"], 1)
        self.assertEqual(s.mermaid_blocks["README.md"], 0)


def fake_tarball(js: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("package/dist/mermaid.min.js", js), ("package/LICENSE", b"MIT")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class MermaidPin(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="corelab-site-pin."))
        self.saved = site.CACHE
        site.CACHE = self.tmp

    def tearDown(self):
        site.CACHE = self.saved
        shutil.rmtree(self.tmp)

    def test_a_tarball_that_does_not_match_its_pin_is_refused(self):
        good = fake_tarball(b"var mermaid = {};")
        pin = "sha512-" + base64.b64encode(hashlib.sha512(good).digest()).decode()
        site.tarball_path("0.0.1").write_bytes(good)
        self.assertEqual(site.mermaid_files("0.0.1", pin)["mermaid.min.js"], b"var mermaid = {};")
        site.tarball_path("0.0.1").write_bytes(fake_tarball(b"var mermaid = {evil: 1};"))
        with self.assertRaisesRegex(site.SiteError, "does not match its pin"):
            site.mermaid_files("0.0.1", pin)

    def test_a_missing_tarball_says_to_run_deps(self):
        with self.assertRaisesRegex(site.SiteError, r"run \./course deps"):
            site.mermaid_files("0.0.2", "sha512-x")

    def test_a_material_asking_for_an_unpinned_mermaid_is_refused(self):
        with self.assertRaisesRegex(site.SiteError, "does not pin"):
            site.pinned_mermaid("0.0.3")
        self.assertEqual(site.pinned_mermaid("8.13.3")[0], "8.13.3")


class Build(unittest.TestCase):
    """mkdocs --strict on a small course: it builds, and a broken link fails it."""

    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="corelab-site-build."))
        self.root = self.tmp / "course"
        small_course(self.root)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def build(self):
        return subprocess.run([sys.executable, str(TOOLS / "course_site.py"), "build", "--root", str(self.root),
                               "--results", "none", "--out", str(self.tmp / "site"),
                               "--stage", str(self.tmp / "stage")], capture_output=True, text=True, timeout=300)

    def test_builds_with_every_link_in_place(self):
        done = self.build()
        self.assertEqual(done.returncode, 0, done.stderr)
        out = self.tmp / "site"
        self.assertTrue((out / "docs/01_first.html").is_file())
        self.assertTrue((out / "lessons/01_first.cpp.txt").is_file())
        self.assertTrue((out / "search/search_index.js").read_text().startswith("var __index = "))
        self.assertTrue((out / site.MERMAID_ASSET).is_file())
        html = (out / "docs/01_first.html").read_text()
        self.assertIn('href="../lessons/01_first.cpp.txt"', html)
        self.assertIn('<pre class="mermaid">', html)
        self.assertNotRegex(html, r"fonts\.googleapis|fonts\.gstatic")

    def test_a_broken_link_fails_the_build_and_is_named(self):
        page = self.root / "docs/01_first.md"
        page.write_text(page.read_text() + "\nSee [the missing page](02_missing.md).\n")
        done = self.build()
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("02_missing.md", done.stderr + done.stdout)
        self.assertIn("mkdocs build --strict failed", done.stderr)


class BrowserFaults(unittest.TestCase):
    """The browser check finds what it is there to find: each fault below, put into a copy of the built site."""

    @classmethod
    def setUpClass(cls):
        built = os.environ.get("CORELAB_SITE_BUILT")
        stage = os.environ.get("CORELAB_SITE_STAGE")
        if not built or not Path(built, "index.html").is_file():
            raise unittest.SkipTest("CORELAB_SITE_BUILT names no built site (ctest's site.build makes one)")
        cls.tmp = Path(tempfile.mkdtemp(prefix="corelab-site-faults."))
        cls.site = cls.tmp / "site"
        shutil.copytree(built, cls.site)

        def edit(rel, old, new, count=1):
            path = cls.site / rel
            text = path.read_text(encoding="utf-8")
            assert re.search(old, text), f"{rel}: {old!r} not found"
            path.write_text(re.sub(old, new, text, count=count), encoding="utf-8")

        # a picture from the internet, a console error, a diagram Mermaid cannot read, a chart gone
        edit("exercises/index.html", r"</article>", '<img src="https://example.invalid/logo.png" alt="x"></article>')
        edit("docs/03_two_process_mean.html", r"</body>", '<script>console.error("injected fault")</script></body>')
        edit("docs/02_serial_mean.html", r'<pre class="mermaid"><code>', '<pre class="mermaid"><code>not a diagram (( ')
        (cls.site / "results" / "lesson03_speedup.svg").unlink()
        pages = "exercises/index.html,docs/03_two_process_mean.html,docs/02_serial_mean.html,results/index.html"
        cls.done = subprocess.run([sys.executable, str(TOOLS / "browser_check.py"), str(cls.site), "--stage", stage,
                                   "--out", str(cls.tmp / "out"), "--expect-results", "--only", pages],
                                  capture_output=True, text=True, timeout=240)
        cls.fails = [l for l in cls.done.stdout.splitlines() if l.startswith("FAIL ")]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def has(self, pattern):
        self.assertTrue(any(re.search(pattern, f) for f in self.fails),
                        f"no failure matching {pattern!r} in:\n" + "\n".join(self.fails) + self.done.stderr)

    def test_the_check_fails(self):
        self.assertEqual(self.done.returncode, 1, self.done.stdout + self.done.stderr)

    def test_a_resource_from_outside_is_found_in_the_files_and_in_the_browser(self):
        self.has(r"^FAIL exercises/index\.html: loads https://example\.invalid/logo\.png, from outside the site")
        self.has(r"exercises/index\.html \(light\): a request left the site: https://example\.invalid/logo\.png")

    def test_a_console_error_is_reported(self):
        self.has(r"docs/03_two_process_mean\.html \(light\): console\.error: injected fault")

    def test_a_diagram_not_drawn_is_reported(self):
        self.has(r"docs/02_serial_mean\.html \(light\): 0 of 1 mermaid diagram\(s\) drawn")

    def test_a_missing_chart_is_reported(self):
        self.has(r"results/index\.html \(light\): image lesson03_speedup\.svg did not load")
        self.has(r"results/index\.html \(light\): 1 chart\(s\) shown")
        self.has(r"a link leads to no file: results/index\.html: lesson03_speedup\.svg")

    def test_pages_without_a_fault_pass(self):
        self.assertFalse([f for f in self.fails if "docs/03_two_process_mean.html (dark)" in f
                          and "injected" not in f])


if __name__ == "__main__":
    unittest.main()
