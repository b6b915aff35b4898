"""The study pipeline: what runs, with which parameters, and what is stale.

``workflow/Snakefile`` and the notebooks in ``notebooks/`` share this module
so that the plan of the study lives in one place:

* :func:`load_study` turns a Snakemake ``config`` (a profile name plus
  overrides) into a validated :class:`Study`;
* :func:`plan` lists every :class:`Target` of the study: one *member*
  training per (seed, member key) and one executed notebook per chapter
  (one per arm for the baselines), with the parameters papermill passes and
  the targets each depends on;
* every target records a *stamp* (:func:`pdlib.provenance.make_stamp`): a
  member in ``<member folder>/stamp.json``, an executed notebook in its
  metadata (``metadata.pdlib``). :func:`stale_targets` compares the stamps
  with what the study would produce now (code hash, manifest hash,
  parameters, template, and the stamps of the targets it read), never with
  file modification times, which a fresh clone sets arbitrarily;
* the tables and sentences the chapters show from the run folders are
  :mod:`pdlib.report`; the arms and their lineage keys are :mod:`pdlib.arms`.

How Snakemake uses it (the choice, documented): Snakemake runs with
``--rerun-triggers params`` so that modification times are ignored, and the
Snakefile adds, to every target that exists but is stale by its stamp, an
input produced by a marker rule; that forces the target, and everything
downstream of it, to run again. Targets that do not exist run anyway.
``python -m pdlib.pipeline check-stale`` (called by ``make book``) reports any
result that is still stale when the book is built: an error when the
environment variable ``CI`` is ``true``, a loud warning otherwise.

Command line::

    python -m pdlib.pipeline stale-targets [--config key=value ...]
    python -m pdlib.pipeline check-stale   [--config key=value ...]
    python -m pdlib.pipeline train-member  --member b7--b7mn --seed 0 [--config ...]
    python -m pdlib.pipeline execute       --target runs/04_pd [--config ...]

References
----------
Han et al. 2025, Scientific Reports (Tables 2-4, Figs. 3-6: the chapters).
Mölder F. et al. Sustainable data analysis with Snakemake. F1000Research
10:33 (2021).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Mapping, Sequence

import yaml

from pdlib import atomic, paths, provenance
from pdlib.arms import ARM_GROUPS, ARMS, PAPER_ARMS, arm_group, members_of_key, parent_key, study_members
from pdlib.config import PROFILES, resolve_config
from pdlib.manifest import load_manifest
from pdlib.paths import member_dir

#: Folder of the study configurations (``<name>.yaml``), next to the Snakefile.
CONFIG_DIR = paths.REPO_ROOT / "workflow" / "config"

#: Key of the executed notebooks' metadata that holds their stamp.
METADATA_KEY = "pdlib"

#: Name of a member's stamp file inside its run folder.
MEMBER_STAMP = "stamp.json"

#: Name of the stamp of a member's gathered out-of-fold scores (``oof_predictions.csv``), in its run folder.
OOF_STAMP = "oof_stamp.json"

#: Name of the stamp of a seed's external-set scores (one ``external_predictions.csv`` per member), in its seed folder.
EXTERNAL_STAMP = "external_stamp.json"

#: Defaults of the external twin test set of a study (key ``external``): a
#: second hospital generated like the default twin from an independent seed.
EXTERNAL_DEFAULTS = {"n_patients": 1000, "seed": 11, "signal": None, "matrix": None, "slices": None}

#: Defaults of every study configuration key (see ``workflow/config/*.yaml``).
DEFAULTS = {
    "profile": "demo",
    "manifest": "data_manifest",
    "twin": "data/twin",
    "results": None,  # default results/<profile>
    "book_runs": "book/runs",
    "cache": "cache",
    "seeds": [0],
    "arms": None,  # default every arm of pdlib.arms.ARMS
    "best_arm": "pd_b7",
    "overrides": {},
    "chapters": None,  # default every chapter of CHAPTERS
    "signal_sweep": None,
    "oof": None,
    "external": None,
    "resources": {},
}

#: Chapters of the book, in order: (name, template, what it shows).
CHAPTERS = (
    ("01_cohort", "01_cohort.ipynb", "Table 1 and the cohort"),
    ("02_baseline", "02_baseline.ipynb", "one baseline arm of Table 2 (one page per arm)"),
    ("03_kd", "03_kd.ipynb", "knowledge-distillation rows of Table 2"),
    ("04_pd", "04_pd.ipynb", "progressive-distill rows of Table 2 and Fig. 6"),
    ("05_ablation", "05_ablation.ipynb", "Table 4"),
    ("06_results", "06_results.ipynb", "Table 2, Figs. 3 and 4, DeLong tests, calibration"),
    ("07_clinicians", "07_clinicians.ipynb", "Table 3"),
    ("08_heatmaps", "08_heatmaps.ipynb", "Fig. 5"),
    ("09_audit", "09_audit.ipynb", "consistency audit of the paper's numbers"),
    ("10_checklist", "10_checklist.ipynb", "TRIPOD+AI items answered from the run"),
    ("11_sweep", "11_sweep.ipynb", "arms against the twin's signal strength"),
    ("12_verdict", "12_verdict.ipynb", "paired seeds, the external twin, the paper's design simulated, the scorecard"),
)
CHAPTER_NAMES = tuple(name for name, _, _ in CHAPTERS)

#: Chapters that need a study's external test set (key ``external``); not among a study's defaults without one.
EXTERNAL_CHAPTERS = ("12_verdict",)

#: Folder (under ``book_runs``) of the per-arm baseline pages.
BASELINE_FOLDER = "baselines"

#: Baseline arms in the order of Table 2 of the paper (the order of
#: :data:`pdlib.arms.ARMS`); a page's file name starts with its position, so
#: the book lists the pages in the paper's order.
BASELINE_ORDER = tuple(a for a in ARMS if arm_group(a) == "baseline")


def baseline_page(arm: str) -> str:
    """File name of an arm's baseline page: ``<position in Table 2>_<arm>.ipynb`` (``01_resnet50.ipynb``)."""
    return f"{BASELINE_ORDER.index(arm) + 1:02d}_{arm}.ipynb"


# --------------------------------------------------------------------------- the study


