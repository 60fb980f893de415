"""Reward over-optimisation as Gao, Schulman & Hilton (2022) measure it: gold reward against d.

Gao et al. optimise a policy against a learnt reward model and score it with a "gold"
reward, as the frontier does with r_φ and r*. With d = √KL(π‖π_ref) (nats) and R(d) the
gold reward gained over the initial policy, they find two laws:

    best-of-N:  R(d) = d·(α − β_g·d)           peak at d* = α / (2·β_g)
    RL:         R(d) = d·(α − β_g·log d)       peak at d* = exp(α/β_g − 1)

Both are linear in (α, β_g), so a least-squares fit over a method's points is one
`numpy.linalg.lstsq`. β_g > 0 is the over-optimisation: past d*, optimising r_φ further
loses gold reward. A fit needs at least 3 points (2 parameters and something left to
measure the fit by); its residual is the root-mean-square distance of the points from
the curve, in units of r*.
"""

import math

import numpy as np

FORMS = ("best-of-N", "RL")
MIN_POINTS = 3


def design(d: np.ndarray, form: str) -> np.ndarray:
    """The columns multiplying (α, β_g): R = α·d − β_g·g(d), g(d) = d² or d·log d."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    second = d ** 2 if form == "best-of-N" else d * np.log(np.where(d > 0, d, 1.0))
    return np.stack([d, -second], axis=1)  # (n, 2)


def gao_fit(kl, gain, form: str) -> dict | None:
    """Fit R(d) to points (KL_i, R_i), d_i = √KL_i: {"alpha", "beta", "residual", "d_star",
    "kl_star", "points"}; None with fewer than MIN_POINTS points of KL > 0. d_star (and kl_star =
    d_star²) is None when β_g ≤ 0: the fitted curve never turns down."""
    kl, gain = np.asarray(kl, dtype=np.float64), np.asarray(gain, dtype=np.float64)
    if (kl > 0).sum() < MIN_POINTS:  # a point at KL 0 says nothing of α or β_g
        return None
    d = np.sqrt(np.clip(kl, 0.0, None))
    (alpha, beta), *_ = np.linalg.lstsq(design(d, form), gain, rcond=None)
    residual = float(np.sqrt(np.mean((design(d, form) @ np.array([alpha, beta]) - gain) ** 2)))
    d_star = None
    if beta > 0:
        d_star = alpha / (2 * beta) if form == "best-of-N" else math.exp(alpha / beta - 1)
    return {"alpha": float(alpha), "beta": float(beta), "residual": residual,
            "d_star": None if d_star is None else float(d_star),
            "kl_star": None if d_star is None else float(d_star) ** 2, "points": int(kl.size)}


def fitted_gain(fit: dict, kl, form: str) -> np.ndarray:
    """R(√KL) of a fit, at the given KLs (for drawing the curve)."""
    d = np.sqrt(np.clip(np.asarray(kl, dtype=np.float64), 0.0, None))
    return design(d, form) @ np.array([fit["alpha"], fit["beta"]])
