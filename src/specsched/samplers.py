"""Linear diffusion samplers, each written once and generic over the denoiser and the state.

A sampler here is a plain function

    sampler(denoise, x, alpha, s, *, noise, callback, **options) -> x

with no hidden state. ``x`` is the state at the first level, ``alpha`` and ``s`` are 1-D float64
tensors of the ``N + 1`` levels (noisiest first, the last one clean), ``denoise(x, alpha_i, s_i)``
returns the estimate of the clean data ``x0_hat`` and ``noise(x)`` returns fresh standard normal
noise shaped like ``x``. The state only needs ``+``, ``-``, ``*`` by a scalar and ``/`` by a scalar,
so the same code runs

- on *coefficient states* (one row per independent Gaussian source) with the Gaussian denoiser on
  the modes: the closed-form spectral response (:mod:`specsched.response`), differentiable;
- on pixel tensors with the exact Gaussian denoiser: a Monte-Carlo check;
- on pixel tensors with a neural denoiser: real sampling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from .errors import SpecschedError

__all__ = ["SAMPLERS", "Denoiser", "Noise", "SamplerSpec", "ddim", "get_sampler"]

Tensor = torch.Tensor


class Denoiser(Protocol):
    """``denoise(x, alpha, s) -> x0_hat``: the estimate of the clean data from ``x = alpha x0 + s eps``."""

    def __call__(self, x: Tensor, alpha: Tensor, s: Tensor) -> Tensor: ...


Noise = Callable[[Tensor], Tensor]
Callback = Callable[[int, Tensor, Tensor], None]


def ddim(
    denoise: Denoiser,
    x: Tensor,
    alpha: Tensor,
    s: Tensor,
    *,
    eta: float = 0.0,
    noise: Noise | None = None,
    callback: Callback | None = None,
) -> Tensor:
    """DDIM(eta) (Song, Meng & Ermon 2021, eq. 12), written for any levels ``(alpha, s)``.

    Each step from ``(alpha, s)`` to the cleaner ``(alpha', s')``::

        x0_hat = denoise(x, alpha, s)
        eps_hat = (x - alpha x0_hat) / s
        sigma_eta^2 = eta^2 s'^2 (1 - (s' alpha / (alpha' s))^2)       # DESIGN §2, any process
        x' = alpha' x0_hat + sqrt(s'^2 - sigma_eta^2) eps_hat + sigma_eta z

    In VP terms ``sigma_eta^2 = eta^2 (1 - abar') / (1 - abar) (1 - abar / abar')``. ``eta = 0``
    is deterministic DDIM; ``eta = 1`` draws from the DDPM posterior ``q(x' | x, x0_hat)``, i.e.
    ancestral DDPM sampling. The step to the clean level returns ``alpha' x0_hat``.

    Parameters
    ----------
    eta : float, default 0
        Stochasticity, 0 to 1.
    noise : callable, optional
        Needed when ``eta > 0``.
    callback : callable, optional
        ``callback(i, x_next, x0_hat)`` after step ``i``.
    """
    if not 0.0 <= eta <= 1.0:
        raise SpecschedError(f"eta must lie in [0, 1] (got {eta})")
    if eta > 0 and noise is None:
        raise SpecschedError("a stochastic sampler (eta > 0) needs a noise source")
    for i in range(alpha.shape[0] - 1):
        a, sc, a2, s2 = alpha[i], s[i], alpha[i + 1], s[i + 1]
        x0 = denoise(x, a, sc)
        if bool(torch.all(s2 == 0)):  # to the clean level: no noise left to keep or add
            x = a2 * x0
        else:
            eps = (x - a * x0) / sc
            # 1 - sigma'^2 / sigma^2, clamped so that coinciding levels keep a finite gradient
            gap = (1.0 - (s2 * a / (a2 * sc)) ** 2).clamp_min(1e-300)
            x = a2 * x0 + s2 * torch.sqrt(1.0 - eta**2 * gap) * eps  # sqrt(s'^2 - sigma_eta^2)
            if eta > 0:
                x = x + eta * s2 * torch.sqrt(gap) * noise(x)
        if callback is not None:
            callback(i, x, x0)
    return x


@dataclass(frozen=True)
class SamplerSpec:
    """A named sampler: the function, fixed options, and how much noise it draws per step."""

    name: str
    fn: Callable[..., Tensor]
    description: str
    fixed: dict[str, Any] = field(default_factory=dict)
    options: tuple[str, ...] = ()

    def noise_draws(self, steps: int, **options: Any) -> int:
        """Upper bound on the number of ``noise()`` calls in ``steps`` steps."""
        opts = {**options, **self.fixed}
        return steps if float(opts.get("eta", 0.0)) > 0 else 0

    def __call__(
        self,
        denoise: Denoiser,
        x: Tensor,
        alpha: Tensor,
        s: Tensor,
        *,
        noise: Noise | None = None,
        callback: Callback | None = None,
        **options: Any,
    ) -> Tensor:
        unknown = set(options) - set(self.options)
        if unknown:
            accepted = ", ".join(self.options) or "none"
            raise SpecschedError(
                f"sampler {self.name!r} has no option {', '.join(sorted(unknown))} "
                f"(its options: {accepted})"
            )
        return self.fn(
            denoise, x, alpha, s, noise=noise, callback=callback, **options, **self.fixed
        )


SAMPLERS: dict[str, SamplerSpec] = {
    "ddim": SamplerSpec("ddim", ddim, "DDIM(eta), deterministic at eta=0", options=("eta",)),
    "ddpm": SamplerSpec(
        "ddpm", ddim, "ancestral DDPM: DDIM with eta=1 (the DDPM posterior)", fixed={"eta": 1.0}
    ),
}


def get_sampler(name: str) -> SamplerSpec:
    """The sampler called ``name``, or a clear error listing the known ones."""
    try:
        return SAMPLERS[name]
    except KeyError:
        raise SpecschedError(
            f"unknown sampler {name!r}: use one of {', '.join(SAMPLERS)}"
        ) from None
