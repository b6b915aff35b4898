"""Figures of the study, drawn from results that other stages computed.

Every function takes plain, tidy inputs (pandas DataFrames, NumPy arrays),
draws one figure in the house style and returns a
:class:`matplotlib.figure.Figure`. Figures never recompute a statistic: ROC
points, AUCs and their intervals, net benefits and calibration bins come from
:mod:`pdlib.stats`; the only transforms here are the ones any plot makes
(sorting points along an axis, averaging repeated runs for a line, counting
patients for a bar).

=================================  ==========================================
function                           regenerates (Han et al. 2025)
=================================  ==========================================
:func:`plot_patient_flow`          Fig. 1, patient flow diagram
:func:`plot_pd_chain`              Fig. 2, the PD chain of one arm
:func:`plot_roc`                   Fig. 3, ROC curves and clinician readers
:func:`plot_confusion_by_recist`   Fig. 4A, predictions by RECIST category
:func:`plot_decision_curves`       Fig. 4B, decision curve analysis
:func:`plot_heatmaps`              Fig. 5, CT slices and Grad-CAM heat maps
:func:`plot_metric_vs_iteration`   Fig. 6, accuracy and AUC per PD iteration
:func:`plot_calibration`           (not in the paper) calibration curves
:func:`plot_signal_sweep`          (not in the paper) digital-twin sweep
:func:`plot_cohort_overview`       (not in the paper) RECIST counts per split
:func:`plot_forest`                (not in the paper) estimates with intervals
                                   beside the paper's values, by group
=================================  ==========================================

Figures are created through pyplot and detached from it straight away
(``plt.close``), so that pyplot holds no reference to them, while a Jupyter
kernel still shows a returned figure exactly once. :func:`save_figure` writes
a PNG atomically, with fixed dpi and no version stamp, so that a rerun gives
identical bytes.

This module never imports torch.

References
----------
Han et al. (2025). Deep learning progressive distill for predicting clinical
response to conversion therapy from preoperative CT images of advanced
gastric cancer patients.

Okabe, M. & Ito, K. (2008). Color Universal Design (CUD): how to make
figures and presentations that are friendly to colorblind people.
https://jfly.uni-koeln.de/color/

Vickers, A. J. & Elkin, E. B. (2006). Decision curve analysis: a novel method
for evaluating prediction models. Medical Decision Making 26(6), 565-574.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from cycler import cycler
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from pdlib import atomic
from pdlib.vocab import RECIST_CATEGORIES, RECIST_NAMES, RECIST_TO_RESPONSE, RESPONSE_GROUPS, RESPONSE_NAMES

__all__ = [
    "FIGURE_DPI",
    "OKABE_ITO",
    "RECIST_ORDER",
    "RESPONSE_ORDER",
    "STYLE_RC",
    "plot_calibration",
    "plot_cohort_overview",
    "plot_confusion_by_recist",
    "plot_decision_curves",
    "plot_forest",
    "plot_patient_flow",
    "plot_pd_chain",
    "plot_heatmaps",
    "plot_metric_vs_iteration",
    "plot_roc",
    "plot_signal_sweep",
    "plot_training_curve",
    "save_figure",
    "style_context",
]

#: Okabe & Ito (2008) colour-universal-design palette, ordered for lines on a
#: white background (yellow, the faintest, last). Black is kept for reference
#: lines (chance, treat none).
OKABE_ITO = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
)

#: Line styles cycled after the seven colours, so that up to 28 models (Fig. 3
#: of Han et al. 2025 shows about twenty) stay distinguishable without colour.
LINE_STYLES = ("-", "--", "-.", ":")

#: Grey of reference lines (chance diagonal, "treat all").
REFERENCE_GREY = "0.45"

#: Resolution of saved PNGs, in dots per inch: sharp on a book page and on
#: print at the figure sizes used here (about 7 inches wide).
FIGURE_DPI = 200

#: RECIST 1.1 categories in the order of Fig. 4A, and the predicted classes
#: (:mod:`pdlib.vocab`).
RECIST_ORDER = RECIST_CATEGORIES
RESPONSE_ORDER = RESPONSE_GROUPS

#: Names under which decision-curve inputs carry the reference strategies;
#: ``dcurves.dca`` calls them ``all`` and ``none``.
_TREAT_ALL = {"all", "treat all", "treat_all"}
_TREAT_NONE = {"none", "treat none", "treat_none"}

#: Matplotlib settings of every figure of the study (applied through
#: :func:`style_context`, never globally).
STYLE_RC = {
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.0,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "legend.fontsize": 8.0,
    "legend.title_fontsize": 8.5,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "0.85",
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "lines.markersize": 5.0,
    "axes.prop_cycle": cycler(color=OKABE_ITO),
    "image.cmap": "cividis",
    "figure.dpi": 100,
    "savefig.dpi": FIGURE_DPI,
    "svg.hashsalt": "pdlib",
}


def style_context():
    """Context manager applying :data:`STYLE_RC` to the figures drawn inside it.

    Every plotting function of this module draws inside it; use it in a
    notebook to give an ad-hoc figure the same look.

    Returns
    -------
    context : contextlib.AbstractContextManager
        ``matplotlib.rc_context(STYLE_RC)``.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> with style_context():
    ...     fig = plt.figure()
    >>> plt.close(fig)
    """
    return matplotlib.rc_context(STYLE_RC)


# --------------------------------------------------------------------------
# validation helpers (used once, at each public entry)
# --------------------------------------------------------------------------


def _check_frame(frame, columns: Sequence[str], *, function: str, argument: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{function}: {argument} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{function}: {argument} is missing column(s) {missing}; "
            f"it has {list(map(str, frame.columns))}"
        )
    if frame.empty:
        raise ValueError(f"{function}: {argument} has no rows")
    return frame


def _numeric_column(
    frame: pd.DataFrame,
    column: str,
    *,
    function: str,
    argument: str,
    low: float | None = None,
    high: float | None = None,
    allow_nan: bool = False,
) -> np.ndarray:
    try:
        values = pd.to_numeric(frame[column], errors="raise").to_numpy(dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{function}: column {column!r} of {argument} must be numeric ({err})") from None
    bad = np.isinf(values) if allow_nan else ~np.isfinite(values)
    if low is not None:
        bad |= values < low
    if high is not None:
        bad |= values > high
    if bad.any():
        row = frame.index[np.flatnonzero(bad)[0]]
        bounds = f" within [{low}, {high}]" if low is not None or high is not None else ""
        nan = "" if allow_nan else " finite"
        raise ValueError(
            f"{function}: column {column!r} of {argument} must hold{nan} numbers{bounds}; "
            f"row {row!r} has {frame.loc[row, column]!r}"
        )
    return values


def _in_order_of_appearance(values: pd.Series) -> list:
    return list(pd.unique(values))


def _line_style(index: int) -> dict:
    """Colour and dash of the ``index``-th series (colour first, then dash)."""
    return {
        "color": OKABE_ITO[index % len(OKABE_ITO)],
        "linestyle": LINE_STYLES[(index // len(OKABE_ITO)) % len(LINE_STYLES)],
    }


def _new_figure(*, figsize: tuple[float, float]) -> Figure:
    """A constrained-layout figure that pyplot does not keep track of."""
    fig = plt.figure(figsize=figsize, layout="constrained")
    plt.close(fig)
    return fig


def _unit_square(ax, *, xlabel: str, ylabel: str, title: str | None) -> None:
    """Axes of two rates or probabilities: [0, 1] on both sides, square, labelled."""
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")
    ax.set_anchor("W")  # keeps the y label inside the figure under constrained layout
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)


def _panel_letter(index: int) -> str:
    return chr(ord("A") + index)


# --------------------------------------------------------------------------
# Fig. 3: ROC curves and readers
# --------------------------------------------------------------------------


def plot_roc(curves: pd.DataFrame, *, readers: pd.DataFrame | None = None, title: str | None = None) -> Figure:
    """ROC curves of several models, with clinician readers as points (Fig. 3).

    Regenerates Fig. 3 of Han et al. (2025): test-set ROC curves of the
    baseline, KD and PD models, with the sensitivity and specificity of each
    clinician (C3, C20, C40 and their average) as single operating points.

    Parameters
    ----------
    curves : DataFrame
        Tidy ROC points, one row per point, columns ``model``, ``fpr``,
        ``tpr`` (both in [0, 1]), as produced by :mod:`pdlib.stats`. Optional
        columns, constant within a model: ``auc`` (shown in the legend) and
        ``auc_ci_low``, ``auc_ci_high`` (bounds of its 95% confidence interval, as in
        ``pdlib.stats.performance_table``).
        Models are drawn in order of first appearance; points are sorted by
        ``(fpr, tpr)``, which is the order along any ROC curve.
    readers : DataFrame, optional
        One row per reader, columns ``reader``, ``sensitivity`` and
        ``specificity`` (fractions in [0, 1]). Drawn at
        ``(1 - specificity, sensitivity)``.
    title : str, optional
        Axes title.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One Axes: one line per model (``gid`` ``"roc:<model>"``), the chance
        diagonal (``gid`` ``"chance"``) and one point per reader
        (``gid`` ``"reader:<reader>"``). The legend sits outside the Axes.

    Raises
    ------
    ValueError
        A column is missing, a value is outside [0, 1], a model has fewer than
        two points, or its AUC columns vary within the model.

    Examples
    --------
    >>> curves = pd.DataFrame({"model": ["PD B7"] * 3, "fpr": [0, 0.1, 1], "tpr": [0, 0.8, 1], "auc": 0.87})
    >>> fig = plot_roc(curves)
    >>> len(fig.axes[0].lines)
    2
    """
    fn = "plot_roc"
    curves = _check_frame(curves, ["model", "fpr", "tpr"], function=fn, argument="curves")
    fpr = _numeric_column(curves, "fpr", function=fn, argument="curves", low=0.0, high=1.0)
    tpr = _numeric_column(curves, "tpr", function=fn, argument="curves", low=0.0, high=1.0)
    auc_columns = [c for c in ("auc", "auc_ci_low", "auc_ci_high") if c in curves.columns]
    auc_values = {
        c: _numeric_column(curves, c, function=fn, argument="curves", low=0.0, high=1.0, allow_nan=True)
        for c in auc_columns
    }
    points = pd.DataFrame({"model": curves["model"].to_numpy(), "fpr": fpr, "tpr": tpr, **auc_values})
    models = _in_order_of_appearance(points["model"])

    legend_labels: dict = {}
    for model in models:
        rows = points[points["model"] == model]
        if len(rows) < 2:
            raise ValueError(f"{fn}: model {model!r} has {len(rows)} ROC point(s); a curve needs at least 2")
        label = str(model)
        if "auc" in auc_columns:
            stats = {}
            for c in auc_columns:
                unique = pd.unique(rows[c])
                if len(unique) != 1 and not np.all(np.isnan(unique)):
                    raise ValueError(f"{fn}: column {c!r} must be constant within model {model!r}; got {list(unique)}")
                stats[c] = float(unique[0])
            if np.isnan(stats["auc"]):
                label += " (AUC n/a)"
            elif {"auc_ci_low", "auc_ci_high"} <= stats.keys() and np.isfinite([stats["auc_ci_low"], stats["auc_ci_high"]]).all():
                label += f" (AUC {stats['auc']:.2f}, 95% CI {stats['auc_ci_low']:.2f}\u2013{stats['auc_ci_high']:.2f})"
            else:
                label += f" (AUC {stats['auc']:.2f})"
        legend_labels[model] = label

    if readers is not None:
        readers = _check_frame(readers, ["reader", "sensitivity", "specificity"], function=fn, argument="readers")
        sensitivity = _numeric_column(readers, "sensitivity", function=fn, argument="readers", low=0.0, high=1.0)
        specificity = _numeric_column(readers, "specificity", function=fn, argument="readers", low=0.0, high=1.0)

    n_entries = 1 + len(models) + (0 if readers is None else len(readers))
    with style_context():
        # Taller when the legend needs it (Fig. 3 lists about twenty models).
        fig = _new_figure(figsize=(7.2, max(4.4, 0.8 + 0.17 * n_entries)))
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color=REFERENCE_GREY, linestyle=":", linewidth=1.0, label="Chance", gid="chance")
        for index, model in enumerate(models):
            rows = points[points["model"] == model].sort_values(["fpr", "tpr"], kind="stable")
            ax.plot(
                rows["fpr"].to_numpy(),
                rows["tpr"].to_numpy(),
                label=legend_labels[model],
                gid=f"roc:{model}",
                drawstyle="default",
                **_line_style(index),
            )
        if readers is not None:
            markers = ("o", "s", "^", "D", "v", "P", "X", "*")
            for index, (reader, sens, spec) in enumerate(zip(readers["reader"], sensitivity, specificity)):
                ax.scatter(
                    [1.0 - spec],
                    [sens],
                    marker=markers[index % len(markers)],
                    s=42,
                    facecolor="white",
                    edgecolor="black",
                    linewidth=1.2,
                    zorder=5,
                    label=f"{reader} (sens {sens:.0%}, spec {spec:.0%})",
                    gid=f"reader:{reader}",
                )
        _unit_square(ax, xlabel="1 \u2212 specificity (false-positive rate)",
                     ylabel="Sensitivity (true-positive rate)", title=title)
        fig.legend(loc="outside right upper")
    return fig


# --------------------------------------------------------------------------
# Fig. 4A: predictions by RECIST category
# --------------------------------------------------------------------------


def plot_confusion_by_recist(table: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Predicted response class against RECIST category, with counts (Fig. 4A).

    Regenerates Fig. 4A of Han et al. (2025): how the best model classified
    the test patients of each RECIST category. Cells where the prediction
    agrees with the category (CR, PR -> GR; SD, PD -> PR) are framed.

    Parameters
    ----------
    table : DataFrame
        Patient counts; index: RECIST categories (a subset of ``CR``, ``PR``,
        ``SD``, ``PD``; absent ones are shown with zero counts), columns
        exactly ``GR`` and ``PR`` (predicted class). Non-negative integers,
        as from ``pd.crosstab(recist, predicted)``.
    title : str, optional
        Axes title.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One Axes holding the count image and one text annotation per cell
        (4 x 2), rows in RECIST order and columns GR then PR.

    Raises
    ------
    ValueError
        Unknown row or column labels, or counts that are not non-negative
        integers.
    """
    fn = "plot_confusion_by_recist"
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{fn}: table must be a pandas DataFrame, got {type(table).__name__}")
    columns = [str(c) for c in table.columns]
    if sorted(columns) != sorted(RESPONSE_ORDER):
        raise ValueError(f"{fn}: table columns must be exactly {list(RESPONSE_ORDER)} (predicted class); got {columns}")
    rows = [str(r) for r in table.index]
    unknown = [r for r in rows if r not in RECIST_ORDER]
    if unknown or len(set(rows)) != len(rows) or not rows:
        raise ValueError(
            f"{fn}: table rows must be distinct RECIST categories among {list(RECIST_ORDER)}; got {rows}"
        )
    frame = table.copy()
    frame.index = rows
    frame.columns = columns
    frame = frame.reindex(index=list(RECIST_ORDER), columns=list(RESPONSE_ORDER))
    present = frame.index.isin(rows)
    frame = frame.fillna(0)
    values = frame.to_numpy()
    try:
        counts = values.astype(float)
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: table must hold patient counts; got {values.tolist()}") from None
    if not np.isfinite(counts).all() or (counts < 0).any() or (counts != np.round(counts)).any():
        raise ValueError(f"{fn}: table must hold non-negative integer counts; got {counts.tolist()}")
    counts = counts.astype(int)

    with style_context():
        fig = _new_figure(figsize=(3.8, 3.8))
        ax = fig.add_subplot()
        ax.grid(False)
        vmax = max(int(counts.max()), 1)
        cmap = matplotlib.colormaps["Blues"]
        ax.imshow(counts, cmap=cmap, vmin=0, vmax=vmax, aspect="auto", interpolation="nearest")
        for i, recist in enumerate(RECIST_ORDER):
            for j, response in enumerate(RESPONSE_ORDER):
                shade = counts[i, j] / vmax
                ax.text(
                    j,
                    i,
                    str(counts[i, j]),
                    ha="center",
                    va="center",
                    fontsize=11,
                    color="white" if shade > 0.6 else "black",
                    gid=f"count:{recist}:{response}",
                )
                if RECIST_TO_RESPONSE[recist] == response:
                    ax.add_patch(
                        Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.6)
                    )
        ax.set_xticks(range(len(RESPONSE_ORDER)), [f"{r} ({RESPONSE_NAMES[r]})" for r in RESPONSE_ORDER])
        ax.set_yticks(
            range(len(RECIST_ORDER)),
            [f"{r} ({RECIST_NAMES[r]})" + ("" if ok else "\n[none]") for r, ok in zip(RECIST_ORDER, present)],
        )
        ax.set_xlabel("Predicted response")
        ax.set_ylabel("RECIST category")
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.tick_params(length=0)
        if title is not None:
            ax.set_title(title)
    return fig


