"""``kbench report``: a static HTML page per machine, ``plots/<machine-id>/index.html``.

The page puts the plots first: a table of contents by family at the top, then per family
its PNGs (:mod:`kprim_tools.plots`, embedded by relative path so the directory can be copied
or served as is) and a compact table of winners: per workload, parameters and thread count
the fastest contender, its margin over the runner-up with both spreads (min..max over the
repetitions) and regime flags (``bimodal`` from :func:`kprim_tools.stats.find_modes`;
``overlap`` when the spreads overlap, so the margin is not resolved), and a history
sparkline of the winner from the results store (:mod:`kprim_tools.store`) when one holds two
or more runs of this machine. The machine's facts, the A/A table and every median (a
multimodal point shows its modes, never a bare median) follow, the medians folded away.
A run recorded with a fault injection is labelled INJECTED. An emulated run (context
``kprim_emulated``, e.g. an arm64 build under qemu-user) is labelled EMULATED and its page
lists what ran and the machine, with no plots, winners or medians: its timings are the
emulator's. It needs no server and no script.
"""

import glob
import html
import os

from . import KbenchError
from . import plots
from .emulation import describe, emulated
from .names import RUN_FILE
from .results import curves, format_params, load
from .stats import find_modes, summarize
from .summary import headline, multimodal_note, oversubscribed_note, summary_tables
from .tables import fmt_number

#: Context keys shown in the report's machine table, in this order.
FACTS = ("kprim_machine_id", "kprim_cpu_model", "kprim_packages", "kprim_cores", "kprim_pus",
         "kprim_smt", "kprim_caches", "kprim_memory_gib", "kprim_kernel", "kprim_glibc",
         "kprim_arch", "kprim_kernel_arch", "kprim_emulated", "kprim_lse",
         "kprim_compiler", "kprim_build_type", "kprim_sanitizer", "kprim_governor",
         "kprim_turbo", "kprim_thp", "kprim_pin", "kprim_trial_ms", "kprim_git_sha",
         "kprim_git_dirty", "kprim_families", "kprim_run_args", "kprim_peers", "date")

STYLE = """body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px}
td{text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}
h2{border-bottom:1px solid #ddd;margin-top:1.2em}h1{font-size:1.4em;margin:.3em 0}
nav{font-size:.9em;line-height:1.5;margin:.3em 0 .8em}nav b{display:inline-block;min-width:5em}
p.lead{margin:.2em 0;font-size:.9em}td.flags{color:#a33}svg.spark{vertical-align:middle}table.facts td{text-align:left}
table.facts td+td{overflow-wrap:anywhere}table.facts td:first-child{white-space:nowrap}"""


def newest_run(results_dir):
    """Path of the newest ``<stamp>-<sha>.json`` under ``results_dir`` (by stamp).

    Raises :class:`KbenchError` when there is none.
    """
    found = [(RUN_FILE.match(os.path.basename(p)), p)
             for p in glob.glob(os.path.join(results_dir, "**", "*.json"), recursive=True)]
    found = [(m["stamp"], p) for m, p in found if m]
    if not found:
        raise KbenchError(f"report: no results file under {results_dir}; run ./kbench run "
                          "or name a file")
    return max(found)[1]


