"""pdlib: Progressive Distill (PD) for CT-based response prediction.

Data flow one way, one home per stage (:data:`STAGES`; ``ARCHITECTURE.md``
draws it)::

    data_manifest/ -> manifest -> dicom (-> cohort_index) -> slices
      -> models -> distill/train (runs, pretrain) -> infer (patient scores)
      -> stats -> diagnostics, verdict -> report, figures, explain, audit
      -> pipeline -> notebooks/ -> book/

``twin`` only makes inputs (a synthetic cohort with its manifest); nothing
downstream knows whether data are real or synthetic.

See the book (``jupyter-book build book``) for the study built on it.
"""

__version__ = "0.1.0"

#: The package's modules by stage, in data-flow order. A module imports only
#: modules listed before it (``tests/test_layout.py`` checks every import
#: statement), so the order is the dependency order too.
STAGES = (
    ("shared", ("paths", "atomic", "vocab", "provenance")),
    ("cohort", ("dicom", "manifest", "cohort_index", "slices")),
    ("model", ("config", "models", "arms", "distill", "infer", "train", "pretrain", "runs")),
    ("results", ("stats", "diagnostics", "verdict", "paper", "audit", "figures", "explain", "report")),
    ("twin", ("phantom", "twin")),
    ("study", ("pipeline", "cli")),
)