# --------------------------------------------------------------------------
# Fig. 4B: decision curves
# --------------------------------------------------------------------------


def plot_decision_curves(dca: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Net benefit against threshold probability per model (Fig. 4B).

    Regenerates Fig. 4B of Han et al. (2025): decision curve analysis
    (Vickers & Elkin 2006) of the baseline, KD and PD EfficientNet-B7 models,
    with the "treat all" and "treat none" strategies as references.

    The y-axis spans from -10% to +105% of the largest net benefit in
    ``dca`` (at least 0.05): the "treat all" curve falls steeply at high
    thresholds and would otherwise squash the model curves.

    Parameters
    ----------
    dca : DataFrame
        Tidy net benefits, columns ``model``, ``threshold`` (in [0, 1)) and
        ``net_benefit`` (NaN allowed, drawn as a gap); the output of
        ``dcurves.dca`` fits as is. Rows whose model is ``all``/``treat all``
        or ``none``/``treat none`` (any case) are the reference strategies.

    title : str, optional
        Axes title.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One Axes with one line per model (``gid`` ``"dca:<model>"``) and the
        references (``gid`` ``"treat_all"`` and ``"treat_none"``).

    Raises
    ------
    ValueError
        A column is missing, a threshold is outside [0, 1), or a model repeats
        a threshold.
    """
    fn = "plot_decision_curves"
    dca = _check_frame(dca, ["model", "threshold", "net_benefit"], function=fn, argument="dca")
    threshold = _numeric_column(dca, "threshold", function=fn, argument="dca", low=0.0)
    if (threshold >= 1.0).any():
        raise ValueError(f"{fn}: thresholds must lie in [0, 1); got a maximum of {threshold.max()}")
    benefit = _numeric_column(dca, "net_benefit", function=fn, argument="dca", allow_nan=True)
    data = pd.DataFrame({"model": dca["model"].astype(str).to_numpy(), "threshold": threshold, "net_benefit": benefit})
    duplicated = data.duplicated(["model", "threshold"])
    if duplicated.any():
        first = data[duplicated].iloc[0]
        raise ValueError(f"{fn}: model {first['model']!r} has more than one row at threshold {first['threshold']}")

    top = np.nanmax(benefit) if np.isfinite(benefit).any() else 0.0
    top = max(float(top), 0.05)

    with style_context():
        fig = _new_figure(figsize=(6.6, 4.0))
        ax = fig.add_subplot()
        index = 0
        for model in _in_order_of_appearance(data["model"]):
            rows = data[data["model"] == model].sort_values("threshold", kind="stable")
            key = model.strip().lower()
            if key in _TREAT_ALL:
                style = {"color": REFERENCE_GREY, "linestyle": "--", "linewidth": 1.2}
                label, gid = "Treat all", "treat_all"
            elif key in _TREAT_NONE:
                style = {"color": "black", "linestyle": ":", "linewidth": 1.2}
                label, gid = "Treat none", "treat_none"
            else:
                style = _line_style(index)
                label, gid = model, f"dca:{model}"
                index += 1
            ax.plot(rows["threshold"].to_numpy(), rows["net_benefit"].to_numpy(), label=label, gid=gid, **style)
        ax.set_xlim(float(threshold.min()), float(threshold.max()))
        ax.set_ylim(-0.1 * top, 1.05 * top)
        ax.set_xlabel("Threshold probability")
        ax.set_ylabel("Net benefit")
        if title is not None:
            ax.set_title(title)
        fig.legend(loc="outside right upper")
    return fig


# --------------------------------------------------------------------------
# Fig. 5: CT slices with Grad-CAM heat maps
# --------------------------------------------------------------------------


def _check_stack(array, *, name: str, function: str, low: float, high: float) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(f"{function}: {name} must have shape (n_patients, H, W); got {array.shape}")
    if not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
        raise ValueError(f"{function}: {name} must be numeric; got dtype {array.dtype}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError(f"{function}: {name} holds NaN or infinite values")
    if array.min() < low or array.max() > high:
        raise ValueError(
            f"{function}: {name} must lie in [{low}, {high}]; got [{array.min():.3g}, {array.max():.3g}]"
        )
    return array


def plot_heatmaps(
    images: np.ndarray,
    cams: np.ndarray,
    *,
    titles: Sequence[str],
    masks: np.ndarray | None = None,
) -> Figure:
    """CT slices and their Grad-CAM overlays, one column per patient (Fig. 5).

    Regenerates Fig. 5 of Han et al. (2025): for one patient per RECIST
    category (CR, PR, SD, PD), the CT slice in grey (top row) and the same
    slice under its Grad-CAM heat map (bottom row). The heat map uses the
    perceptually uniform ``inferno`` colour map, readable with colour-vision
    deficiency; an optional tumour mask is outlined in sky blue on both rows.

    Parameters
    ----------
    images : ndarray of shape (n_patients, H, W)
        CT slices windowed to [0, 1] (as from :mod:`pdlib.slices`), shown
        with that fixed grey scale.
    cams : ndarray of shape (n_patients, H, W)
        Heat maps in [0, 1] (as from :func:`pdlib.explain.gradcam`).
    titles : sequence of str, length n_patients
        Column titles, e.g. ``"CR, 69 y"``; they must not contain patient
        identifiers from DICOM headers.
    masks : ndarray of shape (n_patients, H, W), optional
        Binary tumour masks (bool or 0/1), outlined at the 0.5 level.

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``2 * n_patients`` image Axes (row-major: all CT Axes, then all
        overlay Axes) followed by one colour-bar Axes.

    Raises
    ------
    ValueError
        Shapes differ, values fall outside [0, 1], a mask is not binary, or
        the number of titles is not n_patients.
    """
    fn = "plot_heatmaps"
    images = _check_stack(images, name="images", function=fn, low=0.0, high=1.0)
    cams = _check_stack(cams, name="cams", function=fn, low=0.0, high=1.0)
    if cams.shape != images.shape:
        raise ValueError(f"{fn}: cams shape {cams.shape} differs from images shape {images.shape}")
    n = images.shape[0]
    if isinstance(titles, str) or len(titles) != n:
        count = "a single string" if isinstance(titles, str) else f"{len(titles)} titles"
        raise ValueError(f"{fn}: titles must be a sequence of {n} strings (one per image); got {count}")
    if masks is not None:
        masks = np.asarray(masks)
        if masks.shape != images.shape:
            raise ValueError(f"{fn}: masks shape {masks.shape} differs from images shape {images.shape}")
        if not np.isin(masks, (0, 1)).all():
            raise ValueError(f"{fn}: masks must be binary (bool or 0/1)")
        masks = masks.astype(np.float32)

    with style_context():
        fig = _new_figure(figsize=(1.9 * n + 0.9, 4.2))
        grid = fig.add_gridspec(2, n)
        ct_axes = [fig.add_subplot(grid[0, j]) for j in range(n)]
        cam_axes = [fig.add_subplot(grid[1, j]) for j in range(n)]
        heat = None
        for j in range(n):
            for ax in (ct_axes[j], cam_axes[j]):
                ax.imshow(images[j], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            heat = cam_axes[j].imshow(cams[j], cmap="inferno", vmin=0.0, vmax=1.0, alpha=0.5, interpolation="bilinear")
            ct_axes[j].set_title(str(titles[j]))
            if masks is not None and masks[j].any():
                for ax in (ct_axes[j], cam_axes[j]):
                    ax.contour(masks[j], levels=[0.5], colors=["#56B4E9"], linewidths=1.0)
            for ax in (ct_axes[j], cam_axes[j]):
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                for spine in ax.spines.values():
                    spine.set_visible(False)
        ct_axes[0].set_ylabel("CT")
        cam_axes[0].set_ylabel("Grad-CAM overlay")
        bar = fig.colorbar(heat, ax=cam_axes, shrink=0.9, pad=0.02)
        bar.set_label("Grad-CAM (normalised)")
    return fig


# --------------------------------------------------------------------------
# Fig. 6: metrics per PD iteration
# --------------------------------------------------------------------------


def plot_training_curve(history: pd.DataFrame) -> Figure:
    """Training loss and slice accuracy per epoch of one member (``metrics.csv``).

    Parameters
    ----------
    history : DataFrame
        Columns ``epoch``, ``loss`` and ``train_accuracy``, one row per epoch.

    Returns
    -------
    fig : matplotlib.figure.Figure
        Two Axes: the loss (line ``gid`` ``"loss"``) and the accuracy on a
        0-1 scale (``gid`` ``"train_accuracy"``), both against the epoch.

    Raises
    ------
    ValueError
        A column is missing or holds a value that is not finite.
    """
    fn = "plot_training_curve"
    history = _check_frame(history, ["epoch", "loss", "train_accuracy"], function=fn, argument="history")
    epoch = _numeric_column(history, "epoch", function=fn, argument="history")
    with style_context():
        fig = _new_figure(figsize=(8, 3))
        left, right = fig.subplots(1, 2)
        left.plot(epoch, _numeric_column(history, "loss", function=fn, argument="history"), marker="o",
                  label="loss", gid="loss")
        left.set(xlabel="epoch", ylabel="training loss")
        right.plot(epoch, _numeric_column(history, "train_accuracy", function=fn, argument="history"), marker="o",
                   label="slice accuracy", gid="train_accuracy")
        right.set(xlabel="epoch", ylabel="training slice accuracy", ylim=(0, 1))
    return fig


def plot_metric_vs_iteration(df: pd.DataFrame) -> Figure:
    """Test-set metrics against the number of PD iterations (Fig. 6).

    Regenerates Fig. 6 of Han et al. (2025): accuracy (A) and AUC (B) of
    EfficientNet-B3 and -B7 as the student is put back as teacher, one line
    per model and one panel per metric.

    Parameters
    ----------
    df : DataFrame
        Tidy metrics, columns ``model``, ``iteration`` (integers; 0 may stand
        for the initial teacher), ``metric`` (e.g. ``"accuracy"``, ``"AUC"``)
        and ``value``; optionally ``ci_low``, ``ci_high`` (drawn as a band)
        and ``paper`` (the paper's value, a hollow diamond; NaN where it
        prints none). One row per (model, iteration, metric). Panels and
        lines follow the order of first appearance.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One Axes per metric (titled ``"A  <metric>"``, ``"B  <metric>"``, ...),
        each with one line per model (``gid`` ``"<metric>:<model>"``).

    Raises
    ------
    ValueError
        A column is missing, an iteration is not an integer, a value is not
        finite, or a (model, iteration, metric) appears twice.
    """
    fn = "plot_metric_vs_iteration"
    df = _check_frame(df, ["model", "iteration", "metric", "value"], function=fn, argument="df")
    iteration = _numeric_column(df, "iteration", function=fn, argument="df", low=0.0)
    if (iteration != np.round(iteration)).any():
        raise ValueError(f"{fn}: column 'iteration' must hold whole numbers; got {sorted(set(iteration))}")
    value = _numeric_column(df, "value", function=fn, argument="df")
    data = pd.DataFrame(
        {"model": df["model"].to_numpy(), "iteration": iteration.astype(int), "metric": df["metric"].astype(str).to_numpy(), "value": value}
    )
    for optional in ("ci_low", "ci_high", "paper"):  # intervals (a band) and the paper's points, where given
        if optional in df.columns:
            data[optional] = _numeric_column(df, optional, function=fn, argument="df", allow_nan=True)
    duplicated = data.duplicated(["model", "iteration", "metric"])
    if duplicated.any():
        first = data[duplicated].iloc[0]
        raise ValueError(
            f"{fn}: model {first['model']!r}, iteration {first['iteration']}, metric {first['metric']!r} appears more than once"
        )
    metrics = _in_order_of_appearance(data["metric"])
    models = _in_order_of_appearance(data["model"])

    with style_context():
        fig = _new_figure(figsize=(3.3 * len(metrics) + 1.4, 3.4))
        axes = fig.subplots(1, len(metrics), sharex=True, squeeze=False)[0]
        for panel, (ax, metric) in enumerate(zip(axes, metrics)):
            for index, model in enumerate(models):
                rows = data[(data["metric"] == metric) & (data["model"] == model)].sort_values("iteration")
                if rows.empty:
                    continue
                style = _line_style(index)
                ax.plot(
                    rows["iteration"].to_numpy(),
                    rows["value"].to_numpy(),
                    marker="o",
                    label=str(model) if panel == 0 else None,
                    gid=f"{metric}:{model}",
                    **style,
                )
                if "ci_low" in rows and rows["ci_low"].notna().any():
                    ax.fill_between(rows["iteration"].to_numpy(), rows["ci_low"].to_numpy(),
                                    rows["ci_high"].to_numpy(), color=style["color"], alpha=0.12, linewidth=0,
                                    gid=f"{metric}:{model}:interval")
                if "paper" in rows and rows["paper"].notna().any():
                    shown = rows[rows["paper"].notna()]
                    ax.plot(shown["iteration"].to_numpy(), shown["paper"].to_numpy(), marker="D", linestyle="none",
                            markerfacecolor="white", markeredgecolor=style["color"],
                            label=f"{model}, paper" if panel == 0 else None, gid=f"{metric}:{model}:paper")
            ax.set_title(f"{_panel_letter(panel)}  {metric}", loc="left")
            ax.set_xlabel("PD iteration")
            ax.set_ylabel(metric)
            ax.set_ylim(0.0, 1.0 if (data.loc[data["metric"] == metric, "value"] <= 1).all() else 100.0)  # whole scale
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        fig.legend(loc="outside right upper", title="Model")
    return fig


# --------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------


def plot_calibration(curve: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Observed fraction of positives against mean predicted probability.

    Not a figure of Han et al. (2025), which reports discrimination only; it
    shows whether patient scores can be read as probabilities. Each bin is a
    point whose area grows with its number of patients; the diagonal is
    perfect calibration.

    Parameters
    ----------
    curve : DataFrame
        One row per (model, bin), columns ``model``, ``mean_predicted`` and
        ``observed_fraction`` (in [0, 1]) and ``n`` (patients in the bin, a
        positive integer), as produced by :mod:`pdlib.stats`.
    title : str, optional
        Axes title.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One Axes: the diagonal (``gid`` ``"diagonal"``), one line per model
        (``gid`` ``"calibration:<model>"``) and one point collection per model
        (``gid`` ``"bins:<model>"``, marker area proportional to ``n``).

    Raises
    ------
    ValueError
        A column is missing or a value is out of range.
    """
    fn = "plot_calibration"
    curve = _check_frame(curve, ["model", "mean_predicted", "observed_fraction", "n"], function=fn, argument="curve")
    predicted = _numeric_column(curve, "mean_predicted", function=fn, argument="curve", low=0.0, high=1.0)
    observed = _numeric_column(curve, "observed_fraction", function=fn, argument="curve", low=0.0, high=1.0)
    n = _numeric_column(curve, "n", function=fn, argument="curve", low=1.0)
    if (n != np.round(n)).any():
        raise ValueError(f"{fn}: column 'n' of curve must hold whole numbers of patients")
    data = pd.DataFrame({"model": curve["model"].to_numpy(), "predicted": predicted, "observed": observed, "n": n})
    area_per_patient = 160.0 / float(n.max())

    with style_context():
        fig = _new_figure(figsize=(6.0, 4.0))
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color=REFERENCE_GREY, linestyle=":", linewidth=1.0, label="Perfect calibration", gid="diagonal")
        for index, model in enumerate(_in_order_of_appearance(data["model"])):
            rows = data[data["model"] == model].sort_values("predicted", kind="stable")
            style = _line_style(index)
            ax.plot(rows["predicted"].to_numpy(), rows["observed"].to_numpy(), label=str(model), gid=f"calibration:{model}", **style)
            ax.scatter(
                rows["predicted"].to_numpy(),
                rows["observed"].to_numpy(),
                s=np.maximum(rows["n"].to_numpy() * area_per_patient, 8.0),
                color=style["color"],
                edgecolor="white",
                linewidth=0.6,
                zorder=3,
                gid=f"bins:{model}",
            )
        _unit_square(ax, xlabel="Mean predicted probability", ylabel="Observed fraction of positives", title=title)
        fig.legend(loc="outside right upper", title="Marker area \u221d patients per bin")
    return fig


