"""Tests of kprim_tools.results: name grammar, validation, repetitions, merge, atomic write."""

import datetime
import json
import os
import shutil
import stat
import subprocess
import tempfile
import unittest

from kprim_tools import SCHEMA_VERSION, KbenchError
from kprim_tools import results as res
from tests import fixtures as fx

#: The default run of this session's 2-core VM, as committed (schema 2; never rewritten).
DEFAULT_RUN = os.path.join(fx.ROOT, "results", "oxide-virtual-turin-like-2c-c0ab8b91",
                           "20261201T204526Z-16ea0e7060d1.json")
#: A default run written as schema 4 (b6524d3, 9,975 entries).
DEFAULT_RUN_4 = os.path.join(fx.ROOT, "results", "oxide-virtual-turin-like-2c-c0ab8b91",
                             "20261203T130409Z-b6524d335efa.json")
REFERENCE = os.path.join(fx.ROOT, "results", "amd-epyc-2c-fd2d0313",
                         "20261125T164140Z-2e9c04d554aa.json")


def strict_parse(test, text):
    """Parse ``text`` with Node's JSON.parse (strict RFC 8259: no NaN/Infinity); fail if not."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        test.skipTest("node (Debian package nodejs) is not installed")
    proc = subprocess.run([node, "-e", 'JSON.parse(require("fs").readFileSync(0, "utf8"))'],
                          input=text, capture_output=True, text=True, timeout=60, check=False)
    test.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    return json.loads(text)


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
        newer = SCHEMA_VERSION + 1
        doc = fx.document(ctx=fx.context(kprim_schema_version=newer))
        self.assertLoadFails(fx.write(self.dir, "v.json", doc), f"schema version {newer} is newer")

    def test_schema_1_with_nan_still_loads(self):
        doc = fx.document()
        doc["benchmarks"][0]["fairness"] = float("nan")
        path = fx.write(self.dir, "nan.json", doc)
        with open(path, encoding="utf-8") as handle:
            self.assertIn("NaN", handle.read())
        self.assertEqual(len(res.load(path).cases()), 9)

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


def harness_entry(name, ns, threads, repetition, **extra):
    """A schema-2 harness trial entry as a benchmark binary writes it (before writing)."""
    ops = round(0.1e9 / ns)
    cpu = ns * threads * 0.93
    entry = {
        "name": name, "family_index": 3, "per_family_instance_index": 1, "run_name": name,
        "run_type": "iteration", "repetitions": 5, "repetition_index": repetition,
        "threads": 1, "iterations": 1, "real_time": ns, "cpu_time": cpu, "time_unit": "ns",
        "ops_per_s": 1e9 / ns, "ns_per_op": ns, "ops": float(ops), "trial_s": ops * ns / 1e9,
        "kprim_threads": float(threads), "worker_cpu_s": cpu * ops / 1e9,
        "cpu_util": cpu * ops / 1e9 / (threads * ops * ns / 1e9), "steal_pct": 0.0,
        "abandoned": 0.0, "clock_ns": 20.0, "drain_ms": 0.123456789, "fairness": 1.0,
        "share_min": 1.0, "share_max": 1.0, "lat_p50_ns": 11.0, "lat_p99_ns": 25.0,
        "lat_p999_ns": 40.0, "lat_max_ns": 9000.0, "lat_samples": 12345.0,
    }
    entry.update(extra)
    return entry


def v2_context(**extra):
    """A schema-2 context as the new harness writes it."""
    return fx.context(kprim_schema_version=2, kprim_inject="", kprim_interleaving="random",
                      kprim_clock_ns=20, **extra)


def v2_document(floor=True, reps=5):
    """Locks (uncontended, contended, handover) and, optionally, floor/transfer entries."""
    benches = []
    for r in range(reps):
        w = fx.WOBBLE[r]
        benches.append(harness_entry("locks/uncontended/std_mutex/threads:1/cs:0/gap:0/"
                                     "locks:per_thread/iterations:1/manual_time", 15.0 * w, 1, r))
        benches.append(harness_entry(
            "locks/contended/std_mutex/threads:2/cs:0/gap:0/locks:1/iterations:1/manual_time",
            40.0 * w, 2, r, fairness=0.9 + 0.01 * r, share_min=0.7, share_max=1.3,
            steal_pct=0.5 * r))
        benches.append(harness_entry(
            "locks/handover/kprim_qspinlock/threads:2/iterations:1/manual_time", 300.0 * w, 2, r,
            fairness=0.99, share_min=0.98, share_max=1.02, handover_p50_ns=500.0 * w,
            handover_p99_ns=900.0, handover_p999_ns=1500.0, handover_samples=4000.0))
        if floor:
            for cls, ns in (("core", 233.0), ("package", 400.0)):
                benches.append(harness_entry(
                    f"floor/transfer/{cls}/threads:2/iterations:1/manual_time", ns * w, 2, r,
                    transfer_ns=ns * w, fairness=1.0, share_min=1.0, share_max=1.0))
    return {"context": v2_context(), "benchmarks": benches}


class WrittenFileTest(unittest.TestCase):
    """``write_run``: strict compact JSON, repetitions only, rounding, round trip, floor units."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.results = os.path.join(self.dir, "results")

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, doc, name="in.json", now=NOW):
        """Write ``doc`` as a binary's output, run write_run on it; return (path, text)."""
        path, _ = res.write_run([fx.write(self.dir, name, doc)], self.results, "", now)
        return path, read(path)

    def test_strict_compact_rounded(self):
        doc = fx.document()
        doc["benchmarks"][0]["fairness"] = float("nan")
        doc["benchmarks"][1]["lat_max_ns"] = float("inf")
        doc["benchmarks"][2]["drain_ms"] = 0.6584060637037124
        doc["benchmarks"][2]["ops"] = 303888067.0
        path, text = self.write(doc)
        for bad in ("NaN", "Infinity", "\n  ", ": ", ", "):
            self.assertNotIn(bad, text)
        self.assertEqual(text.count("\n"), 1)
        self.assertTrue(text.endswith("}\n"))
        parsed = strict_parse(self, text)
        self.assertNotIn("fairness", parsed["benchmarks"][0])
        self.assertNotIn("lat_max_ns", parsed["benchmarks"][1])
        # drain_ms is a coarse diagnostic (3 digits), ops an integer (exact).
        self.assertEqual(parsed["benchmarks"][2]["drain_ms"], 0.658)
        self.assertIn('"ops":303888067,', text)
        self.assertEqual(parsed["context"]["kprim_schema_version"], str(SCHEMA_VERSION))

    def test_repetitions_only_and_same_figures(self):
        src = fx.write(self.dir, "in.json", fx.document())
        path, _ = res.write_run([src], self.results, "", NOW)
        parsed = json.loads(read(path))
        self.assertTrue(all(e["run_type"] == "iteration" for e in parsed["benchmarks"]))
        self.assertEqual(len(parsed["benchmarks"]), 27)
        before, after = res.load(src).cases(), res.load(path).cases()
        self.assertEqual(list(before), list(after))
        for base, case in before.items():
            for metric in ("ops_per_s", "ns_per_op", "fairness", "lat_p99_ns", "trial_s"):
                for a, b in zip(case.values(metric), after[base].values(metric)):
                    self.assertAlmostEqual(a / b, 1.0, delta=2e-5, msg=(base, metric))

    def test_aggregates_kept_only_without_repetitions(self):
        benches = [b for b in fx.benchmarks(threads=(1,), speeds={"nolock": 1e8})
                   if b["run_type"] == "aggregate"]
        _, text = self.write(fx.document(benches=benches))
        names = [e["name"] for e in json.loads(text)["benchmarks"]]
        self.assertEqual(len(names), 4)
        self.assertTrue(all(n.endswith(("_mean", "_median", "_stddev", "_cv")) for n in names))

    def test_redundant_fields_left_out_and_restored(self):
        doc = v2_document(floor=False)
        path, text = self.write(doc)
        written = json.loads(text)
        first = written["benchmarks"][0]
        for key in ("run_name", "family_index", "per_family_instance_index", "repetitions",
                    "repetition_index", "threads", "iterations", "ns_per_op", "ops_per_s", "trial_s",
                    "kprim_threads", "worker_cpu_s", "cpu_util", "clock_ns", "abandoned",
                    "steal_pct", "fairness", "share_min", "share_max"):
            self.assertNotIn(key, first)
        for key in ("name", "run_type", "real_time", "cpu_time",
                    "time_unit", "ops", "drain_ms", "lat"):
            self.assertIn(key, first)
        for key in res.LAT_FIELDS:
            self.assertNotIn(key, first)
        contended = written["benchmarks"][1]
        self.assertEqual(contended["share_min"], 0.7)
        self.assertNotIn("steal_pct", contended)
        self.assertEqual(written["benchmarks"][4]["steal_pct"], 0.5)
        self.assertNotIn("kprim_not_derived", written["context"])
        loaded = res.load(path)
        for original, back in zip(doc["benchmarks"], loaded.benchmarks):
            expected = res.round_document(original)
            for key in res.NOT_WRITTEN:
                expected.pop(key)
            self.assertEqual(sorted(expected), sorted(back), original["name"])
            for key, value in expected.items():
                self.assertTrue(res._same(value, back[key], key), (original["name"], key, value,
                                                               back[key]))

    def test_latency_summary_packed_in_order_and_unpacked(self):
        """The five latency members are one ``lat`` list in LAT_FIELDS order, all five kept
        (also where p999 = p99 or every operation was timed); loading gives the members back
        and no ``lat``. An entry missing one of them keeps the others as members."""
        doc = v2_document(floor=False, reps=2)
        doc["benchmarks"][1].update(lat_p999_ns=25.0)  # = p99
        doc["benchmarks"][2].update(lat_samples=doc["benchmarks"][2]["ops"])  # every op timed
        doc["benchmarks"][3]["lat_max_ns"] = float("nan")
        path, text = self.write(doc)
        written = json.loads(text)["benchmarks"]
        self.assertEqual(written[0]["lat"], [11, 25, 40, 9000, 12345])
        self.assertEqual(written[1]["lat"], [11, 25, 25, 9000, 12345])
        self.assertEqual(written[2]["lat"][4], written[2]["ops"])
        self.assertNotIn("lat", written[3])
        self.assertNotIn("lat_max_ns", written[3])
        self.assertEqual(written[3]["lat_p50_ns"], 11)
        self.assertEqual(written[3]["lat_p999_ns"], 40)
        loaded = res.load(path).benchmarks
        for back in loaded:
            self.assertNotIn("lat", back)
        self.assertEqual([loaded[1][k] for k in res.LAT_FIELDS], [11, 25, 25, 9000, 12345])
        self.assertNotIn("lat_max_ns", loaded[3])
        self.assertEqual(loaded[3]["lat_samples"], 12345)
        # The store keeps files unexpanded: the packed list is what it sees.
        self.assertIn("lat", res.load(path, expand=False).benchmarks[0])

    def test_counter_named_lat_is_refused(self):
        doc = v2_document(floor=False, reps=1)
        doc["benchmarks"][0]["lat"] = 3.0
        with self.assertRaisesRegex(KbenchError, "counter 'lat' is reserved"):
            self.write(doc)
        self.assertFalse(os.path.exists(self.results))

    def test_repetition_index_kept_when_not_in_order(self):
        doc = v2_document(floor=False, reps=3)
        doc["benchmarks"][0]["repetition_index"] = 2
        doc["benchmarks"][6]["repetition_index"] = 0
        path, text = self.write(doc)
        written = json.loads(text)["benchmarks"]
        self.assertEqual((written[0]["repetition_index"], written[6]["repetition_index"]), (2, 0))
        self.assertNotIn("repetition_index", written[3])
        self.assertEqual([e["repetition_index"] for e in res.load(path).benchmarks[::3]],
                         [2, 1, 0])

    def test_aggregates_are_written_whole_and_not_expanded(self):
        doc = v2_document(floor=False, reps=2)
        cv = dict(doc["benchmarks"][0], name=doc["benchmarks"][0]["name"] + "_cv",
                  run_type="aggregate", aggregate_name="cv", real_time=0.01, cpu_time=0.01)
        for key in ("repetition_index", "abandoned", "steal_pct", "ns_per_op", "trial_s"):
            del cv[key]
        doc["benchmarks"].append(cv)
        loaded = res.load(fx.write(self.dir, "raw.json", doc))
        self.assertEqual(sorted(loaded.benchmarks[-1]), sorted(cv))

    def test_unmeasured_counters_are_not_invented(self):
        """A file from before cpu_util/steal_pct existed gets none of them back on load."""
        path, text = self.write(fx.document())
        written = json.loads(text)
        self.assertEqual(written["context"]["kprim_not_derived"],
                         "kprim_threads,worker_cpu_s,cpu_util,steal_pct")
        for entry in res.load(path).benchmarks:
            for key in ("kprim_threads", "worker_cpu_s", "cpu_util", "steal_pct"):
                self.assertNotIn(key, entry)
            self.assertEqual(entry["clock_ns"], 40)
        self.assertEqual(written["context"]["kprim_clock_ns"], "40")

    def test_reference_file_round_trip(self):
        """The schema-1 reference run (12.8 MB, NaN in aggregates) rewritten: strict, under a
        sixth of the size, and every repetition's figures come back."""
        path, text = res.write_run([REFERENCE], self.results, "", NOW)
        text = read(path)
        self.assertLess(len(text), os.path.getsize(REFERENCE) / 6)
        strict_parse(self, text)
        original = [e for e in res.load(REFERENCE).benchmarks if e["run_type"] == "iteration"]
        back = res.load(path).benchmarks
        self.assertEqual(len(original), len(back))
        for a, b in zip(original, back):
            expected = {k: v for k, v in res.round_document(a).items()
                        if k not in res.NOT_WRITTEN}
            self.assertEqual(sorted(expected), sorted(b), a["name"])
            for key, value in expected.items():
                self.assertTrue(res._same(value, b[key], key), (a["name"], key))

    def test_default_run_rewritten_under_3_mb(self):
        """The committed default run on 2 cores (schema 2, 3.36 MB), loaded and written again
        by this writer: under 3 MB (issue 12), strict, and every field of every entry that
        the tools read comes back from the new file as from the old one (4 significant digits
        for the diagnostic counters, 3 for drain_ms, 6 for the others)."""
        loaded = res.load(DEFAULT_RUN)
        doc = {"context": dict(loaded.context), "benchmarks": [dict(e) for e in loaded.benchmarks]}
        path = os.path.join(self.dir, "rewritten.json")
        res.write_new(path, res.results_text(res.written_document(doc)))
        self.assertLess(os.path.getsize(path), 3_000_000)
        strict_parse(self, read(path))
        back = res.load(path)
        self.assertEqual(back.context["kprim_schema_version"], str(SCHEMA_VERSION))
        self.assertEqual([e["name"] for e in loaded.benchmarks], [e["name"] for e in back.benchmarks])
        for a, b in zip(loaded.benchmarks, back.benchmarks):
            self.assertEqual(sorted(a), sorted(b), a["name"])
            for key, value in a.items():
                rounded = res.round_document({key: value})[key]
                self.assertTrue(res._same(rounded, b[key], key), (a["name"], key, value, b[key]))
        for key in ("kprim_floor_transfer_ns", "kprim_clock_ns", "kprim_git_sha"):
            self.assertEqual(loaded.context[key], back.context[key])
        # The tools' figures: the same cases, the same medians.
        before, after = loaded.cases(), back.cases()
        self.assertEqual(list(before), list(after))
        for base, case in before.items():
            for metric in ("ops_per_s", "ns_per_op", "lat_p99_ns", "fairness", "floor_ratio"):
                for x, y in zip(case.values(metric), after[base].values(metric)):
                    self.assertAlmostEqual(x / y if y else x, 1.0 if y else 0.0,
                                           delta=res.DIAGNOSTIC_RTOL, msg=(base, metric))

    def test_schema_4_default_run_under_3_mb_and_written_again_the_same(self):
        """Issue 12's size target on a default run as ./kbench run wrote it (2 cores, schema 4):
        under 3 MB, strict, and loading then writing it again gives the same document."""
        self.assertLess(os.path.getsize(DEFAULT_RUN_4), 3_000_000)
        text = read(DEFAULT_RUN_4)
        written = strict_parse(self, text)
        self.assertEqual(written["context"]["kprim_schema_version"], "4")
        self.assertGreater(sum(1 for e in written["benchmarks"] if "lat" in e), 9000)
        loaded = res.load(DEFAULT_RUN_4)
        doc = {"context": dict(loaded.context), "benchmarks": [dict(e) for e in loaded.benchmarks]}
        self.assertEqual(json.loads(res.results_text(res.written_document(doc))), written)

    def test_floor_units(self):
        path, text = self.write(v2_document())
        written = json.loads(text)
        floor = 233.0  # min over classes of the median transfer_ns (core 233, package 400)
        self.assertEqual(written["context"]["kprim_floor_transfer_ns"], "233")
        loaded = res.load(path)
        seen = set()
        for entry, name in zip(loaded.benchmarks, loaded.names):
            if name.workload == "handover":
                # 4 significant digits (a diagnostic counter)
                self.assertAlmostEqual(entry["handover_floor_ratio"] * floor / entry["handover_p50_ns"],
                                       1.0, delta=res.DIAGNOSTIC_RTOL)
                seen.add("handover")
            elif name.workload == "contended":
                self.assertAlmostEqual(entry["floor_ratio"] * floor / entry["ns_per_op"], 1.0,
                                       delta=res.DIAGNOSTIC_RTOL)
                seen.add("contended")
            else:
                self.assertNotIn("floor_ratio", entry)
                self.assertNotIn("handover_floor_ratio", entry)
        self.assertEqual(seen, {"handover", "contended"})
        _, text = self.write(v2_document(floor=False), name="nofloor.json",
                             now=NOW + datetime.timedelta(seconds=1))
        self.assertNotIn("kprim_floor_transfer_ns", json.loads(text)["context"])
        self.assertNotIn("floor_ratio", text)

    def test_mode_0644(self):
        old = os.umask(0o077)
        try:
            path, _ = self.write(fx.document())
        finally:
            os.umask(old)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o644)

    def test_injected_and_dirty_suffixes(self):
        cases = ((dict(dirty="0"), ""), (dict(dirty="1"), "-dirty"),
                 (dict(dirty="0", kprim_inject="contended/std_mutex:200"), "-injected"),
                 (dict(dirty="1", kprim_inject="x:1"), "-dirty-injected"),
                 (dict(dirty="0", kprim_inject=""), ""))
        for extra, suffix in cases:
            with self.subTest(extra=extra):
                doc = {"context": fx.context(**extra)}
                self.assertEqual(res.result_path(doc, "/r", NOW),
                                 f"/r/testbox-2c-aaaa1111/20261125T150102Z-1a2b3c4{suffix}.json")

    def test_dumps_strict(self):
        text = res.dumps_strict({"a": float("nan"), "b": [1.5, float("-inf")], "c": "x"})
        self.assertEqual(text, '{"a":null,"b":[1.5,null],"c":"x"}')
        strict_parse(self, text)
        self.assertIn('"a": null', res.dumps_strict({"a": float("inf")}, indent=2))


