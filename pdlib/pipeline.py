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
* the small helpers the notebooks call to turn run folders into tables
  (:func:`arm_predictions`, :func:`metrics_long`, :func:`paper_metric_table`).

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
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import yaml

from pdlib import atomic, paths, provenance

#: Folder of the study configurations (``<name>.yaml``), next to the Snakefile.
CONFIG_DIR = paths.REPO_ROOT / "workflow" / "config"

#: Key of the executed notebooks' metadata that holds their stamp.
METADATA_KEY = "pdlib"

#: Name of a member's stamp file inside its run folder.
MEMBER_STAMP = "stamp.json"

#: Defaults of every study configuration key (see ``workflow/config/*.yaml``).
DEFAULTS = {
    "profile": "demo",
    "manifest": "data_manifest",
    "twin": "data/twin",
    "results": None,  # default results/<profile>
    "book_runs": "book/runs",
    "cache": "cache",
    "seeds": [0],
    "arms": None,  # default every arm of pdlib.distill.ARMS
    "best_arm": "pd_b7",
    "overrides": {},
    "chapters": None,  # default every chapter of CHAPTERS
    "signal_sweep": None,
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
)
CHAPTER_NAMES = tuple(name for name, _, _ in CHAPTERS)

#: Folder (under ``book_runs``) of the per-arm baseline pages.
BASELINE_FOLDER = "baselines"


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
        Arms of :data:`pdlib.distill.ARMS` to train.
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
    from pdlib.config import PROFILES, resolve_config
    from pdlib.distill import ARMS

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
    arms = tuple(merged["arms"]) if merged["arms"] else tuple(ARMS)
    bad_arms = [a for a in arms if a not in ARMS]
    if bad_arms:
        problems.append(f"unknown arm(s) {bad_arms}; known: {', '.join(ARMS)}")
    seeds = merged["seeds"]
    seeds = [seeds] if isinstance(seeds, int) else list(seeds or [])
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        problems.append(f"seeds must be a non-empty list of non-negative integers, got {merged['seeds']!r}")
    chapters = tuple(merged["chapters"]) if merged["chapters"] else CHAPTER_NAMES
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
    if problems:
        raise ValueError(f"study configuration {name!r}: " + "; ".join(problems))
    return Study(
        name=name, profile=profile, manifest=str(merged["manifest"]),
        twin=None if merged["twin"] in (None, "", "null", "none") else str(merged["twin"]),
        results=str(merged["results"] or f"results/{profile}"), book_runs=str(merged["book_runs"]),
        cache=str(merged["cache"]), seeds=tuple(seeds), arms=arms, best_arm=best_arm,
        overrides=overrides, chapters=chapters, signal_sweep=sweep, resources=dict(merged["resources"] or {}),
    )


# --------------------------------------------------------------------------- arms and members


def members_of_key(key: str):
    """The chain of :class:`pdlib.distill.Member` named by a lineage key.

    ``"b7--b7mn"`` is an EfficientNet-B7 teacher and a noisy B7 student (the
    inverse of :meth:`pdlib.distill.Arm.member_keys`).
    """
    from pdlib.distill import SHORT_NAMES, Member

    by_short = {short: arch for arch, short in SHORT_NAMES.items()}
    members = []
    for part in key.split("--"):
        noise = part.endswith("mn") and part[:-2] in by_short
        short = part[:-2] if noise else part
        if short not in by_short:
            raise ValueError(f"member key {key!r}: unknown model {part!r}; known: {sorted(by_short)}")
        members.append(Member(by_short[short], noise=noise))
    return members


def parent_key(key: str) -> str | None:
    """The teacher's key of a member key (None for a chain's first member)."""
    return key.rsplit("--", 1)[0] if "--" in key else None


def arm_group(arm: str) -> str:
    """Which chapter shows an arm: ``baseline``, ``kd``, ``pd``, ``iteration`` or ``ablation``."""
    from pdlib.distill import ARMS

    if arm.startswith("ablation_"):
        return "ablation"
    if "_iter" in arm:
        return "iteration"
    if arm.startswith("kd_"):
        return "kd"
    if arm.startswith("pd_"):
        return "pd"
    if ARMS[arm].iterations == 0:
        return "baseline"
    raise ValueError(f"arm {arm!r} belongs to no chapter")


def seed_dir(results: str | os.PathLike, seed: int) -> Path:
    """Folder shared by every arm trained with ``seed`` (``<results>/seed<seed>``)."""
    return Path(results) / f"seed{int(seed)}"


