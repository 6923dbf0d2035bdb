"""Procedural 2D abdominal phantoms: the embedded default data for the demo and the tests (no download).

Each case is a short axial stack (slice 0 = superior) in radiological display: anterior at the top, the
patient's right on the image LEFT. Labels: 0 background, 1 liver (image left), 2 right kidney (image left,
posterior), 3 left kidney (image right), 4 spleen (image right, posterolateral). Unlabeled structures (body
wall, fat, spine, ribs, aorta, IVC, stomach, bowel, gallbladder) make the task non-trivial. Organs change
smoothly along z: the liver shrinks inferiorly, the spleen sits high, the kidneys appear only in the lower
slices. Anatomy is random per case; the modality is part of the seed, so CT and MR cases are unpaired.

- ``ct``: Hounsfield units (air -1000, fat -100, liver ~60, spleen ~50, enhanced kidney cortex ~160, bone
  ~900), slight blur, Gaussian noise 10-20 HU.
- ``mr``: T2-like arbitrary units (liver and muscle dark; spleen, kidneys, fat bright; fluid brightest; aortic
  flow void), smooth multiplicative bias field, Rician noise (magnitude of complex Gaussian noise).

    image, label = phantom_case(3, "mr", n_slices=8, size=128)   # float32 (8,128,128), int64 (8,128,128)
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from weakseg.config import DataConfig
from weakseg.data.records import DataError, Record

__all__ = ["MODALITIES", "load_phantom_volume", "phantom_case", "phantom_records"]

MODALITIES = ("ct", "mr")
TISSUES = (
    "air", "subcut_fat", "muscle", "visceral_fat", "bowel_wall", "bowel_air", "bowel_fluid", "liver", "spleen",
    "kidney_cortex", "kidney_medulla", "bone_cortex", "bone_marrow", "csf", "aorta", "ivc", "gallbladder",
)  # fmt: skip
T = {name: i for i, name in enumerate(TISSUES)}
CT_HU = (-1000, -100, 45, -90, 40, -850, 15, 60, 50, 160, 110, 900, 250, 10, 170, 120, 5)
MR_T2 = (0, 330, 80, 260, 150, 5, 600, 110, 390, 450, 540, 25, 220, 900, 25, 60, 850)
LIVER, RIGHT_KIDNEY, LEFT_KIDNEY, SPLEEN = 1, 2, 3, 4
_MIN_SCALE = 0.6  # organs whose cross-section would fall below this fraction of full size are absent


def _col(a: np.ndarray | float) -> np.ndarray:
    return np.asarray(a, dtype=np.float32).reshape(-1, 1, 1)


def _q(x, y, cx, cy, ax, ay, angle=0.0, wobble=()) -> np.ndarray:
    """Normalised squared radius: ``q <= s**2`` is a rotated ellipse scaled by ``s``.

    The outline's radius is modulated by ``1 + sum(a cos(k theta + p))`` (``wobble``). ``x``, ``y`` are (1,H,W)
    grids; parameters are scalars or (n,1,1) per slice.
    """
    c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    dx, dy = x - cx, y - cy
    u = (dx * c + dy * s) / ax
    v = (dy * c - dx * s) / ay
    r2 = u * u + v * v
    if not wobble:
        return r2
    w = (u + 1j * v).astype(np.complex64) / np.sqrt(r2 + np.float32(1e-12))  # e^(i theta), no arctan2/cos
    powers = [np.ones_like(w), w]
    while len(powers) <= max(k for k, _, _ in wobble):
        powers.append(powers[-1] * w)
    r = 1.0 + sum(a * (np.cos(p) * powers[k].real - np.sin(p) * powers[k].imag) for k, a, p in wobble)
    return r2 / (r * r)


def _ellipse(x, y, cx, cy, ax, ay, angle=0.0, wobble=()) -> np.ndarray:
    """Pixels inside the ellipse of ``_q`` (bool, broadcast shape of the inputs)."""
    return _q(x, y, cx, cy, ax, ay, angle, wobble) <= 1.0


def _profile(z: np.ndarray, center: float, half: float) -> np.ndarray:
    """Cross-section scale of an organ spanning ``center +- half`` along z (0 where absent)."""
    t = np.clip(1.0 - ((z - center) / half) ** 2, 0.0, 1.0) ** 0.35
    return np.where(t >= _MIN_SCALE, t, 0.0).astype(np.float32)


def _wobble(rng: np.random.Generator, amp: float, z: np.ndarray) -> list:
    """Three angular harmonics whose phases drift slowly along z (smoothly varying outlines)."""
    return [(k, rng.uniform(0.3, 1.0) * amp, _col(rng.uniform(0, 2 * np.pi) + 0.8 * z)) for k in (2, 3, 4)]


def _organ(x, y, cx, cy, ax, ay, scale, angle=0.0, wobble=()) -> np.ndarray:
    """An ellipse whose axes are multiplied by the per-slice ``scale`` (n,1,1); empty where the scale is 0."""
    s = np.maximum(scale, 1e-3)
    return _ellipse(x, y, cx, cy, ax * s, ay * s, angle, wobble) & (scale > 0)


class _Canvas:
    """Grids, per-slice z and the tissue / label maps that painting (later overrides earlier) fills in."""

    def __init__(self, n: int, size: int, rng: np.random.Generator) -> None:
        self.rng = rng
        g = np.linspace(-1.0, 1.0, size, dtype=np.float32)
        self.x, self.y = (
            g[None, None, :],
            g[None, :, None],
        )  # x: image right = patient left; y: down = posterior
        self.z = (np.arange(n, dtype=np.float32) + 0.5) / n  # 0 = superior
        self.zc = _col(self.z)
        self.tissue = np.zeros((n, size, size), np.uint8)
        self.label = np.zeros((n, size, size), np.int64)

    def paint(self, mask: np.ndarray, name: str, lab: int = 0) -> None:
        mask = np.broadcast_to(mask, self.tissue.shape)
        self.tissue[mask] = T[name]
        self.label[mask] = lab


def _body(c: _Canvas) -> np.ndarray:
    """Body outline, subcutaneous fat, muscle wall, ribs; returns the abdominal cavity mask."""
    u = c.rng.uniform
    x, y, z = c.x, c.y, c.z
    bx, by, bcy, fat = u(0.80, 0.90), u(0.60, 0.66), u(0.02, 0.05), u(0.05, 0.12)
    qb = _q(x, y, 0, bcy, bx, by, 0, _wobble(c.rng, 0.015, z))
    c.paint(qb <= 1, "subcut_fat")
    c.paint(qb <= (1 - fat) ** 2, "muscle")
    cavity = qb <= (1 - fat - 0.06) ** 2
    c.paint(cavity, "visceral_fat")
    wx, wy, upper = bx * (1 - fat), by * (1 - fat), c.zc < u(0.45, 0.65)
    for side in (-1, 1):  # ribs along the wall in the upper slices
        for th in np.deg2rad((-25, 5, 35, 60)):
            rib = _ellipse(x, y, side * wx * np.cos(th), bcy + wy * np.sin(th), 0.035, 0.022, side * th)
            c.paint(rib & upper, "bone_cortex")
    return cavity


def _gut(c: _Canvas, cavity: np.ndarray) -> np.ndarray:
    """Bowel loops (mostly lower slices) and the stomach (upper, image right, air-fluid level); returns the stomach."""
    u = c.rng.uniform
    x, y, z = c.x, c.y, c.z
    for _ in range(c.rng.integers(6, 10)):
        cx, cy, r = u(-0.35, 0.5) + u(-0.06, 0.06) * c.zc, u(-0.45, 0.1), u(0.05, 0.09)
        on = _col(_profile(z, u(0.35, 1.1), u(0.3, 0.6))) > 0
        q = _q(x, y, cx, cy, r, r)
        c.paint((q <= 1) & cavity & on, "bowel_wall")
        c.paint((q <= 0.65**2) & cavity & on, "bowel_air" if u() < 0.4 else "bowel_fluid")
    sp = _col(_profile(z, u(0.0, 0.2), u(0.45, 0.6)))
    scx, scy, ang = 0.22 + u(-0.04, 0.04), -0.15 + u(-0.04, 0.04), u(-0.3, 0.3)
    stomach = _organ(x, y, scx, scy, 0.2, 0.16, sp, ang) & cavity
    c.paint(stomach, "bowel_wall")
    inner = _organ(x, y, scx, scy, 0.15, 0.12, sp, ang) & stomach
    level = scy - 0.04 * sp
    c.paint(inner & (y < level), "bowel_air")
    c.paint(inner & (y >= level), "bowel_fluid")
    return stomach


def _organs(c: _Canvas, cavity: np.ndarray, stomach: np.ndarray) -> None:
    """Liver (+ gallbladder), spleen and both kidneys, each changing smoothly along z."""
    u = c.rng.uniform
    x, y, z, zc = c.x, c.y, c.z, c.zc
    # liver: right lobe shrinking inferiorly + left lobe across the midline in the upper slices
    sl, lw = 1.0 - u(0.35, 0.5) * zc, _wobble(c.rng, 0.05, z)
    lcx, lcy = -0.42 + u(-0.04, 0.04) - 0.08 * zc, u(-0.04, 0.04) + 0.08 * zc
    liver = _organ(x, y, lcx, lcy, u(0.33, 0.39), u(0.4, 0.47), sl, u(-0.2, 0.1), lw)
    ll = _col(_profile(z, u(0.0, 0.15), u(0.5, 0.65)))
    liver |= _organ(x, y, u(-0.08, 0.04), u(-0.33, -0.25), 0.3, 0.13, ll, u(-0.2, 0.2), lw)
    gp = _col(_profile(z, u(0.4, 0.6), u(0.2, 0.3)) * (u() < 0.7))
    gall = _organ(x, y, -0.17 + u(-0.04, 0.04), u(-0.05, 0.05), 0.06, 0.08, gp)
    c.paint(liver & cavity & ~gall, "liver", LIVER)
    c.paint(gall & cavity, "gallbladder")
    # spleen: posterolateral on the image right, long axis along the wall, carved medially by the stomach
    ss = _col(_profile(z, u(0.25, 0.35), u(0.45, 0.55)))
    scx, scy, sax, say = 0.55 + u(-0.04, 0.04), 0.18 + u(-0.04, 0.04), u(0.1, 0.13), u(0.22, 0.27)
    spleen = _organ(x, y, scx, scy, sax, say, ss, np.pi / 4 + u(-0.2, 0.2), _wobble(c.rng, 0.04, z))
    c.paint(spleen & cavity & ~stomach, "spleen", SPLEEN)
    # kidneys in perirenal fat: cortex, medulla, sinus fat at the anteromedial hilum; the right one lower
    for side, lab, c0 in ((-1, RIGHT_KIDNEY, u(0.62, 0.72)), (1, LEFT_KIDNEY, u(0.55, 0.65))):
        ks = _col(_profile(z, c0, u(0.35, 0.42)))
        kx, ky = side * (0.3 + u(-0.03, 0.03)), 0.3 + u(-0.03, 0.03) - 0.03 * side
        kax, kay, ang = (
            u(0.1, 0.12) * ks + 1e-3,
            u(0.15, 0.18) * ks + 1e-3,
            -side * (np.pi / 6 + u(-0.14, 0.14)),
        )
        qk, on = _q(x, y, kx, ky, kax, kay, ang, _wobble(c.rng, 0.03, z)), ks > 0
        c.paint((qk <= 1.33**2) & on, "visceral_fat")
        c.paint((qk <= 1) & on, "kidney_cortex", lab)
        c.paint((qk <= 0.58**2) & on, "kidney_medulla", lab)
        hilum = _ellipse(x, y, kx - side * 0.8 * kax, ky - 0.3 * kax, 0.4 * kax, 0.35 * kay, ang)
        c.paint(hilum & on, "visceral_fat")


def _spine(c: _Canvas) -> None:
    """Aorta, IVC, psoas, paraspinal muscles and the vertebra (painted last: never labeled)."""
    u = c.rng.uniform
    x, y = c.x, c.y
    c.paint(_ellipse(x, y, 0.06 + u(-0.02, 0.02), 0.23, 0.045, 0.045), "aorta")
    c.paint(_ellipse(x, y, -0.13 + u(-0.02, 0.02), 0.22, 0.055, 0.04), "ivc")
    psoas = _col(_profile(c.z, 1.1, 0.8))  # grows inferiorly
    for side in (-1, 1):
        c.paint(_organ(x, y, side * 0.14, 0.36, 0.055, 0.05, psoas), "muscle")
        c.paint(_ellipse(x, y, side * 0.17, 0.53, 0.12, 0.085), "muscle")
    vy = 0.37 + u(-0.02, 0.02)
    c.paint(_ellipse(x, y, 0, vy + 0.15, 0.1, 0.05), "bone_cortex")  # arch
    c.paint(_ellipse(x, y, 0, vy + 0.23, 0.025, 0.06), "bone_cortex")  # spinous process
    c.paint(_ellipse(x, y, 0, vy, 0.11, 0.09), "bone_cortex")  # vertebral body
    c.paint(_ellipse(x, y, 0, vy, 0.085, 0.07), "bone_marrow")
    c.paint(_ellipse(x, y, 0, vy + 0.14, 0.04, 0.035), "csf")  # spinal canal


def _anatomy(rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Tissue map (n,H,W) uint8 and label map (n,H,W) int64 for one random case."""
    c = _Canvas(n, size, rng)
    stomach = _gut(c, cavity := _body(c))
    _organs(c, cavity, stomach)
    _spine(c)
    return c.tissue, c.label


