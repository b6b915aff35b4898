"""Anatomy of the digital twin: a labelled abdomen and its HU in each contrast phase.

A patient is described by a :class:`PatientAnatomy` (sizes in mm, craniocaudal
landmarks as depth fractions, tumour and enhancement parameters). Rendering has
two steps:

1. :func:`render_labels` paints tissue labels (:data:`LABELS`) on a grid of
   axial slices in patient coordinates (DICOM LPS: +x patient left, +y
   posterior, +z superior), from the lung bases above the liver to the lower
   abdomen below it, with a gastric tumour on the stomach wall. The tumour's
   interior is split into viable and necrotic tissue by a seeded random field
   (:func:`tumour_texture`).
2. :func:`phase_hu` maps labels to HU for one contrast phase
   (:data:`TISSUE_HU`), adds the tumour's heterogeneity, blurs edges slightly
   (partial volume) and adds spatially correlated noise.

Everything is a pure function of its inputs and a ``numpy.random.Generator``;
nothing here writes files or knows about DICOM (see :mod:`pdlib.twin`).

The HU values are typical attenuation values of abdominal CT (textbook ranges
for unenhanced tissue and for arterial, portal-venous and delayed phases after
intravenous contrast); they are not taken from Han et al. 2025, which reports
no attenuation values. What the study does fix is that gastric cancer stands
out best from normal gastric tissue in the portal-venous phase (Han et al.
2025, "CT imaging and data preprocessing"), hence the tumour's largest
enhancement there.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy import ndimage

#: Contrast phases the twin renders, in acquisition order.
PHASES = ("noncontrast", "arterial", "portal_venous", "delayed")

#: Tissue label codes of :func:`render_labels` (uint8).
LABELS = {
    "outside": 0, "fat": 1, "muscle": 2, "lung": 3, "heart_blood": 4, "myocardium": 5,
    "liver": 6, "portal_vein": 7, "hepatic_vein": 8, "gallbladder": 9, "spleen": 10,
    "kidney": 11, "pancreas": 12, "aorta": 13, "ivc": 14, "stomach_wall": 15,
    "gastric_fluid": 16, "gastric_air": 17, "bowel_wall": 18, "bowel_fluid": 19,
    "bowel_air": 20, "bone_cortex": 21, "bone_marrow": 22, "disc": 23, "spinal_canal": 24,
    "table": 25, "tumour": 26, "tumour_necrotic": 27,
}

#: HU per tissue and phase ``(noncontrast, arterial, portal_venous, delayed)``.
#: Typical abdominal CT values (see module docstring). The enhancement of
#: enhancing tissues (phase HU minus noncontrast HU) is scaled per patient by
#: ``contrast_timing``; the liver's noncontrast value is per patient
#: (``liver_nc_hu``, lower in fatty liver); the viable tumour's values come
#: from the patient's ``enhancement_hu`` (see :func:`phase_hu`).
TISSUE_HU = {
    "outside": (-1000, -1000, -1000, -1000),
    "fat": (-100, -100, -100, -100),
    "muscle": (50, 58, 62, 60),
    "lung": (-860, -860, -860, -860),
    "heart_blood": (40, 260, 150, 110),
    "myocardium": (45, 110, 100, 90),
    "liver": (55, 70, 110, 95),
    "portal_vein": (40, 90, 175, 120),
    "hepatic_vein": (40, 45, 160, 120),
    "gallbladder": (10, 10, 10, 10),
    "spleen": (45, 120, 120, 100),
    "kidney": (35, 170, 170, 150),
    "pancreas": (40, 110, 95, 75),
    "aorta": (40, 300, 160, 110),
    "ivc": (40, 60, 140, 110),
    "stomach_wall": (40, 105, 90, 75),
    "gastric_fluid": (8, 8, 8, 8),
    "gastric_air": (-980, -980, -980, -980),
    "bowel_wall": (40, 90, 80, 70),
    "bowel_fluid": (15, 15, 15, 15),
    "bowel_air": (-950, -950, -950, -950),
    "bone_cortex": (900, 900, 900, 900),
    "bone_marrow": (220, 220, 220, 220),
    "disc": (80, 85, 90, 90),
    "spinal_canal": (20, 20, 22, 22),
    "table": (150, 150, 150, 150),
    "tumour": (40, 40, 40, 40),  # noncontrast; enhancement from enhancement_hu
    "tumour_necrotic": (25, 20, 18, 20),
}

#: Viable tumour enhancement in each phase relative to the portal-venous one
#: (largest in PVP, where gastric cancer is most conspicuous; Han et al. 2025).
TUMOUR_PHASE_ENHANCEMENT = {"noncontrast": 0.0, "arterial": 0.8, "portal_venous": 1.0, "delayed": 0.7}

#: Part of the tumour's heterogeneity visible without contrast (texture is
#: mostly a pattern of uneven enhancement).
NONCONTRAST_HETEROGENEITY = 0.2

#: The liver is drawn only where its cross-section is at least this fraction
#: of its largest, so the slices holding liver (the manifest's
#: ``first_slice``/``last_slice``) follow from the anatomy without rendering.
LIVER_MIN_SCALE = 0.25


@dataclass(frozen=True)
class PatientAnatomy:
    """Generating variables of one patient's CT appearance.

    Depth fractions ``d`` run from 0 at ``top_z_mm`` (superior) to 1 at
    ``top_z_mm - trunk_mm`` (inferior). All fields are plain numbers so a row
    of the twin's ``truth.csv`` converts with :meth:`from_mapping`.

    Attributes
    ----------
    half_width_mm, half_depth_mm, fat_mm, muscle_mm : float
        Body outline half-axes, subcutaneous fat and muscle wall thickness.
    body_x_mm, body_y_mm : float
        Body centre in patient coordinates (table position).
    top_z_mm, trunk_mm : float
        Patient z of depth 0 and the craniocaudal length of depth 0..1.
    liver_top, liver_bottom : float
        Depths of the liver dome and of the right lobe's inferior tip; the
        other organs are placed relative to them.
    liver_size, spleen_size, stomach_size, stomach_air, kidney_shift, gallbladder : float
        Organ scale factors, gastric air fraction, kidney depth offset,
        gallbladder present (1) or not (0).
    liver_nc_hu, contrast_timing, noise_hu : float
        Unenhanced liver HU, enhancement scale of every enhancing tissue
        (bolus timing), image noise SD in HU.
    tumour_d, tumour_half_length_mm, tumour_thickness_mm, tumour_half_extent_mm,
    tumour_angle_deg, tumour_outward_mm : float
        Tumour centre depth, craniocaudal half-length, wall thickening,
        half-extent along the wall, position around the stomach, growth
        beyond the serosa (cT4).
    necrotic_fraction, heterogeneity_hu, enhancement_hu : float
        Tumour appearance: share of necrotic voxels, SD of the enhancement
        pattern, portal-venous enhancement of viable tumour over 40 HU.
    """

    # body habitus (nuisance)
    half_width_mm: float = 160.0
    half_depth_mm: float = 115.0
    fat_mm: float = 18.0
    muscle_mm: float = 10.0
    body_x_mm: float = 0.0
    body_y_mm: float = 0.0
    top_z_mm: float = 0.0
    trunk_mm: float = 260.0
    # organ landmarks and sizes (nuisance)
    liver_top: float = 0.12
    liver_bottom: float = 0.62
    liver_size: float = 1.0
    spleen_size: float = 1.0
    stomach_size: float = 1.0
    stomach_air: float = 0.3
    kidney_shift: float = 0.0
    gallbladder: float = 1.0
    liver_nc_hu: float = 55.0
    contrast_timing: float = 1.0
    noise_hu: float = 12.0
    # tumour geometry (nuisance, size linked to cT stage)
    tumour_d: float = 0.35
    tumour_half_length_mm: float = 20.0
    tumour_thickness_mm: float = 15.0
    tumour_half_extent_mm: float = 25.0
    tumour_angle_deg: float = 200.0
    tumour_outward_mm: float = 0.0
    # tumour appearance (carries the response signal)
    necrotic_fraction: float = 0.1
    heterogeneity_hu: float = 10.0
    enhancement_hu: float = 50.0

    @classmethod
    def from_mapping(cls, values) -> "PatientAnatomy":
        """Build from any mapping (e.g. a pandas row) holding at least the fields."""
        return cls(**{f.name: float(values[f.name]) for f in fields(cls)})

    def depth(self, z_mm):
        """Depth fraction of patient z positions (mm)."""
        return (self.top_z_mm - np.asarray(z_mm, dtype=np.float64)) / self.trunk_mm


def liver_profile(anatomy: PatientAnatomy, d) -> np.ndarray:
    """Scale (0..1) of the liver's cross-section at depth fractions ``d``.

    An asymmetric ellipsoidal profile: the dome rises steeply, the right lobe
    tapers slowly towards its inferior tip. Zero where below
    :data:`LIVER_MIN_SCALE`.
    """
    d = np.asarray(d, dtype=np.float64)
    top, bottom = anatomy.liver_top, anatomy.liver_bottom
    peak = top + 0.28 * (bottom - top)
    half = np.where(d < peak, peak - top, bottom - peak)
    f = np.sqrt(np.clip(1.0 - ((d - peak) / half) ** 2, 0.0, 1.0))
    return np.where(f >= LIVER_MIN_SCALE, f, 0.0)


def liver_slices(anatomy: PatientAnatomy, z_mm) -> tuple[int, int]:
    """Inclusive range of indices into ``z_mm`` (ascending) whose slice shows liver.

    Returns ``(-1, -1)`` if no slice does.
    """
    present = np.flatnonzero(liver_profile(anatomy, anatomy.depth(z_mm)) > 0)
    if present.size == 0:
        return -1, -1
    return int(present[0]), int(present[-1])


# --------------------------------------------------------------------------
# painting helpers


def _inside_ellipse(X, Y, cx, cy, a, b, angle=0.0):
    """Points inside ellipses; per-slice parameters have shape (nz, 1, 1)."""
    dx, dy = X - cx, Y - cy
    if np.any(angle != 0.0):
        c, s = np.cos(angle), np.sin(angle)
        dx, dy = dx * c + dy * s, -dx * s + dy * c
    a = np.maximum(a, 1e-6)
    b = np.maximum(b, 1e-6)
    return (dx / a) ** 2 + (dy / b) ** 2 <= 1.0


def _col(values, n):
    """Per-slice parameter as an array of shape (n, 1, 1)."""
    return np.broadcast_to(np.asarray(values, dtype=np.float64), (n,)).reshape(n, 1, 1)


def _ellipsoid_scale(d, start, end):
    """Cross-section scale of an ellipsoid spanning depths [start, end]."""
    mid, half = 0.5 * (start + end), 0.5 * (end - start)
    return np.sqrt(np.clip(1.0 - ((d - mid) / half) ** 2, 0.0, 1.0))


class _Canvas:
    """Label volume being painted; later paint covers earlier paint."""

    def __init__(self, x, y, d):
        self.X = np.asarray(x, dtype=np.float64).reshape(1, 1, -1)
        self.Y = np.asarray(y, dtype=np.float64).reshape(1, -1, 1)
        self.d = np.asarray(d, dtype=np.float64)
        self.labels = np.zeros((self.d.size, self.Y.size, self.X.size), dtype=np.uint8)

    @staticmethod
    def _span(coords, low, high):
        """Index range ``[i0, i1)`` holding every coordinate in ``[low, high]`` (empty: i0 == i1)."""
        hit = np.flatnonzero((coords >= low) & (coords <= high))
        if hit.size == 0:
            return 0, 0
        return int(hit[0]), int(hit[-1]) + 1

    def ellipse(self, label, *, present, cx, cy, a, b, angle=0.0, only=None):
        """Paint per-slice ellipses where ``present`` (bool per slice) holds.

        ``only``: labels that may be painted over (default: any).

        Only the rows and columns of the ellipses' bounding box (a square of
        half-side ``1.001 * max(a, b)`` around the centres, which holds a
        rotated ellipse too) are evaluated: outside it the ellipse test is
        false however it is rounded, so the labels are those of a test over
        the whole slice.
        """
        present = np.asarray(present)
        idx = np.flatnonzero(present)
        if idx.size == 0:
            return
        lo, hi = idx[0], idx[-1] + 1
        n = hi - lo

        def pick(v):
            v = np.asarray(v, dtype=np.float64)
            return _col(v[lo:hi] if v.ndim else v, n)

        pcx, pcy, pa, pb, pangle = pick(cx), pick(cy), pick(a), pick(b), pick(angle)
        on = present[lo:hi].reshape(n, 1, 1)
        rows, cols = slice(None), slice(None)
        radius = np.maximum(np.maximum(pa, 1e-6), np.maximum(pb, 1e-6))[on]
        ccx, ccy = pcx[on], pcy[on]
        if np.isfinite(radius).all() and np.isfinite(ccx).all() and np.isfinite(ccy).all():
            reach = 1.001 * radius + 1e-6
            c0, c1 = self._span(self.X.ravel(), float(np.min(ccx - reach)), float(np.max(ccx + reach)))
            r0, r1 = self._span(self.Y.ravel(), float(np.min(ccy - reach)), float(np.max(ccy + reach)))
            if c0 == c1 or r0 == r1:
                return
            rows, cols = slice(r0, r1), slice(c0, c1)
        inside = _inside_ellipse(self.X[:, :, cols], self.Y[:, rows, :], pcx, pcy, pa, pb, pangle)
        inside &= on
        block = self.labels[lo:hi, rows, cols]
        if only is not None:
            allowed = np.zeros(256, dtype=bool)
            allowed[[LABELS[o] for o in only]] = True
            inside &= allowed[block]
        block[inside] = LABELS[label]


# --------------------------------------------------------------------------
# anatomy


def _stomach_track(anatomy: PatientAnatomy, d, cax, cay):
    """Per-slice centre, semi-axes and presence of the stomach.

    Key sections: fundus (under the left hemidiaphragm), body (anterior left),
    antrum (crossing the midline anteriorly), as fractions of the abdominal
    cavity's half-sizes ``cax``, ``cay``.
    """
    top = anatomy.liver_top + 0.04
    bottom = anatomy.liver_bottom - 0.01
    keys = np.array([top, top + 0.25 * (bottom - top), top + 0.65 * (bottom - top), bottom])
    cx = np.interp(d, keys, [0.45, 0.38, 0.22, -0.05]) * cax
    cy = np.interp(d, keys, [0.05, -0.25, -0.42, -0.52]) * cay
    size = anatomy.stomach_size
    a = np.interp(d, keys, [0.26, 0.30, 0.26, 0.17]) * cax * size
    b = np.interp(d, keys, [0.32, 0.30, 0.22, 0.15]) * cay * size
    taper = np.sqrt(np.clip(np.minimum((d - top) / 0.05, (bottom - d) / 0.04), 0.0, 1.0))
    present = (d >= top) & (d <= bottom)
    return cx, cy, a * np.maximum(taper, 0.35), b * np.maximum(taper, 0.35), present


def render_labels(anatomy: PatientAnatomy, *, x_mm, y_mm, z_mm, rng: np.random.Generator) -> np.ndarray:
    """Tissue labels of one patient on an axial grid.

    Parameters
    ----------
    anatomy : PatientAnatomy
    x_mm : array of shape (n_cols,)
        Patient x (mm, +left) of each image column.
    y_mm : array of shape (n_rows,)
        Patient y (mm, +posterior) of each image row.
    z_mm : array of shape (n_slices,)
        Patient z (mm, +superior) of each slice, any order.
    rng : numpy.random.Generator
        Draws the bowel loops, the rib layout and the tumour's necrosis
        pattern (see :func:`tumour_texture`).

    Returns
    -------
    labels : ndarray of shape (n_slices, n_rows, n_cols), uint8
        Codes of :data:`LABELS`. Tumour voxels are ``tumour`` or
        ``tumour_necrotic``.
    """
    A = anatomy
    d = A.depth(z_mm)
    nz = d.size
    cv = _Canvas(np.asarray(x_mm) - A.body_x_mm, np.asarray(y_mm) - A.body_y_mm, d)
    X, Y = cv.X, cv.Y
    everywhere = np.ones(nz, dtype=bool)
    ax, ay = A.half_width_mm, A.half_depth_mm

    # body outline (flatter back), subcutaneous fat, muscle wall, cavity
    def superellipse(a, b_front, b_back, p=2.4):
        b = np.where(Y < 0, b_front, b_back)
        return (np.abs(X / a) ** p + np.abs(Y / b) ** p) <= 1.0

    body2d = superellipse(ax, ay, 0.92 * ay)[0]
    wall2d = superellipse(ax - A.fat_mm, ay - A.fat_mm, 0.92 * ay - A.fat_mm)[0]
    cax = ax - A.fat_mm - A.muscle_mm
    cay = ay - A.fat_mm - A.muscle_mm
    cav2d = superellipse(cax, cay, 0.92 * ay - A.fat_mm - A.muscle_mm, p=2.2)[0]
    layer = np.where(cav2d, LABELS["fat"], np.where(wall2d, LABELS["muscle"], np.where(body2d, LABELS["fat"], 0)))
    cv.labels[:] = layer.astype(np.uint8)[None]
    in_body = ["fat", "muscle"]

    # CT table under the patient's back
    table_y = 0.92 * ay + 6.0
    table = (np.abs(Y - table_y + 0.0006 * X**2) < 2.5) & (np.abs(X) < 0.95 * ax + 40)
    cv.labels[np.broadcast_to(table, cv.labels.shape)] = LABELS["table"]

    y_vb = 0.92 * ay - A.fat_mm - 62.0  # vertebral body centre
    lung_bottom = A.liver_top + 0.20
    # lungs: full above the dome, receding posterolaterally to the costophrenic recesses
    g = np.clip((lung_bottom - d) / (lung_bottom - A.liver_top), 0.0, 1.0)
    g = np.where(d < A.liver_top, 1.0, np.sqrt(g))
    for side in (-1.0, 1.0):
        cv.ellipse("lung", present=g > 0.05, cx=side * cax * (0.50 + 0.12 * (1 - g)), cy=cay * (0.05 + 0.30 * (1 - g)),
                   a=cax * 0.46 * g, b=cay * 0.85 * g, only=["fat"])
    # heart above the diaphragm
    heart_end = A.liver_top - 0.01
    hs = _ellipsoid_scale(d, heart_end - 0.30, heart_end)
    cv.ellipse("myocardium", present=hs > 0.1, cx=0.18 * cax, cy=-0.30 * cay, a=0.42 * cax * hs, b=0.48 * cay * hs)
    cv.ellipse("heart_blood", present=hs > 0.3, cx=0.18 * cax, cy=-0.30 * cay, a=0.42 * cax * hs - 9,
               b=0.48 * cay * hs - 9)

    # liver: right lobe and a left lobe in its upper part
    lf = liver_profile(A, d) * A.liver_size
    # the right lobe's inferior tip lies anterolateral to the right kidney
    low = np.clip((d - A.liver_top) / (A.liver_bottom - A.liver_top) - 0.4, 0.0, 1.0)
    cv.ellipse("liver", present=lf > 0, cx=(-0.46 - 0.2 * low) * cax, cy=(0.04 - 0.45 * low) * cay,
               a=0.48 * cax * lf, b=0.76 * cay * lf)
    left = _ellipsoid_scale(d, A.liver_top + 0.02, A.liver_top + 0.30) * (lf > 0)
    cv.ellipse("liver", present=left > 0.2, cx=0.05 * cax, cy=-0.50 * cay, a=0.38 * cax * left, b=0.30 * cay * left,
               angle=-0.35)
    in_liver = ["liver"]
    pv = (d > A.liver_top + 0.15) & (d < A.liver_bottom - 0.18)
    cv.ellipse("portal_vein", present=pv, cx=-0.25 * cax, cy=0.02 * cay, a=9.0, b=7.0, only=in_liver)
    for k, ang in enumerate((-2.2, -1.7, -1.2)):
        hv = (d > A.liver_top + 0.02) & (d < A.liver_top + 0.12)
        r = 0.18 * cax + 0.12 * cax * (d - A.liver_top) / 0.12
        cv.ellipse("hepatic_vein", present=hv, cx=-0.15 * cax + r * np.cos(ang), cy=0.10 * cay + r * np.sin(ang),
                   a=5.0, b=5.0, only=in_liver)
    if A.gallbladder > 0.5:
        gs = _ellipsoid_scale(d, A.liver_bottom - 0.16, A.liver_bottom - 0.02)
        cv.ellipse("gallbladder", present=gs > 0.2, cx=-0.30 * cax, cy=-0.35 * cay, a=17 * gs, b=22 * gs)

    # spleen (left posterior), kidneys, pancreas
    ss = _ellipsoid_scale(d, A.liver_top + 0.05, A.liver_top + 0.05 + 0.30 * A.spleen_size)
    cv.ellipse("spleen", present=ss > 0.15, cx=0.62 * cax, cy=0.38 * cay, a=0.20 * cax * ss * A.spleen_size,
               b=0.38 * cay * ss * A.spleen_size, angle=-0.6)
    for side, offset in ((-1.0, 0.03), (1.0, 0.0)):
        top = A.liver_top + 0.30 + offset + A.kidney_shift
        ks = _ellipsoid_scale(d, top, top + 0.30)
        kx, ky = side * 62.0, y_vb - 4.0
        cv.ellipse("kidney", present=ks > 0.2, cx=kx, cy=ky, a=26 * ks, b=40 * ks, angle=side * 0.5, only=["fat"])
        sinus = _ellipsoid_scale(d, top + 0.08, top + 0.22)
        cv.ellipse("fat", present=sinus > 0.3, cx=kx - side * 10, cy=ky - 6, a=8 * sinus, b=13 * sinus,
                   angle=side * 0.5, only=["kidney"])
    ps = _ellipsoid_scale(d, A.liver_top + 0.26, A.liver_top + 0.38)
    cv.ellipse("pancreas", present=ps > 0.2, cx=0.12 * cax, cy=y_vb - 48.0, a=0.42 * cax * ps, b=12 * ps, angle=-0.35)

    # small bowel loops and colon below the liver, with air-fluid contents
    n_loops = 16
    for _ in range(n_loops):
        start = rng.uniform(A.liver_bottom - 0.08, 0.95)
        length = rng.uniform(0.08, 0.3)
        ls = _ellipsoid_scale(d, start, start + length)
        cx0 = rng.uniform(-0.6, 0.6) * cax
        cy0 = rng.uniform(-0.75, 0.15) * cay
        drift = rng.uniform(-25, 25, size=2)
        t = (d - start) / length
        r = rng.uniform(9, 16)
        content = rng.choice(["bowel_fluid", "bowel_air", "bowel_fluid"])
        pres = ls > 0.25
        cxs, cys = cx0 + drift[0] * t, cy0 + drift[1] * t
        cv.ellipse("bowel_wall", present=pres, cx=cxs, cy=cys, a=r, b=r * 0.85, only=["fat"])
        cv.ellipse(content, present=pres, cx=cxs, cy=cys, a=r - 2.5, b=r * 0.85 - 2.5, only=["bowel_wall"])
    colon_top = A.liver_bottom - 0.05
    for cx0, cy0, r in ((-0.62, -0.05, 22.0), (0.66, 0.05, 17.0)):
        cv.ellipse("bowel_wall", present=d > colon_top + (0.08 if cx0 > 0 else 0.0), cx=cx0 * cax, cy=cy0 * cay,
                   a=r, b=r, only=["fat", "bowel_wall", "bowel_fluid", "bowel_air"])
        cv.ellipse("bowel_air", present=d > colon_top + (0.08 if cx0 > 0 else 0.0), cx=cx0 * cax, cy=cy0 * cay - 3,
                   a=r - 3, b=r - 6, only=["bowel_wall"])
    tc = (d > colon_top) & (d < colon_top + 0.07)
    cv.ellipse("bowel_wall", present=tc, cx=0.0, cy=-0.62 * cay, a=0.62 * cax, b=0.13 * cay, only=["fat", "bowel_wall"])
    cv.ellipse("bowel_air", present=tc, cx=0.0, cy=-0.64 * cay, a=0.62 * cax - 4, b=0.13 * cay - 5,
               only=["bowel_wall"])
    # psoas muscles lower down
    pz = np.clip((d - (A.liver_bottom - 0.05)) / 0.35, 0.0, 1.0)
    for side in (-1.0, 1.0):
        cv.ellipse("muscle", present=pz > 0.05, cx=side * (30 + 12 * pz), cy=y_vb - 2, a=8 + 16 * pz, b=8 + 12 * pz)

    # stomach: enhancing wall, fluid, air anteriorly (patient supine)
    scx, scy, sa, sb, spres = _stomach_track(A, d, cax, cay)
    cv.ellipse("stomach_wall", present=spres, cx=scx, cy=scy, a=sa, b=sb)
    cv.ellipse("gastric_fluid", present=spres, cx=scx, cy=scy, a=sa - 4.0, b=sb - 4.0, only=["stomach_wall"])
    level = scy - sb + 2.0 * sb * A.stomach_air  # air above this y (anterior)
    air = (cv.Y < _col(level, nz)) & (cv.labels == LABELS["gastric_fluid"])
    cv.labels[air] = LABELS["gastric_air"]

    # gastric tumour: wall-thickening mass centred on the inner wall surface
    half_len = A.tumour_half_length_mm / A.trunk_mm
    ts = _ellipsoid_scale(d, A.tumour_d - half_len, A.tumour_d + half_len) * spres
    theta = np.deg2rad(A.tumour_angle_deg)
    px = scx + (sa - 2.0) * np.cos(theta)
    py = scy + (sb - 2.0) * np.sin(theta)
    normal = np.arctan2(np.sin(theta) / np.maximum(sb, 1e-6), np.cos(theta) / np.maximum(sa, 1e-6))
    tx = px - 0.5 * A.tumour_thickness_mm * np.cos(normal) * ts
    ty = py - 0.5 * A.tumour_thickness_mm * np.sin(normal) * ts
    grow = A.tumour_outward_mm
    # only slices with ts > 0.05 can hold tumour: evaluate the ellipses there
    rows = np.flatnonzero(np.broadcast_to(ts, (nz,)) > 0.05)
    if rows.size:
        lo, hi = int(rows[0]), int(rows[-1]) + 1

        def part(v):
            return _col(v, nz)[lo:hi]

        inside_stomach = _inside_ellipse(X, Y, part(scx), part(scy), part(sa + grow), part(sb + grow))
        mass = _inside_ellipse(X, Y, part(tx), part(ty), part(A.tumour_thickness_mm * ts),
                               part(A.tumour_half_extent_mm * ts), part(normal))
        block = cv.labels[lo:hi]
        mass &= inside_stomach & (part(ts) > 0.05) & (block != 0)
        block[mass] = LABELS["tumour"]

    # great vessels, spine, paraspinal muscles, ribs, pelvis
    cv.ellipse("aorta", present=everywhere, cx=14.0, cy=y_vb - 27.0, a=12.0, b=12.0)
    cv.ellipse("ivc", present=d > A.liver_top + 0.02, cx=-24.0, cy=y_vb - 24.0, a=13.0, b=10.0)
    disc = (np.mod(d * A.trunk_mm + 11.0, 32.0) < 7.0)
    cv.ellipse("bone_cortex", present=everywhere, cx=0.0, cy=y_vb, a=23.0, b=19.0)
    cv.ellipse("bone_marrow", present=~disc, cx=0.0, cy=y_vb, a=20.5, b=16.5)
    cv.ellipse("disc", present=disc, cx=0.0, cy=y_vb, a=21.0, b=17.0)
    cv.ellipse("bone_cortex", present=everywhere, cx=0.0, cy=y_vb + 27.0, a=15.0, b=12.0)
    cv.ellipse("spinal_canal", present=everywhere, cx=0.0, cy=y_vb + 27.0, a=9.0, b=7.5)
    cv.ellipse("bone_cortex", present=everywhere, cx=0.0, cy=y_vb + 48.0, a=5.0, b=14.0)
    for side in (-1.0, 1.0):
        cv.ellipse("muscle", present=everywhere, cx=side * 36.0, cy=y_vb + 46.0, a=26.0, b=22.0,
                   only=["fat", "muscle"])
    rib_phase = rng.uniform(0, 25.0, size=10)
    for k, ang in enumerate(np.deg2rad(np.linspace(-150, -30, 5).tolist() + np.linspace(30, 150, 5).tolist())):
        # skip the anterior midline (costal cartilage) and the spine
        present = (d < A.liver_bottom + 0.02) & (np.mod(d * A.trunk_mm + rib_phase[k], 25.0) < 11.0)
        rx = (cax + 4.0) * np.cos(ang + np.pi / 2)
        ry = (cay + 4.0) * np.sin(ang + np.pi / 2)
        cv.ellipse("bone_cortex", present=present, cx=rx, cy=ry, a=7.0, b=4.5, angle=ang, only=in_body + ["lung"])
    il = np.clip((d - 0.86) / 0.1, 0.0, 1.0)
    for side in (-1.0, 1.0):
        cv.ellipse("bone_cortex", present=il > 0.05, cx=side * 0.62 * cax, cy=0.40 * cay, a=40 * il, b=12 * il,
                   angle=side * 0.5)
        cv.ellipse("bone_marrow", present=il > 0.3, cx=side * 0.62 * cax, cy=0.40 * cay, a=40 * il - 3,
                   b=12 * il - 3, angle=side * 0.5, only=["bone_cortex"])
    return cv.labels


def tumour_texture(labels: np.ndarray, anatomy: PatientAnatomy, *, spacing_mm, rng: np.random.Generator) -> np.ndarray:
    """Split the tumour into viable and necrotic voxels; return its heterogeneity field.

    Necrosis sits preferentially in the tumour's depth (far from its surface)
    with an irregular border: voxels are ranked by ``depth + 0.6 * noise`` and
    the top ``necrotic_fraction`` become ``tumour_necrotic`` (``labels`` is
    changed in place).

    Parameters
    ----------
    labels : ndarray of shape (n_slices, n_rows, n_cols), uint8
    anatomy : PatientAnatomy
    spacing_mm : tuple of 3 floats
        Voxel size (slice, row, column) in mm.
    rng : numpy.random.Generator

    Returns
    -------
    field : ndarray, same shape as ``labels``, float32
        Unit-variance smooth random field inside the tumour, 0 elsewhere.
    """
    field = np.zeros(labels.shape, dtype=np.float32)
    tumour = labels == LABELS["tumour"]
    if not tumour.any():
        return field
    box = ndimage.find_objects(tumour.astype(np.uint8))[0]
    box = tuple(slice(max(s.start - 2, 0), min(s.stop + 2, n)) for s, n in zip(box, labels.shape))
    inside = tumour[box]
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    sigma = np.maximum(3.0 / spacing, 0.5)
    het = ndimage.gaussian_filter(rng.standard_normal(inside.shape), sigma)
    het = (het - het[inside].mean()) / max(het[inside].std(), 1e-9)
    nec_noise = ndimage.gaussian_filter(rng.standard_normal(inside.shape), np.maximum(5.0 / spacing, 0.5))
    nec_noise /= max(nec_noise[inside].std(), 1e-9)
    depth = ndimage.distance_transform_edt(inside, sampling=spacing)
    depth /= max(depth.max(), 1e-9)
    score = depth + 0.6 * nec_noise
    n_necrotic = int(round(anatomy.necrotic_fraction * inside.sum()))
    block = labels[box]
    if n_necrotic > 0:
        cut = np.sort(score[inside])[-n_necrotic]
        block[inside & (score >= cut)] = LABELS["tumour_necrotic"]
    field[box] = np.where(inside, het, 0.0).astype(np.float32)
    return field


def phase_hu(labels: np.ndarray, anatomy: PatientAnatomy, *, phase: str, texture: np.ndarray) -> np.ndarray:
    """Noise-free HU of one contrast phase.

    Parameters
    ----------
    labels : ndarray of shape (n_slices, n_rows, n_cols), uint8
        From :func:`render_labels` after :func:`tumour_texture`.
    anatomy : PatientAnatomy
    phase : {"noncontrast", "arterial", "portal_venous", "delayed"}
    texture : ndarray, same shape as ``labels``
        The tumour heterogeneity field of :func:`tumour_texture`.

    Returns
    -------
    hu : ndarray, same shape as ``labels``, float32
        Viable tumour: ``40 + enhancement_hu * contrast_timing * f(phase)
        + heterogeneity_hu * g(phase) * texture`` with ``f`` of
        :data:`TUMOUR_PHASE_ENHANCEMENT`; other tissues from
        :data:`TISSUE_HU` with enhancement scaled by ``contrast_timing``.
    """
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
    k = PHASES.index(phase)
    lut = np.zeros(256, dtype=np.float32)
    for name, code in LABELS.items():
        nc = TISSUE_HU[name][0] if name != "liver" else anatomy.liver_nc_hu
        enhancement = TISSUE_HU[name][k] - TISSUE_HU[name][0]
        lut[code] = nc + enhancement * anatomy.contrast_timing
    tumour_code = LABELS["tumour"]
    enhancement = anatomy.enhancement_hu * anatomy.contrast_timing * TUMOUR_PHASE_ENHANCEMENT[phase]
    lut[tumour_code] = TISSUE_HU["tumour"][0] + enhancement
    hu = lut[labels]
    g = NONCONTRAST_HETEROGENEITY if phase == "noncontrast" else TUMOUR_PHASE_ENHANCEMENT[phase]
    viable = labels == tumour_code
    hu[viable] += (anatomy.heterogeneity_hu * g) * texture[viable]
    return hu


def add_noise(hu: np.ndarray, *, noise_hu: float, rng: np.random.Generator, blur_px: float = 0.6) -> np.ndarray:
    """Soften edges (partial volume) and add in-plane correlated noise.

    Parameters
    ----------
    hu : ndarray of shape (n_slices, n_rows, n_cols)
    noise_hu : float
        Standard deviation of the added noise, in HU.
    rng : numpy.random.Generator
    blur_px : float
        In-plane Gaussian blur of the image (pixels).

    Returns
    -------
    noisy : ndarray, same shape, float32
    """
    out = ndimage.gaussian_filter(hu.astype(np.float32), (0, blur_px, blur_px))
    noise = ndimage.gaussian_filter(rng.standard_normal(hu.shape, dtype=np.float32), (0, 0.8, 0.8))
    noise *= noise_hu / max(float(noise.std()), 1e-9)
    return out + noise