def _table(headers, rows, css_class=None):
    """An HTML table (cells escaped), with ``css_class`` when given."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    attr = f" class='{css_class}'" if css_class else ""
    return f"<table{attr}><tr>{head}</tr>{body}</table>"


def _family_of(image):
    """The family an image of :func:`kprim_tools.plots.render_all` belongs to."""
    return os.path.basename(image).split("_", 1)[0]


def _spread(summary):
    """``median (min..max)`` in Mops/s of a :class:`~kprim_tools.stats.Summary`."""
    return (f"{fmt_number(summary.median / 1e6)} ({fmt_number(summary.low / 1e6)}.."
            f"{fmt_number(summary.high / 1e6)})")


def _regime(values):
    """``bimodal``/``3 modes``... when ``values`` fall into several regimes, else ``""``."""
    modes = find_modes(values)
    if not modes.multimodal:
        return ""
    return "bimodal" if len(modes.modes) == 2 else f"{len(modes.modes)} modes"


#: Contenders that are ceilings, not candidates (no lock at all): never a winner.
CEILINGS = ("nolock",)
# Contenders that exclude nobody (bench_locks' ``exclusive = false``): a bare atomic RMW is
# the ceiling a lock is measured against, not a lock that can win, except in its own family.
NONEXCLUSIVE = {"atomic_fetch_add": "atomics"}


def candidate(contender, family=None):
    """True when ``contender`` may win in ``family``: not a ceiling (``nolock``, or an
    operation that excludes nobody outside its own family), not an A/A twin (``X_aa``)."""
    from .aa import SUFFIX
    if contender in NONEXCLUSIVE and family != NONEXCLUSIVE[contender]:
        return False
    return contender not in CEILINGS and not contender.endswith(SUFFIX)


def winners(results):
    """Per (family, workload, params) and thread count, the fastest contender by median
    ops/s. Returns ``{family: [row]}``, a row a dict with ``group`` (workload and
    parameters), ``threads``, ``winner``, ``win`` (its Summary), ``runner``/``second``
    (``None`` when alone), ``margin`` (winner/runner-up - 1), ``flags`` and ``name`` (the
    winner's benchmark name, for its history)."""
    cases = results.cases()
    names = {id(case): key for key, case in cases.items()}
    out = {}
    for (family, workload, params), contenders in curves(cases).items():
        threads = sorted({t for per in contenders.values() for t in per})
        for t in threads:
            ranked = []
            for contender, per in contenders.items():
                if t in per and candidate(contender, family):
                    values = per[t].values("ops_per_s")
                    s = summarize(values)
                    if s is not None:
                        ranked.append((s.median, contender, s, values, per[t]))
            if not ranked:
                continue
            ranked.sort(key=lambda r: -r[0])
            _, winner, win, win_values, case = ranked[0]
            flags = []
            row = {"group": workload + (f" [{format_params(params)}]" if params else ""),
                   "threads": t, "winner": winner, "win": win, "runner": None,
                   "second": None, "margin": None, "name": names.get(id(case))}
            regime = _regime(win_values)
            if regime:
                flags.append(f"winner {regime}")
            if len(ranked) > 1:
                _, runner, second, second_values, _ = ranked[1]
                row.update(runner=runner, second=second,
                           margin=win.median / second.median - 1 if second.median else None)
                regime = _regime(second_values)
                if regime:
                    flags.append(f"runner-up {regime}")
                if win.low <= second.high:
                    flags.append("overlap")
            if results.pus and t > results.pus:
                flags.append("oversubscribed")
            row["flags"] = ", ".join(flags)
            out.setdefault(family, []).append(row)
    return out


def history_source(results, url=None):
    """``(series, note)``: a function ``benchmark name -> [(stamp, ops/s)]`` from the
    results store for this run's machine, or ``None`` with the reason when there is no
    store (none configured and no default file, the module missing, or it cannot be read):
    the report then has no sparklines, never an error."""
    try:
        from . import store as store_module
    except ImportError:
        return None, "no results store module"
    where = store_module.resolve_url(url)
    if "://" not in where and not where.startswith("sqlite:") and not os.path.exists(where):
        return None, f"no results store ({where}); ./kbench ingest fills one"
    try:
        store = store_module.open_store(where)
    except Exception as err:  # pylint: disable=broad-except
        return None, f"results store unavailable: {err}"
    fingerprint = results.fingerprint or results.machine_id

    def series(name):
        """The stored history of one benchmark on this machine (``[]`` on failure)."""
        try:
            return store.series(fingerprint, name)
        except Exception:  # pylint: disable=broad-except
            return []
    return series, None


def sparkline(points, width=110, height=22):
    """A small inline SVG of ``[(stamp, value)]`` (oldest first), the newest as a dot;
    ``""`` for fewer than two points. Its tooltip names the span and the range."""
    if len(points) < 2:
        return ""
    values = [v for _, v in points]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - 4) / (len(values) - 1)
    xy = [(2 + i * step, height - 2 - (v - low) / span * (height - 4))
          for i, v in enumerate(values)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    tip = (f"{len(points)} runs {points[0][0]}..{points[-1][0]}: "
           f"{fmt_number(low / 1e6)}..{fmt_number(high / 1e6)} Mops/s")
    return (f"<svg class='spark' width='{width}' height='{height}' role='img'>"
            f"<title>{html.escape(tip)}</title><polyline fill='none' stroke='#0072B2' "
            f"stroke-width='1.2' points='{line}'/><circle cx='{xy[-1][0]:.1f}' "
            f"cy='{xy[-1][1]:.1f}' r='2' fill='#D55E00'/></svg>")


def _winner_table(rows, series):
    """The HTML winners table of one family (sparkline cells raw SVG, others escaped)."""
    esc = html.escape
    head = ["workload [parameters]", "threads", "winner", "Mops/s (min..max)", "margin",
            "runner-up", "Mops/s (min..max)", "flags"] + (["history"] if series else [])
    out = ["<table class='winners'><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head)
           + "</tr>"]
    for row in rows:
        cells = [row["group"], row["threads"], row["winner"], _spread(row["win"]),
                 "-" if row["margin"] is None else f"{row['margin']:+.1%}",
                 row["runner"] or "-", _spread(row["second"]) if row["second"] else "-"]
        tds = "".join(f"<td>{esc(str(c))}</td>" for c in cells)
        tds += f"<td class='flags'>{esc(row['flags'])}</td>"
        if series:
            tds += f"<td>{sparkline(series(row['name'])) if row['name'] else ''}</td>"
        out.append(f"<tr>{tds}</tr>")
    return "".join(out) + "</table>"


def render_html(results, images, series=None, history_note=None):
    """The report page for ``results``; ``images`` are PNG paths in the page's directory.

    ``series`` (benchmark name -> ``[(stamp, ops/s)]``) adds history sparklines;
    ``history_note`` says why there are none.
    """
    esc = html.escape
    title = f"kprim results: {results.machine_id}"
    inject = str(results.context.get("kprim_inject") or "").strip()
    if inject:
        title += " (INJECTED)"
    by_family = {}
    for image in images:
        by_family.setdefault(_family_of(image), []).append(os.path.basename(image))
    table_of_winners = winners(results)
    families = list(dict.fromkeys(list(by_family) + list(table_of_winners)))
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}"
             f"</title><style>{STYLE}</style></head><body><h1>{esc(title)}</h1>",
             f"<p class='lead'>{esc(headline(results, 'ops_per_s'))}; from "
             f"<code>{esc(results.path)}</code>. Plots: medians over repetitions, error bars "
             "min..max, shaded: more threads than PUs, hollow markers: the modes of a "
             "multimodal point; at most 8 lines a plot (more contenders: numbered groups, "
             "fastest first); latency panels only above the clock's resolution (median "
             f"&ge; {plots.RESOLVED_TICKS} ticks). <a href='#machine'>Machine and run</a>.</p>"
             + (f"<p class='injected'><strong>INJECTED run</strong>: fault injection "
                f"<code>kprim_inject={esc(inject)}</code>; its figures are not a normal run's."
                "</p>" if inject else "")]
    toc = []
    for family in families:
        links = [f"<a href='#{esc(family)}'>{esc(family)}</a>"]
        workloads = dict.fromkeys(r["group"].split(" [", 1)[0]
                                  for r in table_of_winners.get(family, []))
        toc.append(f"<b>{links[0]}</b> " + ", ".join(esc(w) for w in workloads))
    parts.append("<nav>" + "<br>".join(toc) + "</nav>")
    for family in families:
        parts.append(f"<h2 id='{esc(family)}'>{esc(family)}</h2>")
        for name in by_family.get(family, []):
            parts.append(f"<img src='{esc(name)}' alt='{esc(name[:-4])}' loading='eager'>")
        if family in table_of_winners:
            parts.append(f"<h3>{esc(family)}: winners</h3><p class='lead'>Margin: winner over "
                         "runner-up, medians (ceilings such as nolock and A/A twins X_aa do "
                         "not compete); overlap: their min..max spreads overlap, the "
                         "order is not resolved.</p>")
            parts.append(_winner_table(table_of_winners[family], series))
    if history_note:
        parts.append(f"<p class='lead'>History: {esc(history_note)}.</p>")
    parts += ["<h2 id='machine'>Machine and run</h2>",
              _table(["key", "value"], [[k, results.context[k]] for k in FACTS
                                       if k in results.context], "facts")]
    from .aa import pair_rows, repository_tolerances, table_rows
    aa_rows = table_rows(pair_rows(results, tolerance_for=repository_tolerances()))
    if aa_rows:
        parts.append("<h2>A/A controls</h2><p>Each family's control contender X against its "
                     "twin X_aa (identical code): what this machine cannot resolve.</p>")
        parts.append(_table(["family", "threads", "pairs", "A/A change", "resolvable",
                             "verdict", "meaning"],
                            [[r["family"], r["threads"], r["pairs"],
                              "-" if r["change"] is None else f"{r['change']:+.1%}",
                              f"{r['resolvable']:.1%}", r["verdict"], r["note"]]
                             for r in aa_rows]))
    tables = summary_tables(results)
    parts.append("<h2>All medians</h2><details><summary>every contender at every thread "
                 f"count, {len(tables)} tables (Mops/s)</summary>")
    for table_title, headers, rows in tables:
        parts.append(f"<h3>{esc(table_title)}</h3>{_table(headers, rows)}")
    for note in (oversubscribed_note(results, tables), multimodal_note(tables)):
        if note:
            parts.append(f"<p>{esc(note)}</p>")
    parts.append("</details></body></html>")
    return "\n".join(parts)


