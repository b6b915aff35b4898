"""Figures (pdlib.figures): what is drawn, input checks and saving."""

import os
import subprocess
import sys

import dcurves
import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

from pdlib import figures


def _lines(ax, prefix):
    return {line.get_gid(): line for line in ax.get_lines() if (line.get_gid() or "").startswith(prefix)}


@pytest.fixture(scope="module")
def scores():
    """Test-set-like labels (14 + 14, as the study's test set) and three models' scores."""
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(14, dtype=int), np.ones(14, dtype=int)]
    out = {}
    for model, separation in [("Baseline B7", 0.3), ("KD B7", 0.8), ("PD B7", 1.5)]:
        logits = rng.normal(size=labels.size) + separation * (2 * labels - 1)
        out[model] = 1.0 / (1.0 + np.exp(-logits))
    return labels, out


@pytest.fixture(scope="module")
def roc_points(scores):
    labels, by_model = scores
    frames = []
    for model, score in by_model.items():
        fpr, tpr, _ = roc_curve(labels, score)
        auc = roc_auc_score(labels, score)
        frames.append(pd.DataFrame({"model": model, "fpr": fpr, "tpr": tpr, "auc": auc, "auc_ci_low": auc - 0.1, "auc_ci_high": min(auc + 0.1, 1.0)}))
    return pd.concat(frames, ignore_index=True)


READERS = pd.DataFrame(
    {
        "reader": ["C3", "C20", "C40", "Average"],
        "sensitivity": [1.0, 0.8571, 0.9286, 0.9286],
        "specificity": [0.8571, 0.7557, 0.6429, 0.7519],
    }
)


# --------------------------------------------------------------------------
# ROC (Fig. 3)
# --------------------------------------------------------------------------


def test_plot_roc_draws_one_line_per_model_and_reader_points(roc_points):
    fig = figures.plot_roc(roc_points, readers=READERS, title="Test set")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    curves = _lines(ax, "roc:")
    assert list(curves) == ["roc:Baseline B7", "roc:KD B7", "roc:PD B7"]
    assert len(ax.get_lines()) == 3 + 1  # models + chance diagonal
    chance = _lines(ax, "chance")["chance"]
    assert list(chance.get_xdata()) == [0, 1] and list(chance.get_ydata()) == [0, 1]

    for model, line in curves.items():
        rows = roc_points[roc_points["model"] == model.removeprefix("roc:")]
        np.testing.assert_array_equal(line.get_xdata(), rows["fpr"].to_numpy())
        np.testing.assert_array_equal(line.get_ydata(), rows["tpr"].to_numpy())
    # All three got distinct colours.
    assert len({line.get_color() for line in curves.values()}) == 3

    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert [p.get_gid() for p in points] == [f"reader:{r}" for r in READERS["reader"]]
    for p, (_, row) in zip(points, READERS.iterrows()):
        np.testing.assert_allclose(p.get_offsets(), [[1 - row["specificity"], row["sensitivity"]]])

    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    auc = roc_points.loc[roc_points["model"] == "PD B7", "auc"].iloc[0]
    assert f"PD B7 (AUC {auc:.2f}, 95% CI {auc - 0.1:.2f}\u2013{min(auc + 0.1, 1):.2f})" in legend
    assert "C3 (sens 100%, spec 86%)" in legend
    assert ax.get_title() == "Test set"


def test_plot_roc_sorts_shuffled_points_and_labels_without_auc(roc_points):
    plain = roc_points[["model", "fpr", "tpr"]]
    shuffled = plain.sample(frac=1.0, random_state=0)
    ax = figures.plot_roc(shuffled).axes[0]
    line = _lines(ax, "roc:PD B7")["roc:PD B7"]
    rows = plain[plain["model"] == "PD B7"]
    np.testing.assert_array_equal(line.get_xdata(), rows["fpr"].to_numpy())
    np.testing.assert_array_equal(line.get_ydata(), rows["tpr"].to_numpy())
    assert line.get_label() == "PD B7"