@dataclass(frozen=True)
class Study:
    """A validated study configuration.

    Attributes
    ----------
    name : str
        Name of the configuration (``workflow/config/<name>.yaml``).
    profile : str
        Training profile of :mod:`pdlib.config` (``smoke``, ``demo``, ``paper``).
    manifest, twin, results, book_runs, cache : str or None
        Folders, as written in the configuration (relative to the working
        directory). ``twin`` is None for a real cohort.
    seeds : tuple of int
        Every arm is trained once per seed; chapters show ``seeds[0]`` and the
        spread over all seeds.
    arms : tuple of str
        Arms of :data:`pdlib.arms.ARMS` to train.
    best_arm : str
        The model compared with the clinicians and explained by Grad-CAM.
    overrides : dict
        :class:`pdlib.config.TrainConfig` fields changed from the profile.
    chapters : tuple of str
        Chapters to execute.
    signal_sweep : dict or None
        ``{"signals": [...], "n_patients": [...], "arms": [...], "seeds": [...],
        "matrix": int, "slices": int}``: twins generated and trained for
        chapter 11; None when the study runs no sweep.
    resources : dict
        Per-target-kind Snakemake resources, e.g. ``{"train": {"gpu": 1}}``.
    external : dict or None
        ``{"n_patients", "seed", "signal", "matrix", "slices"}``: a second
        twin (another hospital: an independent seed, the study twin's
        settings unless given) that every final member of the study's arms
        scores, in every seed (``external_predictions.csv``); None: no
        external set.
    oof : dict or None
        ``{"folds": k, "arms": [...]}``: every member of these arms is also
        trained on the k stratified folds of the training patients (whole
        chains: a fold's student distils from the same fold's teacher), and
        its held-out scores give the pre-specified threshold
        (:func:`pdlib.stats.youden_threshold` on out-of-fold scores). None:
        no folds; thresholds are then labelled as resubstitution.
    """

    name: str
    profile: str
    manifest: str
    twin: str | None
    results: str
    book_runs: str
    cache: str
    seeds: tuple[int, ...]
    arms: tuple[str, ...]
    best_arm: str
    overrides: dict = field(default_factory=dict)
    chapters: tuple[str, ...] = CHAPTER_NAMES
    signal_sweep: dict | None = None
    resources: dict = field(default_factory=dict)
    oof: dict | None = None
    external: dict | None = None


def read_config_file(name: str, *, config_dir: str | os.PathLike = CONFIG_DIR, _seen: tuple = ()) -> dict:
    """The settings of ``<config_dir>/<name>.yaml``, following its base profile.

    A configuration whose ``profile`` names another configuration (for
    example ``sweep_seeds.yaml`` with ``profile: demo``) inherits that one's
    settings and overrides them. A name without a file gives ``{}``.
    """
    path = Path(config_dir) / f"{name}.yaml"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"study configuration {path} must hold a mapping")
    base = data.get("profile", name)
    if base != name:
        if base in _seen:
            raise ValueError(f"study configuration {path}: profile chain loops through {base!r}")
        return {**read_config_file(base, config_dir=config_dir, _seen=_seen + (name,)), **data}
    return data


