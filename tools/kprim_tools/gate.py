"""``kbench gate``: the CI regression gate between a baseline and a current run.

Each benchmark gets a verdict: SAME, FASTER, SLOWER or UNKNOWN (plus NEW, MISSING and
SKIPPED rows that never fail the gate, and NO_DATA, which fails it: the current run has the
benchmark but no valid trial, e.g. its workers were abandoned by the watchdog), and a ``why``
saying what decided it.

The figure gated (``metric: auto``) is absolute ``ops_per_s`` when both runs come from the
same machine (``kprim_fingerprint``): interleaved repetitions of one machine compare directly,
and a ratio to another contender would add that contender's regimes (``std_mutex`` at
threads:2 is bimodal) to every point. Runs from different machines are gated on the same-run
ratio to the reference contender (``std_mutex``), paired by repetition; the reference itself
and families without it are SKIPPED there. A rule may force ``ratio`` or ``ops_per_s``. Two
callgrind files (``kbench_results.py callgrind``) are gated on instructions per operation,
exactly, with the rules' ``instructions_tolerance``.

The verdict rule is :func:`kprim_tools.stats.judge` (Hodges-Lehmann change, Mann-Whitney p,
regime-aware for multimodal points); its SAME band is max(tolerance, the A/A noise at the
point's family and thread count: the smaller of the two runs', :func:`kprim_tools.aa.pair_floor`). Tolerances come from the
versioned ``results/thresholds.json`` (format in results/SCHEMA.md).

UNKNOWN benchmarks, and SLOWER ones to confirm them, are re-measured by ``--rerun CMD`` at
most ``max_reruns`` times; the new repetitions are pooled with the current run's (a SLOWER
that the pooled repetitions no longer show is cleared: with hundreds of points one run's bad
draw would otherwise fail unchanged gates). Without ``--rerun`` the first verdicts stand.

**Paired re-runs** (``--rerun-baseline CMD`` with ``--rerun``, when the baseline's build is at
hand, as in CI with both commits built): each re-run measures the pending points with the
baseline's command and the current one back to back (their order alternating from one re-run
to the next), and the pending points are judged on these re-measurements alone, baseline
re-runs against current re-runs. Two runs taken minutes or hours apart differ by more than
the code: this VM's vCPUs move between host cores, and a whole family's figures shift
between two runs seconds apart with no change at all (1 of 10 unchanged gates raised an alarm
that way, a drift no within-run A/A control sees, since both twins move with it). Measured
side by side, the drift is common to both sides; a real slowdown is not. Besides the
UNKNOWN and SLOWER rows, paired re-runs re-measure the SAME rows the first runs do not show
equivalent: SAME only by an A/A floor wider than the tolerance, or SAME with an interval
reaching a slowdown beyond the tolerance (a first run drawn in a faster machine state than
its baseline hides a real slowdown of that size). A benchmark still UNKNOWN after that fails the gate unless its thresholds rule says
``informational: true`` (informational benchmarks are
reported and never fail it; ``--strict`` makes them count). An A/A twin (contender ``X_aa``
beside ``X``) is informational too: it is the noise control, and ``X``'s row gates the code
both run. So does an UNKNOWN whose one-sided 1 - alpha bound rules out a slowdown beyond its
band (undecided between SAME and FASTER: a gate guards against regressions; the bound is the
end of the 1 - 2 alpha interval, the one-sided test at level alpha). A baseline recorded with a fault
injection (context ``kprim_inject``) is refused; an injected current run is labelled INJECTED.
Exit status: 0 no regression, 1 regression (a SLOWER, NO_DATA or UNKNOWN left), 2 unusable
input.
"""

import os
import shlex
import subprocess
import tempfile

from . import KbenchError
from .emulation import refuse_emulated
from .compare import (INSTRUCTIONS, NO_DATA_IN_A, NO_DATA_IN_B, ONLY_IN_A, ONLY_IN_B, absolute,
                      cell, check_kinds, injection, judge_row, ratio, run_info, union_names)
from .aa import SUFFIX as AA_SUFFIX
from .aa import pair_floor, pooled_noise_floor
from .aa import pairs as aa_pairs
from .names import ere_escape, short
from .results import load
from .tables import fmt_change, fmt_p, pct, render
from .thresholds import informational, load_thresholds, remeasured, settings_for

