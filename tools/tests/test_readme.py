"""Every example command in README.md is run (issue 17).

Each ```sh block of the README is extracted and run, whole, by bash -e in a sandbox directory:
``./kbench`` there is a shim in front of the real ./kbench, ``results/`` holds small synthetic
results files (tests/fixtures.py) under the README's own file names, and the results store is
a SQLite file in the sandbox (KBENCH_STORE). What runs for real and what is only checked:

- run for real (cheap, seconds): plot, report, summary, aa, compare, gate, export, ingest,
  history - on the small fixture files, never on the 3 MB reference run; outputs the README
  sends to the tree's plots/ (plot, report without --out) go to the sandbox instead;
- parse-only (KBENCH_PARSE_ONLY=1: the command line is checked by the real parser, one
  ``kbench:`` line and exit 2 when bad, nothing else): run, test, build, deps, bisect - full
  benchmark runs, test suites and bisections take minutes to hours;
- a benchmark binary (``./build/release/bench/bench_*``): with KPRIM_BENCH_DIR set its real
  binary lists (``--benchmark_list_tests``) what the line selects; otherwise the shim accepts it
  and the filter is checked here in Python against the names it must and must not select;
- shell plumbing (ls, cp, git) runs as written inside the sandbox (a git repository there).

Every results file a README command names must exist in the repository.
"""

import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

from tests import fixtures as fx

README = os.path.join(fx.ROOT, "README.md")
KBENCH = os.path.join(fx.ROOT, "kbench")

SHIM = r'''#!/usr/bin/env bash
# README sandbox shim (tools/tests/test_readme.py): expensive commands parse-only, outputs the
# README sends into the tree's plots/ redirected into the sandbox.
set -euo pipefail
cmd="${1:-}"
case "$cmd" in
  run|test|build|deps|bisect) export KBENCH_PARSE_ONLY=1 ;;
  plot|report)
    has_out=0; for a in "$@"; do [[ "$a" == --out || "$a" == --out=* ]] && has_out=1; done
    [[ $has_out -eq 1 ]] || set -- "$@" --out "$SANDBOX/plots-$cmd" ;;
  history)
    # history [DIR]: without DIR it reads the tree's results/; the sandbox's instead.
    [[ $# -ge 2 && "$2" != -* ]] || set -- history "$SANDBOX/results" "${@:2}" ;;
esac
echo "+ kbench $*" >>"$SANDBOX/kbench.log"
exec bash "$REAL_KBENCH" "$@"
'''

BENCH_SHIM = r'''#!/usr/bin/env bash
# README sandbox: a benchmark binary lists what the command line selects (nothing is measured).
echo "+ $0 $*" >>"$SANDBOX/kbench.log"
if [[ -n "${KPRIM_BENCH_DIR:-}" ]]; then
  exec "$KPRIM_BENCH_DIR/$(basename "$0")" "$@" --benchmark_list_tests
fi
'''


def sh_blocks(text):
    """The ```sh blocks of a Markdown text, in order."""
    return re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S)