# --------------------------------------------------------------------------
# Digital-twin signal sweep
# --------------------------------------------------------------------------


def plot_signal_sweep(df: pd.DataFrame) -> Figure:
    """Metric against the twin's signal strength, one line per training arm.

    Not a figure of Han et al. (2025): on the digital twin, the strength of
    the image signal that separates GR from PR is a known dial; this figure
    shows how each arm (baseline, KD, PD) tracks it. Repeated rows (e.g.
    seeds) at one signal strength are drawn as faint points and their mean as
    the line. Panels named ``AUC`` (any case) show the chance level 0.5.

    Parameters
    ----------
    df : DataFrame
        Tidy results, columns ``arm``, ``signal`` (numeric), ``metric`` and
        ``value``; optionally ``oracle`` (the twin's oracle AUC at that
        signal, drawn as a dashed line on AUC panels); further columns
        (``seed``) are ignored.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One Axes per metric, each with one line per arm (``gid``
        ``"<metric>:<arm>"``, through the mean per signal), one point
        collection per arm (every row) and, for AUC, the chance line
        (``gid`` ``"chance"``) and the oracle line when given (``"oracle"``).

    Raises
    ------
    ValueError
        A column is missing or a value is not finite.
    """
    fn = "plot_signal_sweep"
    df = _check_frame(df, ["arm", "signal", "metric", "value"], function=fn, argument="df")
    signal = _numeric_column(df, "signal", function=fn, argument="df")
    value = _numeric_column(df, "value", function=fn, argument="df")
    data = pd.DataFrame({"arm": df["arm"].to_numpy(), "signal": signal, "metric": df["metric"].astype(str).to_numpy(), "value": value})
    if "oracle" in df.columns:
        data["oracle"] = _numeric_column(df, "oracle", function=fn, argument="df", allow_nan=True)
    metrics = _in_order_of_appearance(data["metric"])
    arms = _in_order_of_appearance(data["arm"])

    with style_context():
        fig = _new_figure(figsize=(3.3 * len(metrics) + 1.4, 3.4))
        axes = fig.subplots(1, len(metrics), sharex=True, squeeze=False)[0]
        for panel, (ax, metric) in enumerate(zip(axes, metrics)):
            if metric.lower() == "auc":
                ax.axhline(0.5, color=REFERENCE_GREY, linestyle=":", linewidth=1.0, gid="chance")
                if "oracle" in data and data["oracle"].notna().any():
                    oracle = data[data["metric"] == metric].groupby("signal", sort=True)["oracle"].mean().dropna()
                    ax.plot(oracle.index.to_numpy(), oracle.to_numpy(), color="0.2", linestyle="--", marker="x",
                            label="oracle (the twin's latent score)" if panel == 0 else None, gid="oracle")
            for index, arm in enumerate(arms):
                rows = data[(data["metric"] == metric) & (data["arm"] == arm)]
                if rows.empty:
                    continue
                style = _line_style(index)
                ax.scatter(rows["signal"], rows["value"], s=12, color=style["color"], alpha=0.35, linewidth=0, gid=f"runs:{arm}")
                mean = rows.groupby("signal", sort=True)["value"].mean()
                ax.plot(
                    mean.index.to_numpy(),
                    mean.to_numpy(),
                    marker="o",
                    label=str(arm) if panel == 0 else None,
                    gid=f"{metric}:{arm}",
                    **style,
                )
            ax.set_title(f"{_panel_letter(panel)}  {metric}", loc="left")
            ax.set_xlabel("Signal strength (twin)")
            ax.set_ylabel(metric)
        fig.legend(loc="outside right upper", title="Arm")
    return fig


