"""pdlib: Progressive Distill (PD) for CT-based response prediction.

The data flow is one way, one module per stage::

    manifest -> dicom -> slices -> models -> distill/train -> infer
             -> stats -> audit -> figures -> explain

See the book (``jupyter-book build book``) for the study built on it.
"""

__version__ = "0.1.0"
