"""Plain-text and Markdown tables, and number formatting shared by every report."""

import math


def fmt_number(value, digits=3):
    """Format a float with ``digits`` significant digits; ``-`` for ``None``/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:.{decimals}f}"


def fmt_change(change):
    """Format a relative change as a signed percentage (``+12.5%``); ``-`` for ``None``."""
    return "-" if change is None else f"{change * 100:+.1f}%"


def pct(value):
    """A relative change as a signed whole-percent string (``-23%``)."""
    return f"{value * 100:+.0f}%" if abs(value) >= 0.0995 else f"{value * 100:+.1f}%"


def fmt_p(p_value):
    """Format a p-value with two significant digits; ``-`` for ``None``."""
    return "-" if p_value is None else f"{p_value:.2g}"


def fmt_summary(summary):
    """``median (n=N)`` of a summary dict (see ``Summary.as_dict``); ``-`` for ``None``."""
    if summary is None:
        return "-"
    return f"{fmt_number(summary['median'])} (n={summary['n']})"


def render(headers, rows, markdown=False, title=None):
    """Render ``rows`` (lists of strings) under ``headers`` as aligned text or Markdown.

    Columns after the first are right-aligned. ``title`` becomes a heading line (``### title``
    in Markdown). Returns the text without a trailing newline.
    """
    rows = [[str(c) for c in row] for row in rows]
    lines = []
    if markdown:
        if title:
            lines += [f"### {title}", ""]
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "|".join([":---"] + ["---:"] * (len(headers) - 1)) + "|")
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]

    def line(cells):
        """One aligned row."""
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    if title:
        lines.append(title)
    lines.append(line([str(h) for h in headers]))
    lines.append("  ".join("-" * w for w in widths))
    lines += [line(row) for row in rows]
    return "\n".join(lines)