# --------------------------------------------------------------------------
# Cohort overview
# --------------------------------------------------------------------------


def plot_cohort_overview(patients: pd.DataFrame) -> Figure:
    """Patients per RECIST category in each split, coloured by response class.

    Not a figure of Han et al. (2025); it shows at a glance what their
    Table 1 reports in words (GR rates of the training and test sets).

    Parameters
    ----------
    patients : DataFrame
        One row per patient with columns ``split`` and ``recist`` (as in the
        manifest's ``patients.csv``).

    Returns
    -------
    fig : matplotlib.figure.Figure
        One Axes per split (in order of first appearance), each with four bars
        (CR, PR, SD, PD), their heights the patient counts, and a count label
        on each bar.

    Raises
    ------
    ValueError
        A column is missing or a RECIST value is unknown.
    """
    fn = "plot_cohort_overview"
    patients = _check_frame(patients, ["split", "recist"], function=fn, argument="patients")
    recist = patients["recist"].astype(str)
    unknown = sorted(set(recist) - set(RECIST_ORDER))
    if unknown:
        raise ValueError(f"{fn}: column 'recist' has unknown categories {unknown}; expected {list(RECIST_ORDER)}")
    splits = _in_order_of_appearance(patients["split"])
    colours = {"GR": OKABE_ITO[0], "PR": OKABE_ITO[1]}

    with style_context():
        fig = _new_figure(figsize=(2.8 * len(splits) + 1.2, 3.2))
        axes = fig.subplots(1, len(splits), sharey=True, squeeze=False)[0]
        for ax, split in zip(axes, splits):
            counts = recist[patients["split"] == split].value_counts().reindex(list(RECIST_ORDER), fill_value=0)
            bars = ax.bar(
                range(len(RECIST_ORDER)),
                counts.to_numpy(),
                color=[colours[RECIST_TO_RESPONSE[r]] for r in RECIST_ORDER],
            )
            ax.bar_label(bars, padding=2)
            ax.set_xticks(range(len(RECIST_ORDER)), list(RECIST_ORDER))
            ax.set_title(f"{split} (n = {int(counts.sum())})", loc="left")
            ax.set_xlabel("RECIST category")
            ax.grid(axis="x", visible=False)
        axes[0].set_ylabel("Patients")
        handles = [Rectangle((0, 0), 1, 1, color=colours[r]) for r in RESPONSE_ORDER]
        fig.legend(handles, [f"{r} ({RESPONSE_NAMES[r]} response)" for r in RESPONSE_ORDER], loc="outside right upper")
    return fig