def member_dir(results: str | os.PathLike, seed: int, key: str) -> Path:
    """Run folder of one member (see ``ARCHITECTURE.md``, "Run folder")."""
    return seed_dir(results, seed) / key


def final_member(arm: str) -> str:
    """Key of the member whose predictions are the arm's."""
    from pdlib.distill import ARMS

    return ARMS[arm].member_keys()[-1]


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


def plan(study: Study) -> dict[str, Target]:
    """Every target of ``study``, keyed by id, upstream before downstream.

    Members are trained once per seed and shared by the arms whose chains
    contain them (:func:`pdlib.distill.study_members`).
    """
    from pdlib.distill import study_members

    templates = paths.notebooks_dir()
    targets: dict[str, Target] = {}
    members = study_members(study.arms)
    for seed in study.seeds:
        for key in members:
            t = _member_target(study, results=study.results, manifest=study.manifest, seed=seed, key=key,
                               prefix="member")
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
        return tuple(f"member/seed{s}/{k}" for s in seeds for k in keys)

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
        "06_results": ({"arms": table2, "best_arm": study.best_arm}, needs(table2)),
        "07_clinicians": ({"best_arm": study.best_arm}, needs([study.best_arm], first)),
        "08_heatmaps": ({"best_arm": study.best_arm}, needs([study.best_arm], first)),
        "09_audit": ({}, ()),
        "10_checklist": ({"arms": list(study.arms), "best_arm": study.best_arm}, needs(list(study.arms), first)),
        "11_sweep": ({"sweep": _sweep_parameters(study)}, tuple(sweep_members)),
    }
    for name, template, _ in CHAPTERS:
        if name not in study.chapters:
            continue
        if name == "02_baseline":
            for arm in groups["baseline"]:
                t = Target(id=f"runs/{BASELINE_FOLDER}/{arm}", kind="notebook",
                           output=Path(study.book_runs) / BASELINE_FOLDER / f"{arm}.ipynb",
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
        if target.kind == "member":
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


def make_target_stamp(target: Target, targets: Mapping[str, Target]) -> dict:
    """The stamp of ``target`` produced now (after its inputs were produced)."""
    stamp = provenance.make_stamp(manifest_dir=target.manifest, parameters=target.parameters)
    stamp["inputs"] = input_digests(target, targets)
    if target.template is not None:
        stamp["template_hash"] = template_hash(target.template)
    return stamp


def own_stale_reasons(target: Target, targets: Mapping[str, Target]) -> list[str]:
    """Why ``target`` is stale by its own stamp (not counting stale inputs)."""
    stamp = read_stamp(target)
    if stamp is None:
        return ["missing" if not Path(target.output).exists() else "no stamp"]
    try:
        reasons = provenance.stale_reasons(stamp, manifest_dir=target.manifest, parameters=target.parameters)
    except FileNotFoundError as exc:
        return [f"manifest unreadable: {exc}"]
    if target.template is not None and stamp.get("template_hash") != template_hash(target.template):
        reasons.append(f"template {Path(target.template).name} changed")
    recorded = stamp.get("inputs") or {}
    for tid, digest in input_digests(target, targets).items():
        if recorded.get(tid) != digest:
            reasons.append(f"input {tid} was produced again after this result")
    return reasons


def stale_targets(study: Study, *, targets: Mapping[str, Target] | None = None) -> dict[str, list[str]]:
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
        reasons = own_stale_reasons(target, targets)
        upstream = [i for i in target.inputs if i in stale]
        if upstream:
            reasons = reasons + [f"input {upstream[0]} is stale" + (f" (and {len(upstream) - 1} more)" if len(upstream) > 1 else "")]
        if reasons:
            stale[tid] = reasons
    return stale


# --------------------------------------------------------------------------- atomic writes


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then ``os.replace`` it."""
    return atomic.write_text(path, text)


# --------------------------------------------------------------------------- running targets


def train_member_target(target: Target, targets: Mapping[str, Target], *, study: Study) -> Path:
    """Train (or reuse) one member, then write its stamp.

    A member folder is reused when :func:`pdlib.train.train_member` finds it
    complete with the same configuration *and* it was trained by the current
    code (``config.json`` provenance); otherwise it is trained afresh.
    """
    from pdlib import infer, models, train
    from pdlib.config import resolve_config
    from pdlib.manifest import load_manifest
    from pdlib.slices import load_cohort

    key, seed = target.parameters["member"], target.parameters["seed"]
    config = resolve_config(study.profile, seed=seed, **study.overrides)
    manifest = load_manifest(target.manifest)
    train_patients = load_cohort(manifest, split="train", resize=config.resize, cache_dir=study.cache)
    test_patients = load_cohort(manifest, split="test", resize=config.resize, cache_dir=study.cache)
    folder = Path(target.output).parent
    parent = parent_key(key)
    teacher = infer.load_member(folder.parent / parent) if parent else None
    recorded = {}
    try:
        recorded = json.loads((folder / "config.json").read_text()).get("provenance", {})
    except (OSError, ValueError):
        pass
    force = bool(recorded) and recorded.get("code_hash") != provenance.code_hash()
    member = members_of_key(key)[-1]
    train.train_member(
        folder, arch=models.arch_for_profile(member.arch, profile=config.profile),
        train_patients=train_patients, test_patients=test_patients, config=config, teacher=teacher,
        noise=member.noise, member_key=key, teacher_key=parent, positive_class=manifest.positive_class,
        force=force,
    )
    return write_text_atomic(target.output, json.dumps(make_target_stamp(target, targets), indent=2) + "\n")


def execute_notebook(target: Target, targets: Mapping[str, Target], *, kernel_name: str = "python3",
                     cwd: str | os.PathLike | None = None) -> Path:
    """Execute a chapter template with papermill into the book, stamped.

    Every code cell of the executed copy is tagged ``hide-input`` (the
    papermill parameters cell included), the stamp goes into
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
        for cell in nb.cells:
            if cell.cell_type == "code":
                tags = cell.metadata.setdefault("tags", [])
                if "hide-input" not in tags:
                    tags.append("hide-input")
        nb.metadata.pop("papermill", None)
        for cell in nb.cells:
            cell.metadata.pop("papermill", None)
            cell.metadata.pop("execution", None)
        nb.metadata[METADATA_KEY] = make_target_stamp(target, targets)
        nbformat.write(nb, str(tmp))
    return output


def make_sweep_twin(cohort: Mapping) -> dict:
    """Generate one twin of the signal sweep (:func:`pdlib.twin.generate_twin`)."""
    from pdlib.twin import generate_twin

    folder = Path(cohort["twin"])
    if folder.is_dir() and not (folder / "twin.json").exists() and not any(p.is_file() for p in folder.rglob("*")):
        shutil.rmtree(folder)  # empty folders made by Snakemake for the output, not a twin
    return generate_twin(cohort["twin"], n_patients=cohort["n_patients"], signal_strength=cohort["signal"],
                         matrix=cohort["matrix"], n_slices=cohort["slices"], seed=cohort["twin_seed"])


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


# --------------------------------------------------------------------------- helpers for the chapters


def arm_predictions(results_dir: str | os.PathLike, arm: str, *, seed: int) -> "pd.DataFrame":
    """Patient predictions of an arm's final member, with out-of-fold scores when trained.

    Returns
    -------
    DataFrame
        ``patient_id, split, recist, label, score`` and ``oof_score`` (NaN for
        test patients, or everywhere without out-of-fold runs).
    """
    import pandas as pd

    folder = member_dir(results_dir, seed, final_member(arm))
    path = folder / "patient_predictions.csv"
    if not path.is_file():
        raise FileNotFoundError(f"arm {arm} (seed {seed}): no predictions in {folder}; run the study pipeline "
                                f"(make study) or pdlib.train.run_arm first")
    table = pd.read_csv(path, dtype={"patient_id": str})
    table = table[table["split"].isin(["train", "test"])].reset_index(drop=True)
    oof = folder / "oof_predictions.csv"
    if oof.is_file():
        scores = pd.read_csv(oof, dtype={"patient_id": str}).set_index("patient_id")["score"]
        table["oof_score"] = table["patient_id"].map(scores)
    else:
        table["oof_score"] = float("nan")
    return table


def metrics_long(results_dir: str | os.PathLike, arms: Sequence[str], *, seeds: Sequence[int]) -> "pd.DataFrame":
    """:func:`pdlib.stats.performance_table` of every arm and seed, stacked.

    Returns
    -------
    DataFrame
        The performance-table columns plus ``arm``, ``label`` (the paper's
        row name) and ``seed``; four rows per arm and seed.
    """
    import pandas as pd

    from pdlib import stats
    from pdlib.distill import ARMS

    frames = []
    for arm in arms:
        for seed in seeds:
            predictions = arm_predictions(results_dir, arm, seed=seed)
            if predictions["oof_score"].isna().all():
                predictions = predictions.drop(columns="oof_score")
            table = stats.performance_table(predictions)
            frames.append(table.assign(arm=arm, label=ARMS[arm].label, seed=seed))
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def chance_tests(results_dir: str | os.PathLike, arms: Sequence[str], *, seed: int,
                 split: str = "test") -> "pd.DataFrame":
    """Test of AUC = 0.5 for every arm on one split, with Holm's correction over the arms.

    Returns
    -------
    DataFrame
        One row per arm: ``arm, label, auc, p_value`` (Mann-Whitney test of
        AUC = 0.5, :func:`pdlib.stats.auc_vs_chance`) and ``p_holm`` (adjusted
        over the arms given, :func:`pdlib.stats.holm_adjust`).
    """
    import pandas as pd

    from pdlib import stats
    from pdlib.distill import ARMS

    rows = []
    for arm in arms:
        table = arm_predictions(results_dir, arm, seed=seed)
        table = table[table["split"] == split]
        rows.append({"arm": arm, "label": ARMS[arm].label, "auc": stats.roc_auc(table["label"], table["score"]),
                     "p_value": stats.auc_vs_chance(table["label"], table["score"])})
    frame = pd.DataFrame(rows, columns=["arm", "label", "auc", "p_value"])
    frame["p_holm"] = stats.holm_adjust(frame["p_value"].to_numpy()) if len(frame) else []
    return frame


def learning_statement(long: "pd.DataFrame", *, chance: "pd.DataFrame | None" = None,
                       twin_dir: str | os.PathLike | None = None, alpha: float = 0.05) -> str:
    """Sentences, from the numbers, on whether the models of ``long`` separate the groups at all.

    Parameters
    ----------
    long : DataFrame
        :func:`metrics_long` rows of the arms of a chapter.
    chance : DataFrame, optional
        :func:`chance_tests` of the same arms on the test set; adds how many
        arms beat chance once the number of arms is accounted for.
    twin_dir : path, optional
        A digital twin folder; its test-set oracle AUC is quoted when present.
    alpha : float
        Level of the tests.

    Returns
    -------
    str
        Empty when ``long`` is empty.
    """
    if not len(long):
        return ""
    apparent = long[long["way"] == "apparent"]
    test = apparent[apparent["split"] == "test"].set_index("label")
    train = apparent[apparent["split"] == "train"].set_index("label")
    best = test.loc[test["auc"].idxmax()]
    n_above = int((test["auc_ci_low"] > 0.5).sum())
    text = (f"Of the {len(test)} models here, {n_above} have a test AUC whose 95% CI lies entirely above "
            f"0.5 (chance). The highest test AUC, {best['auc']:.2f} ({best.name}), has a 95% CI of "
            f"{best['auc_ci_low']:.2f} to {best['auc_ci_high']:.2f}, ")
    if best["auc_ci_low"] <= 0.5:
        text += ("which includes 0.5: this run gives no evidence that any of these models predicts the response "
                 "better than chance, and the differences between them are not improvements. ")
    else:
        text += "which excludes 0.5. "
    if chance is not None and len(chance) > 1:
        raw = int((chance["p_value"] < alpha).sum())
        held = int((chance["p_holm"] < alpha).sum())
        expected = alpha * len(chance)
        text += (f"Tested one by one (Mann-Whitney test of AUC = 0.5), {raw} of {len(chance)} differ from chance "
                 f"at the {100 * alpha:g}% level, where about {expected:.1f} would by luck alone if none had any "
                 f"skill; after Holm's correction for the {len(chance)} tests, {held} "
                 + ("does. " if held == 1 else "do. "))
    if len(train):
        text += (f"Their training AUCs range from {train['auc'].min():.2f} to {train['auc'].max():.2f}"
                 + (": they did not even fit their own training patients, i.e. they learned almost nothing "
                    "from the images. " if train["auc"].max() < 0.75 else ". "))
    twin_json = Path(twin_dir) / "twin.json" if twin_dir else None
    if twin_json is not None and twin_json.is_file():
        oracle = json.loads(twin_json.read_text())["oracle_auc"]["test"]
        text += (f"For comparison, the digital twin's oracle AUC on the test set (the best AUC reachable from "
                 f"the variables that generated the images) is {oracle:.2f}.")
    return text.strip()


def _row_key(label: str) -> str:
    return re.sub(r"[\s\-]+", "", label).lower()


def paper_metric_table(table: str) -> "pd.DataFrame":
    """A metric table of Han et al. 2025 as printed, from ``pdlib/data/paper_numbers.yaml``.

    Parameters
    ----------
    table : {"Table 2", "Table 3", "Table 4"}

    Returns
    -------
    DataFrame
        One row per (row, set): ``row, split`` and the printed metrics
        (``auc, acc, sen, spe`` as far as the table has them) as floats;
        accuracies, sensitivities and specificities are fractions.
    """
    import pandas as pd

    from pdlib.audit import load_paper_numbers

    numbers = load_paper_numbers()
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


def paper_values_for(labels: Sequence[str], table: str) -> "pd.DataFrame":
    """Printed values of ``table`` for the rows named by ``labels`` (matched ignoring spaces and dashes)."""
    paper = paper_metric_table(table)
    paper["key"] = paper["row"].map(_row_key)
    wanted = {_row_key(label): label for label in labels}
    out = paper[paper["key"].isin(wanted)].copy()
    out["label"] = out["key"].map(wanted)
    return out.drop(columns="key").reset_index(drop=True)


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

#: Columns of Table 1: (split, response group).
TABLE1_COLUMNS = (("train", "GR"), ("train", "PR"), ("test", "GR"), ("test", "PR"))


def cohort_table1(patients: "pd.DataFrame") -> "pd.DataFrame":
    """Table 1 of a cohort, laid out and worded as Han et al. 2025 print it.

    Parameters
    ----------
    patients : DataFrame
        ``patients.csv`` of a manifest (columns ``split, response, age`` and
        the covariates of :data:`TABLE1_ROWS`).

    Returns
    -------
    DataFrame
        Index ``(variable, category)``: first ``("Age, years", "")`` as
        ``mean(min–max)``, then one row per category as ``count(percent%)``
        with two decimals; columns ``train_GR, train_PR, test_GR, test_PR``.
        An empty group gives ``"0(nan%)"``-free empty strings.
    """
    import pandas as pd

    columns = {}
    for split, group in TABLE1_COLUMNS:
        part = patients[(patients["split"] == split) & (patients["response"] == group)]
        n = len(part)
        cells = {("Age, years", ""): (f"{part['age'].mean():.1f}({part['age'].min()}–{part['age'].max()})"
                                      if n else "")}
        for (column, value), row in TABLE1_ROWS.items():
            k = int((part[column] == value).sum())
            cells[row] = f"{k}({100 * k / n:.2f}%)" if n else ""
        columns[f"{split}_{group}"] = cells
    table = pd.DataFrame(columns)
    table.index = pd.MultiIndex.from_tuples(table.index, names=["variable", "category"])
    return table


def paper_table1() -> "pd.DataFrame":
    """Table 1 of Han et al. 2025 as printed (``pdlib/data/paper_numbers.yaml``), same layout as :func:`cohort_table1`."""
    import pandas as pd

    from pdlib.audit import load_paper_numbers

    printed = load_paper_numbers()["table1"]
    rows = {("Age, years", ""): printed["means"]["Age, years"]}
    for variable, categories in printed["variables"].items():
        for category, cells in categories.items():
            rows[(variable, category)] = cells
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["variable", "category"])
    return table[[f"{s}_{g}" for s, g in TABLE1_COLUMNS]]