NEW, MISSING, SKIPPED, NO_DATA = "NEW", "MISSING", "SKIPPED", "NO_DATA"
ORDER = ("SLOWER", NO_DATA, "UNKNOWN", "FASTER", NEW, MISSING, SKIPPED, "SAME")
#: Verdicts that fail the gate (unless the benchmark is informational).
FAILING = ("SLOWER", NO_DATA, "UNKNOWN")


class Gate:
    """Verdicts of one baseline/current pair, refined by pooling re-run repetitions."""

    def __init__(self, baseline, current, thresholds):
        """``baseline`` and ``current`` are Results; ``thresholds`` from :func:`load_thresholds`.

        Raises :class:`KbenchError` for an injected baseline (context ``kprim_inject``) and for
        an emulated run on either side (context ``kprim_emulated``: qemu-user timings).
        """
        refuse_emulated("gate", baseline, current)
        check_kinds(baseline, current)
        if injection(baseline):
            raise KbenchError(f"gate: baseline {baseline.path} is an INJECTED run (kprim_inject "
                              f"{injection(baseline)!r}); gate against a normal run")
        self.baseline, self.current, self.thresholds = baseline, current, thresholds
        self.same_machine = bool(baseline.fingerprint) and \
            baseline.fingerprint == current.fingerprint
        self.callgrind = baseline.callgrind and current.callgrind
        self.base_runs = [baseline.cases()]
        self.cur_runs = [current.cases()]
        #: Paired re-runs (:meth:`add_paired_rerun`): baseline and current re-measured together.
        self.base_fresh, self.cur_fresh = [], []
        #: Their A/A floor (:meth:`_fresh_noise`), recomputed once per paired re-run.
        self.fresh_floor = {}
        #: True when the re-runs are paired (run_gate sets it with --rerun-baseline): rows
        #: SAME only by a wide A/A floor are then re-measured too, and the re-runs carry the
        #: A/A pairs of the pending points' family and thread count (their own floor).
        self.paired = False
        self.noise = {} if self.callgrind else pair_floor(baseline, current, thresholds["alpha"])
        self.reruns = 0
        self.strict = False
        self.rows = {}
        for name in union_names(self.base_runs[0], self.cur_runs[0]):
            self.rows[name.base] = self._judge(name)

    def _metric(self, name, choice):
        """The Metric gating ``name`` under the rule's ``choice``, or ``None`` (not gateable)."""
        if self.callgrind:
            return INSTRUCTIONS
        reference = self.thresholds["reference"]
        has_ref = name.contender != reference and all(
            name.with_contender(reference).base in runs[0]
            for runs in (self.base_runs, self.cur_runs))
        if choice == "ratio" or (choice == "auto" and not self.same_machine):
            return ratio(reference) if has_ref else None
        return absolute() if self.same_machine else None

    def _judge(self, name, base_runs=None, cur_runs=None):
        """One gate row for benchmark ``name`` from the pooled runs (or from ``base_runs``
        against ``cur_runs``: the paired re-runs)."""
        tolerance, choice, ignore = settings_for(self.thresholds, name.base, self.callgrind)
        in_base, in_cur = name.base in self.base_runs[0], name.base in self.cur_runs[0]
        noise = self.noise.get((name.family, name.threads), 0.0)
        if base_runs is not None:
            noise = self._fresh_noise(name, noise)
        row = {"benchmark": name.base, "name": name, "metric": "-", "a": None, "b": None,
               "change": None, "p_value": None, "tolerance": tolerance, "noise": noise,
               "informational": informational(self.thresholds, name.base),
               "remeasure": remeasured(self.thresholds, name.base), "why": ""}
        stem = self._twin_of(name)
        if stem is not None:
            row["informational"], row["twin_of"] = True, stem
        metric = self._metric(name, choice)
        if not in_base or not in_cur:
            row["verdict"] = NEW if in_cur else MISSING
            row["why"] = "only in the current run" if in_cur else "not in the current run"
        elif ignore or metric is None:
            row["verdict"] = SKIPPED
            row["why"] = "ignored by thresholds rule" if ignore else \
                "no reference contender and different machines"
        else:
            judged = judge_row(name, metric, base_runs or self.base_runs,
                               cur_runs or self.cur_runs, tolerance, self.thresholds["alpha"],
                               noise)
            row.update(judged)
            row["noise"] = noise
            # SAME although beyond the tolerance: only the A/A floor of these runs, wider
            # than the tolerance, made it SAME (paired re-runs measure it again, pending()).
            row["floor_same"] = judged["verdict"] == "SAME" and judged["change"] is not None \
                and abs(judged["change"]) > tolerance
            # SAME although its interval reaches a slowdown of the tolerance's size: these
            # runs do not show the point equivalent (paired re-runs measure it again).
            # So is a SAME of a multimodal point whose regime shares moved by a slowdown of
            # that size (compared within regimes, a slowdown that shows as a shift of shares
            # towards the slow regime is SAME until the shares' test, on 5 + 5 repetitions,
            # reaches significance).
            same = judged["verdict"] == "SAME" and not metric.exact
            open_interval = same and not rules_out_slowdown(metric, judged, tolerance)
            row["mix_same"] = same and not open_interval \
                and mix_is_slowdown(metric, judged.get("mix_change"), tolerance)
            row["open_same"] = open_interval or row["mix_same"]
            # SAME with an interval inside the band but a change past half of it towards a
            # slowdown: what two first runs show when a baseline drawn in a slow machine state
            # hides a real slowdown beyond the band (20% injected at contended threads:2 read
            # +5.8% ns/op between the first runs, SAME, while the binary's probes measured
            # +20%). Paired re-runs measure it once more, back to back.
            row["lean_same"] = same and not row["open_same"] and judged["change"] is not None \
                and slowdown_sign(metric) * judged["change"] > tolerance / 2
            # An UNKNOWN that cannot be a slowdown beyond the band does not fail the gate: a
            # one-sided claim, tested at level alpha on its one-sided bound.
            row["no_slowdown"] = judged["verdict"] == "UNKNOWN" \
                and rules_out_slowdown(metric, judged, one_sided=True)
            row["no_slowdown_bound"] = slowdown_end(metric, judged, one_sided=True)
            # SLOWER with an interval wholly beyond the band: more samples would not make it
            # SAME. A SLOWER whose interval still reaches into the band is re-measured while
            # re-runs remain (pending()), so a drift just past the tolerance is not taken as
            # a confirmed slowdown after one re-run.
            row["decisive"] = judged["verdict"] == "SLOWER" \
                and (metric.exact or rules_out_within(metric, judged))
            if judged["verdict"] == NO_DATA_IN_B:
                row["verdict"] = NO_DATA
                row["why"] = "no valid trial in the current run (errors or abandoned workers)"
            elif judged["verdict"] in (ONLY_IN_A, ONLY_IN_B, NO_DATA_IN_A):
                row["verdict"] = SKIPPED
                row["why"] = "figure not measurable in both runs"
        return row

    def _twin_of(self, name):
        """The stem's base name when ``name`` is an A/A twin (contender ``X_aa`` with ``X``
        in the current run), else ``None``.

        A twin runs the stem's code: a change of the code moves both, and the stem's own row
        gates it. The twin's row is the noise control, reported but never failing the gate
        (unless ``--strict``): judged on its own it doubled the chances of an unchanged gate
        failing (an unchanged gate's one alarm in 10 was a twin UNKNOWN after 2 re-runs while
        its stem was SAME), and catches nothing its stem does not."""
        if not name.contender.endswith(AA_SUFFIX) or len(name.contender) <= len(AA_SUFFIX):
            return None
        stem = name.with_contender(name.contender[:-len(AA_SUFFIX)]).base
        return stem if stem in self.cur_runs[0] else None

    def _fresh_noise(self, name, fallback):
        """The A/A floor of the paired re-runs at ``name``'s family and thread count: the
        smaller of the two sides' floors, each over its re-runs' repetitions pooled
        (:func:`pooled_noise_floor`, the samples the row is judged on), else ``fallback``
        (the first runs' floor). The re-runs are judged on their own noise: a floor widened
        by a noisy first run (a loaded machine, minutes before) must not excuse what
        back-to-back re-runs resolve, nor a quiet first run's floor be applied to noisier
        re-runs."""
        return self.fresh_floor.get((name.family, name.threads), fallback)

    def unknown(self):
        """Parsed names of the benchmarks whose verdict is UNKNOWN."""
        return [row["name"] for row in self.rows.values() if row["verdict"] == "UNKNOWN"]

    def pending(self):
        """Parsed names the re-runs measure: UNKNOWN rows, and SLOWER rows not yet confirmed
        by a re-run (a slowdown seen in one run of hundreds of points may be that run's bad
        draw; pooled repetitions confirm or clear it). Informational rows, which cannot fail
        the gate, are not re-run unless :attr:`strict`. With paired re-runs (:attr:`paired`)
        a row SAME only by an A/A floor wider than its tolerance (``floor_same``: its change
        is beyond the tolerance) is re-measured too, in every paired re-run up to the bound:
        on a loaded machine a run's A/A floor can reach tens of percent, and a real slowdown
        inside it would pass unseen; one re-run's single A/A pair of 5+5 repetitions read
        ±12-18% at uncontended threads:1, and each further re-run pools more repetitions
        into the floor (:meth:`_fresh_noise`). So is a SAME row whose interval does not
        rule out a slowdown of its tolerance's size (``open_same``: low < -tolerance for
        ops/s): SAME says the change is small or not significant, not that the point is
        unchanged, and a real slowdown beyond the tolerance met a first run drawn in a faster
        machine state than its baseline (10% injected at uncontended threads:1 read +2.1%
        and +4.3% ns/op between the two first runs, both SAME with a 5% tolerance) while back
        to back the drift is common to both sides. It is re-measured in every paired re-run
        up to the bound while its interval stays open. So is a SAME row of a multimodal point
        whose regime shares moved by a slowdown beyond its tolerance (``mix_same``; 20% injected at
        contended threads:2 moved the shares 100%/0% -> 40%/60%, mix -17%, p=0.17 on 5 + 5
        repetitions: SAME within regimes, +0.8%).
        A SAME row whose change is past half its tolerance towards a slowdown, its interval
        inside the band (``lean_same``), is re-measured once: a baseline drawn in a slow
        machine state hid 20% injected at contended threads:2 that way (+5.8% ns/op between
        the first runs, probes +20%; 1 of the 3 misses in a batch of 10 on a noisy machine).
        A row whose thresholds say ``remeasure`` (the repository's default does) is re-measured
        once whatever its first verdict: on this VM two runs seconds apart differ by more than
        the tolerance (a 20% injection at contended threads:2 read -15%..+43% between the first
        runs of 20 trials, +11%..+32% on the paired re-runs; a baseline drawn 8% slow hid 10%
        injected at uncontended threads:1), so the first runs alone decide nothing.
        A FASTER row is re-measured once by paired re-runs as well: a bimodal point whose
        first current runs fell in its fast regime reads FASTER while it is slower within
        each regime (seen in 3 of 5 missed 20% slowdowns at contended threads:2).
        A SLOWER row is confirmed (and no longer re-measured) once a re-run's verdict is
        SLOWER with an interval wholly beyond its band (``decisive``, :func:`rules_out_within`);
        one whose interval still reaches into the band stays pending up to the bound: an
        unchanged gate failed on -5.2% at uncontended threads:1 (band ±5%, p=0.021) taken as
        confirmed after one paired re-run whose interval reached into the band."""
        return [row["name"] for row in self.rows.values()
                if (self.strict or not row["informational"])
                and (row["verdict"] == "UNKNOWN"
                     or (row["verdict"] == "SLOWER" and not row.get("confirmed"))
                     or (self.paired and (row.get("floor_same") or row.get("open_same")))
                     or (self.paired and not row.get("reruns")
                         and (row.get("lean_same") or row.get("remeasure")))
                     or (self.paired and not row.get("reruns") and row["verdict"] == "FASTER"))]

    def add_rerun(self, results):
        """Pool a re-run's repetitions into the current side and re-judge the pending rows.

        Raises :class:`KbenchError` when the re-run comes from another machine.
        """
        if results.fingerprint != self.current.fingerprint:
            raise KbenchError(f"{results.path}: re-run on machine {results.fingerprint!r}, "
                              f"current run was on {self.current.fingerprint!r}")
        self.cur_runs.append(results.cases())
        self.reruns += 1
        for name in self.pending():
            before = self.rows[name.base]
            row = self._judge(name)
            row["first_verdict"] = before.get("first_verdict", before["verdict"])
            row["confirmed"] = bool(row.get("decisive"))
            row["reruns"] = self.reruns
            self.rows[name.base] = row

    def add_paired_rerun(self, base_results, cur_results):
        """Add one paired re-run (the pending points measured by the baseline's command and
        the current one together) and re-judge the pending rows on the paired re-runs alone.
        A row the re-runs lack keeps its verdict.

        Raises :class:`KbenchError` when either re-run comes from another machine.
        """
        for results in (base_results, cur_results):
            if results.fingerprint != self.current.fingerprint:
                raise KbenchError(f"{results.path}: re-run on machine {results.fingerprint!r}, "
                                  f"current run was on {self.current.fingerprint!r}")
        self.base_fresh.append(base_results.cases())
        self.cur_fresh.append(cur_results.cases())
        alpha = self.thresholds["alpha"]
        sides = (pooled_noise_floor(self.base_fresh, alpha),
                 pooled_noise_floor(self.cur_fresh, alpha))
        self.fresh_floor = {key: min(f[key] for f in sides if key in f)
                            for key in set(sides[0]) | set(sides[1])}
        self.reruns += 1
        for name in self._with_twins(self.pending()):
            if not all(name.base in runs[-1] for runs in (self.base_fresh, self.cur_fresh)):
                continue
            before = self.rows[name.base]
            row = self._judge(name, self.base_fresh, self.cur_fresh)
            row["first_verdict"] = before.get("first_verdict", before["verdict"])
            row["first_same"] = before.get("first_same") or (
                "floor" if before.get("floor_same") else
                "mix" if before.get("mix_same") else
                "open" if before.get("open_same") else
                "lean" if before.get("lean_same") else
                "rule" if before.get("remeasure") else None)
            row["confirmed"] = bool(row.get("decisive"))
            row["reruns"] = self.reruns
            row["paired"] = True
            self.rows[name.base] = row

    def _with_twins(self, names):
        """``names`` and, after each, its A/A twin's row where the gate has one. The paired
        re-runs measure the twins of the pending points anyway (their floor,
        :meth:`rerun_filter`), so the twin is judged on the same re-runs as its stem: the
        report's noise control then speaks of the samples the stem's verdict rests on, not of
        the first runs alone (an unchanged gate passed while its first-run twin read SLOWER
        -9.8%, its stem SAME after 2 re-runs)."""
        out = []
        for name in names:
            out.append(name)
            twin = name.with_contender(name.contender + AA_SUFFIX)
            if self._twin_of(name) is None and twin.base in self.rows:
                out.append(twin)
        return out

    def finish(self, reruns_possible):
        """Say in ``why`` why a row is still UNKNOWN (after how many re-runs) and whether an
        informational row counts; call once, after the re-runs."""
        for row in self.rows.values():
            pooled = row.get("reruns", 0)
            how = "paired re-run(s) of baseline and current" if row.get("paired") \
                else "re-run(s) pooled"
            if row["verdict"] == "SLOWER" and row.get("confirmed"):
                row["why"] += f"; confirmed with {pooled} {how}"
            elif row["verdict"] == "SLOWER" and pooled:
                row["why"] += (f"; SLOWER after {pooled} {how}, its interval still reaching "
                               "into the band (re-runs bounded)")
            elif row.get("first_verdict") == "SLOWER" and row["verdict"] != "SLOWER":
                row["why"] += (f"; SLOWER in the current run alone, not confirmed with "
                               f"{pooled} {how}")
            elif row.get("first_verdict") == "FASTER" and pooled:
                row["why"] += f"; re-measured ({pooled} {how}): FASTER in the first runs"
            elif row.get("first_verdict") == "SAME" and pooled:
                row["why"] += f"; re-measured ({pooled} {how}): SAME in the first runs " + (
                    "only by their A/A floor" if row.get("first_same") == "floor" else
                    "with regime shares moved by a slowdown beyond the tolerance"
                    if row.get("first_same") == "mix" else
                    "with a change past half the band towards a slowdown"
                    if row.get("first_same") == "lean" else
                    "(its thresholds say remeasure: its figures drift between runs)"
                    if row.get("first_same") == "rule" else
                    "with an interval reaching a slowdown beyond the tolerance")
            if row["verdict"] == "UNKNOWN":
                if pooled:
                    row["why"] += f"; undecided after {pooled} re-run(s)"
                elif row["informational"] and not self.strict:
                    row["why"] += "; not re-run (informational)"
                elif not reruns_possible:
                    row["why"] += "; undecided, no re-run (give --rerun CMD)"
                else:
                    row["why"] += "; undecided (re-runs bounded at 0)"
            if row["verdict"] == "UNKNOWN" and row.get("no_slowdown"):
                row["why"] += (f"; its one-sided {1 - self.thresholds['alpha']:.0%} bound "
                               f"({pct(row['no_slowdown_bound'])}) rules out a slowdown beyond "
                               "the band: does not fail the gate")
            elif row.get("twin_of") and row["verdict"] in FAILING:
                row["why"] += (f"; A/A twin of {short(row['twin_of'])} (the noise control, "
                               "gated by that row): does not fail the gate")
            elif row["informational"] and row["verdict"] in FAILING:
                row["why"] += "; informational: does not fail the gate"

    def failing(self, strict=False):
        """Rows that fail the gate: SLOWER, NO_DATA or UNKNOWN, informational ones only when
        ``strict``. An UNKNOWN row whose one-sided bound rules out a slowdown beyond its band
        (:func:`rules_out_slowdown`: undecided between SAME and FASTER) fails only when
        ``strict``: a gate guards against regressions, and an unchanged gate's alarm in 10
        was such a row (+5.5% throughput, interval +2.0%..+11%, band ±10%)."""
        return [row for row in self.rows.values() if row["verdict"] in FAILING
                and (strict or not (row["informational"] or row.get("no_slowdown")))]

    def failed(self, strict=False):
        """True when a row fails the gate (see :meth:`failing`)."""
        return bool(self.failing(strict))

    def rerun_filter(self):
        """A Google Benchmark filter regex selecting the :meth:`pending` benchmarks (and the
        reference contender of those gated on a ratio to it)."""
        names = set()
        pending = self.pending()
        for name in pending:
            names.add(short(name.base))
            if self.rows[name.base]["metric"].startswith("ratio_to_"):
                names.add(short(name.with_contender(self.thresholds["reference"]).base))
        if self.paired:
            # The A/A pairs at the pending points' family and thread count: the paired
            # re-runs' own floor (_fresh_noise).
            keys = {(n.family, n.threads) for n in pending}
            for stem, twin_case in aa_pairs(self.cur_runs[0]):
                if (stem.name.family, stem.name.threads) in keys:
                    names.update((short(stem.name.base), short(twin_case.name.base)))
        return "^(" + "|".join(ere_escape(n) for n in sorted(names)) + ")(/.*)?$"