def load_study(config: Mapping | None = None, *, config_dir: str | os.PathLike = CONFIG_DIR) -> Study:
    """Validate a Snakemake ``config`` into a :class:`Study`.

    Parameters
    ----------
    config : mapping, optional
        Snakemake's ``config``: ``profile`` names a file of ``config_dir``
        (``smoke``, ``demo``, ``sweep_seeds``, ...) whose settings are the
        defaults; every other key overrides them. Keys: see :data:`DEFAULTS`.
    config_dir : path
        Folder of the configuration files.

    Returns
    -------
    Study

    Raises
    ------
    ValueError
        Naming every unknown key, arm, chapter or invalid value.
    """
    config = dict(config or {})
    name = str(config.get("profile", DEFAULTS["profile"]))
    merged = {**DEFAULTS, **read_config_file(name, config_dir=config_dir)}
    merged.update({k: v for k, v in config.items() if k != "profile"})
    problems = []
    unknown = sorted(set(merged) - set(DEFAULTS))
    if unknown:
        problems.append(f"unknown key(s) {unknown}; known: {sorted(DEFAULTS)}")
    profile = merged.get("profile") or name
    if profile not in PROFILES:
        problems.append(f"profile {profile!r} is neither a training profile {PROFILES} "
                        f"nor a configuration in {config_dir} whose profile is one")
    arms = merged["arms"]
    if isinstance(arms, str) and arms in ARM_GROUPS:
        arms = ARM_GROUPS[arms]
    elif isinstance(arms, str):
        problems.append(f"arms must be a list of arms or a group of pdlib.arms.ARM_GROUPS {sorted(ARM_GROUPS)}, "
                        f"got {arms!r}")
        arms = None
    arms = tuple(arms) if arms else PAPER_ARMS
    bad_arms = [a for a in arms if a not in ARMS]
    if bad_arms:
        problems.append(f"unknown arm(s) {bad_arms}; known: {', '.join(ARMS)}")
    seeds = merged["seeds"]
    seeds = [seeds] if isinstance(seeds, int) else list(seeds or [])
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        problems.append(f"seeds must be a non-empty list of non-negative integers, got {merged['seeds']!r}")
    external = merged["external"]
    if external is not None:
        external = {**EXTERNAL_DEFAULTS, **dict(external)}
        unknown_ext = sorted(set(external) - set(EXTERNAL_DEFAULTS))
        if unknown_ext:
            problems.append(f"external: unknown key(s) {unknown_ext}; known: {sorted(EXTERNAL_DEFAULTS)}")
        for key in ("n_patients", "seed", "matrix", "slices"):
            value = external[key]
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                problems.append(f"external.{key} must be a non-negative integer, got {value!r}")
    chapters = tuple(merged["chapters"]) if merged["chapters"] else tuple(
        c for c in CHAPTER_NAMES if external is not None or c not in EXTERNAL_CHAPTERS)
    if external is None and [c for c in chapters if c in EXTERNAL_CHAPTERS]:
        problems.append(f"chapter(s) {[c for c in chapters if c in EXTERNAL_CHAPTERS]} need an external test set "
                        "(key external)")
    bad_chapters = [c for c in chapters if c not in CHAPTER_NAMES]
    if bad_chapters:
        problems.append(f"unknown chapter(s) {bad_chapters}; known: {', '.join(CHAPTER_NAMES)}")
    overrides = dict(merged["overrides"] or {})
    if not problems:
        try:
            resolve_config(profile, **overrides)
        except ValueError as exc:
            problems.append(f"overrides: {exc}")
    best_arm = merged["best_arm"]
    if best_arm not in arms and not bad_arms:
        problems.append(f"best_arm {best_arm!r} is not among the study's arms {list(arms)}")
    sweep = merged["signal_sweep"]
    if sweep is not None:
        sweep = dict(sweep)
        missing = [k for k in ("signals", "n_patients", "arms") if not sweep.get(k)]
        if missing:
            problems.append(f"signal_sweep needs non-empty {missing}")
        elif [a for a in sweep["arms"] if a not in ARMS]:
            problems.append(f"signal_sweep: unknown arm(s) {[a for a in sweep['arms'] if a not in ARMS]}")
        sweep.setdefault("seeds", [seeds[0]] if seeds else [0])
    oof = merged["oof"]
    if oof is not None:
        oof = dict(oof)
        folds = oof.get("folds", 5)
        if not isinstance(folds, int) or isinstance(folds, bool) or folds < 2:
            problems.append(f"oof.folds must be an integer >= 2, got {folds!r}")
        oof_arms = list(arms) if oof.get("arms") in (None, "all") else list(oof["arms"])
        if [a for a in oof_arms if a not in arms]:
            problems.append(f"oof.arms must be arms of the study; not: {[a for a in oof_arms if a not in arms]}")
        unknown_oof = sorted(set(oof) - {"folds", "arms"})
        if unknown_oof:
            problems.append(f"oof: unknown key(s) {unknown_oof}; known: folds, arms")
        oof = {"folds": folds, "arms": oof_arms}
    if problems:
        raise ValueError(f"study configuration {name!r}: " + "; ".join(problems))
    return Study(
        name=name, profile=profile, manifest=str(merged["manifest"]),
        twin=None if merged["twin"] in (None, "", "null", "none") else str(merged["twin"]),
        results=str(merged["results"] or f"results/{profile}"), book_runs=str(merged["book_runs"]),
        cache=str(merged["cache"]), seeds=tuple(seeds), arms=arms, best_arm=best_arm,
        overrides=overrides, chapters=chapters, signal_sweep=sweep, resources=dict(merged["resources"] or {}),
        oof=oof, external=external,
    )


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """One result of the study.

    Attributes
    ----------
    id : str
        ``member/seed<k>/<key>``, ``sweep/<cohort>/seed<k>/<key>``,
        ``runs/<chapter>`` or ``runs/baselines/<arm>``.
    kind : str
        ``"member"`` (a training) or ``"notebook"`` (an executed chapter).
    output : Path
        The file Snakemake waits for: the member's ``stamp.json`` or the
        executed notebook.
    parameters : dict
        What the result is a function of, besides code and manifest: the
        papermill parameters of a notebook, the member, seed and overrides
        of a training.
    inputs : tuple of str
        Ids of the targets it reads.
    template : Path or None
        The notebook template (notebooks only).
    manifest : str
        Manifest folder the result reflects.
    """

    id: str
    kind: str
    output: Path
    parameters: dict
    inputs: tuple[str, ...] = ()
    template: Path | None = None
    manifest: str = ""


def _member_target(study: Study, *, results: str, manifest: str, seed: int, key: str, prefix: str) -> Target:
    parent = parent_key(key)
    return Target(
        id=f"{prefix}/seed{seed}/{key}", kind="member",
        output=member_dir(results, seed, key) / MEMBER_STAMP,
        parameters={"member": key, "profile": study.profile, "seed": seed, "overrides": dict(study.overrides)},
        inputs=(f"{prefix}/seed{seed}/{parent}",) if parent else (), manifest=manifest,
    )


def _fold_target(study: Study, *, seed: int, key: str, folds: int, fold: int) -> Target:
    """One member of a fold's chain: trained on the other folds, scoring the held-out one."""
    parent = parent_key(key)
    prefix = f"oof/seed{seed}/k{folds}-fold{fold}"
    return Target(
        id=f"{prefix}/{key}", kind="member",
        output=paths.oof_fold_dir(paths.seed_dir(study.results, seed), n_folds=folds, fold=fold) / key / MEMBER_STAMP,
        parameters={"member": key, "profile": study.profile, "seed": seed, "overrides": dict(study.overrides),
                    "folds": folds, "fold": fold},
        inputs=(f"{prefix}/{parent}",) if parent else (), manifest=study.manifest,
    )


def _oof_scores_target(study: Study, *, seed: int, key: str, folds: int) -> Target:
    """A member's out-of-fold scores, gathered from its fold runs into its own folder."""
    return Target(
        id=f"oof/seed{seed}/{key}", kind="oof", output=member_dir(study.results, seed, key) / OOF_STAMP,
        parameters={"member": key, "seed": seed, "folds": folds},
        inputs=(f"member/seed{seed}/{key}",) + tuple(f"oof/seed{seed}/k{folds}-fold{f}/{key}" for f in range(folds)),
        manifest=study.manifest,
    )


def sweep_cohorts(study: Study) -> list[dict]:
    """The twins of the signal sweep.

    Returns
    -------
    list of dict
        ``name, signal, n_patients, matrix, slices, twin_seed`` (everything
        the twin is generated from, so a change of any reruns it) and the
        folders ``twin, manifest, results``.
    """
    from pdlib.twin import DEFAULT_SEED

    if not study.signal_sweep:
        return []
    sweep = study.signal_sweep
    root = Path(study.results) / "sweep"
    cohorts = []
    for signal in sweep["signals"]:
        for n in sweep["n_patients"]:
            name = f"signal{float(signal):g}_n{int(n)}"
            cohorts.append({"name": name, "signal": float(signal), "n_patients": int(n),
                            "matrix": int(sweep.get("matrix", 64)), "slices": int(sweep.get("slices", 16)),
                            "twin_seed": int(sweep.get("twin_seed", DEFAULT_SEED)),
                            "twin": str(root / name / "twin"), "manifest": str(root / name / "twin" / "manifest"),
                            "results": str(root / name / "runs")})
    return cohorts