def _interval(value: float, low: float, high: float, *, percent: bool) -> str:
    import math

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if percent:
        return f"{100 * value:.1f}% ({100 * low:.1f}–{100 * high:.1f})"
    return f"{value:.2f} ({low:.2f}–{high:.2f})"


def metric_display(long: "pd.DataFrame") -> "pd.DataFrame":
    """Readable rows of :func:`metrics_long`: estimates with their 95% intervals as text.

    Returns
    -------
    DataFrame
        ``model, threshold rule, set, threshold, AUC (95% CI), accuracy,
        sensitivity, specificity`` (accuracies in percent with Wilson
        intervals; the AUC with its DeLong interval).
    """
    import pandas as pd

    rows = []
    for _, r in long.iterrows():
        rows.append({
            "model": r["label"],
            "threshold rule": r["way"],
            "set": r["split"],
            "threshold": "n/a" if pd.isna(r["threshold"]) else f"{r['threshold']:.3f}",
            "AUC (95% CI)": _interval(r["auc"], r["auc_ci_low"], r["auc_ci_high"], percent=False),
            **{name: _interval(r[name], r[f"{name}_ci_low"], r[f"{name}_ci_high"], percent=True)
               for name in ("accuracy", "sensitivity", "specificity")},
        })
    return pd.DataFrame(rows)


