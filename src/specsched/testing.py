"""Independent oracles for checking the closed form (as ``numpy.testing`` is for numpy).

The test suite and ``benchmarks/mc_agreement.py`` compare :func:`specsched.response` with
computations that share none of its code: the exact spectrum of synthetic power-law fields, a
numpy projection of samples onto a spectrum's modes, per-mode sampling tolerances, and diffusers'
own DDIM/DDPM schedulers driven by a denoiser in the textbook loop. They live here, in one place,
so that the benchmark does not import the tests. diffusers is imported only by the functions that
use it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .data.builtin import powerlaw_spectrum
from .levels import TrainSchedule
from .spectrum import Spectrum

__all__ = [
    "MEANS3",
    "diffusers_scheduler",
    "mode_basis",
    "mode_tolerance",
    "run_diffusers",
    "to_modes",
    "true_spectrum",
]

#: channel means of the synthetic fields used by the checks
MEANS3 = (0.3, -0.2, 0.1)


def true_spectrum(
    size: int, channels: int, mean: tuple[float, ...], exponent: float = 2.0
) -> Spectrum:
    """The exact spectrum of ``synthetic:powerlaw`` fields (no estimation error)."""
    S, M = powerlaw_spectrum(size=size, channels=channels, exponent=exponent)
    sigma = S[..., None, None] * (M @ M.T)
    return Spectrum.from_cross_spectrum(sigma, np.array(mean[:channels]), (size, size))


def mode_basis(spec: Spectrum) -> np.ndarray:
    """Eigenvectors of each frequency's cross-spectrum, columns ordered like ``spec.variances``."""
    _, u = np.linalg.eigh(spec.cross_spectrum)
    return u[..., ::-1]


def to_modes(x: np.ndarray, spec: Spectrum) -> np.ndarray:
    """Project pixel samples ``(n, C, H, W)`` onto the spectrum's modes: ``(n, *freq, C)`` complex."""
    X = np.fft.rfft2(x, norm="ortho")  # (n, C, *F)
    X = np.moveaxis(X, 1, -1)  # (n, *F, C)
    u = mode_basis(spec)
    return np.einsum("...ij,n...i->n...j", u.conj(), X)


def mode_tolerance(spec: Spectrum, n: int, z: float = 5.0) -> np.ndarray:
    """``z`` standard errors of a per-mode variance estimate from ``n`` samples, relative.

    A complex mode (weight 2) has ``|Y|^2 ~ P Exp(1)``: relative SE ``1/sqrt(n)``. A real mode
    (weight 1) has ``Y^2 ~ P chi2_1``: relative SE ``sqrt(2/n)``. ``z = 5`` keeps the family-wise
    false alarm rate below 1e-4 for a few hundred modes (Bonferroni with a normal tail).
    """
    return z * np.where(spec.weights == 2, 1.0, np.sqrt(2.0)) / np.sqrt(n)


def diffusers_scheduler(kind: str, steps: int, spacing: str, T: int = 1000) -> Any:
    """diffusers' DDIM (``kind="ddim"``) or DDPM scheduler for a linear-``T`` model, float64.

    Its ``alphas_cumprod`` are replaced by float64 copies of the same training schedule, so a
    comparison is not limited by diffusers' float32 tables (which agree with ours to float32).
    """
    from diffusers import DDIMScheduler, DDPMScheduler

    common = dict(
        num_train_timesteps=T, beta_schedule="linear", clip_sample=False, timestep_spacing=spacing
    )
    if kind == "ddim":
        sch = DDIMScheduler(set_alpha_to_one=True, **common)
    else:
        sch = DDPMScheduler(variance_type="fixed_small", **common)
    sch.set_timesteps(steps)
    sch.alphas_cumprod = torch.from_numpy(TrainSchedule("linear", T).alphas_cumprod.copy())
    if hasattr(sch, "final_alpha_cumprod"):
        sch.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    sch.one = torch.tensor(1.0, dtype=torch.float64)
    return sch


def run_diffusers(
    scheduler: Any,
    denoiser: Any,
    x_T: torch.Tensor,
    *,
    eta: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The textbook diffusers loop, with ``eps = (x - sqrt(abar) x0_hat) / sqrt(1 - abar)``."""
    x = x_T.clone()
    for t in scheduler.timesteps:
        abar = scheduler.alphas_cumprod[int(t)]
        a, s = abar.sqrt(), (1 - abar).sqrt()
        eps = (x - a * denoiser(x, a, s)) / s
        kw = {"eta": eta} if eta is not None else {}
        x = scheduler.step(eps, t, x, generator=generator, **kw).prev_sample
    return x
