"""An arm's chain of members in one process, and its out-of-fold runs.

:func:`run_arm` trains the members of one arm (:data:`pdlib.arms.ARMS`) in
order with :func:`pdlib.distill.progressive_distill`, each by
:func:`pdlib.train.train_member` with the previous member as its teacher
(Algorithm 1), resolving each member's starting weights first
(:func:`pdlib.pretrain.starting_weights`). With ``config.oof_folds = k`` it
repeats the whole chain on k stratified folds of the training patients (a
fold's student distils from the same fold's teacher) and gathers each
member's held-out scores into ``oof_predictions.csv``, from which the
pre-specified threshold is chosen without touching the test patients.

The study pipeline (:mod:`pdlib.pipeline`) schedules the same members one per
job with :func:`fold_patients` and :func:`collect_out_of_fold`; the folders
are the same (:func:`pdlib.paths.member_dir`, :func:`pdlib.paths.oof_fold_dir`).

Command line::

    python -m pdlib train --arm pd_b7 --profile demo --manifest data_manifest \\
        --out results/demo --seed 0 [--set epochs=3 ...]

``--out`` is the folder shared by all arms of a study: members are stored by
lineage (``results/demo/b7--b7mn/``), so arms that share members train them
once, and ``results/demo/arms/<arm>.json`` lists each arm's members.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from pdlib import atomic, distill, infer, models, paths, pretrain, train
from pdlib.arms import ARMS, Arm, Member
from pdlib.config import TrainConfig, parse_overrides, resolve_config
from pdlib.manifest import load_manifest
from pdlib.slices import load_cohort


def run_arm(
    arm: str | Arm,
    *,
    train_patients: Sequence,
    test_patients: Sequence,
    config: TrainConfig,
    out_dir: str | os.PathLike,
    positive_class: str = "PR",
    force: bool = False,
) -> dict:
    """Train every member of an arm that is not already trained, then its out-of-fold runs.

    Parameters
    ----------
    arm : str or Arm
        A name of :data:`pdlib.arms.ARMS`, or an :class:`pdlib.arms.Arm`
        (recorded under its final member's key).
    train_patients, test_patients : list of PatientSlices
    config : TrainConfig
    out_dir : path
        Study folder shared by arms: member ``k`` goes to ``out_dir/k/``; the
        out-of-fold chains to ``out_dir/oof/k<folds>-fold<f>/<member>/``; the
        arm's record to ``out_dir/arms/<arm>.json``.
    positive_class : str
        Recorded meaning of label 1.
    force : bool
        Retrain members even when complete.

    Returns
    -------
    dict
        The arm record: name, label, member keys and folders, final member.
    """
    name = arm if isinstance(arm, str) else arm.member_keys()[-1]
    if isinstance(arm, str):
        if arm not in ARMS:
            raise ValueError(f"unknown arm {arm!r}; known: {', '.join(ARMS)}")
        arm = ARMS[arm]
    out_dir = Path(out_dir)
    keys = arm.member_keys()

    def chain(folder: Path, train_set, test_set, chain_config):
        def fit(index, member, teacher):
            arch = models.arch_for_profile(member.arch, profile=config.profile)
            return train.train_member(
                folder / keys[index], arch=arch, train_patients=train_set, test_patients=test_set,
                config=member_config(chain_config, member),
                teacher=teacher, noise=member.noise, member_key=keys[index],
                teacher_key=keys[index - 1] if index else None, positive_class=positive_class,
                init_weights=pretrain.starting_weights(arch, config=config, out_dir=out_dir / "pretrain"),
                force=force,
            )

        return distill.progressive_distill(arm.members, fit=fit)

    chain(out_dir, list(train_patients), list(test_patients), config)
    if config.oof_folds:
        _out_of_fold(chain, keys, list(train_patients), config=config, out_dir=out_dir)
    record = {
        "arm": name,
        "label": arm.label,
        "members": keys,
        "member_dirs": [str(out_dir / k) for k in keys],
        "final_member": keys[-1],
        "iterations": arm.iterations,
        "noise": [m.noise for m in arm.members],
        "archs": [m.arch for m in arm.members],
        "profile": config.profile,
        "oof_folds": config.oof_folds,
    }
    atomic.write_json(out_dir / "arms" / f"{name}.json", record)
    return record


#: File of a member's scores of an external set, in its run folder: ``patient_id, recist, label, score``.
EXTERNAL_PREDICTIONS = "external_predictions.csv"


def member_config(config: TrainConfig, member: Member) -> TrainConfig:
    """The settings one member trains with: the study's, with its epochs times :attr:`Member.epochs_factor`."""
    if member.epochs_factor == 1:
        return config
    return dataclasses.replace(config, epochs=config.epochs * member.epochs_factor)


def score_patients(member_dir: str | os.PathLike, patients: Sequence, *, config: TrainConfig,
                   name: str = EXTERNAL_PREDICTIONS) -> Path:
    """Score ``patients`` with a trained member, as its test patients were scored; write ``member_dir/name``.

    The model is rebuilt from the run folder (:func:`pdlib.infer.load_member`)
    and scores every slice; the patient score is the top-k mean
    (:func:`pdlib.train.scoring_options` of ``config``). The table
    (``patient_id, recist, label, score``, in the order of ``patients``) is
    written atomically.

    Raises
    ------
    FileNotFoundError
        The member is not trained (naming its folder).
    """
    member_dir = Path(member_dir)
    summary = member_dir / "summary.json"
    if not summary.is_file() or json.loads(summary.read_text()).get("status") != "complete":
        raise FileNotFoundError(f"member {member_dir.name}: no complete run in {member_dir} (summary.json)")
    arch = json.loads(summary.read_text())["arch"]
    device = train.resolve_device(config.device)
    model = infer.load_member(member_dir, device=device)
    with train.run_environment(deterministic=config.deterministic, num_threads=config.num_threads, device=device):
        _, table = infer.predict_patients(model, patients, arch=arch, device=device, **train.scoring_options(config))
    return atomic.write_csv(member_dir / name, table[["patient_id", "recist", "label", "score"]])


def stratified_folds(labels: Sequence[int], *, n_folds: int, seed: int) -> np.ndarray:
    """Fold number (0..n_folds-1) of each patient: stratified by label, shuffled with ``seed``."""
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=2)
    if counts.min() < n_folds:
        raise ValueError(f"{n_folds}-fold out-of-fold scores need at least {n_folds} training patients per class, "
                         f"got {counts.tolist()} (label 0, label 1)")
    # imported here: scikit-learn costs about 2 s to import, and only fold members need it
    from sklearn.model_selection import StratifiedKFold

    folds = np.zeros(len(labels), dtype=int)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        folds[held_out] = fold
    return folds


