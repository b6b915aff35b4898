"""The published numbers of Han et al. 2025, as printed.

One home for reading ``pdlib/data/paper_numbers.yaml`` (its header describes
the schema): :mod:`pdlib.audit` checks the numbers against each other, and
:mod:`pdlib.report` sets this run's numbers beside them.

* :func:`load_paper_numbers`: the whole transcription (or another file of the
  same schema);
* :func:`metric_table`: Table 2, 3 or 4 as floats, one row per (row, set);
* :func:`values_for`: the printed rows of a table that match given labels;
* :func:`table1`: Table 1 as printed, in the layout of
  :func:`pdlib.report.cohort_table1` (:data:`TABLE1_ROWS`, :data:`TABLE1_COLUMNS`);
* :func:`load_table1_reading` and :func:`table1_corrections`: the consistent
  reading of Table 1 the digital twin is generated from, and where it departs
  from the print.

References
----------
Han et al. 2025, Scientific Reports, Tables 1-4.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from pdlib import paths
from pdlib.vocab import RESPONSE_GROUPS, SPLITS

#: The transcription of Han et al. 2025 shipped with the package.
PAPER_NUMBERS = paths.PACKAGE_DATA / "paper_numbers.yaml"

#: Table 1 (and the reader counts of Table 3) as the digital twin reads it:
#: per cell, the nearest consistent reading of the printed numbers, and the
#: corrections with their reasons (:mod:`pdlib.twin`).
TABLE1_READING = paths.PACKAGE_DATA / "table1.yaml"

#: Table 1 rows of Han et al. 2025: (manifest column, value) -> (variable, category) as printed.
TABLE1_ROWS = {
    ("sex", "F"): ("Sex", "Female"),
    ("sex", "M"): ("Sex", "Male"),
    ("lauren", "intestinal"): ("Lauren type", "Intestinal type"),
    ("lauren", "diffuse_mixed"): ("Lauren type", "Diffuse or mixed type"),
    ("lauren", "undifferentiated"): ("Lauren type", "Undifferentiated type"),
    ("cea", "normal"): ("CEA, ng/ml", "≤ 5.0, Normal"),
    ("cea", "elevated"): ("CEA, ng/ml", "> 5.0, Elevated"),
    ("ca199", "normal"): ("CA199, u/ml", "≤ 5.0, Normal"),
    ("ca199", "elevated"): ("CA199, u/ml", "> 35.0, Elevated"),
    ("ct_stage", "T3"): ("Clinical T stage", "T3"),
    ("ct_stage", "T4a"): ("Clinical T stage", "T4a"),
    ("ct_stage", "T4b"): ("Clinical T stage", "T4b"),
    ("cn_stage", "N0-N1"): ("Clinical N stage", "N0 + N1"),
    ("cn_stage", "N2-N3"): ("Clinical N stage", "N2 + N3"),
    ("cm_stage", "M0"): ("Clinical M stage", "M0"),
    ("cm_stage", "M1"): ("Clinical M stage", "M1"),
}

#: The age row of Table 1 (mean and range).
TABLE1_AGE_ROW = ("Age, years", "")

#: Columns of Table 1: (split, response group), training set first.
TABLE1_COLUMNS = tuple((split, group) for split in SPLITS for group in RESPONSE_GROUPS)


def load_paper_numbers(path: str | Path | None = None) -> dict:
    """Read a transcription of reported numbers (default: Han et al. 2025).

    Parameters
    ----------
    path : str or Path, optional
        A YAML file with the schema of ``pdlib/data/paper_numbers.yaml``.

    Returns
    -------
    numbers : dict

    Raises
    ------
    ValueError
        Naming the file when it is missing, not YAML, or not a mapping.
    """
    path = Path(path) if path is not None else PAPER_NUMBERS
    numbers = paths.read_yaml(path, what="paper numbers")
    if not isinstance(numbers, dict):
        raise ValueError(f"paper numbers file {path} must hold a mapping at the top level")
    return numbers


def metric_table(table: str, numbers: Mapping | None = None) -> pd.DataFrame:
    """A metric table of Han et al. 2025 as printed.

    Parameters
    ----------
    table : {"Table 2", "Table 3", "Table 4"}
    numbers : mapping, optional
        :func:`load_paper_numbers`; default the packaged transcription.

    Returns
    -------
    DataFrame
        One row per (row, set): ``row, split`` and the printed metrics
        (``auc, acc, sen, spe`` as far as the table has them) as floats;
        accuracies, sensitivities and specificities are fractions.
    """
    numbers = load_paper_numbers() if numbers is None else numbers
    spec = next((t for t in numbers["metric_tables"] if t["name"] == table), None)
    if spec is None:
        raise ValueError(f"no metric table {table!r} in the paper numbers")
    rows = []
    for row, sets in spec["rows"].items():
        for split, values in sets.items():
            record = {"row": row, "split": split}
            for metric, value in zip(spec["metrics"], values):
                record[metric] = float(value) if metric == "auc" else float(value) / 100.0
            rows.append(record)
    return pd.DataFrame(rows)


def row_key(label: str) -> str:
    """A row label without spaces, dashes and case (``EfficientNetB7 + KD`` matches ``EfficientNetB7 +KD``)."""
    return re.sub(r"[\s\-]+", "", label).lower()


def values_for(labels: Sequence[str], table: str, numbers: Mapping | None = None) -> pd.DataFrame:
    """Printed values of ``table`` for the rows named by ``labels`` (matched by :func:`row_key`).

    Returns
    -------
    DataFrame
        :func:`metric_table`'s columns plus ``label``, the label of
        ``labels`` each row matched; labels without a printed row are absent.
    """
    printed = metric_table(table, numbers)
    printed["key"] = printed["row"].map(row_key)
    wanted = {row_key(label): label for label in labels}
    out = printed[printed["key"].isin(wanted)].copy()
    out["label"] = out["key"].map(wanted)
    return out.drop(columns="key").reset_index(drop=True)


def table1(numbers: Mapping | None = None) -> pd.DataFrame:
    """Table 1 of Han et al. 2025 as printed.

    Returns
    -------
    DataFrame
        Index ``(variable, category)`` (first :data:`TABLE1_AGE_ROW`), columns
        ``train_GR, train_PR, test_GR, test_PR``; cells are the printed
        strings, misprints included.
    """
    numbers = load_paper_numbers() if numbers is None else numbers
    printed = numbers["table1"]
    rows = {TABLE1_AGE_ROW: printed["means"][TABLE1_AGE_ROW[0]]}
    for variable, categories in printed["variables"].items():
        for category, cells in categories.items():
            rows[(variable, category)] = cells
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["variable", "category"])
    return frame[[f"{s}_{g}" for s, g in TABLE1_COLUMNS]]


def load_table1_reading() -> dict:
    """``pdlib/data/table1.yaml``: ``cells``, ``corrections``, ``readers`` and ``recist_shares``."""
    return paths.read_yaml(TABLE1_READING, what="Table 1 reading")


def table1_corrections() -> pd.DataFrame:
    """The printed cells the consistent reading changes: ``table, cell, row, printed, used, reason``."""
    return pd.DataFrame(load_table1_reading()["corrections"])[["table", "cell", "row", "printed", "used", "reason"]]