def beside_paper(long: "pd.DataFrame", table: str, *, way: str = "apparent") -> "pd.DataFrame":
    """This run's AUC, accuracy, sensitivity and specificity next to the printed values of ``table``.

    Parameters
    ----------
    long : DataFrame
        :func:`metrics_long` (one seed).
    table : {"Table 2", "Table 4"}
    way : {"apparent", "pre-specified"}
        Threshold rule of this run's rows (the paper's test rows are apparent).

    Returns
    -------
    DataFrame
        One row per (model, set): ``model, set`` and, per metric, ``<metric>
        (run)`` and ``<metric> (paper)``; paper cells are NaN where the paper
        has no such row.
    """
    import pandas as pd

    ours = long[long["way"] == way]
    paper = paper_values_for(list(dict.fromkeys(ours["label"])), table)
    rows = []
    for _, r in ours.iterrows():
        match = paper[(paper["label"] == r["label"]) & (paper["split"] == r["split"])]
        p = match.iloc[0] if len(match) else None
        row = {"model": r["label"], "set": r["split"]}
        for metric, column in (("auc", "auc"), ("acc", "accuracy"), ("sen", "sensitivity"), ("spe", "specificity")):
            row[f"{column} (run)"] = r[column]
            row[f"{column} (paper)"] = p[metric] if p is not None and metric in p else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def arm_of_key(key: str) -> str:
    """Name of the first arm of :data:`pdlib.distill.ARMS` whose final member is ``key``."""
    from pdlib.distill import ARMS

    for name, arm in ARMS.items():
        if arm.member_keys()[-1] == key:
            return name
    raise ValueError(f"no arm ends with member {key!r}")


