"""Consistency audit of a paper's reported numbers (GRIM-style arithmetic checks).

The reported numbers of Han et al. 2025 are transcribed, as printed, in
``pdlib/data/paper_numbers.yaml`` (its header describes the schema).
:func:`audit_paper` runs general checks on them; none of the checks knows
about a particular error of the paper:

``subgroups add up``
    parts of a total sum to the total (and, when a number *remaining* after
    removing the parts is given, ``total - parts == remaining``).
``percentage matches count``
    a printed percentage is ``count / n`` rounded to the printed precision.
``percentage reachable``
    a percentage of a known denominator is reachable from an integer count
    at its printed precision at all (the GRIM test of Brown & Heathers 2017).
``categories complementary``
    cut-offs in the labels of one variable (``<= 5.0`` / ``> 35.0``) agree.
``pooled mean and range``
    a mean and range stated for a set agree with the group means and ranges
    it pools.
``confusion matrix exists``
    some integer (TP, FN, TN, FP) reproduces accuracy, sensitivity and
    specificity together for the set's group sizes, with either group as the
    positive class.
``AUC compatible with operating point``
    an empirical ROC curve through (1 - specificity, sensitivity) has area at
    least ``sensitivity * specificity``; when that point maximises Youden's
    J = sensitivity + specificity - 1 on the same patients, no point of the
    curve lies above ``tpr = fpr + J``, so the area is at most
    ``1 - (1 - J)^2 / 2``.
``average of parts``
    a reported average equals the mean of its parts, and is reachable as a
    pooled proportion ``k / (m * n)`` of ``m`` parts over ``n`` patients.
``same figure where repeated``
    a figure repeated in the text (or in another table) equals the original
    at the coarser of the two printed precisions; a fact stated in several
    places is stated the same way.
``claim supported``
    a stated comparison (greater, less, significantly greater) holds for the
    tabulated figures, for every pair of rows it concerns ("PD outperforms
    KD": every PD row against every KD row); "significantly greater"
    accuracy is checked by the smallest two-sided exact McNemar p-value any
    arrangement of the patients could give.
``sections agree``
    two sections of the paper that state the direction of the same
    comparison state the same direction (and which one the tables support).
``algorithm matches equations``
    a quantity that the algorithm and an equation (or the text) both define
    (a loss weight, a temperature, when the learning rate changes, whether
    students carry noise) is the same in both: transcribed expressions are
    evaluated on a grid of their variables and compared.

Each finding has ``location, reported, check, verdict, why,
nearest_consistent_reading``; verdicts are ``consistent``, ``inconsistent``
or ``note`` (what the consistent readings imply, for example which response
group is the positive class). Numbers are compared exactly with
:class:`fractions.Fraction`; a printed value ``r`` with ``d`` decimals stands
for the interval ``r +- 0.5 * 10**-d`` (ties accepted both ways).

References
----------
Brown N.J.L., Heathers J.A.J. (2017). The GRIM test: a simple technique
detects numerous anomalies in the reporting of results in psychology. Social
Psychological and Personality Science 8(4):363-369.

Han S. et al. (2025). Deep learning progressive distill for predicting
clinical response to conversion therapy from preoperative CT images of
advanced gastric cancer patients. Scientific Reports.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import operator
import re
import sys
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
from scipy import stats as _scipy_stats

from pdlib import atomic
from pdlib.paper import load_paper_numbers

__all__ = [
    "FINDING_COLUMNS",
    "printed_number",
    "percent_counts",
    "confusion_readings",
    "auc_bounds",
    "min_mcnemar_p",
    "audit_paper",
    "verdict_counts",
    "checks_by_verdict",
    "to_markdown",
    "main",
]

#: Columns of the findings table returned by :func:`audit_paper`.
FINDING_COLUMNS = ["location", "reported", "check", "verdict", "why", "nearest_consistent_reading"]

CONSISTENT, INCONSISTENT, NOTE = "consistent", "inconsistent", "note"

#: Metric names of the transcription and how they are printed.
METRIC_LABELS = {"auc": "AUC", "acc": "ACC", "sen": "SEN", "spe": "SPE"}


# --------------------------------------------------------------------------
# printed numbers
# --------------------------------------------------------------------------


def printed_number(text: Any) -> tuple[Fraction, int]:
    """Exact value and number of decimals of a number as printed.

    Parameters
    ----------
    text : str or number
        For example ``"97.44"``, ``"75"``, ``"50.00%"``.

    Returns
    -------
    (value, decimals) : tuple of (Fraction, int)

    Examples
    --------
    >>> printed_number("75.0")
    (Fraction(75, 1), 1)
    """
    s = str(text).strip().rstrip("%").strip()
    try:
        d = Decimal(s)
    except InvalidOperation:
        raise ValueError(f"not a printed number: {text!r}") from None
    if not d.is_finite():
        raise ValueError(f"not a finite printed number: {text!r}")
    return Fraction(d), max(0, -d.as_tuple().exponent)


def _half_unit(decimals: int) -> Fraction:
    return Fraction(1, 2 * 10**decimals)


def _fmt(value: Fraction, decimals: int) -> str:
    """``value`` rounded half up to ``decimals`` places, as printed."""
    q = Decimal(1).scaleb(-decimals)
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return str(exact.quantize(q, rounding=ROUND_HALF_UP))


def _pct(k: int, n: int, decimals: int = 2) -> str:
    return _fmt(Fraction(100 * k, n), decimals)


def percent_counts(reported: Any, n: int) -> list[int]:
    """Integer counts ``k`` (0..n) whose ``100 k / n`` prints as ``reported``.

    A percentage with ``d`` printed decimals stands for every value within
    half a unit of its last digit. An empty list means the percentage cannot
    come from any count of ``n`` (it fails the GRIM test).

    Parameters
    ----------
    reported : str
        The percentage as printed, e.g. ``"97.44"``.
    n : int
        Denominator (number of patients), ``n >= 1``.

    Returns
    -------
    counts : list of int

    Examples
    --------
    >>> percent_counts("97.44", 39), percent_counts("97.44", 73)
    ([38], [])
    """
    if int(n) != n or n < 1:
        raise ValueError(f"a percentage needs a positive integer denominator, got {n!r}")
    value, decimals = printed_number(reported)
    h = _half_unit(decimals)
    return [k for k in range(int(n) + 1) if abs(Fraction(100 * k, int(n)) - value) <= h]


def _truncated_counts(reported: Any, n: int) -> list[int]:
    """Counts whose percentage, cut (not rounded) to the printed decimals, is ``reported``."""
    value, decimals = printed_number(reported)
    unit = Fraction(1, 10**decimals)
    return [k for k in range(n + 1) if value <= Fraction(100 * k, n) < value + unit]


def _neighbours(reported: Any, n: int) -> str:
    """'110/112 = 98.21%, 109/112 = 97.32%': the reachable values either side."""
    value, decimals = printed_number(reported)
    below = max((k for k in range(n + 1) if Fraction(100 * k, n) < value), default=None)
    above = min((k for k in range(n + 1) if Fraction(100 * k, n) > value), default=None)
    parts = [f"{k}/{n} = {_pct(k, n, max(decimals, 2))}%" for k in (above, below) if k is not None]
    return ", ".join(parts)


def _unreachable_why(reported: Any, n: int, what: str) -> str:
    why = f"{what} {reported}% is not k/{n} for any integer k ({_neighbours(reported, n)})"
    trunc = _truncated_counts(reported, n)
    if trunc:
        _, decimals = printed_number(reported)
        k = trunc[0]
        why += (f"; it is {k}/{n} = {_fmt(Fraction(100 * k, n), decimals + 2)}% truncated instead of rounded "
                f"({_pct(k, n, decimals)}%)")
    return why


def _same_printed(a: Any, b: Any) -> bool:
    """Equal at the coarser of the two printed precisions."""
    va, da = printed_number(a)
    vb, db = printed_number(b)
    d = min(da, db)
    return _fmt(va, d) == _fmt(vb, d)


# --------------------------------------------------------------------------
# reusable arithmetic
# --------------------------------------------------------------------------


def confusion_readings(
    *, n_pos: int, n_neg: int, acc: Any = None, sen: Any = None, spe: Any = None
) -> list[tuple[int, int, int, int]]:
    """Integer confusion matrices that reproduce the printed percentages together.

    Parameters
    ----------
    n_pos, n_neg : int
        Sizes of the positive and negative groups.
    acc, sen, spe : str, optional
        Printed accuracy, sensitivity and specificity in percent; ``None``
        leaves a metric unconstrained.

    Returns
    -------
    readings : list of (tp, fn, tn, fp)
        Every matrix whose ``(tp + tn) / n``, ``tp / n_pos`` and
        ``tn / n_neg`` print as given. Empty when the figures cannot all hold.

    Examples
    --------
    >>> confusion_readings(n_pos=39, n_neg=73, acc="99.11", sen="97.44", spe="100")
    [(38, 1, 73, 0)]
    >>> confusion_readings(n_pos=39, n_neg=73, acc="98.11", sen="97.44", spe="98.63")
    []
    """
    tps = percent_counts(sen, n_pos) if sen is not None else range(n_pos + 1)
    tns = percent_counts(spe, n_neg) if spe is not None else range(n_neg + 1)
    accs = set(percent_counts(acc, n_pos + n_neg)) if acc is not None else None
    return [(tp, n_pos - tp, tn, n_neg - tn) for tp in tps for tn in tns if accs is None or tp + tn in accs]


def auc_bounds(*, sensitivity: float, specificity: float, youden_optimal: bool = False) -> tuple[float, float]:
    """Range of ROC areas possible for a curve through one operating point.

    An empirical ROC curve is non-decreasing and passes through
    ``(1 - specificity, sensitivity)``, so its area is at least
    ``sensitivity * specificity``. If the point maximises Youden's J over the
    curve, every point satisfies ``tpr <= fpr + J``, which caps the area at
    ``1 - (1 - J)^2 / 2``. (The trapezoid ``(sensitivity + specificity) / 2``
    through the single point is *not* a bound: a curve may dip below it.)

    Parameters
    ----------
    sensitivity, specificity : float
        As fractions in [0, 1].
    youden_optimal : bool, default False
        Whether the point was chosen by maximising Youden's J on the same
        patients as the AUC.

    Returns
    -------
    (low, high) : tuple of float

    Examples
    --------
    >>> auc_bounds(sensitivity=0.5, specificity=1.0, youden_optimal=True)
    (0.5, 0.875)
    """
    for name, v in (("sensitivity", sensitivity), ("specificity", specificity)):
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {v}")
    low = float(sensitivity) * float(specificity)
    if not youden_optimal:
        return low, 1.0
    j = max(0.0, float(sensitivity) + float(specificity) - 1.0)
    return low, 1.0 - (1.0 - j) ** 2 / 2.0


def min_mcnemar_p(*, correct_a: int, correct_b: int, n: int) -> tuple[float, int, int]:
    """Smallest two-sided exact McNemar p-value two accuracies on n patients allow.

    With ``correct_a`` and ``correct_b`` patients right out of the same
    ``n``, the discordant counts satisfy ``b - c = correct_a - correct_b``;
    every feasible ``c`` is tried.

    Parameters
    ----------
    correct_a, correct_b : int
        Patients classified correctly by each.
    n : int
        Patients classified by both.

    Returns
    -------
    (p, b, c) : tuple
        The smallest p-value and the discordant counts that give it (``b``:
        only ``a`` right, ``c``: only ``b`` right).

    Examples
    --------
    >>> min_mcnemar_p(correct_a=24, correct_b=22, n=28)
    (0.5, 2, 0)
    """
    if not (0 <= correct_a <= n and 0 <= correct_b <= n):
        raise ValueError(f"need 0 <= correct counts <= n, got {correct_a}, {correct_b}, n={n}")
    d = correct_a - correct_b
    best = (2.0, 0, 0)
    for c in range(max(0, -d), min(correct_b, n - correct_a) + 1):
        b = c + d
        m = b + c
        p = 1.0 if m == 0 else min(1.0, 2.0 * float(_scipy_stats.binom.cdf(min(b, c), m, 0.5)))
        if p < best[0]:
            best = (p, b, c)
    return best


# --------------------------------------------------------------------------
# validation (the numbers are read by pdlib.paper.load_paper_numbers)
# --------------------------------------------------------------------------


def _require(mapping: Mapping, key: str, where: str) -> Any:
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise ValueError(f"paper numbers: {where} lacks {key!r}")
    return mapping[key]


def _finding(location, reported, check, verdict, why, nearest="") -> dict:
    return {"location": str(location), "reported": str(reported), "check": check, "verdict": verdict,
            "why": why, "nearest_consistent_reading": nearest}


# --------------------------------------------------------------------------
# counts, percentages, facts
# --------------------------------------------------------------------------


def _check_counts(numbers: Mapping) -> list[dict]:
    out = []
    for i, item in enumerate(numbers.get("counts", []) or []):
        where = f"counts[{i}]"
        total = _require(item, "total", where)
        parts = _require(item, "parts", where)
        t = int(_require(total, "value", where + ".total"))
        values = [int(_require(p, "value", where + ".parts")) for p in parts]
        s = sum(values)
        text = f"{total.get('what', 'total')} n = {t}; " + ", ".join(
            f"{p.get('what', 'part')} n = {v}" for p, v in zip(parts, values))
        remaining = item.get("remaining")
        if remaining is not None:
            text += f"; {remaining.get('what', 'remaining')} n = {remaining['value']}"
        if s == t:
            out.append(_finding(item.get("location", where), text, "subgroups add up", CONSISTENT,
                                f"{' + '.join(map(str, values))} = {t}"))
            continue
        why = f"{' + '.join(map(str, values))} = {s}, not {t}"
        nearest = ""
        if remaining is not None and t - s == int(remaining["value"]):
            why += (f"; but {t} - {' - '.join(map(str, values))} = {remaining['value']} = the number "
                    f"{remaining.get('what', 'remaining')}, so {t} counts the patients before the exclusions, "
                    f"not the excluded ones")
            nearest = (f"{t} screened; {s} {total.get('what', 'removed')} "
                       f"({' + '.join(map(str, values))}); {remaining['value']} {remaining.get('what', 'remaining')}")
        out.append(_finding(item.get("location", where), text, "subgroups add up", INCONSISTENT, why, nearest))
    return out


def _check_percentages(numbers: Mapping) -> list[dict]:
    out = []
    for i, item in enumerate(numbers.get("percentages", []) or []):
        where = f"percentages[{i}]"
        reported = str(_require(item, "reported", where))
        n = int(_require(item, "denominator", where))
        count = item.get("count")
        text = f"{item.get('what', 'percentage')}: {reported}% (n = {n})"
        ks = percent_counts(reported, n)
        _, decimals = printed_number(reported)
        if count is None:
            if ks:
                out.append(_finding(item.get("location", where), text, "percentage reachable", CONSISTENT,
                                    f"{reported}% = {ks[0]}/{n}" + (f" (or {', '.join(map(str, ks[1:]))})" if ks[1:] else "")))
            else:
                out.append(_finding(item.get("location", where), text, "percentage reachable", INCONSISTENT,
                                    _unreachable_why(reported, n, "the percentage")))
            continue
        count = int(count)
        text = f"{item.get('what', 'percentage')}: {reported}% of {n} (count {count})"
        if count in ks:
            out.append(_finding(item.get("location", where), text, "percentage matches count", CONSISTENT,
                                f"{count}/{n} = {_pct(count, n, decimals)}%"))
            continue
        why = f"{count}/{n} = {_fmt(Fraction(100 * count, n), decimals + 2)}% prints as {_pct(count, n, decimals)}%"
        why += "; " + (_unreachable_why(reported, n, "and") if not ks else f"{reported}% would be {ks[0]}/{n}")
        out.append(_finding(item.get("location", where), text, "percentage matches count", INCONSISTENT, why,
                            f"{_pct(count, n, decimals)}% ({count}/{n})"))
    return out


def _check_facts(numbers: Mapping) -> list[dict]:
    out = []
    for i, item in enumerate(numbers.get("facts", []) or []):
        where = f"facts[{i}]"
        fact = _require(item, "fact", where)
        statements = _require(item, "statements", where)
        values = [str(_require(s, "value", where)) for s in statements]
        locations = [s.get("location", where) for s in statements]
        text = "; ".join(f"{loc}: {v}" for loc, v in zip(locations, values))
        if len(set(values)) == 1:
            out.append(_finding(", ".join(locations), f"{fact}: {values[0]}", "same figure where repeated",
                                CONSISTENT, f"stated {len(values)} times, always {values[0]}"))
            continue
        tally = pd.Series(values).value_counts()
        majority = tally.index[0] if tally.iloc[0] > len(values) / 2 else None
        why = f"{fact} is stated differently: " + "; ".join(
            f"{loc} says {v!s}" + (f' ("{s["quote"]}")' if s.get("quote") else "")
            for loc, v, s in zip(locations, values, statements))
        nearest = (f"{majority} (stated {tally.iloc[0]} of {len(values)} times)" if majority is not None
                   else "cannot tell which statement is right; one of them is wrong")
        out.append(_finding(", ".join(locations), f"{fact}: {text}", "same figure where repeated", INCONSISTENT,
                            why, nearest))
    return out


# --------------------------------------------------------------------------
# Table 1
# --------------------------------------------------------------------------

_CELL = re.compile(r"^\s*(\d+)\s*\(\s*([\d.]+)\s*%\s*\)\s*$")
_MEAN_RANGE = re.compile(r"^\s*([\d.]+)\s*\(\s*(\d+)\s*[–—-]\s*(\d+)\s*\)\s*$")
_CUTOFF = re.compile(r"(≤|<=|<|≥|>=|>)\s*(\d+(?:\.\d+)?)")


def _parse_cell(text: str, where: str) -> tuple[int, str]:
    m = _CELL.match(str(text))
    if not m:
        raise ValueError(f"paper numbers: {where}: expected 'count(percent%)', got {text!r}")
    return int(m.group(1)), m.group(2)


def _column_readings(cells: list[tuple[str, int, str]], n: int) -> tuple[list, int] | None:
    """Fewest edits that make every cell match its percentage and the column add up to n.

    Returns ([(label, count, percent, edit)], number_of_edits) or None.
    """
    options = []
    for i, (label, count, pct) in enumerate(cells):
        _, decimals = printed_number(pct)
        opts = []
        if count in percent_counts(pct, n):
            opts.append((label, count, pct, "", 0))
        else:
            opts += [(label, k, pct, f"count {count} -> {k}", 1) for k in percent_counts(pct, n)]
            opts.append((label, count, _pct(count, n, decimals), f"percentage {pct}% -> {_pct(count, n, decimals)}%", 1))
        fix = n - sum(c for j, (_, c, _) in enumerate(cells) if j != i)
        if 0 <= fix <= n and fix != count:
            opts.append((label, fix, _pct(fix, n, decimals), f"{count}({pct}%) -> {fix}({_pct(fix, n, decimals)}%)", 2))
        options.append(opts)
    best = None
    for combo in itertools.product(*options):
        if sum(o[1] for o in combo) != n:
            continue
        edits = sum(o[4] for o in combo)
        if best is None or edits < best[1]:
            best = ([o[:4] for o in combo], edits)
    return best


def _check_table1(numbers: Mapping) -> list[dict]:
    table = numbers.get("table1")
    if not table:
        return []
    location = table.get("location", "Table 1")
    columns = {str(k): int(v) for k, v in _require(table, "columns", "table1").items()}
    out = []
    variables = _require(table, "variables", "table1")
    for variable, rows in variables.items():
        for column, n in columns.items():
            cells = []
            for label, row in rows.items():
                where = f"table1 / {variable} / {label} / {column}"
                cells.append((str(label), *_parse_cell(_require(row, column, where), where)))
            out += _table1_column(location, variable, column, n, cells)
        out += _check_cutoffs(location, variable, list(rows), variables)
    return out


def _table1_column(location, variable, column, n, cells) -> list[dict]:
    out = []
    where = f"{location}, {variable}, {column} (n = {n})"
    total = sum(c for _, c, _ in cells)
    reading = _column_readings(cells, n)
    changed = {label: (count, pct, edit) for label, count, pct, edit in reading[0] if edit} if reading else {}
    fixed_text = ", ".join(f"{label} {count}({pct}%)" for label, count, pct, _ in reading[0]) if reading else ""
    for label, count, pct in cells:
        ks = percent_counts(pct, n)
        _, decimals = printed_number(pct)
        text = f"{label} {count}({pct}%)"
        if count in ks:
            out.append(_finding(f"{where}, {label}", text, "percentage matches count", CONSISTENT,
                                f"{count}/{n} = {_pct(count, n, decimals)}%"))
            continue
        why = f"{count}/{n} = {_pct(count, n, max(decimals, 2))}%, not {pct}%"
        why += "; " + (_unreachable_why(pct, n, "moreover") if not ks else f"{pct}% is {ks[0]}/{n}")
        nearest = ""
        if label in changed:
            new_count, new_pct, edit = changed[label]
            nearest = f"{label} {new_count}({new_pct}%)"
            if new_count != count:
                nearest += f", which makes the column add up to {n}"
        out.append(_finding(f"{where}, {label}", text, "percentage matches count", INCONSISTENT, why, nearest))
    text = " + ".join(f"{label} {c}" for label, c, _ in cells) + f" = {total}"
    if total == n:
        out.append(_finding(where, text, "subgroups add up", CONSISTENT, f"the counts add up to n = {n}"))
    else:
        why = f"the counts add up to {total}, not the column size {n}"
        out.append(_finding(where, text, "subgroups add up", INCONSISTENT, why, fixed_text))
    return out


def _cutoffs(label: str) -> tuple[set, set]:
    low, high = set(), set()
    for op, value in _CUTOFF.findall(label):
        (low if op in ("≤", "<=", "<") else high).add(Decimal(value))
    return low, high


def _check_cutoffs(location, variable, labels, variables) -> list[dict]:
    low, high = set(), set()
    for label in labels:
        lo, hi = _cutoffs(str(label))
        low |= lo
        high |= hi
    if not low or not high:
        return []
    text = " / ".join(map(str, labels))
    if low == high:
        return [_finding(f"{location}, {variable}", text, "categories complementary", CONSISTENT,
                         f"both categories use the cut-off {', '.join(map(str, sorted(low)))}")]
    elsewhere = set()
    for other, rows in variables.items():
        if other != variable:
            for label in rows:
                lo, hi = _cutoffs(str(label))
                elsewhere |= lo | hi
    odd = [v for v in sorted(low | high) if v in elsewhere]
    keep = sorted((low | high) - set(odd)) or sorted(high)
    why = (f"the 'normal' and 'elevated' rows use different cut-offs ({', '.join(map(str, sorted(low)))} vs "
           f"{', '.join(map(str, sorted(high)))}), so values between them belong to neither row")
    if odd:
        other_vars = [o for o, rows in variables.items() if o != variable
                      and any(set(odd) & (_cutoffs(str(lab))[0] | _cutoffs(str(lab))[1]) for lab in rows)]
        why += f"; {', '.join(map(str, odd))} is the cut-off of {', '.join(other_vars)}, apparently copied"
    nearest = " / ".join(_CUTOFF.sub(lambda m: f"{m.group(1)} {keep[0]}", str(label)) for label in labels)
    return [_finding(f"{location}, {variable}", text, "categories complementary", INCONSISTENT, why, nearest)]


def _check_pooled_means(numbers: Mapping) -> list[dict]:
    table = numbers.get("table1") or {}
    columns = {str(k): int(v) for k, v in (table.get("columns") or {}).items()}
    means = table.get("means") or {}
    out = []
    for i, item in enumerate(numbers.get("pooled_means", []) or []):
        where = f"pooled_means[{i}]"
        row = _require(means, _require(item, "row", where), "table1.means")
        reported = _MEAN_RANGE.match(str(_require(item, "reported", where)))
        if not reported:
            raise ValueError(f"paper numbers: {where}: expected 'mean(low–high)', got {item['reported']!r}")
        parts = []
        for column in _require(item, "columns", where):
            m = _MEAN_RANGE.match(str(_require(row, column, f"table1.means / {item['row']}")))
            if not m:
                raise ValueError(f"paper numbers: table1.means / {item['row']} / {column}: expected 'mean(low–high)'")
            parts.append((column, columns[column], m.group(1), int(m.group(2)), int(m.group(3))))
        n_total = sum(p[1] for p in parts)
        lo_mean = sum(p[1] * (printed_number(p[2])[0] - _half_unit(printed_number(p[2])[1])) for p in parts) / n_total
        hi_mean = sum(p[1] * (printed_number(p[2])[0] + _half_unit(printed_number(p[2])[1])) for p in parts) / n_total
        r_value, r_dec = printed_number(reported.group(1))
        r_lo, r_hi = r_value - _half_unit(r_dec), r_value + _half_unit(r_dec)
        mean_ok = lo_mean <= r_hi and r_lo <= hi_mean
        range_lo, range_hi = min(p[3] for p in parts), max(p[4] for p in parts)
        range_ok = (range_lo, range_hi) == (int(reported.group(2)), int(reported.group(3)))
        pooled = (lo_mean + hi_mean) / 2
        why = (f"pooled mean of {', '.join(f'{p[2]} (n = {p[1]})' for p in parts)} is "
               f"{_fmt(pooled, r_dec + 2)}, which prints as {_fmt(pooled, r_dec)}; "
               f"pooled range {range_lo}–{range_hi}")
        text = f"mean {reported.group(1)}, range {reported.group(2)}–{reported.group(3)} (n = {n_total})"
        ok = mean_ok and range_ok
        out.append(_finding(item.get("location", where), text, "pooled mean and range",
                            CONSISTENT if ok else INCONSISTENT, why,
                            "" if ok else f"mean {_fmt(pooled, r_dec)}, range {range_lo}–{range_hi}"))
    return out


# --------------------------------------------------------------------------
# metric tables
# --------------------------------------------------------------------------


def _metric_cells(numbers: Mapping) -> dict[tuple[str, str, str], dict[str, str]]:
    """(table, row, set) -> {metric: printed value}."""
    cells = {}
    for t, table in enumerate(numbers.get("metric_tables", []) or []):
        name = str(_require(table, "name", f"metric_tables[{t}]"))
        metrics = list(_require(table, "metrics", name))
        for row, by_set in _require(table, "rows", name).items():
            for set_name, values in by_set.items():
                if len(values) != len(metrics):
                    raise ValueError(f"paper numbers: {name} / {row} / {set_name}: {len(values)} values for "
                                     f"{len(metrics)} metrics {metrics}")
                cells[(name, str(row), str(set_name))] = {m: str(v) for m, v in zip(metrics, values)}
    return cells


def _resolve(ref: str, cells: Mapping) -> tuple[tuple[str, str, str], str | None]:
    parts = [p.strip() for p in str(ref).split(" / ")]
    if len(parts) not in (3, 4):
        raise ValueError(f"paper numbers: reference {ref!r} must read 'table / row / set[ / metric]'")
    key = (parts[0], parts[1], parts[2])
    if key not in cells:
        raise ValueError(f"paper numbers: reference {ref!r} names no table row")
    metric = parts[3] if len(parts) == 4 else None
    if metric is not None and metric not in cells[key]:
        raise ValueError(f"paper numbers: reference {ref!r}: the row has no metric {metric!r}")
    return key, metric


def _describe(values: Mapping[str, str]) -> str:
    return ", ".join(f"{METRIC_LABELS.get(m, m)} {v}" for m, v in values.items())


def _group_sizes(numbers: Mapping, set_name: str) -> tuple[int, dict[str, int]]:
    s = _require(_require(numbers, "sets", "top level"), set_name, "sets")
    n = int(_require(s, "n", f"sets.{set_name}"))
    groups = {str(k): int(v) for k, v in _require(s, "groups", f"sets.{set_name}").items()}
    if len(groups) != 2:
        raise ValueError(f"paper numbers: sets.{set_name}.groups must name two groups")
    return n, groups


def _fits(values: Mapping[str, str], n: int, groups: Mapping[str, int]) -> dict[str, list]:
    """Positive group -> the confusion matrices that reproduce acc/sen/spe."""
    return {
        g: confusion_readings(n_pos=size, n_neg=n - size, acc=values.get("acc"), sen=values.get("sen"),
                              spe=values.get("spe"))
        for g, size in groups.items()
    }


def _nearest_matrix(values: Mapping[str, str], n: int, n_pos: int) -> tuple[tuple[int, int, int, int], float]:
    """Matrix whose printed metrics are closest (sum of absolute differences, points)."""
    best, best_cost = None, None
    for tp in range(n_pos + 1):
        for tn in range(n - n_pos + 1):
            implied = {"acc": Fraction(100 * (tp + tn), n), "sen": Fraction(100 * tp, n_pos) if n_pos else None,
                       "spe": Fraction(100 * tn, n - n_pos) if n - n_pos else None}
            cost = sum(abs(implied[m] - printed_number(v)[0]) for m, v in values.items()
                       if m in implied and implied[m] is not None)
            if best_cost is None or cost < best_cost:
                best, best_cost = (tp, n_pos - tp, tn, n - n_pos - tn), cost
    return best, float(best_cost)


def _implied(matrix: tuple[int, int, int, int], values: Mapping[str, str]) -> dict[str, str]:
    tp, fn, tn, fp = matrix
    n = tp + fn + tn + fp
    fractions = {"acc": Fraction(100 * (tp + tn), n), "sen": Fraction(100 * tp, tp + fn) if tp + fn else None,
                 "spe": Fraction(100 * tn, tn + fp) if tn + fp else None}
    out = {}
    for m, v in values.items():
        if m in fractions and fractions[m] is not None:
            out[m] = _fmt(fractions[m], max(printed_number(v)[1], 2))
    return out


def _matrix_text(matrix, positive: str, *, equal_groups: bool = False) -> str:
    tp, fn, tn, fp = matrix
    who = "either group positive: equal group sizes" if equal_groups else f"{positive} positive"
    return f"TP {tp}, FN {fn}, TN {tn}, FP {fp} ({who})"


def _explain_no_matrix(values: Mapping[str, str], n: int, n_pos: int) -> str:
    denominators = {"acc": n, "sen": n_pos, "spe": n - n_pos}
    reasons = []
    for m, v in values.items():
        if m in denominators and not percent_counts(v, denominators[m]):
            reasons.append(_unreachable_why(v, denominators[m], METRIC_LABELS[m]))
    if reasons:
        return "; ".join(reasons)
    tps = percent_counts(values["sen"], n_pos) if "sen" in values else []
    tns = percent_counts(values["spe"], n - n_pos) if "spe" in values else []
    sums = sorted({tp + tn for tp in tps for tn in tns})
    return (f"each figure alone is reachable, but SEN gives TP in {tps} and SPE gives TN in {tns}, so ACC would be "
            + " or ".join(f"{k}/{n} = {_pct(k, n)}%" for k in sums) + f", not {values.get('acc')}%")


def _check_metric_tables(numbers: Mapping) -> tuple[list[dict], dict]:
    """Confusion-matrix and AUC checks of every operating point; returns (findings, readings)."""
    out: list[dict] = []
    readings: dict[tuple[str, str, str], tuple[tuple[int, int, int, int], str]] = {}
    cells = _metric_cells(numbers)
    tables = {str(t["name"]): t for t in numbers.get("metric_tables", []) or []}
    fit_patterns: dict[str, list] = {}
    rows_by_set: dict[str, list] = {}
    for (table_name, row, set_name), values in cells.items():
        if row in (tables[table_name].get("derived_rows") or []):
            continue
        if not {"acc", "sen", "spe"} & set(values):
            continue
        n, groups = _group_sizes(numbers, set_name)
        fits = _fits(values, n, groups)
        fit_patterns.setdefault(set_name, []).append(((table_name, row, set_name), values, fits))
        rows_by_set.setdefault(set_name, []).append((table_name, row))

    positive_of_set: dict[str, str | None] = {}
    for set_name, entries in fit_patterns.items():
        n, groups = _group_sizes(numbers, set_name)
        names = list(groups)
        only = {g: [e for e in entries if e[2][g] and not any(e[2][h] for h in names if h != g)] for g in names}
        if len(set(groups.values())) == 1:
            positive_of_set[set_name] = None
            out.append(_finding(f"all metric tables, {set_name} set", f"groups {groups}", "positive class", NOTE,
                                "the two groups have the same size, so the figures cannot show which one is positive"))
            continue
        decided = [g for g in names if only[g]] if not all(only[g] for g in names) else []
        inferred = decided[0] if len(decided) == 1 else None
        positive_of_set[set_name] = inferred
        if inferred:
            other = [g for g in names if g != inferred][0]
            example = only[inferred][0]
            sen = example[1].get("sen")
            why = (f"{len(only[inferred])} of {len(entries)} {set_name}-set rows fit only with {inferred} "
                   f"(n = {groups[inferred]}) as the positive class and none fits only with {other} "
                   f"(n = {groups[other]})")
            if sen is not None and percent_counts(sen, groups[inferred]) and not percent_counts(sen, groups[other]):
                k = percent_counts(sen, groups[inferred])[0]
                why += (f"; e.g. {example[0][0]} / {example[0][1]}: SEN {sen}% = {k}/{groups[inferred]}, "
                        f"which no count of {groups[other]} reaches")
            out.append(_finding(f"all metric tables, {set_name} set", f"groups {groups}", "positive class", NOTE, why,
                                f"sensitivity is the share of the {inferred} group called {inferred}"))

    for set_name, entries in fit_patterns.items():
        n, groups = _group_sizes(numbers, set_name)
        inferred = positive_of_set.get(set_name)
        equal = len(set(groups.values())) == 1
        for key, values, fits in entries:
            table_name, row, _ = key
            location = f"{tables[table_name].get('location', table_name)}, {row}, {set_name} set"
            text = _describe(values) + f" (n = {n}: " + ", ".join(f"{g} {k}" for g, k in groups.items()) + ")"
            order = [inferred] if inferred else list(groups)
            matched = [(g, fits[g]) for g in order if fits[g]] or [(g, fits[g]) for g in groups if fits[g]]
            if matched:
                g, mats = matched[0]
                readings[key] = (mats[0], g)
                others = [h for h in groups if fits[h] and h != g]
                why = "; ".join(_matrix_text(m, g, equal_groups=equal) for m in mats[:3])
                if len(mats) > 3:
                    why += f" and {len(mats) - 3} more"
                if others and not equal:
                    why += f"; also fits with {', '.join(others)} positive"
                elif inferred is None and not equal:
                    why += f"; only with {g} positive"
                out.append(_finding(location, text, "confusion matrix exists", CONSISTENT, why))
                continue
            candidates = [g for g in order]
            scored = [(_nearest_matrix(values, n, groups[g]), g) for g in candidates]
            (matrix, _cost), g = min(scored, key=lambda s: s[0][1])
            readings[key] = (matrix, g)
            implied = _implied(matrix, values)
            changes = [f"{METRIC_LABELS[m]} {values[m]} -> {implied[m]}" for m in implied
                       if not _same_printed(values[m], implied[m])]
            why = _explain_no_matrix(values, n, groups[g])
            nearest = f"{_matrix_text(matrix, g, equal_groups=equal)}: " + ", ".join(changes)
            out.append(_finding(location, text, "confusion matrix exists", INCONSISTENT, why, nearest))

    # AUC against the operating point
    for key, (matrix, g) in readings.items():
        values = cells[key]
        if "auc" not in values:
            continue
        table_name, row, set_name = key
        tp, fn, tn, fp = matrix
        sen, spe = tp / (tp + fn), tn / (tn + fp)
        rule = (tables[table_name].get("threshold") or {}).get(set_name, "not stated")
        low, high = auc_bounds(sensitivity=sen, specificity=spe, youden_optimal=(rule == "youden"))
        value, decimals = printed_number(values["auc"])
        a_lo, a_hi = float(value - _half_unit(decimals)), float(value + _half_unit(decimals))
        location = f"{tables[table_name].get('location', table_name)}, {row}, {set_name} set"
        text = f"AUC {values['auc']} with SEN {tp}/{tp + fn}, SPE {tn}/{tn + fp}"
        bound = f"[{low:.3f}, {high:.3f}]" + (" (Youden-optimal point)" if rule == "youden" else "")
        if a_hi >= low and a_lo <= high:
            out.append(_finding(location, text, "AUC compatible with operating point", CONSISTENT,
                                f"a ROC curve through this point has area in {bound}"))
        else:
            nearest = f"AUC in {bound}"
            out.append(_finding(location, text, "AUC compatible with operating point", INCONSISTENT,
                                f"a ROC curve through this point has area in {bound}, which excludes {values['auc']}",
                                nearest))

    # identical rows
    for table_name, table in tables.items():
        by_values: dict[tuple, list[str]] = {}
        for (t, row, set_name), values in cells.items():
            if t == table_name and row not in (table.get("derived_rows") or []):
                by_values.setdefault((set_name, tuple(values.items())), []).append(row)
        for (set_name, values), rows in by_values.items():
            if len(rows) > 1:
                reading = readings.get((table_name, rows[0], set_name))
                why = f"{len(rows)} rows report exactly the same {set_name}-set figures: {', '.join(rows)}"
                if reading:
                    n_set, groups_set = _group_sizes(numbers, set_name)
                    why += f"; that is {_matrix_text(*reading, equal_groups=len(set(groups_set.values())) == 1)}"
                out.append(_finding(f"{table.get('location', table_name)}, {set_name} set", _describe(dict(values)),
                                    "identical rows", NOTE, why))
    return out, readings


def _mean_interval(printed: Sequence[str]) -> tuple[Fraction, Fraction]:
    """Smallest and largest mean of values that print as ``printed``."""
    values = [printed_number(v) for v in printed]
    lo = sum(v - _half_unit(d) for v, d in values) / len(values)
    hi = sum(v + _half_unit(d) for v, d in values) / len(values)
    return lo, hi


def _check_averages(numbers: Mapping, readings: Mapping) -> list[dict]:
    out = []
    cells = _metric_cells(numbers)
    for table in numbers.get("metric_tables", []) or []:
        name = str(table["name"])
        for spec in table.get("averages", []) or []:
            avg_row = _require(spec, "row", f"{name}.averages")
            parts = list(_require(spec, "of", f"{name}.averages"))
            sets = {s for (t, r, s) in cells if t == name and r == avg_row}
            for set_name in sorted(sets):
                n, groups = _group_sizes(numbers, set_name)
                average = cells[(name, avg_row, set_name)]
                part_values = [cells[(name, p, set_name)] for p in parts]
                for metric, reported in average.items():
                    printed = [pv[metric] for pv in part_values]
                    mean_lo, mean_hi = _mean_interval(printed)
                    value, decimals = printed_number(reported)
                    h = _half_unit(decimals)
                    mean_ok = mean_lo <= value + h and value - h <= mean_hi
                    mean_text = _fmt((mean_lo + mean_hi) / 2, decimals)
                    # the denominator of each part's proportion
                    part_keys = [(name, p, set_name) for p in parts]
                    positive = readings[part_keys[0]][1] if part_keys[0] in readings else None
                    if metric == "acc":
                        denominator = n
                    elif positive is not None:
                        denominator = groups[positive] if metric == "sen" else n - groups[positive]
                    elif len(set(groups.values())) == 1:
                        denominator = next(iter(groups.values()))
                    else:
                        denominator = None
                    pooled_ok, pooled_why, nearest = True, "", ""
                    if denominator is not None and metric in ("acc", "sen", "spe"):
                        pooled_n = denominator * len(parts)
                        pooled_ok = bool(percent_counts(reported, pooled_n))
                        counts = []
                        for key in part_keys:
                            if key in readings:
                                tp, fn, tn, fp = readings[key][0]
                                counts.append({"acc": tp + tn, "sen": tp, "spe": tn}[metric])
                        if len(counts) == len(parts):
                            consistent_mean = Fraction(100 * sum(counts), pooled_n)
                            nearest = (f"{_fmt(consistent_mean, decimals)}% ({sum(counts)}/{pooled_n}, from the "
                                       f"consistent readings of {', '.join(parts)})")
                        if not pooled_ok:
                            pooled_why = (f"an average of {len(parts)} proportions of {denominator} patients is "
                                          f"k/{pooled_n}: " + _neighbours(reported, pooled_n))
                    text = f"{METRIC_LABELS.get(metric, metric)} {reported} = mean of {', '.join(printed)}"
                    location = f"{table.get('location', name)}, {avg_row}, {set_name} set"
                    why = (f"the mean of the printed parts is {_fmt((mean_lo + mean_hi) / 2, decimals + 2)}"
                           + (" (matches)" if mean_ok else f", which prints as {mean_text}, not {reported}"))
                    if pooled_why:
                        why += "; but " + pooled_why
                    ok = mean_ok and pooled_ok
                    if ok and nearest and not _same_printed(nearest.split("%")[0], reported):
                        ok = False
                        why += "; the printed parts themselves are not all consistent (see their rows)"
                    out.append(_finding(location, text, "average of parts", CONSISTENT if ok else INCONSISTENT,
                                        why, "" if ok else nearest))
    return out


def _check_repeats(numbers: Mapping) -> list[dict]:
    out = []
    cells = _metric_cells(numbers)
    for i, item in enumerate(numbers.get("repeats", []) or []):
        where = f"repeats[{i}]"
        if "reported_row" in item:
            key, _ = _resolve(item["reported_row"], cells)
            reported = cells[key]
        else:
            reported = {str(k): str(v) for k, v in _require(item, "reported", where).items()}
        candidates = [_resolve(ref, cells)[0] for ref in _require(item, "refers_to", where)]
        text = (f'"{item["quote"]}": ' if item.get("quote") else "") + _describe(reported)
        scored = []
        for key in candidates:
            original = cells[key]
            missing = [m for m in reported if m not in original]
            if missing:
                raise ValueError(f"paper numbers: {where}: {' / '.join(key)} has no {missing}")
            mismatches = [m for m in reported if not _same_printed(reported[m], original[m])]
            distance = sum(abs(printed_number(reported[m])[0] - printed_number(original[m])[0])
                           * (100 if m == "auc" else 1) for m in mismatches)
            scored.append((len(mismatches), distance, key, mismatches))
        best = min(scored, key=lambda s: (s[0], s[1]))
        location = item.get("location", where)
        if best[0] == 0:
            out.append(_finding(location, text, "same figure where repeated", CONSISTENT,
                                f"matches {' / '.join(best[2])}"))
            continue
        why = "no row it can refer to has these figures: " + "; ".join(
            f"{' / '.join(key)} has {_describe({m: cells[key][m] for m in reported})}" for _, _, key, _ in scored)
        key = best[2]
        nearest = f"{_describe({m: cells[key][m] for m in reported})} ({' / '.join(key)})"
        out.append(_finding(location, text, "same figure where repeated", INCONSISTENT, why, nearest))
    return out


def _refs(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _check_claims(numbers: Mapping, readings: Mapping) -> list[dict]:
    out = []
    cells = _metric_cells(numbers)
    for i, item in enumerate(numbers.get("claims", []) or []):
        where = f"claims[{i}]"
        kind = _require(item, "type", where)
        lefts = [_resolve(ref, cells) for ref in _refs(_require(item, "left", where))]
        rights = [_resolve(r, cells) for r in _require(item, "right", where)]
        if any(m is None for _, m in lefts + rights):
            raise ValueError(f"paper numbers: {where}: claims compare single cells ('table / row / set / metric')")
        left_key, left_metric = lefts[0]
        left = cells[left_key][left_metric]
        label = METRIC_LABELS.get(left_metric, left_metric)
        text = (f'"{item.get("quote", "")}": ' + ", ".join(f"{k[1]} {cells[k][m]}" for k, m in lefts)
                + f" ({label}) vs " + ", ".join(f"{k[1]} {cells[k][m]}" for k, m in rights))
        location = item.get("location", where)
        if kind in ("greater", "less"):
            relation = "above" if kind == "greater" else "below"
            holds = []
            for (lkey, lmetric), (key, metric) in itertools.product(lefts, rights):
                a, b = printed_number(cells[lkey][lmetric])[0], printed_number(cells[key][metric])[0]
                holds.append((lkey[1], cells[lkey][lmetric], key[1], cells[key][metric],
                              a > b if kind == "greater" else a < b))
            failures = [f"{ln} has {lv}, {rn} has {rv}" for ln, lv, rn, rv, ok in holds if not ok]
            pairs = f"{len(holds)} pair(s)" if len(holds) > 1 else "the pair"
            if failures:
                ok_pairs = [f"{ln} vs {rn}" for ln, _, rn, _, ok in holds if ok]
                nearest = (f"{label} {relation} for {', '.join(ok_pairs)} only" if ok_pairs
                           else f"{label} not {relation} in any pair")
                out.append(_finding(location, text, "claim supported", INCONSISTENT,
                                    f"{label} is not strictly {relation} in {len(failures)} of {len(holds)} "
                                    "pair(s): " + "; ".join(failures), nearest))
            else:
                out.append(_finding(location, text, "claim supported", CONSISTENT,
                                    f"{label} is {relation} in {pairs}"))
        elif kind == "significantly_greater":
            if left_metric != "acc":
                raise ValueError(f"paper numbers: {where}: significance is checked for accuracies only")
            alpha = float(item.get("alpha", 0.05))
            n, _ = _group_sizes(numbers, left_key[2])
            parts = []
            possible = False
            for key, _metric in rights:
                ka = _count_of(left_key, "acc", cells, readings, n)
                kb = _count_of(key, "acc", cells, readings, n)
                p, b, c = min_mcnemar_p(correct_a=ka, correct_b=kb, n=n)
                possible |= p < alpha and ka > kb
                parts.append(f"{ka}/{n} vs {kb}/{n} ({key[1]}): smallest two-sided exact McNemar p = {p:.3g}, "
                             f"reached with {b} discordant patient(s) favouring {left_key[1]} and {c} the other way")
            verdict = CONSISTENT if possible else INCONSISTENT
            why = ("; ".join(parts) + (f"; no arrangement of the {n} patients reaches p < {alpha}"
                                       if not possible else ""))
            out.append(_finding(location, text, "claim supported", verdict, why,
                                "" if possible else "accuracies comparable; no significant difference is possible"))
        else:
            raise ValueError(f"paper numbers: {where}: unknown claim type {kind!r}")
    return out


_DIRECTION = {"greater": "above", "less": "below"}


def _check_sections(numbers: Mapping) -> list[dict]:
    """Two sections stating the direction of one comparison: the same direction, and which the tables support."""
    out = []
    cells = _metric_cells(numbers)
    for i, item in enumerate(numbers.get("sections", []) or []):
        where = f"sections[{i}]"
        first, second = (_require(item, k, where) for k in ("first", "second"))
        (lkey, lmetric), (rkey, rmetric) = (_resolve(_require(item, k, where), cells) for k in ("left", "right"))
        if lmetric is None or rmetric is None:
            raise ValueError(f"paper numbers: {where}: left and right are single cells ('table / row / set / metric')")
        says = [_require(part, "says", f"{where}.{name}") for part, name in ((first, "first"), (second, "second"))]
        if any(s not in _DIRECTION for s in says):
            raise ValueError(f"paper numbers: {where}: 'says' must be one of {sorted(_DIRECTION)}, got {says}")
        a, b = cells[lkey][lmetric], cells[rkey][rmetric]
        label = METRIC_LABELS.get(lmetric, lmetric)
        text = (f'{first["location"]}: "{first["quote"]}" / {second["location"]}: "{second["quote"]}" '
                f"({lkey[1]} {a} vs {rkey[1]} {b}, {label})")
        va, vb = printed_number(a)[0], printed_number(b)[0]
        table = "greater" if va > vb else "less" if va < vb else "equal"
        supported = [part["location"] for part, said in ((first, says[0]), (second, says[1])) if said == table]
        if says[0] == says[1]:
            out.append(_finding(f"{first['location']}; {second['location']}", text, "sections agree", CONSISTENT,
                                f"both state {lkey[1]} {_DIRECTION[says[0]]} {rkey[1]}"))
            continue
        why = (f"the first states {lkey[1]} {_DIRECTION[says[0]]} {rkey[1]}, the second "
               f"{_DIRECTION[says[1]]}; the table gives {a} vs {b}"
               + (f", which supports {supported[0]}" if supported else ", which supports neither"))
        out.append(_finding(f"{first['location']}; {second['location']}", text, "sections agree", INCONSISTENT, why,
                            f"{lkey[1]} {'above' if table == 'greater' else 'below' if table == 'less' else 'equal to'} "
                            f"{rkey[1]} ({label} {a} vs {b})"))
    return out


_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos}


def _evaluate(expression: str, variables: Mapping[str, Fraction], where: str) -> Fraction:
    """Value of an arithmetic expression (numbers, the named variables, + - * / **), exactly."""
    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return Fraction(str(node.value))
        if isinstance(node, ast.Name) and node.id in variables:
            return variables[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.operand))
        raise ValueError(f"paper numbers: {where}: {expression!r} is not arithmetic on {sorted(variables)}")
    try:
        return walk(ast.parse(str(expression), mode="eval"))
    except SyntaxError:
        raise ValueError(f"paper numbers: {where}: cannot parse {expression!r}") from None


def _check_method(numbers: Mapping) -> list[dict]:
    """A quantity both the algorithm and an equation (or the text) define must be the same in both.

    Each item transcribes the two definitions: an arithmetic ``expression``
    of the listed ``variables`` (evaluated exactly at every combination of
    the given values), or a ``word`` (compared as written: ``batch`` vs
    ``epoch``).
    """
    out = []
    for i, item in enumerate(numbers.get("method", []) or []):
        where = f"method[{i}]"
        about = _require(item, "about", where)
        parts = [_require(item, k, where) for k in ("first", "second")]
        text = " / ".join(f'{p["location"]}: "{p["quote"]}"' for p in parts)
        location = "; ".join(p["location"] for p in parts)
        if all("word" in p for p in parts):
            words = [str(p["word"]) for p in parts]
            verdict = CONSISTENT if words[0] == words[1] else INCONSISTENT
            why = (f"{about}: {words[0]} in both" if verdict == CONSISTENT
                   else f"{about}: {words[0]} in the first, {words[1]} in the second")
            out.append(_finding(location, text, "algorithm matches equations", verdict, why))
            continue
        if not all("expression" in p for p in parts):
            raise ValueError(f"paper numbers: {where}: both parts need an 'expression' (or both a 'word')")
        grid = {str(k): [Fraction(str(v)) for v in _refs(values)] for k, values in (item.get("variables") or {}).items()}
        differ = []
        for combo in itertools.product(*grid.values()):
            point = dict(zip(grid, combo))
            a, b = (_evaluate(p["expression"], point, where) for p in parts)
            if a != b:
                differ.append(", ".join(f"{k} = {float(v):g}" for k, v in point.items())
                              + f": {float(a):g} vs {float(b):g}")
        exprs = f'{parts[0]["expression"]} vs {parts[1]["expression"]}'
        if differ:
            out.append(_finding(location, text, "algorithm matches equations", INCONSISTENT,
                                f"{about}: {exprs} differ (" + "; ".join(differ[:2])
                                + (f"; and {len(differ) - 2} more" if len(differ) > 2 else "") + ")",
                                item.get("reading", "")))
        else:
            out.append(_finding(location, text, "algorithm matches equations", CONSISTENT,
                                f"{about}: {exprs} agree on every tested value"))
    return out


def _count_of(key, metric, cells, readings, n) -> int:
    if key in readings:
        tp, fn, tn, fp = readings[key][0]
        return {"acc": tp + tn, "sen": tp, "spe": tn}[metric]
    ks = percent_counts(cells[key][metric], n)
    if not ks:
        raise ValueError(f"paper numbers: {' / '.join(key)} {metric} {cells[key][metric]} has no count of {n}")
    return ks[0]


# --------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------


def audit_paper(numbers: Mapping | None = None) -> pd.DataFrame:
    """Run every consistency check on a transcription of reported numbers.

    Parameters
    ----------
    numbers : mapping, optional
        As loaded by :func:`pdlib.paper.load_paper_numbers`; default the transcription of
        Han et al. 2025 shipped in ``pdlib/data/paper_numbers.yaml``.

    Returns
    -------
    findings : DataFrame
        One row per check with :data:`FINDING_COLUMNS`; ``verdict`` is
        ``consistent``, ``inconsistent`` or ``note``. Inconsistent rows say
        why the reported numbers cannot all hold and give the nearest reading
        that would make them consistent.

    Examples
    --------
    >>> findings = audit_paper()
    >>> bool((findings["verdict"] == "inconsistent").any())
    True
    """
    numbers = load_paper_numbers() if numbers is None else numbers
    if not isinstance(numbers, Mapping):
        raise ValueError("paper numbers must be a mapping (see pdlib/data/paper_numbers.yaml)")
    findings = []
    findings += _check_counts(numbers)
    findings += _check_percentages(numbers)
    findings += _check_facts(numbers)
    findings += _check_table1(numbers)
    findings += _check_pooled_means(numbers)
    metric_findings, readings = _check_metric_tables(numbers)
    findings += metric_findings
    findings += _check_averages(numbers, readings)
    findings += _check_repeats(numbers)
    findings += _check_claims(numbers, readings)
    findings += _check_sections(numbers)
    findings += _check_method(numbers)
    return pd.DataFrame(findings, columns=FINDING_COLUMNS)


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def verdict_counts(findings: pd.DataFrame) -> dict[str, int]:
    """``n_checks, n_consistent, n_inconsistent, n_notes`` of :func:`audit_paper`'s findings."""
    verdicts = findings["verdict"].value_counts()
    return {"n_checks": len(findings), "n_consistent": int(verdicts.get(CONSISTENT, 0)),
            "n_inconsistent": int(verdicts.get(INCONSISTENT, 0)), "n_notes": int(verdicts.get(NOTE, 0))}