def test_plot_roc_rejects_bad_input(roc_points):
    with pytest.raises(ValueError, match=r"missing column\(s\) \['tpr'\]"):
        figures.plot_roc(roc_points.drop(columns="tpr"))
    with pytest.raises(ValueError, match="fpr"):
        figures.plot_roc(roc_points.assign(fpr=roc_points["fpr"] * 100))
    with pytest.raises(ValueError, match="at least 2"):
        figures.plot_roc(pd.DataFrame({"model": ["a"], "fpr": [0.0], "tpr": [0.0]}))
    with pytest.raises(ValueError, match="constant within model"):
        figures.plot_roc(roc_points.assign(auc=np.linspace(0.5, 0.9, len(roc_points))))
    with pytest.raises(ValueError, match="readers is missing"):
        figures.plot_roc(roc_points, readers=READERS.drop(columns="specificity"))
    with pytest.raises(ValueError, match="sensitivity"):
        figures.plot_roc(roc_points, readers=READERS.assign(sensitivity=[100, 85.7, 92.9, 92.9]))
    with pytest.raises(TypeError, match="DataFrame"):
        figures.plot_roc(roc_points.to_dict())


# --------------------------------------------------------------------------
# Confusion by RECIST (Fig. 4A)
# --------------------------------------------------------------------------


def test_plot_confusion_by_recist_annotates_the_counts():
    recist = pd.Series(["CR"] * 6 + ["PR"] * 8 + ["SD"] * 7 + ["PD"] * 7)
    predicted = pd.Series(["GR"] * 5 + ["PR"] + ["GR"] * 7 + ["PR"] + ["GR"] + ["PR"] * 6 + ["GR"] * 2 + ["PR"] * 5)
    table = pd.crosstab(recist, predicted)
    fig = figures.plot_confusion_by_recist(table)
    ax = fig.axes[0]
    texts = {t.get_gid(): t for t in ax.texts}
    assert len(texts) == 8
    for recist_cat in figures.RECIST_ORDER:
        for response in figures.RESPONSE_ORDER:
            text = texts[f"count:{recist_cat}:{response}"]
            assert int(text.get_text()) == table.loc[recist_cat, response]
            # Placed on its cell: rows in RECIST order, columns GR then PR.
            assert text.get_position() == (figures.RESPONSE_ORDER.index(response), figures.RECIST_ORDER.index(recist_cat))
    np.testing.assert_array_equal(ax.images[0].get_array(), table.loc[list(figures.RECIST_ORDER), ["GR", "PR"]].to_numpy())
    assert len(ax.patches) == 4  # correct cells framed: CR, PR -> GR; SD, PD -> PR


def test_plot_confusion_by_recist_shows_absent_categories_as_zero():
    table = pd.DataFrame({"PR": [3, 1], "GR": [0, 4]}, index=["PD", "CR"])
    ax = figures.plot_confusion_by_recist(table).axes[0]
    counts = {t.get_gid(): int(t.get_text()) for t in ax.texts}
    assert counts["count:CR:GR"] == 4 and counts["count:PD:PR"] == 3
    assert counts["count:PR:GR"] == 0 and counts["count:SD:PR"] == 0


def test_plot_confusion_by_recist_rejects_bad_tables():
    good = pd.DataFrame({"GR": [5, 6, 1, 1], "PR": [1, 1, 6, 7]}, index=list(figures.RECIST_ORDER))
    with pytest.raises(ValueError, match="columns must be exactly"):
        figures.plot_confusion_by_recist(good.drop(columns="PR"))
    with pytest.raises(ValueError, match="columns must be exactly"):
        figures.plot_confusion_by_recist(good.assign(All=12))
    with pytest.raises(ValueError, match="RECIST categories"):
        figures.plot_confusion_by_recist(good.rename(index={"SD": "stable"}))
    with pytest.raises(ValueError, match="non-negative integer"):
        figures.plot_confusion_by_recist(good.assign(GR=[5, 6, -1, 1]))
    with pytest.raises(ValueError, match="non-negative integer"):
        figures.plot_confusion_by_recist(good.assign(GR=[5, 6.5, 1, 1]))