def _render(rng: np.random.Generator, tissue: np.ndarray, modality: str) -> np.ndarray:
    """Tissue map -> intensities with per-case contrast jitter, texture, blur and modality-specific noise."""
    n, size, _ = tissue.shape
    px = size / 128.0
    if modality == "ct":
        table = np.asarray(CT_HU, np.float32) + rng.normal(0, 4, len(CT_HU)).astype(np.float32)
        image = table[tissue] + gaussian_filter(rng.normal(0, 8, tissue.shape), (0, 1.5 * px, 1.5 * px))
        image = gaussian_filter(image, (0, 0.6 * px, 0.6 * px))
        return (image + rng.normal(0, rng.uniform(10, 20), tissue.shape)).astype(np.float32)
    table = np.asarray(MR_T2, np.float32) * rng.uniform(0.9, 1.1, len(MR_T2)).astype(np.float32)
    image = table[tissue] * (1 + gaussian_filter(rng.normal(0, 0.06, tissue.shape), (0, 1.5 * px, 1.5 * px)))
    image = gaussian_filter(image, (0, 0.7 * px, 0.7 * px))
    g = np.linspace(-1.0, 1.0, size)
    x, y, zz = g[None, None, :], g[None, :, None], _col(np.linspace(-0.5, 0.5, n))
    c = rng.normal(0, 0.18, 6)
    bias = np.exp(c[0] * x + c[1] * y + c[2] * x * y + c[3] * x * x + c[4] * y * y + c[5] * zz)
    sigma = rng.uniform(15, 25)
    real = image * bias * rng.uniform(0.8, 1.2) + rng.normal(0, sigma, tissue.shape)
    return np.hypot(real, rng.normal(0, sigma, tissue.shape)).astype(np.float32)