def checks_by_verdict(findings: pd.DataFrame) -> pd.DataFrame:
    """How many findings of each check reach each verdict (one row per check, one column per verdict)."""
    return findings.groupby(["check", "verdict"]).size().unstack(fill_value=0)


def to_markdown(findings: pd.DataFrame, *, title: str = "Consistency audit of the reported numbers") -> str:
    """Short markdown report: inconsistencies, implications, tally of checks.

    Parameters
    ----------
    findings : DataFrame
        As returned by :func:`audit_paper`.
    title : str

    Returns
    -------
    markdown : str
    """
    missing = [c for c in FINDING_COLUMNS if c not in findings.columns]
    if missing:
        raise ValueError(f"findings lack column(s) {missing}")
    bad = findings[findings["verdict"] == INCONSISTENT]
    notes = findings[findings["verdict"] == NOTE]
    lines = [f"# {title}", ""]
    n_ok = int((findings["verdict"] == CONSISTENT).sum())
    lines.append(f"{len(findings)} checks: {n_ok} consistent, {len(bad)} inconsistent, {len(notes)} notes.")
    lines += ["", "## Inconsistencies", ""]
    if bad.empty:
        lines.append("None found.")
    else:
        lines.append("| location | reported | check | why | nearest consistent reading |")
        lines.append("|---|---|---|---|---|")
        for _, f in bad.iterrows():
            lines.append(f"| {_md(f['location'])} | {_md(f['reported'])} | {_md(f['check'])} | {_md(f['why'])} | "
                         f"{_md(f['nearest_consistent_reading'])} |")
    lines += ["", "## What the consistent readings imply", ""]
    if notes.empty:
        lines.append("Nothing beyond the table above.")
    for _, f in notes.iterrows():
        extra = f" Reading: {f['nearest_consistent_reading']}." if f["nearest_consistent_reading"] else ""
        lines.append(f"- **{f['check']}** ({f['location']}): {f['why']}.{extra}")
    lines += ["", "## Checks by kind", "", "| check | consistent | inconsistent | notes |", "|---|---|---|---|"]
    tally = findings.groupby("check", sort=False)["verdict"].value_counts().unstack(fill_value=0)
    for check, row in tally.iterrows():
        lines.append(f"| {check} | {row.get(CONSISTENT, 0)} | {row.get(INCONSISTENT, 0)} | {row.get(NOTE, 0)} |")
    return "\n".join(lines) + "\n"