# --------------------------------------------------------------------------
# Decision curves (Fig. 4B)
# --------------------------------------------------------------------------


def test_plot_decision_curves_takes_dcurves_output(scores):
    labels, by_model = scores
    data = pd.DataFrame({"response": labels, **by_model})
    thresholds = np.round(np.arange(0.0, 0.96, 0.05), 2)
    dca = dcurves.dca(data=data, outcome="response", modelnames=list(by_model), thresholds=thresholds)
    fig = figures.plot_decision_curves(dca)
    ax = fig.axes[0]
    lines = {line.get_gid(): line for line in ax.get_lines()}
    assert set(lines) == {"dca:Baseline B7", "dca:KD B7", "dca:PD B7", "treat_all", "treat_none"}
    pd_rows = dca[dca["model"] == "PD B7"].sort_values("threshold")
    np.testing.assert_allclose(lines["dca:PD B7"].get_ydata(), pd_rows["net_benefit"])
    np.testing.assert_allclose(lines["treat_none"].get_ydata(), 0.0)
    assert lines["treat_all"].get_label() == "Treat all"

    # Sensible limits: the steep fall of "treat all" does not set the scale.
    top = dca["net_benefit"].max()
    bottom, upper = ax.get_ylim()
    assert upper == pytest.approx(1.05 * top)
    assert bottom == pytest.approx(-0.1 * top)
    assert dca.loc[dca["model"] == "all", "net_benefit"].min() < bottom
    assert ax.get_xlim() == (0.0, 0.95)


def test_plot_decision_curves_rejects_bad_input():
    dca = pd.DataFrame({"model": ["m", "m", "all", "all"], "threshold": [0.1, 0.2, 0.1, 0.2], "net_benefit": [0.3, 0.2, 0.3, 0.1]})
    with pytest.raises(ValueError, match=r"missing column\(s\) \['net_benefit'\]"):
        figures.plot_decision_curves(dca.drop(columns="net_benefit"))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        figures.plot_decision_curves(dca.assign(threshold=[0.1, 1.0, 0.1, 1.0]))
    with pytest.raises(ValueError, match="more than one row"):
        figures.plot_decision_curves(dca.assign(threshold=[0.1, 0.1, 0.1, 0.2]))


# --------------------------------------------------------------------------
# Heat maps (Fig. 5)
# --------------------------------------------------------------------------


def _heatmap_inputs(n=4, size=32):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    images = rng.random((n, size, size), dtype=np.float32)
    masks = np.stack([(yy - 12) ** 2 + (xx - 8 - 4 * i) ** 2 <= 9 for i in range(n)])
    cams = np.stack([np.exp(-((yy - 12) ** 2 + (xx - 8 - 4 * i) ** 2) / 40.0) for i in range(n)]).astype(np.float32)
    return images, cams, masks


def test_plot_heatmaps_one_column_per_patient():
    images, cams, masks = _heatmap_inputs()
    titles = ["CR", "PR", "SD", "PD"]
    fig = figures.plot_heatmaps(images, cams, titles=titles, masks=masks)
    axes = fig.axes
    assert len(axes) == 2 * 4 + 1  # CT row, overlay row, colour bar
    ct_axes, cam_axes = axes[:4], axes[4:8]
    assert [ax.get_title() for ax in ct_axes] == titles
    for j in range(4):
        assert len(ct_axes[j].images) == 1 and len(cam_axes[j].images) == 2
        np.testing.assert_array_equal(ct_axes[j].images[0].get_array(), images[j])
        np.testing.assert_array_equal(cam_axes[j].images[1].get_array(), cams[j])
        assert ct_axes[j].images[0].get_cmap().name == "gray"
        assert ct_axes[j].images[0].get_clim() == (0.0, 1.0)
        # The mask outline is drawn on both rows.
        assert len(ct_axes[j].collections) == 1 and len(cam_axes[j].collections) == 1
    # The contour of each mask sits around its centre.
    (path,) = ct_axes[2].collections[0].get_paths()
    centre = path.vertices.mean(axis=0)
    np.testing.assert_allclose(centre, [8 + 4 * 2, 12], atol=0.5)

    no_masks = figures.plot_heatmaps(images, cams, titles=titles)
    assert all(len(ax.collections) == 0 for ax in no_masks.axes[:8])