def slowdown_sign(metric):
    """-1 for a higher-is-faster metric (``words`` FASTER, SLOWER: a slowdown is a negative
    change), +1 for a lower-is-faster one (instructions), 0 for one without a direction."""
    return -1 if metric.words[1] == "SLOWER" else 1 if metric.words[0] == "SLOWER" else 0


def _interval(judged, one_sided=False):
    """``(low, high)`` of a judged row (with ``one_sided`` its 1 - 2 alpha interval
    ``low1``..``high1``), or ``None`` when the interval is unbounded."""
    low, high = (judged.get("low1"), judged.get("high1")) if one_sided else \
        (judged.get("low"), judged.get("high"))
    return None if low is None or high is None else (low, high)


def _band(judged, bound):
    """``bound``, or the judged row's own band when ``bound`` is ``None``."""
    return judged.get("bound") if bound is None else bound


def slowdown_end(metric, judged, one_sided=False):
    """The end of a judged row's interval on the slowdown side: ``low`` for a higher-is-faster
    metric, ``high`` for a lower-is-faster one; with ``one_sided`` the 1 - 2 alpha interval's
    (``low1``/``high1``: alone, a one-sided 1 - alpha bound). ``None`` when the interval is
    unbounded or the metric has no direction."""
    sign, got = slowdown_sign(metric), _interval(judged, one_sided)
    if not sign or got is None:
        return None
    return got[0] if sign < 0 else got[1]