class BuildInfoDirtyTest(unittest.TestCase):
    """cmake/BuildInfoGen.cmake: ``git_dirty`` counts tracked changes only."""

    def dirty(self, repo, out):
        """Run the generator on ``repo``; return the git_dirty string it wrote."""
        proc = subprocess.run(["cmake", f"-DSRC={repo}", f"-DOUT={out}", "-P",
                               os.path.join(fx.ROOT, "cmake", "BuildInfoGen.cmake")],
                              capture_output=True, text=True, timeout=60, check=False)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        text = read(out)
        return text.split("git_dirty = \"", 1)[1].split("\"", 1)[0]

    def test_untracked_files_do_not_make_a_build_dirty(self):
        if not shutil.which("cmake") or not shutil.which("git"):
            self.skipTest("cmake and git are needed")
        with tempfile.TemporaryDirectory() as repo:
            def git(*args):
                subprocess.run(["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@t",
                                *args], check=True, capture_output=True, timeout=60)
            git("init", "-q")
            with open(os.path.join(repo, "a.txt"), "w", encoding="utf-8") as handle:
                handle.write("a\n")
            git("add", "a.txt")
            git("commit", "-q", "-m", "a")
            out = os.path.join(repo, ".git", "build_info.cpp")
            os.makedirs(os.path.join(repo, "results", "m"))
            with open(os.path.join(repo, "results", "m", "run.json"), "w",
                      encoding="utf-8") as handle:
                handle.write("{}")
            self.assertEqual(self.dirty(repo, out), "0")
            with open(os.path.join(repo, "a.txt"), "a", encoding="utf-8") as handle:
                handle.write("b\n")
            self.assertEqual(self.dirty(repo, out), "1")


class StrictReportsTest(unittest.TestCase):
    """Every JSON kprim prints is strict: a figure that is not a number is ``null``."""

    def test_compare_and_history_json(self):
        with tempfile.TemporaryDirectory() as tmp:
            doc = fx.document()
            for entry in doc["benchmarks"]:
                entry["fairness"] = float("nan")
            a = fx.write(tmp, "20261125T150102Z-1a2b3c4.json", doc)
            b = fx.write(tmp, "20261126T150102Z-1a2b3c5.json", fx.document(
                ctx=fx.context(sha="1a2b3c5")))
            proc = fx.cli("compare", a, b, "--format", "json")
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertNotIn("NaN", proc.stdout)
            strict_parse(self, proc.stdout)
            proc = fx.cli("history", tmp, "--format", "json", "--no-plots", "--metric",
                          "fairness")
            self.assertEqual(proc.returncode, 0, proc.stderr)
            strict_parse(self, proc.stdout)


if __name__ == "__main__":
    unittest.main()
