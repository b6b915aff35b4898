"""A synthetic verdict run written to disk as the study pipeline writes it.

Three arms (EfficientNet-B7, KD B7, PD B7) over three seeds, their members'
``patient_predictions.csv``, ``summary.json`` (with ``seconds``), the
out-of-fold scores of some arms (``oof_predictions.csv``) and every final
member's ``external_predictions.csv`` on an external twin of 2 x 150 patients.
Scores are binormal: ``score = signal * label + N(0, 1)`` (then a logistic
map), so an arm's expected AUC is ``Phi(signal / sqrt(2))``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from conftest import _write_manifest

from pdlib.arms import ARMS

#: Verdict arms of the synthetic run and the signal of their final member's scores.
SIGNAL = {"efficientnet_b7": 0.6, "kd_b7": 1.0, "pd_b7": 1.6}
SEEDS = (0, 1, 2)
N_TRAIN, N_TEST, N_EXTERNAL = 30, 28, 300
RECIST = {"GR": ("CR", "PR"), "PR": ("SD", "PD")}
#: Seconds of training of each member (summary.json).
SECONDS = {"b7": 100.0, "b7--b7": 110.0, "b7--b7mn": 120.0, "b7--b7mn--b7mn": 130.0}


def patients(prefix: str, n: int, split: str) -> list[dict]:
    rows = []
    for i in range(n):
        response = ("GR", "PR")[i % 2]
        rows.append({"patient_id": f"{prefix}{i:03d}", "split": split, "response": response,
                     "recist": RECIST[response][(i // 2) % 2]})
    return rows


def _scores(labels: np.ndarray, signal: float, rng: np.random.Generator) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(signal * labels + rng.normal(size=labels.size))))


def _frame(rows: list[dict], scores: np.ndarray, **extra) -> pd.DataFrame:
    labels = [int(r["response"] == "PR") for r in rows]
    return pd.DataFrame({"patient_id": [r["patient_id"] for r in rows], **extra,
                         "recist": [r["recist"] for r in rows], "label": labels, "score": scores})


def write_run(base: Path, *, oof_arms=("efficientnet_b7", "pd_b7"), folds: int = 5, external: bool = True,
              seeds=SEEDS) -> dict:
    """Write the run under ``base``; return its folders and the parameters the chapter gets."""
    base = Path(base)
    study = patients("TR", N_TRAIN, "train") + patients("TE", N_TEST, "test")
    ext = patients("EX", N_EXTERNAL, "test")
    manifest_dir = _write_manifest(base / "manifest", study, name="synthetic cohort")
    ext_manifest = _write_manifest(base / "external" / "manifest", ext, name="synthetic external twin")
    results = base / "results"
    labels = np.array([int(r["response"] == "PR") for r in study])
    ext_labels = np.array([int(r["response"] == "PR") for r in ext])
    train = [r for r in study if r["split"] == "train"]
    train_labels = np.array([int(r["response"] == "PR") for r in train])
    for seed in seeds:
        for n, (arm, signal) in enumerate(SIGNAL.items()):
            rng = np.random.default_rng(1000 * seed + n)
            for key in ARMS[arm].member_keys():
                folder = results / f"seed{seed}" / key
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "summary.json").write_text(json.dumps({"seconds": SECONDS[key] * (1 + seed / 10)}))
            folder = results / f"seed{seed}" / ARMS[arm].final_key
            _frame(study, _scores(labels, signal, rng), split=[r["split"] for r in study]).to_csv(
                folder / "patient_predictions.csv", index=False)
            if arm in (oof_arms or ()):
                _frame(train, _scores(train_labels, signal, rng), fold=np.arange(N_TRAIN) % folds).to_csv(
                    folder / "oof_predictions.csv", index=False)
            if external:
                _frame(ext, _scores(ext_labels, signal, rng)).to_csv(folder / "external_predictions.csv", index=False)
    return {
        "results": results, "manifest_dir": manifest_dir, "arms": list(SIGNAL), "seeds": list(seeds),
        "oof": {"folds": folds, "arms": list(oof_arms)} if oof_arms else None,
        "external": ({"name": "synthetic external twin", "n_patients": N_EXTERNAL, "manifest": str(ext_manifest),
                      "twin_seed": 11} if external else None),
    }