def rules_out_slowdown(metric, judged, bound=None, one_sided=False):
    """True when the interval ``low``..``high`` of a judged row lies wholly on the side of
    ``bound`` (default: its band) that is not a slowdown: for a higher-is-faster metric
    low >= -bound, for a lower-is-faster one high <= bound. An unbounded interval rules out
    nothing. With ``one_sided`` the bound checked is the one-sided 1 - alpha bound on the
    slowdown side (:func:`slowdown_end` of the 1 - 2 alpha interval): the test at level
    alpha of "no slowdown beyond the band" (one of the two one-sided tests of equivalence
    testing), where the 1 - alpha interval's end would test it at alpha / 2."""
    end, bound = slowdown_end(metric, judged, one_sided), _band(judged, bound)
    if end is None or bound is None:
        return False
    return end >= -bound if slowdown_sign(metric) < 0 else end <= bound


def rules_out_within(metric, judged, bound=None):
    """True when the interval ``low``..``high`` of a judged row lies wholly beyond ``bound``
    (default: its band) on the slowdown side: for a higher-is-faster metric high < -bound,
    for a lower-is-faster one low > bound. An unbounded interval rules out nothing."""
    sign, got, bound = slowdown_sign(metric), _interval(judged), _band(judged, bound)
    if not sign or got is None or bound is None:
        return False
    low, high = got
    return high < -bound if sign < 0 else low > bound


