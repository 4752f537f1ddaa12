"""Tests of the results store (kprim_tools.store) on SQLite and on PostgreSQL.

The PostgreSQL cases start a throwaway server themselves (tests/pgserver.py) and stop it
afterwards; a server that cannot start FAILS them (the fleet store is part of the suite).
"""

import os
import subprocess
import tempfile
import unittest

from kprim_tools import KbenchError, results, stats
from kprim_tools.store import STORE_VERSION, open_store
from tests import fixtures as fx
from tests import pgserver

REAL = os.path.join(fx.ROOT, "results", "oxide-virtual-turin-like-2c-c0ab8b91",
                    "20261201T204526Z-16ea0e7060d1.json")
QSPIN = "locks/contended/kprim_qspinlock/threads:2/cs:0/gap:0/locks:1/iterations:1/manual_time"


class StoreCases(fx.ErrorAssertions):
    """Backend-independent cases; a subclass provides ``fresh_url()`` (an empty store)."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.url = self.fresh_url()
        self.files = []
        for i in range(4):
            doc = fx.scaled(fx.schema2_document(seed=i, ctx=fx.schema2_context(
                kprim_git_sha=f"abc{i}")), {QSPIN: 0.7} if i >= 2 else {})
            self.files.append(fx.write(self.tmp.name, f"202612{i + 1:02d}T120000Z-abc{i}.json",
                                       doc))
        other = fx.schema2_document(seed=9, ctx=fx.schema2_context(
            kprim_machine_id="bigbox-8c-bbbb2222", kprim_fingerprint="bbbb", kprim_git_sha="big0",
            kprim_inject=""))
        self.files.append(fx.write(self.tmp.name, "20261203T000000Z-big0.json", other))

    def test_ingest_read_back_and_idempotence(self):
        with open_store(self.url) as store:
            ids = [store.ingest(p) for p in self.files]
            self.assertEqual(len(set(ids)), 5)
            self.assertEqual([store.ingest(p) for p in self.files], ids, "idempotent per file")
            counts = store.counts()
            entries = sum(len(results.load(p).benchmarks) for p in self.files)
            self.assertEqual(counts["runs"], 5)
            self.assertEqual(counts["samples"], entries)
            self.assertEqual(counts["machines"], 2)
            self.assertEqual(counts["benchmarks"], len(fx.SCHEMA2_POINTS))
            machines = {m["fingerprint"]: m for m in store.machines()}
            self.assertEqual(machines["aaaa1111bbbb2222"]["runs"], 4)
            self.assertEqual(machines["bbbb"]["machine_id"], "bigbox-8c-bbbb2222")
            self.assertEqual(machines["bbbb"]["provenance"]["kprim_cpu_model"], "Test CPU")
            runs = store.runs("aaaa1111bbbb2222")
            self.assertEqual([r["git_sha"] for r in runs], ["abc0", "abc1", "abc2", "abc3"])
            self.assertEqual(runs[0]["stamp"], "20261201T120000Z")
            self.assertEqual(len(store.runs()), 5)
            series = store.series("aaaa1111bbbb2222", QSPIN)
            expected = [stats.median(results.load(p).cases()[QSPIN].values("ops_per_s"))
                        for p in self.files[:4]]
            self.assertEqual([s for s, _ in series], [r["stamp"] for r in runs])
            for (_, got), want in zip(series, expected):
                self.assertAlmostEqual(got, want, delta=want * 1e-12)
            self.assertLess(series[2][1], 0.8 * series[1][1], "the slowed runs")
            self.assertEqual(store.series("aaaa1111bbbb2222",
                                          QSPIN.replace("/iterations:1/manual_time", "")), series)
            self.assertEqual(store.series("nosuch", QSPIN), [])
            for path, run in zip(self.files, ids):
                back, ref = store.load_run(run), results.load(path)
                self.assertEqual(back.benchmarks, ref.benchmarks)
                self.assertEqual(back.context, ref.context)

    def test_real_file_round_trip(self):
        with open_store(self.url) as store:
            run = store.ingest(REAL)
            ref = results.load(REAL)
            back = store.load_run(run)
            self.assertEqual(len(back.benchmarks), 9245)
            self.assertEqual(back.benchmarks, ref.benchmarks, "every counter restored")
            cases = ref.cases()
            self.assertEqual(store.counts()["cases"], len(cases))
            names = store.benchmark_names()
            stored = {names[b]: (n, med, low, high) for _, b, n, med, low, high, _, _
                      in store.summaries()}
            for base, case in cases.items():
                summary = stats.summarize(case.values("ops_per_s"))
                self.assertEqual(stored[base], (summary.n, summary.median, summary.low,
                                                summary.high), base)

    def test_older_store_version_is_rebuilt_from_its_files(self):
        with open_store(self.url) as store:
            for path in self.files:
                store.ingest(path)
            before = store.counts()
            cur = store.conn.cursor()
            cur.execute(store._sql("UPDATE meta SET value = ? WHERE key = ?"),
                        ("1", "store_version"))
            cur.execute(store._sql("DELETE FROM samples WHERE run = ?"), (1,))
            store.conn.commit() if store.postgres else None
        os.unlink(self.files[-1])  # a file gone since: left out, the others come back
        proc = fx.cli("ingest", "--store", self.url, self.files[0])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("re-ingesting 4 of its 5 results files", proc.stderr)
        self.assertIn("already stored", proc.stdout)
        with open_store(self.url) as store:
            after = store.counts()
            self.assertEqual(after["runs"], 4)
            self.assertEqual(after["samples"], sum(len(results.load(p).benchmarks)
                                                   for p in self.files[:4]))
            self.assertLess(after["samples"], before["samples"])
            version = store._query("SELECT value FROM meta WHERE key = 'store_version'")
            self.assertEqual(int(version[0][0]), STORE_VERSION)

    def test_compare_and_gate_read_runs_from_the_store(self):
        with open_store(self.url) as store:
            for path in self.files:
                store.ingest(path)
        proc = fx.cli("compare", "testbox-2c-aaaa1111@abc1", "@abc3", "--store", self.url)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        head = proc.stdout.splitlines()[:2]
        self.assertIn("git abc1", head[0])
        self.assertIn("20261202T120000Z-abc1.json", head[0], "the stored file, by its name")
        self.assertIn("git abc3", head[1])
        self.assertIn("same machine", proc.stdout)
        proc = fx.cli("gate", "--baseline", "@abc1", "--current", "@abc3", "--store", self.url)
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertIn("SLOWER", proc.stdout, "the slowed qspinlock of abc2 on")
        proc = fx.cli("gate", "--baseline", "@abc1", "--current", "@abc1", "--store", self.url)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertOneLineError(fx.cli("compare", "@latest", "@abc1", "--store", self.url),
                                "runs of 2 machines match", "bigbox-8c-bbbb2222")
        self.assertOneLineError(fx.cli("compare", "@abc1", "@ffff", "--store", self.url),
                                "'@ffff': no such run")
        self.assertOneLineError(fx.cli("gate", "--baseline", "@abc1", "--current", "@x!",
                                       "--store", self.url), "expected [MACHINE_ID]@latest")

    def test_not_a_results_file_stores_nothing(self):
        bad = fx.write(self.tmp.name, "20261201T000000Z-x.json", {"hello": 1})
        with open_store(self.url) as store:
            with self.assertRaisesRegex(KbenchError, "not Google Benchmark JSON"):
                store.ingest(bad)
            self.assertEqual(store.counts()["runs"], 0)
        proc = fx.cli("ingest", "--store", self.url, self.files[0], bad)
        self.assertOneLineError(proc, bad, "not Google Benchmark JSON", "(1 other file stored)")
        proc = fx.cli("ingest", "--store", self.url, os.path.join(self.tmp.name, "none.json"))
        self.assertOneLineError(proc, "is not a file")

    def test_two_processes_ingesting_at_once_lose_nothing(self):
        more = []
        for i in range(8):
            doc = fx.schema2_document(seed=100 + i, ctx=fx.schema2_context(kprim_git_sha=f"c{i}"))
            more.append(fx.write(self.tmp.name, f"202611{10 + i:02d}T000000Z-c{i}.json", doc))
        first = more[:5] + self.files[:2]
        second = more[3:] + self.files[:2] + self.files[2:]
        # The store does not exist yet: both processes also race to create its tables.
        procs = [subprocess.Popen([fx.PYTHON, os.path.join(fx.TOOLS, "kbench_results.py"),
                                   "ingest", "--quiet", "--store", self.url, *files],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for files in (first, second)]
        outs = [p.communicate(timeout=240) for p in procs]
        for proc, (out, err) in zip(procs, outs):
            self.assertEqual(proc.returncode, 0, err)
        every = sorted(set(first + second))
        with open_store(self.url) as store:
            counts = store.counts()
            self.assertEqual(counts["runs"], len(every))
            self.assertEqual(counts["samples"],
                             sum(len(results.load(p).benchmarks) for p in every))
            self.assertEqual(len({r["file_sha"] for r in store.runs()}), len(every))

    def test_history_from_this_store(self):
        directory = os.path.join(self.tmp.name, "results")
        os.makedirs(directory)
        for path in self.files[:4]:
            os.link(path, os.path.join(directory, os.path.basename(path)))
        proc = fx.cli("history", directory, "--store", self.url, "--window", "2",
                      "--filter", "qspinlock/threads:2/")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        row = next(line for line in proc.stdout.splitlines() if line.startswith(
            "locks/contended/kprim_qspinlock/threads:2"))
        self.assertIn("abc2", row)
        self.assertFalse(os.path.exists(os.path.join(directory, "kbench.sqlite")),
                         "--store used instead of DIR/kbench.sqlite")


class SqliteStoreTest(StoreCases, unittest.TestCase):
    def fresh_url(self):
        return os.path.join(self.tmp.name, "kbench.sqlite")

    def test_default_location_and_env(self):
        env_store = os.path.join(self.tmp.name, "env.sqlite")
        proc = fx.cli("ingest", self.files[0], env={**os.environ, "KBENCH_STORE": env_store})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("ingested", proc.stdout)
        proc = fx.cli("ingest", self.files[0], env={**os.environ, "KBENCH_STORE": env_store})
        self.assertIn("already stored", proc.stdout)
        with open_store("sqlite:" + env_store) as store:
            self.assertEqual(store.counts()["runs"], 1)

    def test_bad_store_urls(self):
        self.assertOneLineError(fx.cli("ingest", "--store", "mysql://h/db", self.files[0]),
                                "unknown scheme 'mysql'")
        self.assertOneLineError(fx.cli("ingest", "--store", "/nonexistent/dir/s.sqlite",
                                       self.files[0]), "does not exist")
        self.assertOneLineError(fx.cli("ingest", "--store", "postgresql://kbench@127.0.0.1:1/x",
                                       self.files[0]), "cannot connect")
        notdb = fx.write(self.tmp.name, "notdb.sqlite", {"x": 1})
        self.assertOneLineError(fx.cli("ingest", "--store", notdb, self.files[0]), "store")


class PostgresStoreTest(StoreCases, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = pgserver.Server()
        cls.addClassCleanup(cls.server.stop)
        try:
            cls.base_url = cls.server.start()
        except Exception as err:  # a failure, never a skip: PostgreSQL is part of the suite
            raise AssertionError(f"throwaway PostgreSQL server did not start: {err}\n"
                                 f"{cls.server.log()}") from None
        cls.databases = 0

    def fresh_url(self):
        cls = type(self)
        cls.databases += 1
        name = f"t{cls.databases}"
        subprocess.run(["psql", self.base_url, "-q", "-c", f"CREATE DATABASE {name}"],
                       check=True, capture_output=True, timeout=60)
        return self.base_url.replace("/kbench?", f"/{name}?")


if __name__ == "__main__":
    unittest.main()