def test_plot_heatmaps_rejects_bad_input():
    images, cams, masks = _heatmap_inputs(n=2)
    with pytest.raises(ValueError, match="titles"):
        figures.plot_heatmaps(images, cams, titles=["CR"])
    with pytest.raises(ValueError, match="differs"):
        figures.plot_heatmaps(images, cams[:, :16], titles=["CR", "PR"])
    with pytest.raises(ValueError, match=r"cams must lie in \[0.0, 1.0\]"):
        figures.plot_heatmaps(images, cams * 3, titles=["CR", "PR"])
    with pytest.raises(ValueError, match=r"images must lie in"):
        figures.plot_heatmaps(images * 1000 - 200, cams, titles=["CR", "PR"])
    with pytest.raises(ValueError, match="binary"):
        figures.plot_heatmaps(images, cams, titles=["CR", "PR"], masks=masks * 0.5)
    with pytest.raises(ValueError, match=r"shape \(n_patients, H, W\)"):
        figures.plot_heatmaps(images[0], cams[0], titles=["CR"])


# --------------------------------------------------------------------------
# Metrics per PD iteration (Fig. 6)
# --------------------------------------------------------------------------

# Test-set numbers of Han et al. (2025), "Performance of PD" and Fig. 6,
# for EfficientNet-B7 (iteration 0 = teacher).
ITERATIONS = pd.DataFrame(
    [
        ("EfficientNet-B7", 0, "Accuracy", 0.75),
        ("EfficientNet-B7", 1, "Accuracy", 0.7857),
        ("EfficientNet-B7", 2, "Accuracy", 0.8571),
        ("EfficientNet-B7", 0, "AUC", 0.72),
        ("EfficientNet-B7", 1, "AUC", 0.78),
        ("EfficientNet-B7", 2, "AUC", 0.87),
        ("EfficientNet-B3", 2, "AUC", 0.76),
        ("EfficientNet-B3", 0, "AUC", 0.69),
        ("EfficientNet-B3", 0, "Accuracy", 0.7143),
        ("EfficientNet-B3", 2, "Accuracy", 0.75),
    ],
    columns=["model", "iteration", "metric", "value"],
)


def test_plot_metric_vs_iteration_panels_and_lines():
    fig = figures.plot_metric_vs_iteration(ITERATIONS)
    assert len(fig.axes) == 2
    accuracy, auc = fig.axes
    assert accuracy.get_title(loc="left") == "A  Accuracy" and auc.get_title(loc="left") == "B  AUC"
    for ax, metric in [(accuracy, "Accuracy"), (auc, "AUC")]:
        lines = {line.get_gid(): line for line in ax.get_lines()}
        assert set(lines) == {f"{metric}:EfficientNet-B7", f"{metric}:EfficientNet-B3"}
    b3 = {line.get_gid(): line for line in auc.get_lines()}["AUC:EfficientNet-B3"]
    assert list(b3.get_xdata()) == [0, 2]  # sorted by iteration
    assert list(b3.get_ydata()) == [0.69, 0.76]
    # The same model has the same colour in both panels.
    colours = [{line.get_gid().split(":")[1]: line.get_color() for line in ax.get_lines()} for ax in fig.axes]
    assert colours[0] == colours[1]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["EfficientNet-B7", "EfficientNet-B3"]