def mix_is_slowdown(metric, mix, tolerance):
    """True when ``mix``, the change of a multimodal point's regime mix (``None`` for a
    unimodal one), is a slowdown beyond ``tolerance`` in ``metric``'s direction."""
    sign = slowdown_sign(metric)
    return bool(sign) and mix is not None and sign * mix > tolerance


def rerun_once(gate, command, workdir, label="rerun"):
    """Run the re-run ``command`` for the UNKNOWN benchmarks; return the new Results.

    ``{filter}`` and ``{out}`` in ``command`` are replaced (shell-quoted) by the filter regex
    and the JSON path the command must write; both are also in the environment as
    ``KBENCH_GATE_FILTER`` and ``KBENCH_GATE_OUT``. Raises :class:`KbenchError` when the
    command fails (its last stderr line is quoted) or writes no usable file. The command's
    own output is captured, so the gate's stdout stays the report.
    """
    out = os.path.join(workdir, f"{label}-{gate.reruns + 1}.json")
    flt = gate.rerun_filter()
    shell = command.replace("{filter}", shlex.quote(flt)).replace("{out}", shlex.quote(out))
    env = dict(os.environ, KBENCH_GATE_FILTER=flt, KBENCH_GATE_OUT=out)
    done = subprocess.run(shell, shell=True, env=env, capture_output=True, text=True,
                          errors="replace", check=False)
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or [""])[-1][:200]
        raise KbenchError(f"gate: re-run command exited with status {done.returncode}"
                          + (f" ({said})" if said else ""))
    return load(out)