def external_cohort(study: Study) -> dict | None:
    """The external twin of a study (key ``external``), or None.

    Returns
    -------
    dict or None
        ``name, signal, n_patients, matrix, slices, twin_seed`` (what the twin
        is generated from; unset settings are those of the default twin,
        :mod:`pdlib.twin`) and the folders ``twin, manifest`` (under
        ``<results>/external/``).
    """
    from pdlib import twin

    if not study.external:
        return None
    ext = study.external
    folder = Path(study.results) / "external" / "twin"
    return {"name": "external",
            "signal": float(twin.DEFAULT_SIGNAL if ext["signal"] is None else ext["signal"]),
            "n_patients": int(ext["n_patients"]),
            "matrix": int(ext["matrix"] or twin.DEFAULT_MATRIX), "slices": int(ext["slices"] or twin.DEFAULT_N_SLICES),
            "twin_seed": int(ext["seed"]), "twin": str(folder), "manifest": str(folder / "manifest")}


def external_members(study: Study) -> list[str]:
    """Member keys that score the external set: the final member of every arm of the study."""
    return list(dict.fromkeys(ARMS[a].final_key for a in study.arms)) if study.external else []


def _external_target(study: Study, *, seed: int) -> Target:
    """Every external member of one seed scoring the external twin (one process, the cohort loaded once)."""
    cohort = external_cohort(study)
    keys = external_members(study)
    return Target(
        id=f"external/seed{seed}", kind="external", output=paths.seed_dir(study.results, seed) / EXTERNAL_STAMP,
        parameters={"seed": seed, "members": keys, "external": cohort, "profile": study.profile,
                    "overrides": dict(study.overrides)},
        inputs=tuple(f"member/seed{seed}/{k}" for k in keys), manifest=cohort["manifest"],
    )


def twin_cohorts(study: Study) -> list[dict]:
    """Every twin the study generates: the sweep's (:func:`sweep_cohorts`) and the external one."""
    external = external_cohort(study)
    return sweep_cohorts(study) + ([external] if external else [])


def plan(study: Study) -> dict[str, Target]:
    """Every target of ``study``, keyed by id, upstream before downstream.

    Members are trained once per seed and shared by the arms whose chains
    contain them (:func:`pdlib.arms.study_members`).
    """
    templates = paths.notebooks_dir()
    targets: dict[str, Target] = {}
    members = study_members(study.arms)
    for seed in study.seeds:
        for key in members:
            t = _member_target(study, results=study.results, manifest=study.manifest, seed=seed, key=key,
                               prefix="member")
            targets[t.id] = t
    oof_keys = study_members(study.oof["arms"]) if study.oof else []
    for seed in study.seeds:
        for fold in range(study.oof["folds"] if study.oof else 0):
            for key in oof_keys:
                t = _fold_target(study, seed=seed, key=key, folds=study.oof["folds"], fold=fold)
                targets[t.id] = t
        for key in oof_keys:
            t = _oof_scores_target(study, seed=seed, key=key, folds=study.oof["folds"])
            targets[t.id] = t
    for seed in study.seeds if study.external else ():
        t = _external_target(study, seed=seed)
        targets[t.id] = t
    sweep_members = []
    for cohort in sweep_cohorts(study):
        for seed in study.signal_sweep["seeds"]:
            for key in study_members(study.signal_sweep["arms"]):
                t = _member_target(study, results=cohort["results"], manifest=cohort["manifest"], seed=seed,
                                   key=key, prefix=f"sweep/{cohort['name']}")
                targets[t.id] = t
                sweep_members.append(t.id)

    common = {"profile": study.profile, "config_name": study.name, "manifest_dir": study.manifest,
              "twin_dir": study.twin, "results_dir": study.results, "cache_dir": study.cache,
              "seeds": list(study.seeds), "overrides": dict(study.overrides)}

    def needs(arms, seeds=study.seeds):
        keys = study_members(arms) if arms else []
        return tuple(f"member/seed{s}/{k}" for s in seeds for k in keys) + tuple(
            f"oof/seed{s}/{k}" for s in seeds for k in keys if k in oof_keys)

    groups = {g: [a for a in study.arms if arm_group(a) == g]
              for g in ("baseline", "kd", "pd", "iteration", "ablation")}
    table2 = [a for a in study.arms if arm_group(a) in ("baseline", "kd", "pd")]
    first = (study.seeds[0],)
    chapter_params = {
        "01_cohort": ({}, ()),
        "03_kd": ({"arms": groups["kd"], "baseline_arms": groups["baseline"]},
                  needs(groups["kd"] + groups["baseline"], first)),
        "04_pd": ({"arms": groups["pd"], "iteration_arms": groups["iteration"]},
                  needs(groups["pd"] + groups["iteration"], first)),
        "05_ablation": ({"arms": groups["ablation"]}, needs(groups["ablation"], first)),
        "06_results": ({"arms": table2, "all_arms": list(study.arms), "best_arm": study.best_arm},
                       tuple(dict.fromkeys(needs(table2) + needs(list(study.arms), first)))),
        "07_clinicians": ({"best_arm": study.best_arm}, needs([study.best_arm], first)),
        "08_heatmaps": ({"best_arm": study.best_arm}, needs([study.best_arm], first)),
        "09_audit": ({}, ()),
        "10_checklist": ({"arms": list(study.arms), "best_arm": study.best_arm}, needs(list(study.arms), first)),
        "11_sweep": ({"sweep": _sweep_parameters(study)}, tuple(sweep_members)),
        "12_verdict": ({"arms": list(study.arms), "best_arm": study.best_arm, "oof": study.oof,
                        "external": external_cohort(study)},
                       tuple(dict.fromkeys(needs(list(study.arms)) + tuple(
                           f"external/seed{s}" for s in study.seeds if study.external)))),
    }
    for name, template, _ in CHAPTERS:
        if name not in study.chapters:
            continue
        if name == "02_baseline":
            for arm in groups["baseline"]:
                t = Target(id=f"runs/{BASELINE_FOLDER}/{arm}", kind="notebook",
                           output=Path(study.book_runs) / BASELINE_FOLDER / baseline_page(arm),
                           parameters={**common, "arm": arm}, inputs=needs([arm], first),
                           template=templates / template, manifest=study.manifest)
                targets[t.id] = t
            continue
        extra, inputs = chapter_params[name]
        t = Target(id=f"runs/{name}", kind="notebook", output=Path(study.book_runs) / f"{name}.ipynb",
                   parameters={**common, **extra}, inputs=inputs, template=templates / template,
                   manifest=study.manifest)
        targets[t.id] = t
    return targets


