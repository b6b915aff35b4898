"""The study's vocabulary: response categories, response groups, splits and cohort categories.

Defined once here and imported by every module that names them, so a
spelling or a mapping cannot drift between the manifest, the twin, the
statistics, the figures and the chapters.

References
----------
Eisenhauer EA et al. New response evaluation criteria in solid tumours:
revised RECIST guideline (version 1.1). Eur J Cancer 45:228-247 (2009).
Han et al. 2025, Scientific Reports ("Conversion therapy protocols and
response assessment", "Data sets and study cohorts", Table 1).
"""

from __future__ import annotations

#: RECIST 1.1 response categories in the order of Han et al. 2025, Fig. 4A:
#: complete response, partial response, stable disease, progressive disease.
RECIST_CATEGORIES = ("CR", "PR", "SD", "PD")

#: Response groups: GR (good response) and PR (poor response); either may be
#: declared a manifest's positive class.
RESPONSE_GROUPS = ("GR", "PR")

#: RECIST 1.1 category -> response group. GR = complete or partial response;
#: PR = stable or progressive disease (Han et al. 2025, Methods).
RECIST_TO_RESPONSE = {"CR": "GR", "PR": "GR", "SD": "PR", "PD": "PR"}

#: Words for the abbreviations, as the figures spell them out.
RECIST_NAMES = {"CR": "complete", "PR": "partial", "SD": "stable", "PD": "progressive"}
RESPONSE_NAMES = {"GR": "good", "PR": "poor"}

#: Splits of the study: 112 training and 28 test patients in the paper.
SPLITS = ("train", "test")

#: Allowed values of the categorical covariates of ``patients.csv``: the
#: clinical variables of Han et al. 2025, Table 1 (CEA <= 5.0 ng/ml and
#: CA19-9 <= 35 U/ml are normal; stages of the 8th AJCC TNM system).
COVARIATE_CATEGORIES = {
    "sex": ("F", "M"),
    "lauren": ("intestinal", "diffuse_mixed", "undifferentiated"),
    "cea": ("normal", "elevated"),
    "ca199": ("normal", "elevated"),
    "ct_stage": ("T3", "T4a", "T4b"),
    "cn_stage": ("N0-N1", "N2-N3"),
    "cm_stage": ("M0", "M1"),
}

#: Allowed values of every categorical column of ``patients.csv``.
CATEGORIES = {
    "split": SPLITS,
    "response": RESPONSE_GROUPS,
    "recist": RECIST_CATEGORIES,
    **COVARIATE_CATEGORIES,
}


def recist_of_group(group: str) -> tuple[str, ...]:
    """The RECIST categories of a response group, in :data:`RECIST_CATEGORIES` order (``GR`` -> ``CR, PR``)."""
    if group not in RESPONSE_GROUPS:
        raise ValueError(f"unknown response group {group!r}; known: {RESPONSE_GROUPS}")
    return tuple(r for r in RECIST_CATEGORIES if RECIST_TO_RESPONSE[r] == group)


def other_group(group: str) -> str:
    """The response group that is not ``group`` (the negative class when ``group`` is positive)."""
    if group not in RESPONSE_GROUPS:
        raise ValueError(f"unknown response group {group!r}; known: {RESPONSE_GROUPS}")
    return next(g for g in RESPONSE_GROUPS if g != group)