def markdown_report(gate, strict=False):
    """The Markdown pull-request comment of a finished :class:`Gate`."""
    rows = sorted(gate.rows.values(), key=lambda r: (ORDER.index(r["verdict"]), r["benchmark"]))
    counts = {v: sum(1 for r in rows if r["verdict"] == v) for v in ORDER}
    failed = gate.failed(strict)
    status = "FAIL: performance regression" if failed else "PASS: no regression"
    inject = injection(gate.current)
    if inject:
        status += f" (current run INJECTED: kprim_inject {inject})"
    base, cur = run_info(gate.baseline), run_info(gate.current)
    floor = ", ".join(f"{f} threads:{t} {v:.1%}" for (f, t), v in sorted(gate.noise.items()))
    lines = [f"## kbench gate: {status}", "",
             " · ".join(f"{counts[v]} {v}" for v in ORDER if counts[v]), "",
             f"- baseline: `{base['path']}` ({base['machine_id']}, git {base['git_sha']})",
             f"- current: `{cur['path']}` ({cur['machine_id']}, git {cur['git_sha']})"
             + (f", pooled with {gate.reruns} re-run(s)" if gate.reruns else "")
             + (f" - **INJECTED** run (kprim_inject `{inject}`)" if inject else ""),
             f"- {'same machine' if gate.same_machine else 'different machines'}; thresholds "
             f"`{gate.thresholds['path']}` (version {gate.thresholds['version']}), "
             + ("callgrind instructions per operation, compared exactly" if gate.callgrind else
                f"alpha {gate.thresholds['alpha']}; "
                + ("absolute ops/s" if gate.same_machine else
                   f"ratios to `{gate.thresholds['reference']}` in the same run")),
             ]
    if not gate.callgrind:
        lines.append("- A/A noise, the smaller of the two runs' (floor of SAME): " + (
            floor or "no A/A control pair in the current run, tolerance only"))
    lines.append("")

    def table(selected):
        """The report's Markdown table of ``selected`` rows."""
        return render(["verdict", "benchmark", "figure", "baseline", "current", "change", "p",
                       "why"],
                      [[r["verdict"], short(r["benchmark"]), r["metric"], cell(r["a"]),
                        cell(r["b"]), fmt_change(r["change"]), fmt_p(r["p_value"]), r["why"]]
                       for r in selected], markdown=True)

    notable = [r for r in rows if r["verdict"] != "SAME"]
    same = [r for r in rows if r["verdict"] == "SAME"]
    if notable:
        lines += [table(notable), ""]
    if same:
        lines += [f"<details><summary>{len(same)} SAME</summary>", "", table(same), "",
                  "</details>", ""]
    lines.append("Verdict rule (results/SCHEMA.md): change = Hodges-Lehmann ratio of current to "
                 "baseline repetitions; SLOWER/FASTER beyond ±max(tolerance, A/A noise) "
                 "with Mann-Whitney p < alpha; SAME within it unless significant with an "
                 "interval reaching past it; UNKNOWN otherwise. UNKNOWN and SLOWER points are "
                 "re-run (pooled; SLOWER to confirm; with paired re-runs also SAME points "
                 "whose interval reaches a slowdown beyond the tolerance or that only the A/A "
                 "floor made SAME, judged on the paired re-runs); UNKNOWN left fails unless "
                 "informational (A/A twins X_aa are: X's row gates their code) or its "
                 "one-sided 1 - alpha bound (the 1 - 2 alpha interval's end) rules out a "
                 "slowdown beyond the band. "
                 "Multimodal points are compared within regimes and on regime shares.")
    return "\n".join(lines)