def _sweep_parameters(study: Study) -> dict | None:
    if not study.signal_sweep:
        return None
    return {"cohorts": sweep_cohorts(study), "arms": list(study.signal_sweep["arms"]),
            "seeds": list(study.signal_sweep["seeds"])}


# --------------------------------------------------------------------------- stamps


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def template_hash(template: str | os.PathLike) -> str:
    """Hash of a notebook template's cell types and sources (outputs and metadata ignored)."""
    import nbformat

    nb = nbformat.read(str(template), as_version=4)
    return _digest([(c.cell_type, c.source) for c in nb.cells])


def read_stamp(target: Target) -> dict | None:
    """The stamp a target recorded, or None when it has none (missing or unreadable)."""
    path = Path(target.output)
    if not path.is_file():
        return None
    try:
        if target.kind in ("member", "oof", "external"):
            return json.loads(path.read_text(encoding="utf-8"))
        import nbformat

        return dict(nbformat.read(str(path), as_version=4).metadata.get(METADATA_KEY) or {}) or None
    except (OSError, ValueError):
        return None


def input_digests(target: Target, targets: Mapping[str, Target]) -> dict[str, str | None]:
    """Digest of the current stamp of every input of ``target`` (None when missing)."""
    out = {}
    for tid in target.inputs:
        stamp = read_stamp(targets[tid]) if tid in targets else None
        out[tid] = None if stamp is None else _digest(stamp)
    return out