def render_emulated(results):
    """The page for an emulated run: the EMULATED label, why there are no figures, the
    benchmarks that ran (names only) and the machine table; no timing anywhere."""
    esc = html.escape
    title = f"kprim results: {results.machine_id} (EMULATED)"
    names = sorted({name.base for name in results.names})
    return "\n".join([
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}"
        f"</title><style>{STYLE}</style></head><body><h1>{esc(title)}</h1>",
        f"<p class='emulated'><strong>EMULATED run</strong>: {esc(describe(results))} "
        "(<code>kprim_emulated=yes</code>, e.g. qemu-user). Its timings measure the emulator's "
        "instruction translation, and the emulator keeps the host's memory ordering, so this "
        "page shows no figures: it proves only that the benchmarks ran. From "
        f"<code>{esc(results.path)}</code>.</p>",
        f"<h2>Benchmarks that ran ({len(names)})</h2><details><summary>names</summary>"
        + "<br>".join(esc(n) for n in names) + "</details>",
        "<h2 id='machine'>Machine and run</h2>",
        _table(["key", "value"], [[k, results.context[k]] for k in FACTS
                                 if k in results.context], "facts"),
        "</body></html>"])


def build_report(path, out, root, store=None):
    """Render plots and ``index.html`` for one results file; return the page's path.

    ``path`` defaults to the newest run under ``<root>/results``; ``out`` to
    ``<root>/plots/<machine-id>``; ``store`` (a URL, default ``$KBENCH_STORE`` or
    ``results/kbench.sqlite`` when it exists) supplies the history sparklines.
    """
    results = load(path or newest_run(os.path.join(root, "results")))
    out = out or os.path.join(root, "plots", results.machine_id)
    if emulated(results):
        os.makedirs(out, exist_ok=True)
        text = render_emulated(results)
    else:
        images = plots.render_all(results, out)
        series, note = history_source(results, store)
        text = render_html(results, images, series, note)
    page = os.path.join(out, "index.html")
    try:
        with open(page, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as err:
        raise KbenchError(f"cannot write {page}: {err.strerror or err}") from None
    return page
