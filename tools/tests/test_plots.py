"""Tests of kprim_tools.plots: which PNGs a results file yields (content is matplotlib's)."""

import os
import tempfile
import unittest

from kprim_tools import plots
from kprim_tools.results import Results, parse_name
from tests import fixtures as fx


def results_of(benches):
    """An in-memory Results of ``benches``."""
    return Results("mem.json", fx.context(), benches, [parse_name(b["name"]) for b in benches])


def memory_benchmarks():
    """A ``slab/memory`` workload with allocator memory counters and no latency sampling."""
    benches = fx.benchmarks(family="slab", workload="memory", threads=(1,),
                            params="size:64/objects:1000000",
                            speeds={"kprim_kmem_cache": 5e7, "malloc_glibc": 3e7})
    for entry in benches:
        for key in [k for k in entry if k.startswith("lat_")]:
            del entry[key]
        factor = 2.0 if "glibc" in entry["name"] else 1.0
        entry.update(overhead_bytes_per_object=8 * factor, rss_peak_kib=70000 * factor,
                     rss_after_destroy_delta_kib=100 * factor)
    return benches


class PlotsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.out = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_memory_workload_gets_bars(self):
        benches = memory_benchmarks() + fx.benchmarks(family="slab", workload="batch")
        written = plots.render_all(results_of(benches), self.out)
        self.assertEqual([os.path.basename(p) for p in written],
                         ["slab_memory_bars.png", "slab_batch_throughput.png",
                          "slab_batch_fairness.png", "slab_batch_latency.png"])

    def test_missing_metric_is_not_drawn(self):
        benches = fx.benchmarks()
        for entry in benches:
            for key in [k for k in entry if k.startswith("lat_")]:
                del entry[key]
        written = plots.render_all(results_of(benches), self.out)
        self.assertEqual(sorted(os.path.basename(p) for p in written),
                         ["locks_contended_fairness.png", "locks_contended_throughput.png"])

    def test_multimodal_point_is_drawn_as_modes(self):
        mix = {fx.point_name("contended", "std_mutex", 2, "cs:0/gap:0/locks:1"):
               (130e6, 23e6, 0.5)}
        plt = plots.pyplot()
        for bimodal, expected in ((mix, 2), ({}, 0)):
            benches = fx.schema2_benchmarks(seed=3, bimodal=bimodal)
            cases = results_of(benches).cases()
            contenders = {}
            for case in cases.values():
                if case.name.workload == "contended":
                    contenders.setdefault(case.name.contender, {})[case.name.threads] = case
            fig, ax = plt.subplots()
            plots.draw_lines(ax, contenders, "ops_per_s", 1e6)
            hollow = [line for line in ax.get_lines() if line.get_markerfacecolor() == "none"
                      and len(line.get_xdata()) == 1]
            self.assertEqual(len(hollow), expected)
            if expected:
                self.assertEqual(sorted(round(line.get_ydata()[0]) for line in hollow)[-1] // 10,
                                 12, "the fast mode's median, about 126 Mops/s")
                self.assertIn(plots.MODES_LABEL, ax.get_legend_handles_labels()[1])
            else:
                self.assertNotIn(plots.MODES_LABEL, ax.get_legend_handles_labels()[1])
            plt.close(fig)

    def test_many_contenders_are_split_into_groups_of_eight(self):
        speeds = {f"c{i:02d}": 1e6 * (i + 1) for i in range(19)}
        benches = fx.benchmarks(speeds=speeds)
        written = plots.render_all(results_of(benches), self.out)
        names = sorted(os.path.basename(p) for p in written)
        self.assertIn("locks_contended_throughput_3.png", names)
        self.assertNotIn("locks_contended_throughput_4.png", names)
        panels = [((), {c: {} for c in speeds})]
        groups = plots.series_groups([(p, {c: {t: case for t, case in per.items()}
                                           for c, per in cs.items()}) for p, cs in panels])
        self.assertEqual(sorted(len(g) for g in groups), [6, 6, 7])
        cases = results_of(benches).cases()
        contenders = {}
        for case in cases.values():
            contenders.setdefault(case.name.contender, {})[case.name.threads] = case
        groups = plots.series_groups([((), contenders)])
        self.assertEqual(groups[0][0], "c18", "the fastest contender leads the first group")
        self.assertTrue(all(len(g) <= plots.MAX_SERIES for g in groups))

    def test_unresolved_latency_panels_are_left_out(self):
        benches = fx.benchmarks()
        for entry in benches:
            entry["lat_p50_ns"] = 20.0
            entry["clock_ns"] = 20.0
        results = results_of(benches)
        panels = [(p, c) for (_, _, p), c in plots.res.curves(results.cases()).items()]
        drawn, omitted = plots.latency_panels(results, panels)
        self.assertTrue(omitted)
        self.assertTrue(all(metric != "lat_p50_ns" for _, metric, _ in drawn))
        self.assertTrue(all(metric == "lat_p50_ns" for _, metric, _ in omitted))

    def test_axes_are_plain_numbers_and_png_readable(self):
        plt = plots.pyplot()
        fig, ax = plt.subplots()
        ax.plot([1, 2], [1.5e8, 2.5e8])
        plots._plain_numbers(ax)
        fig.canvas.draw()
        self.assertEqual(ax.yaxis.get_offset_text().get_text(), "")
        labels = [t.get_text() for t in ax.get_yticklabels()]
        self.assertIn("200000000", labels)
        plt.close(fig)
        written = plots.render_all(results_of(fx.benchmarks()), self.out)
        from PIL import Image
        with Image.open(written[0]) as image:
            # at most the page width (about 1,200 px): shown at 94..100% size, so 10 pt text
            # stays about 13 px high (the old three-panel PNGs were squeezed to 64%)
            self.assertLessEqual(image.width, plots.DPI * plots.FIG_WIDTH_IN + 1)
            self.assertGreaterEqual(image.width, 700)

    def test_palette_is_okabe_ito(self):
        self.assertEqual(len(plots.PALETTE), plots.MAX_SERIES)
        self.assertEqual(plots.line_style(0)["color"], "#E69F00")

    def test_line_styles_stay_distinct_past_ten(self):
        styles = {tuple(sorted(plots.line_style(i).items())) for i in range(20)}
        self.assertEqual(len(styles), 20)

    def test_oversubscribed_region_is_shaded(self):
        plt = plots.pyplot()
        fig, ax = plt.subplots()
        plots.style_threads_axis(ax, [1, 2, 4, 8], 2)
        self.assertEqual(len(ax.patches), 1)
        left = min(x for x, _ in ax.patches[0].get_xy())
        self.assertTrue(2 < left < 4, left)
        fig2, ax2 = plt.subplots()
        plots.style_threads_axis(ax2, [1, 2], 2)
        self.assertEqual(len(ax2.patches), 0)
        plt.close(fig)
        plt.close(fig2)


if __name__ == "__main__":
    unittest.main()