def code_scope(target: Target, *, package_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """The code a target's result depends on, ``{file: hash}`` (:mod:`pdlib.provenance`).

    A member: what :func:`run_member` reaches (the training code, not the
    figures). A notebook: the ``pdlib`` modules its template imports, with
    their import closure (its template and the members it reads are
    followed separately). ``package_dir`` reads the code of another copy of
    ``pdlib`` (tests edit a copy to check which results a change makes stale).
    """
    if target.kind == "member":
        return provenance.function_code_digests("pdlib.pipeline:run_member", package_dir)
    if target.kind == "oof":
        return provenance.function_code_digests("pdlib.pipeline:run_oof_scores", package_dir)
    if target.kind == "external":
        return provenance.function_code_digests("pdlib.pipeline:run_external_scores", package_dir)
    return provenance.module_code_digests(provenance.notebook_modules(target.template), package_dir)


def make_target_stamp(target: Target, targets: Mapping[str, Target]) -> dict:
    """The stamp of ``target`` produced now (after its inputs were produced)."""
    stamp = provenance.make_stamp(manifest_dir=target.manifest, code=code_scope(target),
                                  parameters=target.parameters)
    stamp["inputs"] = input_digests(target, targets)
    if target.template is not None:
        stamp["template_hash"] = template_hash(target.template)
        # the training code behind the members it shows, so that the committed
        # book alone tells whether its members are current (tests/test_reference_run.py)
        members = [read_stamp(targets[i]) for i in target.inputs if i in targets and targets[i].kind == "member"]
        codes = [m.get("code") for m in members if m and m.get("code")]
        if codes:
            stamp["member_code"] = codes[0] if all(c == codes[0] for c in codes) else {}
    return stamp


def own_stale_reasons(target: Target, targets: Mapping[str, Target], *,
                      package_dir: str | os.PathLike | None = None) -> list[str]:
    """Why ``target`` is stale by its own stamp (not counting stale inputs)."""
    stamp = read_stamp(target)
    if stamp is None:
        return ["missing" if not Path(target.output).exists() else "no stamp"]
    try:
        reasons = provenance.stale_reasons(stamp, manifest_dir=target.manifest,
                                           code=code_scope(target, package_dir=package_dir),
                                           parameters=target.parameters)
    except FileNotFoundError as exc:
        return [f"manifest unreadable: {exc}"]
    if target.template is not None and stamp.get("template_hash") != template_hash(target.template):
        reasons.append(f"template {Path(target.template).name} changed")
    recorded = stamp.get("inputs") or {}
    for tid, digest in input_digests(target, targets).items():
        if recorded.get(tid) != digest:
            reasons.append(f"input {tid} was produced again after this result")
    return reasons


def stale_targets(study: Study, *, targets: Mapping[str, Target] | None = None,
                  package_dir: str | os.PathLike | None = None) -> dict[str, list[str]]:
    """Every stale target of the study and why, downstream effects included.

    A target is stale when it is missing, when its stamp differs from what
    the study would record now (:func:`own_stale_reasons`), or when one of
    its inputs is stale.

    Returns
    -------
    dict
        ``{target id: [reasons]}`` in plan order; empty when everything is
        current.
    """
    targets = plan(study) if targets is None else targets
    stale: dict[str, list[str]] = {}
    for tid, target in targets.items():  # plan order: inputs first
        reasons = own_stale_reasons(target, targets, package_dir=package_dir)
        upstream = [i for i in target.inputs if i in stale]
        if upstream:
            reasons = reasons + [f"input {upstream[0]} is stale" + (f" (and {len(upstream) - 1} more)" if len(upstream) > 1 else "")]
        if reasons:
            stale[tid] = reasons
    return stale


def committed_run_staleness(study: Study, *, package_dir: str | os.PathLike | None = None) -> dict[str, list[str]]:
    """What ``make book`` would redo, judged from the executed notebooks alone.

    For a committed reference run, where the run folders (``results/``) are
    not at hand: every chapter's own stamp (its code scope, manifest,
    parameters, template) is compared with now, and the training code its
    members were trained by (``member_code`` in the stamp) with the
    members' code scope now. When that differs, every member of the plan is
    reported stale (they share one scope) together with the chapters;
    otherwise only the chapters whose own stamp differs.

    Returns
    -------
    dict
        ``{target id: [reasons]}``, members first; empty when a rerun would
        do nothing.
    """
    targets = plan(study)
    members = [t for t in targets.values() if t.kind == "member"]
    member_code = code_scope(members[0], package_dir=package_dir) if members else {}
    chapters: dict[str, list[str]] = {}
    retrain: set[str] = set()
    for tid, target in targets.items():
        if target.kind != "notebook":
            continue
        stamp = read_stamp(target)
        if stamp is None:
            chapters[tid] = ["not committed" if not Path(target.output).exists() else "no stamp"]
            continue
        reasons = provenance.stale_reasons(stamp, manifest_dir=target.manifest,
                                           code=code_scope(target, package_dir=package_dir),
                                           parameters=target.parameters)
        if stamp.get("template_hash") != template_hash(target.template):
            reasons.append(f"template {Path(target.template).name} changed")
        if any(targets[i].kind == "member" for i in target.inputs if i in targets):
            changed = provenance.code_changes(stamp.get("member_code"), member_code)
            if changed:
                retrain.update(changed)
                reasons.append("its members' training code changed")
        if reasons:
            chapters[tid] = reasons
    out: dict[str, list[str]] = {}
    if retrain:
        files = sorted(retrain)
        why = "training code changed: " + ", ".join(files[:6]) + (f" and {len(files) - 6} more" if len(files) > 6 else "")
        out.update({t.id: [why] for t in members})
    out.update(chapters)
    return out


# --------------------------------------------------------------------------- running targets


def run_member(target: Target, *, study: Study) -> None:
    """Train (or reuse) one member: the computation a member's stamp covers.

    A member folder is reused when :func:`pdlib.train.train_member` finds it
    complete with the same configuration *and* it was trained by the current
    training code (``config.json`` provenance); otherwise it is trained afresh.
    A fold member (parameters ``folds`` and ``fold``) trains on the other
    folds of the training patients and scores only the held-out fold
    (:func:`pdlib.runs.fold_patients`); the test patients are never used.
    Starting weights are resolved here (:func:`pdlib.pretrain.starting_weights`,
    shared by the seed's members) and passed in.
    """
    # the training stack (torch) loads only to run a member, not to plan a study
    from pdlib import infer, models, pretrain, runs, train
    from pdlib.slices import load_cohort

    key, seed = target.parameters["member"], target.parameters["seed"]
    config = resolve_config(study.profile, seed=seed, **study.overrides)
    manifest = load_manifest(target.manifest)
    train_patients = load_cohort(manifest, split="train", resize=config.resize, cache_dir=study.cache)
    if "fold" in target.parameters:
        train_patients, test_patients = runs.fold_patients(
            train_patients, n_folds=target.parameters["folds"], fold=target.parameters["fold"], seed=seed)
    else:
        test_patients = load_cohort(manifest, split="test", resize=config.resize, cache_dir=study.cache)
    folder = Path(target.output).parent
    parent = parent_key(key)
    teacher = infer.load_member(folder.parent / parent) if parent else None
    recorded = {}
    try:
        recorded = json.loads((folder / "config.json").read_text()).get("provenance", {})
    except (OSError, ValueError):
        pass
    force = bool(recorded) and recorded.get("code_hash") != provenance.training_code_hash()
    member = members_of_key(key)[-1]
    arch = models.arch_for_profile(member.arch, profile=config.profile)
    pretext_seed = seed if config.pretrain_seed is None else config.pretrain_seed
    init_weights = pretrain.starting_weights(arch, config=config,
                                             out_dir=paths.seed_dir(study.results, pretext_seed) / "pretrain")
    train.train_member(
        folder, arch=arch, train_patients=train_patients, test_patients=test_patients,
        config=runs.member_config(config, member),
        teacher=teacher, noise=member.noise, member_key=key, teacher_key=parent,
        positive_class=manifest.positive_class, init_weights=init_weights, force=force,
    )


def run_oof_scores(target: Target, *, study: Study) -> Path:
    """Gather a member's held-out scores from its fold runs into ``oof_predictions.csv`` in its folder."""
    from pdlib import runs

    key, seed, folds = target.parameters["member"], target.parameters["seed"], target.parameters["folds"]
    patients = load_manifest(target.manifest, check_files=False).patients
    ids = [SimpleNamespace(patient_id=pid) for pid in patients.loc[patients["split"] == "train", "patient_id"]]
    return runs.collect_out_of_fold(paths.seed_dir(study.results, seed), key, ids, n_folds=folds)


def run_external_scores(target: Target, *, study: Study) -> list[Path]:
    """Score the external twin with every external member of one seed (``external_predictions.csv`` each).

    The cohort is read once, through the same ingestion as the study's
    (:func:`pdlib.slices.load_cohort`); each member is scored as its test
    patients were (:func:`pdlib.runs.score_patients`).
    """
    from pdlib import runs
    from pdlib.slices import load_cohort

    seed = target.parameters["seed"]
    config = resolve_config(study.profile, seed=seed, **study.overrides)
    manifest = load_manifest(target.manifest)
    patients = load_cohort(manifest, split=None, resize=config.resize, cache_dir=study.cache)
    return [runs.score_patients(member_dir(study.results, seed, key), patients, config=config,
                                name=runs.EXTERNAL_PREDICTIONS)
            for key in target.parameters["members"]]


def train_member_target(target: Target, targets: Mapping[str, Target], *, study: Study) -> Path:
    """:func:`run_member` (or :func:`run_oof_scores`, :func:`run_external_scores`), then write the target's stamp."""
    if target.kind == "oof":
        run_oof_scores(target, study=study)
    elif target.kind == "external":
        run_external_scores(target, study=study)
    else:
        run_member(target, study=study)
    return atomic.write_text(target.output, json.dumps(make_target_stamp(target, targets), indent=2) + "\n")


#: Placeholder in a per-arm template's text for the arm's label (:attr:`pdlib.arms.Arm.label`).
ARM_LABEL = "{{arm_label}}"

#: Placeholder in a per-arm template's text for the arm's name (unique MyST targets, e.g. figure names).
ARM_NAME = "{{arm}}"


def execute_notebook(target: Target, targets: Mapping[str, Target], *, kernel_name: str = "python3",
                     cwd: str | os.PathLike | None = None) -> Path:
    """Execute a chapter template with papermill into the book, stamped.

    Every code cell of the executed copy is tagged ``hide-input`` (the
    papermill parameters cell included), or ``remove-cell`` when it shows
    nothing (imports, values glued into the text), :data:`ARM_NAME` becomes
    the arm's name (so figure targets are unique across the per-arm pages), :data:`ARM_LABEL` in the text of a
    per-arm page becomes the arm's label (so each page has its own title),
    the stamp goes into
    ``metadata.pdlib`` and the notebook is written atomically, so a failed run
    never leaves a half-written chapter.
    """
    import nbformat
    import papermill

    output = Path(target.output)
    with atomic.replacing(output, suffix=".ipynb") as tmp:
        papermill.execute_notebook(
            str(target.template), str(tmp), parameters=target.parameters, kernel_name=kernel_name,
            cwd=str(cwd or os.getcwd()), progress_bar=False, log_output=False,
        )
        nb = nbformat.read(str(tmp), as_version=4)
        nb.cells = [c for c in nb.cells if not _overridden_defaults(c, target.parameters)]
        arm = target.parameters.get("arm")
        for cell in nb.cells:
            if cell.cell_type == "markdown" and arm in ARMS:
                cell.source = cell.source.replace(ARM_LABEL, ARMS[arm].label).replace(ARM_NAME, arm)
            if cell.cell_type == "code":
                tags = cell.metadata.setdefault("tags", [])
                if not cell.get("outputs") and "injected-parameters" not in tags:
                    # nothing to show (imports, glue with display=False): no empty "show code" toggle
                    tags[:] = [t for t in tags if t not in ("hide-input", "remove-input")] + ["remove-cell"]
                elif "hide-input" not in tags:
                    tags.append("hide-input")
        nb.metadata.pop("papermill", None)
        for cell in nb.cells:
            cell.metadata.pop("papermill", None)
            cell.metadata.pop("execution", None)
        nb.metadata[METADATA_KEY] = make_target_stamp(target, targets)
        nbformat.write(nb, str(tmp))
    return output


def make_twin(cohort: Mapping, *, n_jobs: int = 1) -> dict:
    """Generate one twin of the signal sweep or the external set (:func:`pdlib.twin.generate_twin`)."""
    from pdlib.twin import generate_twin

    folder = Path(cohort["twin"])
    if folder.is_dir() and not (folder / "twin.json").exists() and not any(p.is_file() for p in folder.rglob("*")):
        shutil.rmtree(folder)  # empty folders made by Snakemake for the output, not a twin
    return generate_twin(cohort["twin"], n_patients=cohort["n_patients"], signal_strength=cohort["signal"],
                         matrix=cohort["matrix"], n_slices=cohort["slices"], seed=cohort["twin_seed"], n_jobs=n_jobs)


def warm_cohorts(study: Study) -> dict[str, dict]:
    """The cohorts whose slices a study's members read, to decode once before they start (:func:`warm_cache`).

    Returns
    -------
    dict
        ``{name: {"manifest": folder, "resize": px, "cache": folder}}``:
        ``study`` (the study's manifest, into the study's cache) and, when the
        profile pretrains on a twin, ``pretrain_seed<k>`` for every pretext
        seed (that twin's manifest, into the cache the pretext run of that
        seed reads: :func:`pdlib.pretrain.pretrained_weights`'s default,
        ``<results>/seed<k>/pretrain/cache``).
    """
    config = resolve_config(study.profile, **study.overrides)
    out = {"study": {"manifest": str(study.manifest), "resize": config.resize, "cache": str(study.cache)}}
    if config.pretrain_twin is not None:
        seeds = sorted({s if config.pretrain_seed is None else config.pretrain_seed for s in study.seeds})
        for seed in seeds:
            out[f"pretrain_seed{seed}"] = {"manifest": str(Path(config.pretrain_twin) / "manifest"),
                                           "resize": config.resize,
                                           "cache": str(paths.seed_dir(study.results, seed) / "pretrain" / "cache")}
    return out


def _warm_patients(manifest_dir: str, patient_ids: list[str], resize: int, cache_dir: str) -> int:
    """:func:`pdlib.slices.load_patient_slices` for some patients of a manifest (one worker's share)."""
    from pdlib.slices import load_patient_slices

    manifest = load_manifest(manifest_dir, check_files=False)
    for pid in patient_ids:
        load_patient_slices(manifest, pid, resize=resize, cache_dir=cache_dir)
    return len(patient_ids)


def warm_cache(manifest_dir: str | os.PathLike, *, resize: int, cache_dir: str | os.PathLike, n_jobs: int = 1) -> dict:
    """Decode every patient of a manifest into the slice cache once, in ``n_jobs`` processes.

    The members of a study load their cohort through the cache
    (:func:`pdlib.slices.load_cohort`); run first, this spares the first
    members that start side by side from each decoding the same DICOM series
    (the cache writes are atomic, so a member that starts anyway reads either
    nothing or a whole entry). The same ingestion, checks and errors as a
    member's load: the first bad patient raises its
    :class:`pdlib.dicom.DicomInputError`.

    Returns
    -------
    dict
        ``manifest, patients, resize, seconds``.
    """
    import concurrent.futures
    import time

    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be an integer >= 1, got {n_jobs!r}")
    started = time.perf_counter()
    ids = [str(p) for p in load_manifest(manifest_dir).patients["patient_id"]]
    shares = [ids[k::n_jobs] for k in range(min(n_jobs, len(ids)))]  # each worker reads the manifest once
    if len(shares) < 2:
        _warm_patients(str(manifest_dir), ids, int(resize), str(cache_dir))
    else:
        with concurrent.futures.ProcessPoolExecutor(max_workers=len(shares)) as pool:
            futures = [pool.submit(_warm_patients, str(manifest_dir), share, int(resize), str(cache_dir))
                       for share in shares]
            for future in futures:
                future.result()
    return {"manifest": str(manifest_dir), "patients": len(ids), "resize": int(resize),
            "seconds": round(time.perf_counter() - started, 3)}


def ingest_external(study: Study, *, n_jobs: int = 1) -> int:
    """Read the external twin once through the study's ingestion into its cache; return the patient count.

    Run right after the twin is generated, so that the seeds' scoring jobs,
    which may run side by side, find every patient cached instead of each
    decoding the same DICOM series.
    """
    config = resolve_config(study.profile, **study.overrides)
    return warm_cache(external_cohort(study)["manifest"], resize=config.resize, cache_dir=study.cache,
                      n_jobs=n_jobs)["patients"]


def _overridden_defaults(cell, parameters: Mapping) -> bool:
    """Whether ``cell`` is the template's ``parameters`` cell and papermill replaced all its values.

    Such a cell shows the template's defaults, not what ran, so the executed
    copy drops it and keeps papermill's ``injected-parameters`` cell.
    """
    import ast

    if cell.cell_type != "code" or "parameters" not in cell.metadata.get("tags", []):
        return False
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:
        return False
    names = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
             if isinstance(t, ast.Name)}
    return names <= set(parameters)