def fold_patients(train_patients: Sequence, *, n_folds: int, fold: int, seed: int) -> tuple[list, list]:
    """Training part and held-out part of fold ``fold`` (:func:`stratified_folds`).

    The held-out patients are copies with ``split = "heldout"``, so that the
    fold run's ``patient_predictions.csv`` tells them apart.
    """
    if not 0 <= fold < n_folds:
        raise ValueError(f"fold must be in [0, {n_folds}), got {fold}")
    folds = stratified_folds([p.label for p in train_patients], n_folds=n_folds, seed=train.derive_seed(seed, "oof"))
    fold_train = [p for p, f in zip(train_patients, folds) if f != fold]
    held_out = [dataclasses.replace(p, split="heldout") for p, f in zip(train_patients, folds) if f == fold]
    return fold_train, held_out


def collect_out_of_fold(out_dir: str | os.PathLike, member_key: str, train_patients: Sequence, *,
                        n_folds: int) -> Path:
    """Gather a member's held-out scores from its ``n_folds`` fold runs into ``oof_predictions.csv``.

    Writes ``out_dir/<member_key>/oof_predictions.csv`` with columns
    ``patient_id, fold, recist, label, score``, one row per training patient
    in the order of ``train_patients``.

    Raises
    ------
    ValueError
        When a training patient has no held-out score (naming it).
    """
    parts = []
    for fold in range(n_folds):
        path = paths.oof_fold_dir(out_dir, n_folds=n_folds, fold=fold) / member_key / "patient_predictions.csv"
        table = pd.read_csv(path, dtype={"patient_id": str}, float_precision="round_trip")
        parts.append(table[table["split"] == "heldout"].drop(columns="split").assign(fold=fold))
    table = pd.concat(parts, ignore_index=True).set_index("patient_id")
    missing = [p.patient_id for p in train_patients if p.patient_id not in table.index]
    if missing or table.index.duplicated().any():
        raise ValueError(f"member {member_key}: out-of-fold scores missing or repeated for patients "
                         f"{missing[:5] or list(table.index[table.index.duplicated()][:5])}")
    table = table.loc[[p.patient_id for p in train_patients]].reset_index()
    return atomic.write_csv(Path(out_dir) / member_key / "oof_predictions.csv",
                           table[["patient_id", "fold", "recist", "label", "score"]])