def run_statement(*, config_name: str, profile: str, manifest_dir: str | os.PathLike, seeds: Sequence[int],
                  overrides: Mapping | None = None) -> str:
    """One Markdown sentence saying which study, profile and cohort produced a page's numbers."""
    from pdlib.manifest import load_manifest

    manifest = load_manifest(manifest_dir, check_files=False)
    counts = manifest.patients["split"].value_counts()
    seeds = list(seeds)
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))}"
    changed = f" with {', '.join(f'`{k}={v}`' for k, v in sorted((overrides or {}).items()))}" if overrides else ""
    stamp = provenance.git_commit()
    return (f"The numbers on this page were produced by the study configuration **{config_name}** "
            f"(training profile **{profile}**{changed}, {seed_text}) on the cohort **{manifest.name}** "
            f"({int(counts.get('train', 0))} training and {int(counts.get('test', 0))} test patients), "
            f"with pdlib {_version()} at commit `{stamp}`, code hash `{provenance.code_hash()}`.")


def _version() -> str:
    import pdlib

    return pdlib.__version__


def write_baselines_index(path: str | os.PathLike, arms: Sequence[str]) -> Path:
    """The parent page of the per-arm baseline chapters (a list; no number from a run)."""
    from pdlib.distill import ARMS

    lines = ["# Baselines", "",
             "One page per baseline arm of Table 2 of Han et al. 2025: the model trained alone, with "
             "label-smoothed cross entropy, its training curve and its training and test metrics.", ""]
    lines += [f"- {ARMS[a].label} ({len(ARMS[a].members)} model): [{a}]({BASELINE_FOLDER}/{a}.ipynb)" for a in arms]
    return write_text_atomic(path, "\n".join(lines) + "\n")


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
                                            "make-twin"])
    parser.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                        help="study configuration, as given to snakemake --config (profile=smoke ...)")
    parser.add_argument("--configfile", default=None, help="a YAML file of configuration keys")
    parser.add_argument("--config-json", default=None, help="the whole configuration as one JSON object")
    parser.add_argument("--target", default=None, help="target id (execute, train-member)")
    parser.add_argument("--ci", action="store_true", default=None, help="check-stale: fail on stale results")
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
        cohort = next((c for c in sweep_cohorts(study) if c["name"] == args.target), None)
        if cohort is None:
            parser.error(f"no sweep cohort {args.target!r} in study {study.name!r}")
        make_sweep_twin(cohort)
        return 0
    if args.target not in targets:
        parser.error(f"unknown target {args.target!r}; see `python -m pdlib.pipeline list`")
    target = targets[args.target]
    if args.command == "train-member":
        if target.kind != "member":
            parser.error(f"{args.target} is not a member training")
        train_member_target(target, targets, study=study)
    else:
        if target.kind != "notebook":
            parser.error(f"{args.target} is not a notebook")
        execute_notebook(target, targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