def check_stale(study: Study, *, ci: bool | None = None, book_runs: str | os.PathLike | None = None,
                stream=None) -> int:
    """Report stale or missing results before the book is built.

    Parameters
    ----------
    study : Study
    ci : bool, optional
        Fail (return 1) on a stale result; default: the environment variable
        ``CI`` is ``true``. Otherwise print a loud warning and return 0.
    book_runs : path, optional
        Executed-notebook folder to scan for pages that no target of the
        study produces (default ``study.book_runs``).

    Returns
    -------
    int
        Exit code.
    """
    stream = stream or sys.stderr
    ci = (os.environ.get("CI", "").lower() == "true") if ci is None else ci
    stale = stale_targets(study)
    targets = plan(study)
    expected = {Path(t.output).resolve() for t in targets.values() if t.kind == "notebook"}
    folder = Path(book_runs or study.book_runs)
    orphans = sorted(p for p in folder.rglob("*.ipynb") if p.resolve() not in expected
                     and ".ipynb_checkpoints" not in p.parts) if folder.is_dir() else []
    if not stale and not orphans:
        print(f"pdlib.pipeline: every result of study {study.name!r} is current "
              f"({len(targets)} targets)", file=stream)
        return 0
    word = "ERROR" if ci else "WARNING"
    lines = [f"{'!' * 72}", f"{word}: study {study.name!r} has {len(stale)} stale result(s):"]
    lines += [f"  - {tid} ({targets[tid].output}): {'; '.join(reasons)}" for tid, reasons in stale.items()]
    if orphans:
        lines.append(f"{word}: {len(orphans)} executed notebook(s) no target of the study produces:")
        lines += [f"  - {p}" for p in orphans]
    lines += [f"Run `make study PROFILE={study.name}` to bring them up to date.", "!" * 72]
    print("\n".join(lines), file=stream)
    return 1 if ci else 0