def phantom_case(
    case_index: int, modality: str = "ct", n_slices: int = 8, size: int = 128, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Render one case: image float32 (n_slices,H,W) (HU for ct, arbitrary units for mr), label int64 0..4."""
    if modality not in MODALITIES:
        raise DataError(f'phantom modality must be "ct" or "mr", got "{modality}" (data.phantom_modality)')
    if n_slices < 1 or size < 32:
        raise DataError(
            f"phantoms need data.phantom_slices >= 1 and data.phantom_size >= 32, got {n_slices}, {size}"
        )
    rng = np.random.default_rng(
        [seed, MODALITIES.index(modality), case_index]
    )  # modality in the seed: unpaired
    tissue, label = _anatomy(rng, n_slices, size)
    return _render(rng, tissue, modality), label


def phantom_records(cfg: DataConfig) -> list[Record]:
    """Records for ``cfg.phantom_cases`` cases of ``cfg.phantom_slices`` slices; case ids like ``ct_p000``."""
    if cfg.phantom_modality not in MODALITIES:
        raise DataError(f'data.phantom_modality must be "ct" or "mr", got "{cfg.phantom_modality}"')
    if cfg.phantom_cases < 1:
        raise DataError(f"data.phantom_cases must be >= 1, got {cfg.phantom_cases}")
    if cfg.num_classes != 5:
        raise DataError(f"phantoms have labels 0..4: set data.num_classes: 5 (got {cfg.num_classes})")
    records = []
    for case in range(cfg.phantom_cases):
        cid = f"{cfg.phantom_modality}_p{case:03d}"
        if cfg.slice_axis is None:  # 3D: the whole (1, slices, H, W) volume is one sample
            records.append(Record(cid, cid, cid, cid, "phantom", None, None))
            continue
        records += [
            Record(f"{cid}_z{i:03d}", cid, cid, cid, "phantom", 0, i) for i in range(cfg.phantom_slices)
        ]
    return records


def load_phantom_volume(case_id: str, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """Render the case named by a phantom record (``"ct_p003"`` -> ``phantom_case(3, "ct", ...)``)."""
    modality, _, index = case_id.partition("_p")
    return phantom_case(int(index), modality, cfg.phantom_slices, cfg.phantom_size, cfg.phantom_seed)
