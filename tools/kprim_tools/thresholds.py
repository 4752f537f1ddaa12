"""``results/thresholds.json``: read, validate and look up the gate's per-benchmark settings.

Shared by the gate, the A/A table and bisect (format in results/SCHEMA.md), below all three
in the package's import graph: it imports only :mod:`kprim_tools.names` and the package's
:class:`KbenchError`.
"""

import json
import os
import re

from . import THRESHOLDS_VERSION, KbenchError
from .names import ROOT

#: The repository's thresholds file, the default of every ``--thresholds`` option.
REPOSITORY_THRESHOLDS = os.path.join(ROOT, "results", "thresholds.json")


def _check(cond, path, message):
    """Raise ``KbenchError("<path>: <message>")`` unless ``cond``."""
    if not cond:
        raise KbenchError(f"{path}: {message}")


def _check_params(obj, path, where):
    """Validate the per-benchmark keys shared by ``default`` and rules."""
    _check(isinstance(obj, dict), path, f"{where} must be an object")
    tol = obj.get("tolerance", 0.1)
    _check(isinstance(tol, (int, float)) and not isinstance(tol, bool) and 0 <= tol < 10,
           path, f"{where}.tolerance must be a number in [0, 10)")
    _check(obj.get("metric", "auto") in ("auto", "ratio", "ops_per_s"), path,
           f"{where}.metric must be auto, ratio or ops_per_s")
    itol = obj.get("instructions_tolerance", 0.01)
    _check(isinstance(itol, (int, float)) and not isinstance(itol, bool) and 0 <= itol < 10,
           path, f"{where}.instructions_tolerance must be a number in [0, 10)")
    _check(isinstance(obj.get("ignore", False), bool), path, f"{where}.ignore must be true/false")
    _check(isinstance(obj.get("informational", False), bool), path,
           f"{where}.informational must be true/false")
    _check(isinstance(obj.get("remeasure", False), bool), path,
           f"{where}.remeasure must be true/false")


def load_thresholds(path):
    """Read and validate a thresholds file; return it with rule regexes compiled.

    Raises :class:`KbenchError` for a missing or malformed file, a ``thresholds_version``
    newer than :data:`THRESHOLDS_VERSION`, or a bad key.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except OSError as err:
        raise KbenchError(f"cannot read thresholds {path}: {err.strerror or err}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise KbenchError(f"{path}: malformed thresholds JSON ({err})") from None
    _check(isinstance(doc, dict), path, "thresholds must be a JSON object")
    version = doc.get("thresholds_version")
    _check(isinstance(version, int) and not isinstance(version, bool), path,
           "needs an integer thresholds_version")
    _check(version <= THRESHOLDS_VERSION, path,
           f"thresholds_version {version} is newer than this tool's {THRESHOLDS_VERSION}")
    alpha, reruns = doc.get("alpha", 0.05), doc.get("max_reruns", 2)
    _check(isinstance(alpha, (int, float)) and 0 < alpha < 1, path, "alpha must be in (0, 1)")
    _check(isinstance(reruns, int) and 0 <= reruns <= 20, path,
           "max_reruns must be an integer in [0, 20]")
    _check(isinstance(doc.get("reference", "std_mutex"), str), path, "reference must be a string")
    _check_params(doc.get("default", {}), path, "default")
    rules = doc.get("rules", [])
    _check(isinstance(rules, list), path, "rules must be a list")
    compiled = []
    for i, rule in enumerate(rules):
        _check_params(rule, path, f"rules[{i}]")
        _check(isinstance(rule.get("match"), str), path, f"rules[{i}] needs a 'match' regex")
        try:
            compiled.append((re.compile(rule["match"]), rule))
        except re.error as err:
            raise KbenchError(f"{path}: rules[{i}].match: bad regex: {err}") from None
    return {"path": path, "version": version, "alpha": float(alpha), "max_reruns": reruns,
            "reference": doc.get("reference", "std_mutex"),
            "default": doc.get("default", {}), "rules": compiled}


def settings_for(thresholds, base, callgrind=False):
    """``(tolerance, metric, ignore)`` for one benchmark: first matching rule, else default.

    With ``callgrind`` the tolerance is the rule's ``instructions_tolerance`` (default 0.01).
    """
    chosen = _chosen(thresholds, base)
    tolerance = chosen.get("instructions_tolerance", 0.01) if callgrind else \
        chosen.get("tolerance", 0.1)
    return float(tolerance), chosen.get("metric", "auto"), bool(chosen.get("ignore", False))


def _chosen(thresholds, base):
    """The default merged with the first rule matching ``base`` (the default alone if none)."""
    for pattern, rule in thresholds["rules"]:
        if pattern.search(base):
            return {**thresholds["default"], **rule}
    return thresholds["default"]


def informational(thresholds, base):
    """True when the rule for ``base`` marks it ``informational`` (reported, never fails)."""
    return bool(_chosen(thresholds, base).get("informational", False))


def remeasured(thresholds, base):
    """True when the rule for ``base`` says ``remeasure``: paired re-runs measure it at least
    once whatever its first verdict (its figures drift between two runs beyond its
    tolerance, so two first runs minutes apart do not decide it)."""
    return bool(_chosen(thresholds, base).get("remeasure", False))


def tolerance_of(thresholds):
    """``tolerance_for(base)``: the tolerance :func:`settings_for` gives ``base``."""
    return lambda base: settings_for(thresholds, base)[0]
