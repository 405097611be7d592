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

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from .errors import SpecschedError

__all__ = ["SAMPLERS", "Denoiser", "Noise", "SamplerSpec", "ddim", "get_sampler"]

Tensor = torch.Tensor


class Denoiser(Protocol):
    """``denoise(x, alpha, s) -> x0_hat``: the estimate of the clean data from ``x = alpha x0 + s eps``."""

    def __call__(self, x: Tensor, alpha: Tensor, s: Tensor) -> Tensor: ...


Noise = Callable[[Tensor], Tensor]
Callback = Callable[[int, Tensor, Tensor], None]


def _steps(*levels: Tensor) -> Iterator[tuple[tuple[Tensor, ...], tuple[Tensor, ...]]]:
    """The levels each step goes from and to: ``(alpha[i], s[i], ...), (alpha[i+1], s[i+1], ...)``.

    Like ``itertools.pairwise(zip(alpha, s, ...))`` (smalldiffusion's and EDM's loops), but each
    step indexes its own two levels: a level shared by two steps is two autograd nodes, so the
    gradients are those of indexing by hand to the last bit (a shared node sums its gradients in
    another order).

    Parameters
    ----------
    *levels : Tensor
        Per-level tensors of the same first dimension ``N + 1`` (``alpha``, ``s``, ...).

    Yields
    ------
    (tuple of Tensor, tuple of Tensor)
        The ``N`` pairs of level tuples, noisiest step first.
    """
    for i in range(levels[0].shape[0] - 1):
        yield tuple(v[i] for v in levels), tuple(v[i + 1] for v in levels)