def kbench_lines(block):
    """The ./kbench command lines of a block (continuations joined)."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [ln.strip() for ln in joined.splitlines() if ln.strip().startswith("./kbench")]


class ReadmeExamplesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(README, encoding="utf-8") as fh:
            cls.text = fh.read()
        cls.blocks = sh_blocks(cls.text)

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.sandbox = self.tmp.name
        sb = self.sandbox
        for name, body in (("kbench", SHIM),):
            path = os.path.join(sb, name)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(body)
            os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
        bench = os.path.join(sb, "build", "release", "bench")
        os.makedirs(bench)
        for family in ("locks", "rwlocks", "slab"):
            path = os.path.join(bench, f"bench_{family}")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(BENCH_SHIM)
            os.chmod(path, 0o755)
        # The results files the README names, as small fixtures; plus baseline.json and another
        # machine's their.json for the CI and cross-machine recipes.
        for rel in sorted(set(re.findall(r"results/[\w.-]+/[\w.-]+\.json", self.text))):
            self.assertTrue(os.path.isfile(os.path.join(fx.ROOT, rel)), f"README names {rel}")
            machine = rel.split("/")[1]
            os.makedirs(os.path.join(sb, os.path.dirname(rel)), exist_ok=True)
            sha = os.path.basename(rel)[:-len(".json")].rpartition("-")[2]
            fx.write(os.path.join(sb, os.path.dirname(rel)), os.path.basename(rel),
                     fx.schema2_document(seed=1, ctx=fx.schema2_context(
                         kprim_machine_id=machine, kprim_git_sha=sha,
                         # as a real id, which ends in its fingerprint's first 8 digits
                         kprim_fingerprint=machine.rpartition("-")[2] + "00000000")))
        fx.write(sb, "baseline.json", fx.schema2_document(
            seed=1, ctx=fx.schema2_context(kprim_machine_id="amd-epyc-2c-fd2d0313")))
        fx.write(sb, "their.json", fx.schema2_document(seed=2, ctx=fx.schema2_context(
            kprim_machine_id="other-2c-99998888", kprim_fingerprint="9999888877776666")))
        git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
        for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "a"]):
            subprocess.run([*git, *args], cwd=sb, check=True, capture_output=True)
        subprocess.run([*git, "update-ref", "refs/remotes/origin/main", "HEAD"], cwd=sb,
                       check=True, capture_output=True)
        self.env = dict(os.environ, SANDBOX=sb, REAL_KBENCH=KBENCH,
                        KBENCH_STORE=f"sqlite:{sb}/store.sqlite", TMPDIR=sb)
        self.env.pop("KBENCH_PARSE_ONLY", None)

    def tearDown(self):
        self.tmp.cleanup()

    def run_block(self, block):
        return subprocess.run(["bash", "-e", "-c", block], cwd=self.sandbox, env=self.env,
                              capture_output=True, text=True, timeout=300, check=False)

    def test_blocks_exist(self):
        # The README's examples: two commands, plot/report, a binary, gate, bisect, export,
        # the CI recipe and the cross-machine recipe.
        self.assertGreaterEqual(len(self.blocks), 8)
        commands = {ln.split()[1] for b in self.blocks for ln in kbench_lines(b)}
        self.assertLessEqual({"run", "test", "plot", "report", "gate", "bisect", "export",
                              "compare", "ingest", "history"}, commands)

    def test_every_block_runs(self):
        for i, block in enumerate(self.blocks):
            with self.subTest(block=i, first_line=block.splitlines()[0]):
                proc = self.run_block(block)
                self.assertEqual(proc.returncode, 0,
                                 f"README block {i} failed:\n{block}\nstdout:\n{proc.stdout}\n"
                                 f"stderr:\n{proc.stderr}")
                self.assertNotIn("Traceback", proc.stderr)
                self.assertNotIn("internal error", proc.stderr)
        with open(os.path.join(self.sandbox, "kbench.log"), encoding="utf-8") as fh:
            log = fh.read()
        # Every ./kbench line of the README reached the real ./kbench.
        expected = sum(len(kbench_lines(b)) for b in self.blocks)
        self.assertGreaterEqual(log.count("+ kbench "), expected - 1, log)  # bisect: only on failure
        # What the real runs wrote.
        sb = self.sandbox
        for rel in ("plots-plot", "plots-report/index.html", "bench.json", "tracker.json", "bmf.json",
                    "results.json", "gate.md", "cmp-plots", "store.sqlite"):
            self.assertTrue(os.path.exists(os.path.join(sb, rel)), rel)
        self.assertTrue(os.listdir(os.path.join(sb, "plots-plot")))

    def test_binary_filters_are_anchored(self):
        # Google Benchmark searches the regex anywhere in the name: the README's filters must not
        # pick up uncontended/ when they name contended/.
        names = ["locks/contended/std_mutex/threads:1/cs:0/gap:0/locks:1",
                 "locks/contended/ck_mcs/threads:2/cs:0/gap:0/locks:1",
                 "locks/uncontended/std_mutex/threads:1/cs:0/gap:0/locks:per_thread",
                 "locks/uncontended/ck_mcs/threads:1/cs:0/gap:0/locks:per_thread"]
        filters = re.findall(r"--benchmark_filter='([^']+)'", self.text)
        self.assertTrue(filters)
        for regex in filters:
            picked = [n for n in names if re.search(regex, n)]
            if "contended/" in regex and "uncontended" not in regex:
                self.assertTrue(picked, regex)
                self.assertFalse([n for n in picked if "/uncontended/" in n], regex)

    def test_parse_only_catches_a_bad_example(self):
        # The parse-only path is a real check: a wrong option in an expensive command fails.
        proc = self.run_block("./kbench run --quick --trial-ms 0")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("kbench: --trial-ms", proc.stderr)
        proc = self.run_block("./kbench bisect A B")  # --filter is required
        self.assertEqual(proc.returncode, 2)


if __name__ == "__main__":
    unittest.main()


REFERENCE_RUN = os.path.join(fx.ROOT, "results", "oxide-virtual-turin-like-2c-c0ab8b91",
                             "20261201T204526Z-16ea0e7060d1.json")


def ctest_names():
    """Regexes of the test names the CMake files register (``${var}`` parts: any word)."""
    names = []
    for top, _, files in os.walk(fx.ROOT):
        if "/build" in top[len(fx.ROOT):] or "/." in top[len(fx.ROOT):]:
            continue
        for name in files:
            if name == "CMakeLists.txt" or name.endswith(".cmake"):
                with open(os.path.join(top, name), encoding="utf-8") as fh:
                    text = fh.read()
                for found in re.findall(r"(?:kprim_add_test\(|add_test\(NAME )\s*([\w${}]+)", text):
                    if not re.search(r"[A-Za-z0-9]", re.sub(r"\$\{\w+\}", "", found)):
                        continue  # the helper's own add_test(NAME ${name}): no name at all
                    names.append(re.compile(
                        "^" + re.sub(r"\\\$\\\{\w+\\\}", r"\\w+", re.escape(found)) + "$"))
    return names


def primitive_rows(text):
    """``(header cell, Test cell, Bench cell)`` of every row of the README's tables whose
    header ends with Test and Bench columns."""
    rows, inside = [], False
    for line in text.splitlines():
        if line.startswith("|") and line.rstrip().endswith("| Test | Bench |"):
            inside = True
            continue
        if inside and line.startswith("|---"):
            continue
        if inside and line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            rows.append((cells[0], cells[-2], cells[-1]))
            continue
        inside = False
    return rows


class PrimitiveTablesTest(unittest.TestCase):
    """#16: every primitive's test and benchmark one step from the README's tables."""

    @classmethod
    def setUpClass(cls):
        import json
        with open(README, encoding="utf-8") as fh:
            cls.rows = primitive_rows(fh.read())
        with open(REFERENCE_RUN, encoding="utf-8") as fh:
            doc = json.load(fh)
        cls.contenders = {}
        for entry in doc["benchmarks"]:
            family, workload, contender = entry["name"].split("/")[:3]
            cls.contenders.setdefault(f"{family}/{workload}", set()).add(contender)

    def test_tables_have_rows(self):
        self.assertGreaterEqual(len(self.rows), 11, "the primitive and lock tables")
        for header, test, bench in self.rows:
            self.assertRegex(test, r"`test_\w+`", header)
            self.assertRegex(bench, r"`bench_\w+`", header)

    def test_every_named_test_is_registered(self):
        registered = ctest_names()
        self.assertGreater(len(registered), 20)
        for header, test, _ in self.rows:
            for name in re.findall(r"`(test_\w+)`", test):
                with self.subTest(header=header, test=name):
                    self.assertTrue(any(r.match(name) for r in registered),
                                    f"{name} is not a ctest test")

    def test_every_named_benchmark_exists_and_ran(self):
        for header, _, bench in self.rows:
            for segment in bench.split(";"):
                binary = re.match(r"\s*`(bench_\w+)`:", segment)
                if not binary:
                    self.assertRegex(segment, r": none\s*$", f"{header}: {segment}")
                    continue
                family = binary[1][len("bench_"):]
                self.assertTrue(os.path.isfile(os.path.join(fx.ROOT, "bench",
                                                            f"{binary[1]}.cpp")), binary[1])
                workloads = []
                for token, group in re.findall(r"`(\w+/\w+)`|\(([^)]*)\)", segment):
                    if token:
                        with self.subTest(header=header, workload=token):
                            self.assertEqual(token.split("/")[0], family, token)
                            self.assertIn(token, self.contenders, "not in the reference run")
                        workloads.append(token)
                        continue
                    for contender in re.findall(r"`(\w+)`", group):
                        with self.subTest(header=header, contender=contender):
                            self.assertTrue(workloads, f"{contender} before any workload")
                            for workload in workloads:
                                self.assertIn(contender, self.contenders.get(workload, ()),
                                              f"{contender} not measured in {workload}")
                    workloads = []