# --------------------------------------------------------------------------- the book


def write_baselines_index(path: str | os.PathLike, arms: Sequence[str]) -> Path:
    """The parent page of the per-arm baseline chapters (a list; no number from a run)."""
    lines = ["# Baselines", "",
             "One page per baseline arm of Table 2 of Han et al. 2025: the model trained alone, with "
             "label-smoothed cross entropy, its training curve and its training and test metrics.", ""]
    lines += [f"- [{ARMS[a].label}]({BASELINE_FOLDER}/{baseline_page(a)})" for a in arms]
    return atomic.write_text(path, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------- command line


def _parse_config(items: Sequence[str]) -> dict:
    config = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--config expects key=value, got {item!r}")
        config[key.strip()] = yaml.safe_load(value)
    return config


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pdlib.pipeline {stale-targets,check-stale,train-member,execute} [--config k=v ...]``."""
    parser = argparse.ArgumentParser(prog="python -m pdlib.pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["stale-targets", "check-stale", "train-member", "execute", "list",
                                            "make-twin", "warm-cache"])
    parser.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                        help="study configuration, as given to snakemake --config (profile=smoke ...)")
    parser.add_argument("--configfile", default=None, help="a YAML file of configuration keys")
    parser.add_argument("--config-json", default=None, help="the whole configuration as one JSON object")
    parser.add_argument("--target", default=None, help="target id (execute, train-member)")
    parser.add_argument("--ci", action="store_true", default=None, help="check-stale: fail on stale results")
    parser.add_argument("--jobs", type=int, default=1, help="make-twin, warm-cache: worker processes")
    args = parser.parse_args(argv)
    config = {}
    if args.configfile:
        config.update(yaml.safe_load(Path(args.configfile).read_text()) or {})
    if args.config_json:
        config.update(json.loads(args.config_json))
    config.update(_parse_config(args.config))
    study = load_study(config)
    targets = plan(study)
    if args.command == "list":
        for tid, t in targets.items():
            print(f"{tid}\t{t.output}")
        return 0
    if args.command == "stale-targets":
        for tid, reasons in stale_targets(study, targets=targets).items():
            print(f"{targets[tid].output}\t{tid}\t{'; '.join(reasons)}")
        return 0
    if args.command == "check-stale":
        return check_stale(study, ci=args.ci)
    if args.command == "make-twin":
        cohort = next((c for c in twin_cohorts(study) if c["name"] == args.target), None)
        if cohort is None:
            parser.error(f"no sweep or external cohort {args.target!r} in study {study.name!r}")
        make_twin(cohort, n_jobs=args.jobs)
        if cohort["name"] == "external":
            ingest_external(study, n_jobs=args.jobs)
        return 0
    if args.command == "warm-cache":
        cohorts = warm_cohorts(study)
        if args.target not in cohorts:
            parser.error(f"no cohort {args.target!r} to warm in study {study.name!r}; choose from {sorted(cohorts)}")
        cohort = cohorts[args.target]
        summary = warm_cache(cohort["manifest"], resize=cohort["resize"], cache_dir=cohort["cache"], n_jobs=args.jobs)
        print(json.dumps(summary))
        return 0
    if args.target not in targets:
        parser.error(f"unknown target {args.target!r}; see `python -m pdlib.pipeline list`")
    target = targets[args.target]
    if args.command == "train-member":
        if target.kind not in ("member", "oof", "external"):
            parser.error(f"{args.target} is not a member training or scoring")
        train_member_target(target, targets, study=study)
    else:
        if target.kind != "notebook":
            parser.error(f"{args.target} is not a notebook")
        execute_notebook(target, targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
