"""``kbench report``: a static HTML page per machine, ``plots/<machine-id>/index.html``.

The page embeds the PNGs of :mod:`kprim_tools.plots` by relative path (so the directory can
be copied or served as is), with the machine's facts, the summary tables (a multimodal point
shows its modes, ``bimodal: 130 (60%) | 23 (40%)``, never a bare median) and the A/A table
when the run has control pairs. A run recorded with a fault injection is labelled INJECTED.
It needs no server and no script.
"""

import glob
import html
import os

from . import KbenchError
from . import plots
from .names import RUN_FILE
from .results import load
from .summary import headline, multimodal_note, oversubscribed_note, summary_tables

#: Context keys shown in the report's machine table, in this order.
FACTS = ("kprim_machine_id", "kprim_cpu_model", "kprim_packages", "kprim_cores", "kprim_pus",
         "kprim_smt", "kprim_caches", "kprim_memory_gib", "kprim_kernel", "kprim_glibc",
         "kprim_compiler", "kprim_build_type", "kprim_sanitizer", "kprim_governor",
         "kprim_turbo", "kprim_thp", "kprim_pin", "kprim_trial_ms", "kprim_git_sha",
         "kprim_git_dirty", "kprim_families", "kprim_run_args", "kprim_peers", "date")

STYLE = """body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px}
td{text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}
h2{border-bottom:1px solid #ddd}table.facts td{text-align:left}
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


def render_html(results, images):
    """The report page for ``results``; ``images`` are PNG paths in the page's directory."""
    esc = html.escape
    title = f"kprim results: {results.machine_id}"
    inject = str(results.context.get("kprim_inject") or "").strip()
    if inject:
        title += " (INJECTED)"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}"
             f"</title><style>{STYLE}</style></head><body><h1>{esc(title)}</h1>",
             f"<p>From <code>{esc(results.path)}</code>.</p>"
             + (f"<p class='injected'><strong>INJECTED run</strong>: fault injection "
                f"<code>kprim_inject={esc(inject)}</code>; its figures are not a normal run's."
                "</p>" if inject else ""),
             "<h2>Machine and run</h2>",
             _table(["key", "value"], [[k, results.context[k]] for k in FACTS
                                      if k in results.context], "facts")]
    tables = summary_tables(results)
    parts.append(f"<h2>Summary</h2><p>{esc(headline(results, 'ops_per_s'))}</p>")
    for table_title, headers, rows in tables:
        parts.append(f"<h3>{esc(table_title)}</h3>{_table(headers, rows)}")
    for note in (oversubscribed_note(results, tables), multimodal_note(tables)):
        if note:
            parts.append(f"<p>{esc(note)}</p>")
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
    parts.append("<h2>Plots</h2><p>Medians over repetitions; error bars span min..max; the "
                 "shaded region has more threads than the machine has PUs. Hollow markers "
                 "joined by dots are the modes of a multimodal point (size by share).</p>")
    for image in images:
        name = os.path.basename(image)
        parts.append(f"<h3>{esc(name[:-4])}</h3><img src='{esc(name)}' alt='{esc(name)}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def build_report(path, out, root):
    """Render plots and ``index.html`` for one results file; return the page's path.

    ``path`` defaults to the newest run under ``<root>/results``; ``out`` to
    ``<root>/plots/<machine-id>``.
    """
    results = load(path or newest_run(os.path.join(root, "results")))
    out = out or os.path.join(root, "plots", results.machine_id)
    images = plots.render_all(results, out)
    page = os.path.join(out, "index.html")
    try:
        with open(page, "w", encoding="utf-8") as handle:
            handle.write(render_html(results, images))
    except OSError as err:
        raise KbenchError(f"cannot write {page}: {err.strerror or err}") from None
    return page