# --------------------------------------------------------------------------
# Forest plot: one estimate per row with its interval, the paper's value beside
# --------------------------------------------------------------------------


def plot_forest(table: pd.DataFrame, *, xlabel: str = "AUC", title: str | None = None,
                reference: float | None = 0.5, limits: tuple[float, float] | None = (0.0, 1.0)) -> Figure:
    """Estimates with their intervals, one row each, grouped, with the paper's values as a second marker.

    Parameters
    ----------
    table : DataFrame
        Columns ``model``, ``group`` (rows of a group are drawn together under
        its name, groups and rows in order of appearance), ``estimate``,
        ``ci_low``, ``ci_high`` (NaN interval: the point alone) and,
        optionally, ``paper`` (the value the paper prints; NaN where it
        prints none).
    xlabel : str
        The quantity (axis label).
    title : str, optional
    reference : float or None, default 0.5
        A vertical reference line (chance for an AUC, 0 for a difference).
    limits : (float, float) or None, default (0, 1)
        The x range; None fits the data.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One Axes; each row's interval line has ``gid`` ``"run:<model>"``
        and each paper marker ``"paper:<model>"``.

    Raises
    ------
    ValueError
        A column is missing, an estimate is not finite, or an interval does
        not contain its estimate.
    """
    fn = "plot_forest"
    table = _check_frame(table, ["model", "group", "estimate", "ci_low", "ci_high"], function=fn, argument="table")
    estimate = _numeric_column(table, "estimate", function=fn, argument="table")
    low = _numeric_column(table, "ci_low", function=fn, argument="table", allow_nan=True)
    high = _numeric_column(table, "ci_high", function=fn, argument="table", allow_nan=True)
    paper = (_numeric_column(table, "paper", function=fn, argument="table", allow_nan=True)
             if "paper" in table.columns else np.full(len(table), np.nan))
    outside = np.isfinite(low) & np.isfinite(high) & ((low > estimate + 1e-12) | (high < estimate - 1e-12))
    if outside.any():
        row = table.index[np.flatnonzero(outside)[0]]
        raise ValueError(f"{fn}: row {row!r} ({table.loc[row, 'model']}): the interval "
                         f"[{table.loc[row, 'ci_low']}, {table.loc[row, 'ci_high']}] does not contain the estimate "
                         f"{table.loc[row, 'estimate']}")
    rows = table.assign(_estimate=estimate, _low=low, _high=high, _paper=paper)
    groups = _in_order_of_appearance(rows["group"].astype(str))
    layout = []  # (y label, row or None for a group heading)
    for group in groups:
        layout.append((str(group), None))
        layout.extend((str(r["model"]), r) for _, r in rows[rows["group"].astype(str) == group].iterrows())
    n = len(layout)
    with style_context():
        fig = _new_figure(figsize=(6.4, 0.9 + 0.24 * n))
        ax = fig.add_subplot()
        ax.grid(axis="y", visible=False)
        has_paper = bool(np.isfinite(paper).any())
        for position, (label, r) in enumerate(layout):
            y = n - 1 - position
            if r is None:
                continue
            model = str(r["model"])
            if np.isfinite(r["_low"]) and np.isfinite(r["_high"]):
                ax.plot([r["_low"], r["_high"]], [y, y], color=OKABE_ITO[0], linewidth=1.8, gid=f"run:{model}",
                        solid_capstyle="butt")
            ax.plot([r["_estimate"]], [y], marker="o", color=OKABE_ITO[0], linestyle="none",
                    label="this run (95% CI)" if position == 1 else None)
            if np.isfinite(r["_paper"]):
                ax.plot([r["_paper"]], [y], marker="D", markerfacecolor="white", markeredgecolor=OKABE_ITO[1],
                        linestyle="none", gid=f"paper:{model}", label="_paper")
        ax.set_yticks([n - 1 - i for i in range(n)])
        ax.set_yticklabels([label for label, _ in layout])
        for tick, (_, r) in zip(ax.get_yticklabels(), layout):
            if r is None:
                tick.set_fontweight("bold")
        if reference is not None:
            ax.axvline(reference, color=REFERENCE_GREY, linewidth=0.8, linestyle=":")
        if limits is not None:
            ax.set_xlim(*limits)
        ax.set_ylim(-0.7, n - 0.3)
        ax.set_xlabel(xlabel)
        if title is not None:
            ax.set_title(title)
        handles = [plt.Line2D([], [], color=OKABE_ITO[0], marker="o", label="this run (95% CI)")]
        if has_paper:
            handles.append(plt.Line2D([], [], marker="D", markerfacecolor="white", markeredgecolor=OKABE_ITO[1],
                                      linestyle="none", label="the paper"))
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles))
    return fig


