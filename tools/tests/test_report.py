"""Tests of ``kbench report``: the HTML page renders in headless Chromium, every image loads."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from kprim_tools import plots, report
from tests import fixtures as fx

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")

#: Injected into a copy of the page: lists ``src=naturalWidth`` of every image once loaded.
PROBE = """<script>window.addEventListener("load", function () {
  var seen = [];
  for (const img of document.images)
    seen.push(img.getAttribute("src") + "=" + (img.complete ? img.naturalWidth : -1));
  if (document.images.length)
    seen.push("first-top=" + Math.round(document.images[0].getBoundingClientRect().top));
  var out = document.createElement("pre");
  out.id = "kbench-img-check";
  out.textContent = seen.join(";");
  document.body.appendChild(out);
});</script>"""


def chromium():
    """Path of Debian's chromium (``./kbench deps`` installs it)."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def image_widths(page):
    """Render a probed copy of ``page`` headless; return ``{src: naturalWidth}``."""
    probed = os.path.join(os.path.dirname(page), "probe-check.html")
    with open(page, encoding="utf-8") as handle:
        text = handle.read()
    with open(probed, "w", encoding="utf-8") as handle:
        handle.write(text.replace("</body>", PROBE + "</body>"))
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                               "--virtual-time-budget=10000", "--dump-dom",
                               "file://" + probed],
                              capture_output=True, text=True, timeout=180, check=False)
    os.unlink(probed)
    match = re.search(r'<pre id="kbench-img-check">([^<]*)</pre>', proc.stdout)
    if not match:
        raise AssertionError(f"no probe output from chromium (status {proc.returncode}): "
                             f"{proc.stderr[-500:]}")
    return dict(item.rsplit("=", 1) for item in match[1].split(";") if item)