def test_plot_training_curve_draws_loss_and_accuracy_per_epoch():
    history = pd.DataFrame({"epoch": [1, 2, 3], "loss": [0.7, 0.55, 0.5], "train_accuracy": [0.5, 0.7, 0.8],
                            "lr": [1e-3, 5e-4, 0.0]})
    fig = figures.plot_training_curve(history)
    loss, accuracy = fig.axes
    (line,) = loss.get_lines()
    assert line.get_gid() == "loss" and list(line.get_ydata()) == [0.7, 0.55, 0.5]
    assert list(accuracy.get_lines()[0].get_xdata()) == [1, 2, 3] and accuracy.get_ylim() == (0, 1)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['train_accuracy'\]"):
        figures.plot_training_curve(history.drop(columns="train_accuracy"))
    with pytest.raises(ValueError, match="column 'loss' of history must hold finite numbers"):
        figures.plot_training_curve(history.assign(loss=[0.7, float("nan"), 0.5]))


def test_plot_metric_vs_iteration_rejects_bad_input():
    with pytest.raises(ValueError, match=r"missing column\(s\) \['metric'\]"):
        figures.plot_metric_vs_iteration(ITERATIONS.drop(columns="metric"))
    with pytest.raises(ValueError, match="appears more than once"):
        figures.plot_metric_vs_iteration(pd.concat([ITERATIONS, ITERATIONS.iloc[:1]]))
    with pytest.raises(ValueError, match="whole numbers"):
        figures.plot_metric_vs_iteration(ITERATIONS.assign(iteration=ITERATIONS["iteration"] + 0.5))
    with pytest.raises(ValueError, match="no rows"):
        figures.plot_metric_vs_iteration(ITERATIONS.iloc[:0])


# --------------------------------------------------------------------------
# Calibration, signal sweep, cohort overview
# --------------------------------------------------------------------------


def test_plot_calibration_lines_points_and_diagonal():
    curve = pd.DataFrame(
        {
            "model": ["PD"] * 3 + ["KD"] * 3,
            "mean_predicted": [0.1, 0.5, 0.9, 0.2, 0.5, 0.8],
            "observed_fraction": [0.0, 0.6, 1.0, 0.3, 0.5, 0.6],
            "n": [10, 8, 10, 9, 10, 9],
        }
    )
    ax = figures.plot_calibration(curve).axes[0]
    assert len(ax.get_lines()) == 2 + 1
    diagonal = _lines(ax, "diagonal")["diagonal"]
    assert list(diagonal.get_xdata()) == [0, 1] == list(diagonal.get_ydata())
    points = {c.get_gid(): c for c in ax.collections}
    np.testing.assert_allclose(points["bins:KD"].get_offsets(), [[0.2, 0.3], [0.5, 0.5], [0.8, 0.6]])
    sizes = points["bins:PD"].get_sizes()
    assert sizes[0] == sizes[2] > sizes[1]  # area follows n
    with pytest.raises(ValueError, match=r"missing column\(s\) \['n'\]"):
        figures.plot_calibration(curve.drop(columns="n"))
    with pytest.raises(ValueError, match="observed_fraction"):
        figures.plot_calibration(curve.assign(observed_fraction=curve["observed_fraction"] + 1))


def test_plot_signal_sweep_means_over_seeds():
    rows = [
        (arm, signal, metric, base + gain * signal + noise, seed)
        for arm, base, gain in [("baseline", 0.5, 0.05), ("PD", 0.5, 0.15)]
        for signal in (0.0, 1.0, 2.0)
        for metric in ("AUC", "accuracy")
        for seed, noise in enumerate((-0.02, 0.0, 0.02))
    ]
    df = pd.DataFrame(rows, columns=["arm", "signal", "metric", "value", "seed"])
    fig = figures.plot_signal_sweep(df)
    auc, accuracy = fig.axes
    pd_line = _lines(auc, "AUC:PD")["AUC:PD"]
    np.testing.assert_allclose(pd_line.get_xdata(), [0.0, 1.0, 2.0])
    np.testing.assert_allclose(pd_line.get_ydata(), [0.5, 0.65, 0.8])
    assert "chance" in {line.get_gid() for line in auc.get_lines()}
    assert "chance" not in {line.get_gid() for line in accuracy.get_lines()}
    runs = {c.get_gid(): c for c in auc.collections}
    assert len(runs["runs:baseline"].get_offsets()) == 9  # every seed shown
    with pytest.raises(ValueError, match=r"missing column\(s\) \['arm'\]"):
        figures.plot_signal_sweep(df.drop(columns="arm"))