def ddim(
    denoise: Denoiser,
    x: Tensor,
    alpha: Tensor,
    s: Tensor,
    *,
    eta: float = 0.0,
    noise: Noise | None = None,
    callback: Callback | None = None,
    process: str = "vp",
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
    clean = _clean_levels(s)
    for i, ((a, s_cur), (a_next, s_next)) in enumerate(_steps(alpha, s)):
        x0 = denoise(x, a, s_cur)
        if clean[i + 1]:  # to the clean level: no noise left to keep or add
            x = a_next * x0
        elif eta == 0:  # what the general step gives (its square root is exactly 1), directly
            x = a_next * x0 + s_next * ((x - a * x0) / s_cur)
        else:
            eps = (x - a * x0) / s_cur
            # 1 - sigma'^2 / sigma^2, clamped so that coinciding levels keep a finite gradient
            gap = (1.0 - (s_next * a / (a_next * s_cur)) ** 2).clamp_min(1e-300)
            # sqrt(s'^2 - sigma_eta^2) eps_hat, then the fresh noise
            x = a_next * x0 + s_next * torch.sqrt(1.0 - eta**2 * gap) * eps
            x = x + eta * s_next * torch.sqrt(gap) * noise(x)
        if callback is not None:
            callback(i, x, x0)
    return x


def _is_clean(s: Tensor) -> bool:
    return bool(torch.all(s == 0))


def _clean_levels(s: Tensor) -> list[bool]:
    """:func:`_is_clean` of each level ``s[i]``, from one comparison."""
    return (s == 0).reshape(s.shape[0], -1).all(1).tolist()


def _ode_coords(alpha: Tensor, s: Tensor, process: str) -> tuple[Tensor, Tensor]:
    """Scale ``c`` and time ``tau`` of the probability-flow ODE ``dz/dtau = (z - x0_hat) / tau``.

    VP and VE levels: ``z = x / alpha`` and ``tau = sigma = s / alpha`` (EDM, k-diffusion, diffusers'
    Euler/Heun schedulers). Flow levels: ``z = x`` and ``tau = t = s`` (diffusers' FlowMatch
    schedulers). Euler steps coincide in both; higher-order methods do not.
    """
    if process == "flow":
        return torch.ones_like(alpha), s
    if bool(torch.any(alpha == 0)):
        raise SpecschedError(
            "this sampler needs a finite noise-to-signal ratio at every level: start below pure "
            "noise (e.g. flow t < 1), or use ddim / flow_euler"
        )
    return alpha, s / alpha


def heun(
    denoise: Denoiser,
    x: Tensor,
    alpha: Tensor,
    s: Tensor,
    *,
    noise: Noise | None = None,
    callback: Callback | None = None,
    process: str = "vp",
) -> Tensor:
    """Heun's second-order method on the probability-flow ODE (Karras et al. 2022, Alg. 1, S_churn = 0).

    In ODE coordinates (:func:`_ode_coords`), each step from ``tau`` to ``tau'``::

        d = (z - D(z)) / tau;  z_e = z + (tau' - tau) d                       # Euler predictor
        d' = (z_e - D(z_e)) / tau';  z' = z + (tau' - tau) (d + d') / 2       # trapezoidal corrector

    The step to the clean level (``tau' = 0``) is the Euler step alone, as in EDM and diffusers'
    ``HeunDiscreteScheduler``: ``2N - 1`` denoiser calls for ``N`` steps.
    """
    c, tau = _ode_coords(alpha, s, process)
    z = x / c[0]
    # indexed by hand: with named levels (_steps) a level used several times in a step is one
    # autograd node, and the gradients of multi-step runs change in the last bits
    clean = _clean_levels(s)
    for i in range(alpha.shape[0] - 1):
        x0 = denoise(c[i] * z, alpha[i], s[i])
        d = (z - x0) / tau[i]
        z_e = z + (tau[i + 1] - tau[i]) * d
        if not clean[i + 1]:
            x0_e = denoise(c[i + 1] * z_e, alpha[i + 1], s[i + 1])
            d_e = (z_e - x0_e) / tau[i + 1]
            z_e = z + (tau[i + 1] - tau[i]) * 0.5 * (d + d_e)
        z = z_e
        if callback is not None:
            callback(i, c[i + 1] * z, x0)
    return c[-1] * z


def ipndm(
    denoise: Denoiser,
    x: Tensor,
    alpha: Tensor,
    s: Tensor,
    *,
    noise: Noise | None = None,
    callback: Callback | None = None,
    process: str = "vp",
    max_order: int = 4,
) -> Tensor:
    """Improved PNDM (Zhang & Chen 2023, DEIS paper; zju-pi/diff-sampler, diffusers' IPNDMScheduler).

    Adams-Bashforth on the probability-flow ODE with the fixed coefficients of equal steps, of order
    ``min(i + 1, max_order)`` at step ``i``: with ``d_j = (z_j - D(z_j)) / tau_j``,
    ``z' = z + (tau' - tau) sum_j b_j d_{i-j}``, ``b`` = (1), (3, -1)/2, (23, -16, 5)/12,
    (55, -59, 37, -9)/24.
    """
    if not 1 <= max_order <= 4:
        raise SpecschedError(f"ipndm max_order must be 1 to 4 (got {max_order})")
    coeffs = (
        [1.0],
        [1.5, -0.5],
        [23 / 12, -16 / 12, 5 / 12],
        [55 / 24, -59 / 24, 37 / 24, -9 / 24],
    )
    c, tau = _ode_coords(alpha, s, process)
    z = x / c[0]
    history: list[Tensor] = []
    levels = _steps(alpha, s, c, tau)
    for i, ((a, s_cur, c_cur, tau_cur), (_, _, c_next, tau_next)) in enumerate(levels):
        x0 = denoise(c_cur * z, a, s_cur)
        history.insert(0, (z - x0) / tau_cur)
        history = history[:max_order]
        b = coeffs[len(history) - 1]
        slope = sum(bj * dj for bj, dj in zip(b, history, strict=True))
        z = z + (tau_next - tau_cur) * slope
        if callback is not None:
            callback(i, c_next * z, x0)
    return c[-1] * z


def _half_lambda(alpha: Tensor, s: Tensor) -> Tensor:
    """DPM-Solver's ``lambda = log(alpha / s)`` (half the log-SNR); ``+inf`` at the clean level."""
    return torch.log(alpha) - torch.log(s)


def dpmpp_2m(
    denoise: Denoiser,
    x: Tensor,
    alpha: Tensor,
    s: Tensor,
    *,
    noise: Noise | None = None,
    callback: Callback | None = None,
    process: str = "vp",
    sde: bool = False,
) -> Tensor:
    """DPM-Solver++(2M), deterministic or SDE (Lu et al. 2022, Alg. 2; diffusers' midpoint form).

    With ``lambda = log(alpha / s)``, ``h = lambda' - lambda`` and the data predictions ``D`` of
    this and the previous step, ``D_eff = D + (D - D_prev) / (2 r)``, ``r = h_prev / h``::

        ODE:  x' = (s'/s) x + alpha' (1 - e^-h) D_eff
        SDE:  x' = (s'/s) e^-h x + alpha' (1 - e^-2h) D_eff + s' sqrt(1 - e^-2h) z

    The first step is first order (``D_eff = D``), and so is the step to the clean level (diffusers'
    ``final_sigmas_type="zero"``, where ``h`` is infinite and the step returns ``alpha' D``), so
    diffusers' ``lower_order_final`` changes nothing for this second-order method and is no option.
    """
    if sde and noise is None:
        raise SpecschedError("dpmpp_2m_sde needs a noise source")
    lam = _half_lambda(alpha, s)
    d_prev, h_prev = None, None
    levels = _steps(alpha, s, lam)
    clean = _clean_levels(s)
    for i, ((a, s_cur, lam_cur), (a_next, s_next, lam_next)) in enumerate(levels):
        d = denoise(x, a, s_cur)
        if clean[i + 1]:
            x = a_next * d
        else:
            h = lam_next - lam_cur
            d_eff = d if d_prev is None else d + (d - d_prev) * (h / (2 * h_prev))
            if sde:
                e2 = -torch.expm1(-2 * h)  # 1 - e^-2h
                x = (
                    (s_next / s_cur) * torch.exp(-h) * x
                    + a_next * e2 * d_eff
                    + s_next * torch.sqrt(e2) * noise(x)
                )  # type: ignore[misc]
            else:
                x = (s_next / s_cur) * x - a_next * torch.expm1(-h) * d_eff
            h_prev = h
        d_prev = d
        if callback is not None:
            callback(i, x, d)
    return x


def unipc(
    denoise: Denoiser,
    x: Tensor,
    alpha: Tensor,
    s: Tensor,
    *,
    noise: Noise | None = None,
    callback: Callback | None = None,
    process: str = "vp",
    order: int = 2,
    lower_order_final: bool = True,
    corrector: bool = True,
) -> Tensor:
    """UniPC with B(h) = e^h - 1 ("bh2"), data prediction (Zhao et al. 2023, Alg. 1-2).

    Each step is the predictor UniP-p from the current point (``p`` = ``order``, warmed up from 1,
    and with ``lower_order_final`` capped by the steps left, as diffusers does); once the denoiser
    has been called at the new point, the corrector UniC refines that point with the new
    evaluation before the next predictor, at no extra denoiser calls. With ``hh = -h``,
    ``phi_1 = e^hh - 1`` and divided differences ``D1_k = (D_k - D_0) / r_k``::

        x' = (s'/s) x - alpha' phi_1 D_0 - alpha' B(h) sum_k rho_k D1_k

    where ``rho`` solves ``R rho = b``, ``R_ij = r_j^i``, ``b_i = i! h phi_{i+1}(hh) / B(h)``
    (``rho = 1/2`` for order 2 predictor and order 1 corrector). No corrector follows the final
    step to the clean level.
    """
    if order not in (1, 2, 3):
        raise SpecschedError(f"unipc order must be 1, 2 or 3 (got {order})")
    lam = _half_lambda(alpha, s)
    n = alpha.shape[0] - 1
    outs: list[Tensor] = []  # data predictions, newest last
    idx: list[int] = []  # their level indices
    x_prev: Tensor | None = None
    prev_order = 0
    for i in range(n):
        d = denoise(x, alpha[i], s[i])
        if corrector and x_prev is not None:
            x = _unipc_update(x_prev, outs, idx, lam, alpha, s, i, prev_order, d_new=d)
        outs, idx = [*outs, d][-order:], [*idx, i][-order:]
        p = min(order, n - i) if lower_order_final else order
        p = min(p, len(outs))
        x_prev, prev_order = x, p
        x = _unipc_update(x, outs, idx, lam, alpha, s, i + 1, p, d_new=None)
        if callback is not None:
            callback(i, x, d)
    return x


def _unipc_update(
    x: Tensor,
    outs: list[Tensor],
    idx: list[int],
    lam: Tensor,
    alpha: Tensor,
    s: Tensor,
    target: int,
    p: int,
    *,
    d_new: Tensor | None,
) -> Tensor:
    """One UniP (``d_new`` None) or UniC (``d_new`` = evaluation at ``target``) bh2 update.

    ``x`` sits at level ``idx[-1]`` (the base point ``s0`` with prediction ``outs[-1]``); the
    update moves it to level ``target``.
    """
    a_t, s_t = alpha[target], s[target]
    base = idx[-1]
    m0 = outs[-1]
    if _is_clean(s_t):
        return a_t * m0  # h infinite: e^-h = 0, the update is the data prediction
    h = lam[target] - lam[base]
    hh = -h
    phi_1 = torch.expm1(hh)
    b_h = phi_1  # "bh2"
    n_prev = p - 1  # earlier predictions used
    exact = False
    if n_prev > 0 and bool(torch.isinf(lam[idx[-1 - n_prev]]).any()):
        # the oldest point is pure noise (lambda = -inf, r = -inf): its divided difference
        # vanishes in the limit, so drop it and solve the remaining system exactly
        n_prev, exact = n_prev - 1, True
    rks, d1s = [], []
    for k in range(1, n_prev + 1):
        rk = (lam[idx[-1 - k]] - lam[base]) / h
        rks.append(rk)
        d1s.append((outs[-1 - k] - m0) / rk)
    x_lin = (s_t / s[base]) * x - a_t * phi_1 * m0
    half = [torch.as_tensor(0.5, dtype=x.dtype)]  # diffusers' shortcut for the lowest orders
    if d_new is None:  # predictor UniP-p
        if n_prev == 0:
            return x_lin
        rhos = half if n_prev == 1 and not exact else _unipc_rhos(rks, hh, b_h, n_prev)
        return x_lin - a_t * b_h * sum(r * d for r, d in zip(rhos, d1s, strict=True))
    # corrector UniC-p: one more divided difference, at the new point (r = 1)
    if n_prev == 0 and not exact:
        rhos = half
    else:
        rhos = _unipc_rhos([*rks, torch.ones_like(h)], hh, b_h, n_prev + 1)
    corr = sum((r * dd for r, dd in zip(rhos[:-1], d1s, strict=True)), torch.zeros_like(x))
    return x_lin - a_t * b_h * (corr + rhos[-1] * (d_new - m0))


def _unipc_rhos(rks: list[Tensor], hh: Tensor, b_h: Tensor, k: int) -> list[Tensor]:
    """Solve ``R rho = b`` (k x k) with ``R_ij = r_j^i`` and ``b_i = i! h phi_{i+1}(hh) / B(h)``."""
    fact, phi_k = 1.0, torch.expm1(hh) / hh - 1  # h phi_2 ... recursion of the phi functions
    b = []
    for i in range(1, k + 1):
        b.append(phi_k * fact / b_h)
        fact *= i + 1
        phi_k = phi_k / hh - 1 / fact
    r = torch.stack([torch.broadcast_to(v, hh.shape) for v in rks[:k]], -1)  # (..., k)
    R = torch.stack([r**j for j in range(k)], -2)  # (..., k rows, k cols)
    rho = torch.linalg.solve(R, torch.stack(b, -1))
    return [rho[..., j] for j in range(k)]


@dataclass(frozen=True)
class SamplerSpec:
    """A named sampler: the function, its fixed options, the processes it runs on, its noise.

    Attributes
    ----------
    name : str
    fn : callable
        The sampler function (module notes).
    description : str
    fixed : dict
        Options always passed to ``fn`` (``ddpm`` is ``ddim`` with ``eta=1``).
    options : tuple of str
        The options a caller may set.
    processes : tuple of str
        The processes it runs on.
    draws_per_step : int
        ``noise()`` calls per step when the sampler injects noise, at most (the step to the
        clean level may draw none); 0 for deterministic samplers.
    noise_scale : str
        The option that scales the injected noise (DDIM's ``eta``): at 0, or when not given,
        the sampler draws none. Empty when the draws do not depend on an option.
    diffusers : str
        The diffusers scheduler it matches.
    markov : bool
        The next state depends on the current state and the two levels alone (no history).
    calls_per_step : int
        Denoiser calls per step, at most (Heun's last step, Euler, makes one of its two).
    """

    name: str
    fn: Callable[..., Tensor]
    description: str
    fixed: dict[str, Any] = field(default_factory=dict)
    options: tuple[str, ...] = ()
    processes: tuple[str, ...] = ("vp", "ve", "flow")
    draws_per_step: int = 0
    noise_scale: str = ""
    diffusers: str = ""
    # the next state depends on the current state and the two levels alone (no history): an
    # N-step run is N one-step runs, which output_moments composes (O(N M) for stochastic ones)
    markov: bool = False
    calls_per_step: int = 1

    def check_options(self, options: dict[str, Any]) -> None:
        """Raise a clear error for an option the sampler lacks or a value of the wrong type."""
        unknown = set(options) - set(self.options)
        if unknown:
            accepted = ", ".join(self.options) or "none"
            raise SpecschedError(
                f"sampler {self.name!r} has no option {', '.join(sorted(unknown))} "
                f"(its options: {accepted})"
            )
        for key, v in options.items():
            if key == "eta":
                if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
                    raise SpecschedError(f"{key} must be a number (got {v!r})")
            elif key in ("order", "max_order"):
                if isinstance(v, bool) or not isinstance(v, int | np.integer):
                    raise SpecschedError(f"{key} must be a whole number (got {v!r})")
            elif key in ("lower_order_final", "corrector") and not isinstance(v, bool | np.bool_):
                raise SpecschedError(f"{key} must be True or False (got {v!r})")

    def noise_draws(self, steps: int, **options: Any) -> int:
        """Upper bound on the number of ``noise()`` calls in ``steps`` steps with ``options``.

        ``steps x draws_per_step``, or 0 when the :attr:`noise_scale` option is 0 or not given.

        Examples
        --------
        >>> get_sampler("ddim").noise_draws(10), get_sampler("ddim").noise_draws(10, eta=0.5)
        (0, 10)
        >>> get_sampler("ddpm").noise_draws(10), get_sampler("dpmpp_2m_sde").noise_draws(10)
        (10, 10)
        """
        self.check_options(options)
        if self.noise_scale:
            scale = {**options, **self.fixed}.get(self.noise_scale, 0.0)
            if not float(scale) > 0:
                return 0
        return steps * self.draws_per_step

    def __call__(
        self,
        denoise: Denoiser,
        x: Tensor,
        alpha: Tensor,
        s: Tensor,
        *,
        noise: Noise | None = None,
        callback: Callback | None = None,
        process: str = "vp",
        **options: Any,
    ) -> Tensor:
        self.check_options(options)
        self.check_process(process)
        return self.fn(
            denoise,
            x,
            alpha,
            s,
            noise=noise,
            callback=callback,
            process=process,
            **options,
            **self.fixed,
        )

    def check_process(self, process: str) -> None:
        """Raise a clear error when the sampler is not defined for ``process``."""
        if process not in self.processes:
            raise SpecschedError(
                f"sampler {self.name!r} runs on {'/'.join(self.processes)} models, not {process}: "
                "pick a sampler for your model (specsched samplers lists them)"
            )


#: samplers that are :func:`ddim` with other fixed options or levels: one noise draw per step when
#: ``eta > 0``, and Markov (each step maps a mode's state affinely). Name, description, fixed
#: options, processes, diffusers scheduler.
_DDIM_FAMILY = (
    ("ddim", "DDIM(eta), deterministic at eta=0", {}, ("vp", "ve", "flow"), "DDIMScheduler"),
    ("ddpm", "ancestral DDPM: DDIM with eta=1 (the DDPM posterior)", {"eta": 1.0},
     ("vp", "ve", "flow"), "DDPMScheduler"),
    ("euler", "Euler on the probability-flow ODE in sigma (EDM): identical to DDIM(0)",
     {"eta": 0.0}, ("vp", "ve"), "EulerDiscreteScheduler"),
    ("euler_ancestral", "Euler ancestral (k-diffusion eta=1): identical to DDIM(1), i.e. DDPM",
     {"eta": 1.0}, ("vp", "ve"), "EulerAncestralDiscreteScheduler"),
    ("flow_euler", "flow-matching Euler (SD3/Flux): DDIM(0) in rectified-flow levels",
     {"eta": 0.0}, ("flow",), "FlowMatchEulerDiscreteScheduler"),
)  # fmt: skip

SAMPLERS: dict[str, SamplerSpec] = {
    s.name: s
    for s in (
        *(
            SamplerSpec(
                name,
                ddim,
                description,
                options=() if fixed else ("eta",),
                fixed=fixed,
                processes=processes,
                diffusers=diffusers,
                draws_per_step=1,
                noise_scale="eta",
                markov=True,
            )
            for name, description, fixed, processes, diffusers in _DDIM_FAMILY
        ),
        SamplerSpec(
            "heun",
            heun,
            "Heun, second order (EDM Alg. 1); last step Euler; 2N-1 calls",
            calls_per_step=2,
            diffusers="HeunDiscreteScheduler / FlowMatchHeunDiscreteScheduler",
        ),
        SamplerSpec(
            "dpmpp_2m",
            dpmpp_2m,
            "DPM-Solver++(2M), first-order first and final steps",
            diffusers="DPMSolverMultistepScheduler",
        ),
        SamplerSpec(
            "dpmpp_2m_sde",
            dpmpp_2m,
            "DPM-Solver++(2M) SDE (midpoint), first-order final step",
            fixed={"sde": True},
            draws_per_step=1,
            diffusers='DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++")',
        ),
        SamplerSpec(
            "unipc",
            unipc,
            "UniPC bh2 with corrector, order 2 (or 3 with order=3)",
            options=("order", "lower_order_final", "corrector"),
            diffusers="UniPCMultistepScheduler",
        ),
        SamplerSpec(
            "ipndm",
            ipndm,
            "improved PNDM, 4th-order Adams-Bashforth in sigma (k-diffusion)",
            options=("max_order",),
            processes=("vp", "ve"),
        ),
    )
}


def get_sampler(name: str) -> SamplerSpec:
    """The sampler called ``name``, or a clear error listing the known ones."""
    try:
        return SAMPLERS[name]
    except KeyError:
        raise SpecschedError(
            f"unknown sampler {name!r}: use one of {', '.join(SAMPLERS)}"
        ) from None