# --------------------------------------------------------------------------
# Fig. 1: patient flow; Fig. 2: the PD chain
# --------------------------------------------------------------------------


def _box(ax, x: float, y: float, text: str, *, width: float, height: float, gid: str, face: str = "white") -> None:
    ax.add_patch(Rectangle((x - width / 2, y - height / 2), width, height, facecolor=face, edgecolor="0.25",
                           linewidth=0.9, gid=gid))
    ax.text(x, y, text, ha="center", va="center", fontsize=8.0, wrap=True)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], text: str = "") -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "-|>", "color": "0.25", "linewidth": 0.9})
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.03, text, ha="center", va="bottom",
                fontsize=7.5, color="0.25")


def plot_patient_flow(*, assessed: int | None, exclusions: Sequence[tuple[str, int]], included: int,
                      splits: Sequence[tuple[str, int, str]], note: str = "") -> Figure:
    """The patient flow diagram (Fig. 1): assessed, excluded with reasons, included, and the sets.

    Parameters
    ----------
    assessed : int or None
        Patients assessed for eligibility (None: not reported; the box then
        says so).
    exclusions : sequence of (reason, count)
    included : int
        Patients included; must equal the sum of the sets' sizes.
    splits : sequence of (name, count, detail)
        The sets the included patients were divided into (``detail``: a
        second line, e.g. the response groups).
    note : str
        A line under the diagram (for example where a count printed by the
        paper does not add up).

    Returns
    -------
    fig : matplotlib.figure.Figure
        Boxes have ``gid`` ``"flow:assessed"``, ``"flow:excluded"``,
        ``"flow:included"`` and ``"flow:<set name>"``.

    Raises
    ------
    ValueError
        A count is negative, or the sets do not add up to ``included``.
    """
    counts = [c for _, c in exclusions] + [included] + [c for _, c, _ in splits] + ([assessed] if assessed is not None else [])
    if any((not isinstance(c, (int, np.integer))) or c < 0 for c in counts):
        raise ValueError(f"plot_patient_flow: counts must be non-negative integers, got {counts}")
    if not splits or sum(c for _, c, _ in splits) != included:
        raise ValueError(f"plot_patient_flow: the sets {[(n, c) for n, c, _ in splits]} do not add up to the "
                         f"{included} patients included")
    with style_context():
        fig = _new_figure(figsize=(6.4, 4.2 + (0.25 if note else 0.0)))
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        top = "Patients assessed" + (f"\nn = {assessed}" if assessed is not None else "\nn not reported")
        _box(ax, 0.35, 0.9, top, width=0.42, height=0.13, gid="flow:assessed")
        reasons = [textwrap.fill(f"{reason} (n = {count})", 34) for reason, count in exclusions]
        lines = sum(r.count("\n") + 1 for r in reasons)
        _box(ax, 0.76, 0.66, f"Excluded (n = {sum(c for _, c in exclusions)})\n" + "\n".join(reasons), width=0.44,
             height=0.08 + 0.045 * max(1, lines), gid="flow:excluded")
        _box(ax, 0.35, 0.45, f"Patients included\nn = {included}", width=0.42, height=0.13, gid="flow:included")
        _arrow(ax, (0.35, 0.835), (0.35, 0.515))
        _arrow(ax, (0.35, 0.66), (0.54, 0.66))
        width = min(0.42, 0.9 / len(splits))
        for i, (name, count, detail) in enumerate(splits):
            x = (i + 0.5) / len(splits) * 0.9 + 0.05 if len(splits) > 1 else 0.35
            _box(ax, x, 0.14, f"{name}\nn = {count}" + (f"\n{detail}" if detail else ""), width=width * 0.9,
                 height=0.17, gid=f"flow:{name}")
            _arrow(ax, (0.35, 0.385), (x, 0.225))
        if note:
            ax.text(0.0, -0.04, textwrap.fill(note, 110), ha="left", va="top", fontsize=7.5, color="0.25")
    return fig