def test_plot_cohort_overview_counts():
    patients = pd.DataFrame({"split": ["train"] * 5 + ["test"] * 3, "recist": ["CR", "PR", "PR", "SD", "PD", "PD", "PD", "CR"]})
    fig = figures.plot_cohort_overview(patients)
    train, test = fig.axes
    assert [p.get_height() for p in train.patches] == [1, 2, 1, 1]
    assert [p.get_height() for p in test.patches] == [1, 0, 0, 2]
    assert train.get_title(loc="left") == "train (n = 5)"
    with pytest.raises(ValueError, match="unknown categories"):
        figures.plot_cohort_overview(patients.assign(recist=["CR"] * 7 + ["NE"]))


# --------------------------------------------------------------------------
# Saving, style, imports
# --------------------------------------------------------------------------


def test_save_figure_writes_identical_png_atomically(tmp_path, roc_points):
    fig = figures.plot_roc(roc_points, readers=READERS)
    target = tmp_path / "fig3" / "roc.png"
    written = figures.save_figure(fig, target)
    assert written == target
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"Matplotlib" not in data  # no version stamp
    pixels = matplotlib.image.imread(target)
    assert pixels.shape[:2] == (round(4.4 * figures.FIGURE_DPI), round(7.2 * figures.FIGURE_DPI))
    assert pixels[..., :3].std() > 0  # something is drawn

    figures.save_figure(figures.plot_roc(roc_points, readers=READERS), target)
    assert target.read_bytes() == data  # a rerun gives the same bytes
    assert sorted(os.listdir(target.parent)) == ["roc.png"]  # no temporary file left


def test_save_figure_failure_leaves_existing_file(tmp_path, roc_points):
    target = tmp_path / "roc.png"
    figures.save_figure(figures.plot_roc(roc_points), target)
    before = target.read_bytes()
    broken = figures.plot_roc(roc_points, title=r"$\notacommand$")  # fails when rendered
    with pytest.raises(ValueError):
        figures.save_figure(broken, target)
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["roc.png"]


def test_save_figure_rejects_bad_arguments(tmp_path, roc_points):
    fig = figures.plot_roc(roc_points)
    with pytest.raises(ValueError, match=r"\.png"):
        figures.save_figure(fig, tmp_path / "roc.pdf")
    with pytest.raises(ValueError, match="dpi"):
        figures.save_figure(fig, tmp_path / "roc.png", dpi=0)
    with pytest.raises(TypeError, match="Figure"):
        figures.save_figure("roc", tmp_path / "roc.png")
    assert list(tmp_path.iterdir()) == []


def test_figures_use_the_house_style_without_changing_global_state(roc_points):
    import matplotlib

    before = dict(matplotlib.rcParams)
    ax = figures.plot_roc(roc_points).axes[0]
    assert dict(matplotlib.rcParams) == before
    assert not ax.spines["top"].get_visible()
    assert _lines(ax, "roc:Baseline B7")["roc:Baseline B7"].get_color() == figures.OKABE_ITO[0]


