"""Tests of kprim_tools.results: name grammar, validation, repetitions, merge, atomic write."""

import datetime
import json
import os
import tempfile
import unittest

from kprim_tools import KbenchError
from kprim_tools import results as res
from tests import fixtures as fx

def read(path):
    """The text of ``path``."""
    with open(path, encoding="utf-8") as handle:
        return handle.read()


NOW = datetime.datetime(2026, 11, 25, 15, 1, 2, tzinfo=datetime.timezone.utc)


class ParseNameTest(unittest.TestCase):
    def test_full_name(self):
        name = res.parse_name("locks/contended/ck_mcs/threads:4/cs:10/gap:0/locks:1"
                              "/iterations:1/manual_time")
        self.assertEqual((name.family, name.workload, name.contender),
                         ("locks", "contended", "ck_mcs"))
        self.assertEqual(name.threads, 4)
        self.assertEqual(name.case_params, (("cs", "10"), ("gap", "0"), ("locks", "1")))
        self.assertIsNone(name.aggregate)

    def test_aggregate_suffix_and_base(self):
        name = res.parse_name("atomics/uncontended/nolock/threads:1"
                              "/iterations:1/manual_time_median")
        self.assertEqual(name.aggregate, "median")
        self.assertEqual(name.base, "atomics/uncontended/nolock/threads:1/iterations:1/manual_time")

    def test_no_params_means_one_thread(self):
        name = res.parse_name("list/add/kprim_list/iterations:1/manual_time")
        self.assertEqual(name.threads, 1)
        self.assertEqual(name.params, ())

    def test_siblings(self):
        name = res.parse_name("locks/contended/ck_mcs/threads:4/cs:1/iterations:1/manual_time")
        self.assertEqual(name.with_contender("std_mutex").base,
                         "locks/contended/std_mutex/threads:4/cs:1/iterations:1/manual_time")
        self.assertEqual(name.with_threads(1).base,
                         "locks/contended/ck_mcs/threads:1/cs:1/iterations:1/manual_time")

    def test_bad_names(self):
        for bad in ("BM_foo", "locks/contended/x/threads:2", "a/b/iterations:1/manual_time", None):
            with self.assertRaises(KbenchError):
                res.parse_name(bad)


class LoadTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def write_text(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return path

    def assertLoadFails(self, path, fragment):
        with self.assertRaises(KbenchError) as ctx:
            res.load(path)
        self.assertIn(fragment, str(ctx.exception))
        self.assertNotIn("\n", str(ctx.exception))

    def test_valid(self):
        r = res.load(fx.write(self.dir, "a.json", fx.document()))
        self.assertEqual(r.machine_id, "testbox-2c-aaaa1111")
        self.assertEqual(r.pus, 2)
        self.assertEqual(len(r.cases()), 9)

    def test_missing(self):
        self.assertLoadFails(os.path.join(self.dir, "nope.json"), "cannot read")

    def test_malformed_and_truncated(self):
        self.assertLoadFails(self.write_text("m.json", "{\"context\": }"), "malformed JSON")
        text = json.dumps(fx.document())
        self.assertLoadFails(self.write_text("t.json", text[: len(text) // 2]), "truncated JSON")
        self.assertLoadFails(self.write_text("e.json", ""), "truncated JSON")

    def test_not_benchmark_json(self):
        self.assertLoadFails(self.write_text("l.json", "[1, 2]"), "not Google Benchmark JSON")

    def test_newer_schema(self):
        doc = fx.document(ctx=fx.context(kprim_schema_version=2))
        self.assertLoadFails(fx.write(self.dir, "v.json", doc), "schema version 2 is newer")

    def test_no_schema_version(self):
        ctx = fx.context()
        del ctx["kprim_schema_version"]
        self.assertLoadFails(fx.write(self.dir, "n.json", fx.document(ctx=ctx)),
                             "not a kprim results file")

    def test_empty_benchmarks(self):
        self.assertLoadFails(fx.write(self.dir, "e.json", fx.document(benches=[])),
                             "no benchmarks")

    def test_bad_name(self):
        doc = fx.document(benches=[{"name": "BM_Something/8"}])
        self.assertLoadFails(fx.write(self.dir, "b.json", doc), "BM_Something/8")


class CasesTest(unittest.TestCase):
    def make(self, benches):
        return res.Results("x.json", fx.context(), benches,
                           [res.parse_name(b["name"]) for b in benches])

    def test_repetitions_not_aggregates(self):
        cases = self.make(fx.benchmarks(repetitions=4)).cases()
        case = next(iter(cases.values()))
        self.assertEqual(len(case.values("ops_per_s")), 4)
        self.assertFalse(case.from_aggregate)
        self.assertEqual(sorted(case.by_repetition("ops_per_s")), [0, 1, 2, 3])

    def test_aggregate_only_uses_median(self):
        benches = [b for b in fx.benchmarks(repetitions=3) if b["run_type"] == "aggregate"]
        case = next(iter(self.make(benches).cases().values()))
        self.assertTrue(case.from_aggregate)
        self.assertEqual(len(case.entries), 1)
        self.assertEqual(case.entries[0]["aggregate_name"], "median")

    def test_abandoned_and_errors_dropped(self):
        benches = fx.benchmarks(repetitions=3, speeds={"std_mutex": 1e6}, threads=(1,))
        benches[0]["abandoned"] = 1
        benches[1]["error_occurred"] = True
        case = next(iter(self.make(benches).cases().values()))
        self.assertEqual(len(case.entries), 1)
        self.assertEqual(case.dropped, 2)

    def test_ops_fall_back_to_real_time(self):
        self.assertAlmostEqual(res.metric_value({"real_time": 2.0, "time_unit": "us"},
                                                "ops_per_s"), 5e5)
        self.assertIsNone(res.metric_value({"fairness": "x"}, "fairness"))

    def test_curves_group_by_parameters(self):
        benches = fx.benchmarks(params="cs:1") + fx.benchmarks(params="cs:100")
        curves = res.curves(self.make(benches).cases())
        self.assertEqual(list(curves), [("locks", "contended", (("cs", "1"),)),
                                        ("locks", "contended", (("cs", "100"),))])
        self.assertEqual(sorted(curves[("locks", "contended", (("cs", "1"),))]["nolock"]),
                         [1, 2, 4])


class MergeWriteTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.locks = fx.write(self.dir, "locks.json", fx.document())
        self.atomics = fx.write(self.dir, "atomics.json", fx.document(
            ctx=fx.context(executable="bench_atomics"),
            benches=fx.benchmarks(family="atomics", workload="uncontended"))
        )

    def tearDown(self):
        self.tmp.cleanup()

    def test_merge(self):
        doc = res.merge([res.load(self.locks), res.load(self.atomics)], "--quick")
        self.assertEqual(doc["context"]["kprim_families"], "locks,atomics")
        self.assertEqual(doc["context"]["kprim_run_args"], "--quick")
        self.assertEqual(doc["context"]["executable"], "bench_locks")
        self.assertEqual(len(doc["benchmarks"]), 2 * len(fx.benchmarks()))

    def test_merge_refuses_two_machines(self):
        other = fx.write(self.dir, "o.json", fx.document(ctx=fx.context(fingerprint="ffff")))
        with self.assertRaises(KbenchError) as ctx:
            res.merge([res.load(self.locks), res.load(other)], "")
        self.assertIn("kprim_fingerprint", str(ctx.exception))

    def test_merge_refuses_duplicate_benchmarks(self):
        copy = fx.write(self.dir, "copy.json", fx.document())
        with self.assertRaises(KbenchError) as ctx:
            res.merge([res.load(self.locks), res.load(copy)], "")
        self.assertIn("is in both", str(ctx.exception))

    def test_result_path(self):
        doc = {"context": fx.context(dirty="1")}
        self.assertEqual(res.result_path(doc, "/r", NOW),
                         "/r/testbox-2c-aaaa1111/20261125T150102Z-1a2b3c4-dirty.json")
        doc = {"context": fx.context(machine="../etc")}
        with self.assertRaises(KbenchError):
            res.result_path(doc, "/r", NOW)

    def test_write_run_never_overwrites(self):
        results_dir = os.path.join(self.dir, "results")
        path, skipped = res.write_run([self.locks, self.atomics], results_dir, "--quick", NOW)
        self.assertEqual(skipped, [])
        self.assertTrue(path.endswith("testbox-2c-aaaa1111/20261125T150102Z-1a2b3c4.json"))
        merged = res.load(path)
        self.assertEqual(merged.context["kprim_families"], "locks,atomics")
        before = os.stat(path).st_mtime_ns, read(path)
        with self.assertRaises(KbenchError) as ctx:
            res.write_run([self.locks], results_dir, "", NOW)
        self.assertIn("already exists", str(ctx.exception))
        self.assertEqual(before, (os.stat(path).st_mtime_ns, read(path)))
        self.assertEqual(os.listdir(os.path.dirname(path)), [os.path.basename(path)],
                         "temporary file left behind")

    def test_write_run_leaves_out_families_that_matched_nothing(self):
        zero = os.path.join(self.dir, "zero.json")
        open(zero, "w", encoding="utf-8").close()
        no_benches = fx.write(self.dir, "nob.json", fx.document(benches=[]))
        results_dir = os.path.join(self.dir, "results")
        path, skipped = res.write_run([zero, self.locks, no_benches], results_dir, "", NOW)
        self.assertEqual(skipped, [zero, no_benches])
        self.assertEqual(res.load(path).context["kprim_families"], "locks")
        with self.assertRaises(KbenchError) as ctx:
            res.write_run([zero, no_benches], results_dir, "", NOW)
        self.assertIn("no benchmarks in any input", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