def plot_pd_chain(members: pd.DataFrame, *, title: str | None = None) -> Figure:
    """One arm's chain drawn from its definition (Fig. 2): each member, what it learns from, its noise.

    Parameters
    ----------
    members : DataFrame
        One row per member in training order, columns ``model`` (printed
        name), ``role`` (``teacher``, ``student``, ``baseline``), ``noise``
        (bool: dropout and stochastic depth) and ``epochs``.
    title : str, optional

    Returns
    -------
    fig : matplotlib.figure.Figure
        Member boxes have ``gid`` ``"member:<position>"``; the arrow between
        members is labelled with what passes (the soft labels at temperature
        T).
    """
    fn = "plot_pd_chain"
    members = _check_frame(members, ["model", "role", "noise", "epochs"], function=fn, argument="members")
    n = len(members)
    with style_context():
        fig = _new_figure(figsize=(max(4.0, 2.1 * n + 0.6), 2.5))
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.set_xlim(0, n)
        ax.set_ylim(0, 1)
        for i, row in enumerate(members.itertuples()):
            noise = "with model noise" if bool(row.noise) else "no model noise"
            text = f"{row.model}\n{row.role}\n{noise}\n{int(row.epochs)} epochs"
            _box(ax, i + 0.5, 0.5, text, width=0.72, height=0.52, gid=f"member:{i}",
                 face="#E8F1F8" if bool(row.noise) else "white")
            ax.annotate("labels", xy=(i + 0.5, 0.76), xytext=(i + 0.5, 0.97), ha="center", va="top", fontsize=7.5,
                        color="0.35", arrowprops={"arrowstyle": "-|>", "color": "0.45", "linewidth": 0.8})
            if i:
                _arrow(ax, (i - 0.14, 0.5), (i + 0.14, 0.5))
                ax.text(i, 0.46, "soft labels\n(T, KD weight)", ha="center", va="top", fontsize=7.0, color="0.25")
        if title is not None:
            ax.set_title(title)
    return fig