def _to_text(findings: pd.DataFrame) -> str:
    bad = findings[findings["verdict"] == INCONSISTENT]
    notes = findings[findings["verdict"] == NOTE]
    n_ok = int((findings["verdict"] == CONSISTENT).sum())
    lines = [f"{len(findings)} checks: {n_ok} consistent, {len(bad)} inconsistent, {len(notes)} notes", ""]
    for _, f in bad.iterrows():
        lines.append(f"INCONSISTENT [{f['check']}] {f['location']}")
        lines.append(f"  reported: {f['reported']}")
        lines.append(f"  why:      {f['why']}")
        if f["nearest_consistent_reading"]:
            lines.append(f"  nearest:  {f['nearest_consistent_reading']}")
    for _, f in notes.iterrows():
        lines.append(f"NOTE [{f['check']}] {f['location']}: {f['why']}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pdlib audit [--markdown] [--numbers FILE] [--csv FILE]``."""
    parser = argparse.ArgumentParser(prog="pdlib audit", description=(
        "Check the reported numbers of Han et al. 2025 (or another transcription) for internal consistency."))
    parser.add_argument("--markdown", action="store_true", help="print the report as markdown")
    parser.add_argument("--numbers", type=Path, default=None,
                        help="YAML transcription to audit (default: the packaged paper_numbers.yaml)")
    parser.add_argument("--csv", type=Path, default=None, help="also write every finding to this CSV file")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        findings = audit_paper(load_paper_numbers(args.numbers))
    except ValueError as err:
        print(f"pdlib audit: {err}", file=sys.stderr)
        return 2
    if args.csv is not None:
        atomic.write_text(args.csv, findings.to_csv(index=False))
    sys.stdout.write(to_markdown(findings) if args.markdown else _to_text(findings))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