def test_figures_module_does_not_import_torch():
    code = "import sys, pdlib.figures; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_plot_forest_draws_intervals_and_paper_markers_by_group():
    table = pd.DataFrame({
        "model": ["B7", "DenseNet-201", "PD B7", "KD B7"],
        "group": ["Baselines", "Baselines", "PD", "KD"],
        "estimate": [0.82, 0.83, 0.69, 0.7],
        "ci_low": [0.66, 0.66, 0.48, float("nan")],
        "ci_high": [0.98, 1.0, 0.9, float("nan")],
        "paper": [0.72, 0.67, 0.87, float("nan")],
    })
    fig = figures.plot_forest(table, title="Test AUC")
    ax = fig.axes[0]
    gids = {line.get_gid() for line in ax.get_lines()}
    # an interval where one was computed, a paper marker where the paper prints a value
    assert {"run:B7", "run:DenseNet-201", "run:PD B7", "paper:B7", "paper:PD B7"} <= gids
    assert "run:KD B7" not in gids and "paper:KD B7" not in gids
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["Baselines", "B7", "DenseNet-201", "PD", "PD B7", "KD", "KD B7"]  # groups in order of appearance
    line = next(l for l in ax.get_lines() if l.get_gid() == "run:PD B7")
    assert list(line.get_xdata()) == [0.48, 0.9]
    with pytest.raises(ValueError, match="does not contain the estimate"):
        figures.plot_forest(table.assign(ci_low=[0.9, 0.66, 0.48, 0.1]))
    with pytest.raises(ValueError, match="missing column"):
        figures.plot_forest(table.drop(columns="group"))


def test_plot_patient_flow_counts_add_up():
    fig = figures.plot_patient_flow(assessed=164, exclusions=[("metastasis outside the abdomen", 19), ("no PVP CT", 5)],
                                    included=140, splits=[("Training set", 112, "GR 73, PR 39"),
                                                          ("Test set", 28, "GR 14, PR 14")])
    gids = {p.get_gid() for p in fig.axes[0].patches}
    assert {"flow:assessed", "flow:excluded", "flow:included", "flow:Training set", "flow:Test set"} <= gids
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "n = 164" in texts and "Excluded (n = 24)" in texts and "n = 112" in texts
    with pytest.raises(ValueError, match="do not add up"):
        figures.plot_patient_flow(assessed=None, exclusions=[], included=140, splits=[("Training set", 112, "")])


def test_plot_pd_chain_one_box_per_member():
    members = pd.DataFrame({"model": ["EfficientNet-B7"] * 3, "role": ["teacher", "student", "student"],
                            "noise": [False, True, True], "epochs": [6, 6, 6]})
    fig = figures.plot_pd_chain(members, title="PD B7")
    ax = fig.axes[0]
    assert sorted(p.get_gid() for p in ax.patches) == ["member:0", "member:1", "member:2"]
    texts = [t.get_text() for t in ax.texts]
    assert sum("with model noise" in t for t in texts) == 2 and sum("soft labels" in t for t in texts) == 2


def test_plot_metric_vs_iteration_draws_interval_bands_and_the_papers_points():
    df = pd.DataFrame({"model": ["B7"] * 3, "iteration": [0, 1, 2], "metric": ["AUC"] * 3,
                       "value": [0.8, 0.82, 0.7], "ci_low": [0.6, 0.65, 0.5], "ci_high": [0.95, 0.97, 0.9],
                       "paper": [0.74, 0.78, float("nan")]})
    ax = figures.plot_metric_vs_iteration(df).axes[0]
    assert "AUC:B7:interval" in {c.get_gid() for c in ax.collections}
    paper = next(line for line in ax.get_lines() if line.get_gid() == "AUC:B7:paper")
    assert list(paper.get_xdata()) == [0, 1] and list(paper.get_ydata()) == [0.74, 0.78]


def test_plot_signal_sweep_draws_the_oracle_it_promises():
    df = pd.DataFrame({"arm": ["B3"] * 4, "signal": [0.0, 0.0, 3.0, 3.0], "metric": ["AUC"] * 4,
                       "value": [0.5, 0.52, 0.8, 0.84], "oracle": [0.5, 0.5, 0.93, 0.93]})
    ax = figures.plot_signal_sweep(df).axes[0]
    oracle = next(line for line in ax.get_lines() if line.get_gid() == "oracle")
    assert list(oracle.get_xdata()) == [0.0, 3.0] and list(oracle.get_ydata()) == [0.5, 0.93]