# --------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = FIGURE_DPI) -> Path:
    """Write ``fig`` as a PNG, atomically and reproducibly.

    The image is rendered to a temporary file in the destination folder and
    moved over ``path`` with :func:`os.replace`, so a reader never sees a
    half-written file and a failed render leaves an existing file untouched.
    The PNG carries no software version or timestamp, so the same figure
    saved twice gives identical bytes.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to save.
    path : str or path-like
        Destination ending in ``.png``; missing parent folders are created.
    dpi : int, default FIGURE_DPI
        Resolution in dots per inch.

    Returns
    -------
    path : pathlib.Path
        The written file.

    Raises
    ------
    TypeError
        ``fig`` is not a matplotlib Figure.
    ValueError
        ``path`` does not end in ``.png`` or ``dpi`` is not a positive integer.
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"save_figure: fig must be a matplotlib Figure, got {type(fig).__name__}")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"save_figure: only PNG is written; {str(path)!r} does not end in .png")
    if isinstance(dpi, bool) or not isinstance(dpi, (int, np.integer)) or dpi <= 0:
        raise ValueError(f"save_figure: dpi must be a positive integer, got {dpi!r}")
    with atomic.replacing(path) as temporary:
        fig.savefig(temporary, format="png", dpi=int(dpi), metadata={"Software": None})
    return path