def _out_of_fold(chain, keys, train_patients, *, config: TrainConfig, out_dir: Path) -> None:
    """Re-run the chain on each fold's training part; collect held-out scores per member."""
    k = config.oof_folds
    fold_config = dataclasses.replace(config, oof_folds=0)
    for fold in range(k):
        fold_train, held_out = fold_patients(train_patients, n_folds=k, fold=fold, seed=config.seed)
        chain(paths.oof_fold_dir(out_dir, n_folds=k, fold=fold), fold_train, held_out, fold_config)
    for key in keys:
        collect_out_of_fold(out_dir, key, train_patients, n_folds=k)


def run_arm_from_manifest(arm: str, *, manifest_dir: str | os.PathLike, config: TrainConfig,
                          out_dir: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                          force: bool = False) -> dict:
    """:func:`run_arm` on a cohort manifest (``pdlib.manifest.load_manifest`` + ``pdlib.slices.load_cohort``)."""
    manifest = load_manifest(manifest_dir)
    train_set = load_cohort(manifest, split="train", resize=config.resize, cache_dir=cache_dir)
    test_set = load_cohort(manifest, split="test", resize=config.resize, cache_dir=cache_dir)
    return run_arm(arm, train_patients=train_set, test_patients=test_set, config=config, out_dir=out_dir,
                   positive_class=manifest.positive_class, force=force)


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """``python -m pdlib train --arm NAME --profile demo --manifest DIR --out DIR [--seed N] [--set k=v ...]``."""
    parser = argparse.ArgumentParser(prog="pdlib train", description="Train the members of one arm of the study.")
    parser.add_argument("--arm", required=True, help=f"one of: {', '.join(ARMS)}")
    parser.add_argument("--profile", default="demo", choices=["smoke", "demo", "paper"])
    parser.add_argument("--manifest", default=None, help="cohort manifest folder (default: data_manifest/)")
    parser.add_argument("--out", default=None, help="study results folder shared by arms (default: results/<profile>)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=None, help="decoded-slice cache folder")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a TrainConfig field (repeatable)")
    parser.add_argument("--force", action="store_true", help="retrain members that are already complete")
    args = parser.parse_args(argv)
    try:
        config = resolve_config(args.profile, seed=args.seed, **parse_overrides(args.set))
    except ValueError as exc:
        parser.error(str(exc))
    if args.arm not in ARMS:
        parser.error(f"unknown arm {args.arm!r}; known: {', '.join(ARMS)}")
    manifest_dir = Path(args.manifest) if args.manifest else paths.manifest_dir()
    out_dir = Path(args.out) if args.out else paths.results_dir() / args.profile
    cache_dir = Path(args.cache) if args.cache else paths.cache_dir()
    record = run_arm_from_manifest(args.arm, manifest_dir=manifest_dir, config=config, out_dir=out_dir,
                                   cache_dir=cache_dir, force=args.force)
    print(json.dumps(record, indent=2))
    return 0