def run_gate(args):
    """``kbench gate`` from parsed arguments; returns the exit status (0, 1; 2 via errors)."""
    if getattr(args, "rerun_baseline", None) and not args.rerun:
        raise KbenchError("gate: --rerun-baseline needs --rerun (the current side's command)")
    thresholds = load_thresholds(args.thresholds)
    gate = Gate(load(args.baseline), load(args.current), thresholds)
    gate.strict = bool(args.strict)
    limit = thresholds["max_reruns"] if args.max_reruns is None else args.max_reruns
    gate.paired = bool(args.rerun and getattr(args, "rerun_baseline", None))
    if args.rerun:
        with tempfile.TemporaryDirectory(prefix="kbench-gate-") as workdir:
            while gate.pending() and gate.reruns < limit:
                if getattr(args, "rerun_baseline", None):
                    # Alternate which side goes first, so neither always runs on the warmer
                    # (or the more disturbed) half of the pair.
                    sides = [("baseline", args.rerun_baseline), ("current", args.rerun)]
                    if gate.reruns % 2:
                        sides.reverse()
                    got = {side: rerun_once(gate, cmd, workdir, side) for side, cmd in sides}
                    gate.add_paired_rerun(got["baseline"], got["current"])
                else:
                    gate.add_rerun(rerun_once(gate, args.rerun, workdir))
    gate.finish(bool(args.rerun))
    text = markdown_report(gate, args.strict)
    if args.report:
        try:
            with open(args.report, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
        except OSError as err:
            raise KbenchError(f"cannot write {args.report}: {err.strerror or err}") from None
    print(text)
    return 1 if gate.failed(args.strict) else 0