def screenshot(page, png):
    """A 1280x1000 headless screenshot of ``page`` into ``png``."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                        "--window-size=1280,1000", "--virtual-time-budget=10000",
                        f"--screenshot={png}", "file://" + page],
                       capture_output=True, text=True, timeout=180, check=False)


def plot_colour_pixels(png):
    """How many pixels of ``png`` are close to a plot line colour (Okabe-Ito, not black)."""
    import matplotlib.image
    import numpy
    pixels = matplotlib.image.imread(png)[:, :, :3]
    count = 0
    for colour in plots.PALETTE[:-1]:
        rgb = numpy.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
        count += int((numpy.abs(pixels - rgb).max(axis=2) < 0.06).sum())
    return count


class ReportTest(unittest.TestCase, fx.ErrorAssertions):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.results = fx.write(self.dir, "r.json", fx.document(
            benches=fx.benchmarks() + fx.benchmarks(family="atomics", workload="uncontended",
                                                    speeds={"atomic_fetch_add": 3e8,
                                                            "std_mutex": 5e7})))

    def tearDown(self):
        self.tmp.cleanup()

    def test_page_lists_every_plot_by_relative_path(self):
        out = os.path.join(self.dir, "plots")
        proc = fx.cli("report", self.results, "--out", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        page = proc.stdout.strip()
        self.assertEqual(page, os.path.join(out, "index.html"))
        with open(page, encoding="utf-8") as handle:
            text = handle.read()
        sources = re.findall(r"<img src='([^']+)'", text)
        pngs = sorted(f for f in os.listdir(out) if f.endswith(".png"))
        self.assertEqual(sorted(sources), pngs)
        self.assertEqual(len(pngs), 6)
        self.assertTrue(all("/" not in s for s in sources))
        self.assertIn("testbox-2c-aaaa1111", text)
        self.assertIn("<td>kprim_qspinlock</td>", text)

    def test_every_image_loads_in_chromium(self):
        self.assertIsNotNone(chromium(), "chromium is missing: run ./kbench deps (Debian "
                                         "package chromium)")
        out = os.path.join(self.dir, "plots")
        page = report.build_report(self.results, out, fx.ROOT)
        widths = image_widths(page)
        top = int(widths.pop("first-top"))
        self.assertLess(top, 1000, "the first plot starts within the first 1,000 px")
        self.assertEqual(len(widths), 6)
        for src, width in widths.items():
            self.assertGreater(int(width), 0, f"{src} did not load")
        os.unlink(os.path.join(out, "locks_contended_latency.png"))
        widths = image_widths(page)
        self.assertEqual(int(widths["locks_contended_latency.png"]), 0,
                         "the probe must notice a broken image")

    def test_first_screen_shows_a_plot_and_history_sparklines(self):
        import json
        store_path = os.path.join(self.dir, "s.sqlite")
        from kprim_tools.store import open_store
        store = open_store(store_path)
        with open(self.results, encoding="utf-8") as handle:
            doc = json.load(handle)
        for day, factor in ((20, 0.8), (21, 1.1)):
            for entry in doc["benchmarks"]:
                if "real_time" in entry:
                    entry["real_time"] /= factor
            doc["context"]["date"] = f"2026-11-{day}T00:00:00+00:00"
            store.ingest(fx.write(self.dir, f"202611{day}T000000Z-copy.json", doc))
        store.ingest(self.results)
        out = os.path.join(self.dir, "plots")
        page = report.build_report(self.results, out, fx.ROOT, store=store_path)
        with open(page, encoding="utf-8") as handle:
            text = handle.read()
        self.assertIn("<svg class='spark'", text, "the store's history becomes sparklines")
        self.assertIn("<table class='winners'>", text)
        self.assertLess(text.index("<img"), text.index("<table"), "plots come first")
        png = os.path.join(self.dir, "shot.png")
        screenshot(page, png)
        self.assertGreater(plot_colour_pixels(png), 500, "a plot is on the first screen")
        empty = os.path.join(self.dir, "empty")
        os.makedirs(empty)
        shutil.copy(os.path.join(out, "index.html"), os.path.join(empty, "index.html"))
        screenshot(os.path.join(empty, "index.html"), png)
        self.assertLess(plot_colour_pixels(png), 500, "without its images the page has no plot")

    def test_report_store_option(self):
        import json
        from kprim_tools.store import open_store
        store_path = os.path.join(self.dir, "cli.sqlite")
        with open_store(store_path) as store:
            with open(self.results, encoding="utf-8") as handle:
                doc = json.load(handle)
            doc["context"]["date"] = "2026-11-20T00:00:00+00:00"
            store.ingest(fx.write(self.dir, "20261120T000000Z-older.json", doc))
            store.ingest(self.results)
        out = os.path.join(self.dir, "viacli")
        proc = fx.cli("report", self.results, "--out", out, "--store", store_path,
                      env={**os.environ, "KBENCH_STORE": os.path.join(self.dir, "other.sqlite")})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(os.path.join(out, "index.html"), encoding="utf-8") as handle:
            self.assertIn("<svg class='spark'", handle.read(), "sparklines from --store")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "other.sqlite")))
        bad = os.path.join(self.dir, "bad")
        for store, message in ((os.path.join(self.dir, "absent.sqlite"), "is not a store file"),
                               ("mysql://h/db", "unknown scheme 'mysql'"),
                               ("postgresql://kbench@127.0.0.1:1/x", "cannot connect")):
            proc = fx.cli("report", self.results, "--out", bad, "--store", store)
            self.assertOneLineError(proc, message)
            self.assertFalse(os.path.exists(os.path.join(bad, "index.html")),
                             "refused before any plot is drawn")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "absent.sqlite")))

    def test_no_store_means_no_sparkline(self):
        out = os.path.join(self.dir, "plots")
        page = report.build_report(self.results, out, fx.ROOT,
                                   store=os.path.join(self.dir, "absent.sqlite"))
        with open(page, encoding="utf-8") as handle:
            text = handle.read()
        self.assertNotIn("<svg", text)
        self.assertIn("History: no results store", text)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "absent.sqlite")))

    def test_winner_margin_spread_and_flags(self):
        from kprim_tools.results import load
        mix = {fx.point_name("contended", "std_mutex", 2, "cs:0/gap:0/locks:1"):
               (130e6, 23e6, 0.5)}
        path = fx.write(self.dir, "bi.json", fx.schema2_document(seed=3, bimodal=mix))
        rows = report.winners(load(path))["locks"]
        two = [r for r in rows if r["group"].startswith("contended") and r["threads"] == 2][0]
        self.assertNotIn(two["winner"], ("nolock",), "a ceiling never wins")
        self.assertFalse(two["winner"].endswith("_aa"))
        self.assertEqual((two["winner"], two["runner"]), ("std_mutex", "kprim_qspinlock"))
        self.assertIn("winner bimodal", two["flags"])
        self.assertAlmostEqual(two["margin"], two["win"].median / two["second"].median - 1)
        self.assertLessEqual(two["win"].low, two["win"].median)

    def test_bare_atomic_is_a_ceiling_outside_atomics(self):
        self.assertFalse(report.candidate("atomic_fetch_add", "locks"))
        self.assertTrue(report.candidate("atomic_fetch_add", "atomics"))
        self.assertFalse(report.candidate("nolock", "locks"))
        self.assertTrue(report.candidate("kprim_qspinlock", "locks"))

    def test_multimodal_points_aa_table_and_injection(self):
        from kprim_tools.results import load
        from kprim_tools.summary import summary_text
        mix = {fx.point_name("contended", "std_mutex", 2, "cs:0/gap:0/locks:1"):
               (130e6, 23e6, 0.5)}
        doc = fx.schema2_document(seed=3, bimodal=mix,
                                  ctx=fx.schema2_context(kprim_inject="qspinlock:100"))
        path = fx.write(self.dir, "bi.json", doc)
        text = summary_text(load(path))
        self.assertRegex(text, r"std_mutex +[0-9.]+ +bimodal: 126 \(60%\) \| 22\.4 \(40%\)")
        self.assertIn("several regimes", text)
        self.assertIn("differences under", text, "the A/A table follows the summary")
        out = os.path.join(self.dir, "bi-plots")
        page = report.build_report(path, out, fx.ROOT)
        with open(page, encoding="utf-8") as handle:
            html_text = handle.read()
        self.assertIn("<td>bimodal: 126 (60%) | 22.4 (40%)</td>", html_text)
        self.assertIn("<h2>A/A controls</h2>", html_text)
        self.assertIn("INJECTED run", html_text)
        self.assertIn("hollow markers", html_text)

    def test_reference_run_summary_shows_regimes(self):
        from kprim_tools.results import load
        from kprim_tools.summary import summary_text
        text = summary_text(load(os.path.join(fx.ROOT, "results", "amd-epyc-2c-fd2d0313",
                                              "20261125T164140Z-2e9c04d554aa.json")))
        block = text.split("atomics/contended (threads)", 1)[1]
        line = [ln for ln in block.splitlines() if ln.startswith("kprim_atomic_set ")][0]
        self.assertIn("bimodal: 1712 (67%) | 95.1 (33%)", line, "1697, 95, 1727 Mops/s")
        self.assertNotIn("A/A controls", text, "the reference run predates the A/A pairs")

    def test_default_is_newest_run(self):
        results = os.path.join(self.dir, "results", "testbox-2c-aaaa1111")
        os.makedirs(results)
        shutil.copy(self.results, os.path.join(results, "20261101T000000Z-old.json"))
        newest = os.path.join(results, "20261102T000000Z-new.json")
        shutil.copy(self.results, newest)
        self.assertEqual(report.newest_run(os.path.join(self.dir, "results")), newest)
        self.assertOneLineError(fx.cli("report", os.path.join(self.dir, "nope.json")),
                                "cannot read")


if __name__ == "__main__":
    unittest.main()
