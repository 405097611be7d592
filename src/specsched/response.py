"""The closed-form spectral response of a linear sampler run with the exact Gaussian denoiser.

Each mode's state is tracked as coefficients over the independent Gaussian sources (DESIGN §2): row
0 is the constant 1 (it carries the mean), row 1 the standard normal ``xi`` with ``x_T = c xi``, and
one row per noise draw ``z``. Running the sampler of :mod:`specsched.samplers` on such states with
:class:`ModeDenoiser` gives the exact output distribution:

- mean ``mu_k`` = row 0,
- variance ``P_k`` = sum of squares of the other rows,
- transfer function ``H_k`` = row 1 / ``c`` (the deterministic filter of the initial noise).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from . import divergence
from .calibrate import CalibratedModeDenoiser, ModeTables
from .errors import SpecschedError
from .levels import Process, levels_from_log_snr, start_std
from .samplers import SamplerSpec, get_sampler
from .schedules import Schedule
from .spectrum import Spectrum

__all__ = [
    "CoefficientNoise",
    "ModeDenoiser",
    "Response",
    "converged_moments",
    "output_moments",
    "response",
]

Tensor = torch.Tensor


_FLUSH_DEPTH = 0


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Run coefficient-state samplers on one thread with subnormal floats flushed to zero.

    The coefficients of early noise draws shrink geometrically over hundreds of steps; once
    subnormal, every operation on them is ~100x slower (values below 2.2e-308 do not matter). The
    flag is per thread, so torch is kept on this thread (the tensors are small). Re-entrant; torch
    has no getter for the flag, so its default (off) is restored on the way out.
    """
    global _FLUSH_DEPTH
    if _FLUSH_DEPTH:
        _FLUSH_DEPTH += 1
        try:
            yield
        finally:
            _FLUSH_DEPTH -= 1
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    _FLUSH_DEPTH = 1
    try:
        yield
    finally:
        _FLUSH_DEPTH = 0
        torch.set_flush_denormal(False)
        torch.set_num_threads(threads)


class ModeDenoiser:
    """The exact Gaussian denoiser on coefficient states, mode by mode (DESIGN §2).

    ``x0_hat = m + g (x - alpha m)``, ``g = alpha S / (alpha^2 S + s^2)``. The constant source
    (row 0) carries ``m (1 - g alpha)``; every other source is scaled by ``g``.
    """

    def __init__(self, variances: Tensor, means: Tensor):
        self.S = variances
        self.m = means

    def __call__(self, x: Tensor, alpha: Tensor, s: Tensor) -> Tensor:
        g = alpha * self.S / (alpha**2 * self.S + s**2)
        x0 = g * x
        return torch.cat([x0[..., :1, :] + self.m * (1 - g * alpha), x0[..., 1:, :]], dim=-2)


class CoefficientNoise:
    """Noise source for coefficient states: each call is a new independent source (a new row)."""

    def __init__(self, first_row: int):
        self.next_row = first_row

    def __call__(self, like: Tensor) -> Tensor:
        if self.next_row >= like.shape[-2]:
            raise RuntimeError(
                "more noise draws than rows allocated: SamplerSpec.noise_draws is wrong"
            )
        z = torch.zeros_like(like)
        z[..., self.next_row, :] = 1.0
        self.next_row += 1
        return z


def output_moments(
    variances: Tensor,
    means: Tensor,
    alpha: Tensor,
    s: Tensor,
    *,
    process: Process,
    sampler: str = "ddim",
    trace: bool = False,
    calibration: ModeTables | None = None,
    **options: Any,
) -> dict[str, Tensor]:
    """Output mean, variance and transfer function per mode, differentiable in ``alpha`` and ``s``.

    Parameters
    ----------
    variances, means : Tensor, shape (M,)
        Data modes ``S_k`` and ``m_k`` (float64).
    alpha, s : Tensor, shape (N + 1,) or (N + 1, *batch)
        The schedule's levels, noisiest first, ending clean; a batch of schedules is evaluated
        at once (results then have shape ``(*batch, M)``).
    process : {"vp", "ve", "flow"}
        Decides the start distribution (:func:`specsched.levels.start_std`).
    sampler : str
        A name from :data:`specsched.samplers.SAMPLERS`; ``options`` are its options (``eta``).
    trace : bool
        Also return ``trace_mean`` and ``trace_var``, shape (N + 1, M): the moments at every level.
    calibration : ModeTables, optional
        Run the calibrated response model (:mod:`specsched.calibrate`) instead of the exact
        Gaussian denoiser: one more source row per denoiser call carries the network's
        non-linear output.

    Returns
    -------
    dict with ``mean``, ``var``, ``transfer`` (and ``trace_mean``, ``trace_var``).
    """
    sampler_spec = get_sampler(sampler)
    steps = alpha.shape[0] - 1
    batch = alpha.shape[1:]
    draws = sampler_spec.noise_draws(steps, **options)
    # the calibrated model draws one non-linear source per denoiser call
    nonlinear = calibration is not None and calibration.nonlinear
    extra = sampler_spec.calls_per_step * steps if nonlinear else 0
    rows = 2 + draws + extra
    # levels broadcast against states of shape (*batch, rows, M)
    alpha_b = alpha.reshape(steps + 1, *batch, 1, 1)
    s_b = s.reshape(steps + 1, *batch, 1, 1)
    c = start_std(process, s_b[0]) * torch.ones_like(s_b[0])  # (*batch, 1, 1)
    if sampler_spec.markov and steps > 0 and calibration is None:
        return _markov_moments(
            sampler_spec, variances, means, alpha_b, s_b, c, trace, process, options
        )
    M = variances.shape[-1]
    zeros = torch.zeros((*batch, 1, M), dtype=torch.float64)
    x = torch.cat(
        [zeros, c.expand(*batch, 1, M)] + [zeros] * (rows - 2),
        dim=-2,
    )
    means_t, vars_t = [x[..., 0, :]], [(x[..., 1:, :] ** 2).sum(-2)]

    def record(i: int, xi: Tensor, x0: Tensor) -> None:
        means_t.append(xi[..., 0, :])
        vars_t.append((xi[..., 1:, :] ** 2).sum(-2))

    # over many steps the coefficients of early noise draws decay to subnormal floats
    slow_tail = flush_denormals() if steps > 64 else contextlib.nullcontext()
    with slow_tail:
        denoiser = (
            ModeDenoiser(variances, means)
            if calibration is None
            else CalibratedModeDenoiser(
                variances, means, calibration, first_row=2 + draws, levels=(alpha_b, s_b)
            )
        )
        out = sampler_spec(
            denoiser,
            x,
            alpha_b,
            s_b,
            noise=CoefficientNoise(2),
            callback=record if trace else None,
            process=process,
            **options,
        )
    res = {
        "mean": out[..., 0, :],
        "var": (out[..., 1:, :] ** 2).sum(-2),
        "transfer": out[..., 1, :] / c[..., 0],
    }
    if trace:
        res["trace_mean"] = torch.stack(means_t)
        res["trace_var"] = torch.stack(vars_t)
    return res


def step_maps(
    sampler_spec: SamplerSpec,
    variances: Tensor,
    means: Tensor,
    alpha: Tensor,
    s: Tensor,
    process: Process,
    options: dict[str, Any],
) -> tuple[Tensor, Tensor, Tensor]:
    """``(A, B, sigma^2)`` per mode of single steps ``alpha[0] -> alpha[1]`` of a Markov sampler.

    ``alpha`` and ``s`` have shape ``(2, *batch, 1, 1)``; a mode's state moves as
    ``x' = A x + B + sigma z`` (:func:`_markov_moments`). Results have shape ``(*batch, M)``.
    """
    rows = 2 + sampler_spec.noise_draws(1, **options)
    x = torch.zeros((*alpha.shape[1:-2], rows, variances.shape[-1]), dtype=torch.float64)
    x[..., 1, :] = 1.0  # the unit state: row 0 (constant) 0, row 1 (the incoming state) 1
    denoiser = ModeDenoiser(variances, means)
    y = sampler_spec(denoiser, x, alpha, s, noise=CoefficientNoise(2), process=process, **options)
    return y[..., 1, :], y[..., 0, :], (y[..., 2:, :] ** 2).sum(-2)


def _markov_moments(
    sampler_spec: SamplerSpec,
    variances: Tensor,
    means: Tensor,
    alpha_b: Tensor,
    s_b: Tensor,
    c: Tensor,
    trace: bool,
    process: Process,
    options: dict[str, Any],
) -> dict[str, Tensor]:
    """:func:`output_moments` of a Markov sampler (``sampler_spec.markov``), in O(N M) work and
    O(1) ops.

    Each step of such a sampler maps a mode's state affinely, ``x' = A_i x + B_i + sigma_i z``
    (the same ``A_i`` for every source, as the Gaussian denoiser and the step are linear). One
    call of the sampler itself, one step from each level to the next batched over the steps, on
    the unit state (row 0 = 0, row 1 = 1, a row per draw) gives every ``(A_i, B_i, sigma_i)``;
    composing them gives ``H = prod A_i``, ``mu = sum_i (prod_{j>i} A_j) B_i`` and
    ``P = c^2 H^2 + sum_i (prod_{j>i} A_j)^2 sigma_i^2``, the moments of the N-step run (equal up
    to rounding) without its ``2 + N`` rows of coefficients for ``N`` noise draws.
    """
    steps = alpha_b.shape[0] - 1
    # the last step apart: the sampler treats the step to the clean level on its own
    maps = []
    if steps > 1:
        a_pairs = torch.stack([alpha_b[:-2], alpha_b[1:-1]])
        s_pairs = torch.stack([s_b[:-2], s_b[1:-1]])
        maps.append(step_maps(sampler_spec, variances, means, a_pairs, s_pairs, process, options))
    last = step_maps(sampler_spec, variances, means, alpha_b[-2:], s_b[-2:], process, options)
    maps.append(tuple(v[None] for v in last))
    A, B, noise_var = (torch.cat(parts) for parts in zip(*maps, strict=True))  # (N, *batch, M)
    c2 = c[..., 0] ** 2  # (*batch, 1)
    res: dict[str, Tensor] = {}
    if trace:
        mean, var = torch.zeros_like(A[0]), c2 * torch.ones_like(A[0])
        means_t, vars_t = [mean], [var]
        for i in range(steps):
            mean, var = A[i] * mean + B[i], A[i] ** 2 * var + noise_var[i]
            means_t.append(mean)
            vars_t.append(var)
        res["trace_mean"], res["trace_var"] = torch.stack(means_t), torch.stack(vars_t)
    suffix = torch.flip(torch.cumprod(torch.flip(A, [0]), 0), [0])  # prod_{j >= i} A_j
    after = torch.cat([suffix[1:], torch.ones_like(A[:1])])  # prod_{j > i} A_j
    transfer = suffix[0]
    res["mean"] = (after * B).sum(0)
    res["var"] = c2 * transfer**2 + (after**2 * noise_var).sum(0)
    res["transfer"] = transfer
    return res


@dataclass(frozen=True, eq=False)
class Response:
    """What a sampler does to every mode of a spectrum under a schedule.

    Arrays have the layout of ``spectrum.variances`` (traces have a leading level axis).

    Attributes
    ----------
    output_mean, output_var : ndarray
        Mean ``mu_k`` and variance ``P_k`` of the generated modes.
    transfer : ndarray
        ``H_k``: the generated mode is ``H_k x_T + (injected noise) + (mean part)``.
    trace_mean, trace_var : ndarray, shape (N + 1, ...)
        Moments of the state at each level (the start included).
    target_var : ndarray, shape (N + 1, ...)
        The variance the state should have at each level, ``alpha_i^2 S + s_i^2``.
    w2, kl_gen_data, kl_data_gen : float
        The objectives of DESIGN §2; ``w2`` is the *squared* distance.
    """

    spectrum: Spectrum
    schedule: Schedule
    sampler: str
    options: dict[str, Any]
    output_mean: np.ndarray
    output_var: np.ndarray
    transfer: np.ndarray
    trace_mean: np.ndarray
    trace_var: np.ndarray
    target_var: np.ndarray
    w2: float
    kl_gen_data: float
    kl_data_gen: float
    meta: dict[str, Any] = field(default_factory=dict)

    def contributions(self, objective: divergence.Objective = "w2") -> np.ndarray:
        """Weighted contribution of every mode to ``objective`` (they sum to its value)."""
        S, w, m = (torch.from_numpy(a) for a in self.spectrum.modes())
        P = torch.from_numpy(self.output_var.ravel())
        mu = torch.from_numpy(self.output_mean.ravel())
        per = w * divergence.per_mode(objective, S, m, P, mu)
        return per.numpy().reshape(self.spectrum.variances.shape)

    def value(self, objective: divergence.Objective) -> float:
        """The value of an objective by name (``"w2"``, ``"kl"``, ``"kl-data"``)."""
        return {"w2": self.w2, "kl": self.kl_gen_data, "kl-data": self.kl_data_gen}[objective]

    def value_from_marginal(
        self, objective: divergence.Objective = "w2", *, variance: bool = True
    ) -> float:
        """The objective had the sampler started from the data's noised marginal.

        A sampler starts from noise of mean 0 and the process's starting variance, but the data
        noised to the first level has mean ``alpha_0 m`` and variance ``alpha_0^2 S + s_0^2``.
        Where the noisiest level keeps signal (a training schedule whose terminal SNR is not
        zero, such as Stable Diffusion 1.x/2.x's), that start misses the data's mean in every
        mode, and no schedule recovers it. The generated mode is ``H x_T`` plus terms that do
        not depend on the start (``H`` the :attr:`transfer`), so the start's moments enter the
        output through ``H`` alone: the marginal's mean shifts the output mean by
        ``H alpha_0 m``, its variance the output variance by ``H^2`` times the variance missed.
        Exact for a linear sampler on the Gaussian model (checked against sampling in
        ``tests/test_start.py``); on a calibrated response, whose ``H`` is the network's linear
        part, an approximation that has not been checked (:func:`specsched.fit`'s note uses the
        Gaussian model). Measured against the same target as :attr:`w2`.

        Parameters
        ----------
        objective : {"w2", "kl", "kl-data"}, default "w2"
        variance : bool, default True
            False: only the start's mean is moved, to ``alpha_0 m`` (noise plus ``alpha_0``
            times :meth:`Spectrum.mean_image`, the remedy :func:`specsched.fit`'s note
            suggests); its variance stays the process's.

        Returns
        -------
        float
            The objective from that start; ``self.value(objective)`` less this is what the
            start from noise of mean 0 costs.
        """
        S, w, m = (torch.from_numpy(a) for a in self.spectrum.modes())
        H = self.transfer.ravel()
        mu = self.output_mean.ravel() + H * float(self.schedule.alpha[0]) * m.numpy()
        P = self.output_var.ravel()
        if variance:
            P = P + H**2 * (self.target_var[0] - self.trace_var[0]).ravel()
        return float(
            divergence.total(objective, S, w, m, torch.from_numpy(P), torch.from_numpy(mu))
        )

    def to_dict(self) -> dict[str, Any]:
        """Scalar figures, JSON-ready."""
        return {
            "sampler": self.sampler,
            "options": self.options,
            "schedule": self.schedule.to_dict(),
            "w2": self.w2,
            "kl_gen_data": self.kl_gen_data,
            "kl_data_gen": self.kl_data_gen,
            "generated_total_variance": float(np.sum(self.spectrum.weights * self.output_var)),
            "data_total_variance": self.spectrum.total_variance,
        }


def check_inputs(spec: Any, sampler: Any, options: dict[str, Any]) -> Spectrum:
    """The checks of a spectrum, a sampler name and its options at a public entry point:
    ``spec`` as a usable :class:`Spectrum` (see :func:`specsched.spectrum.as_spectrum`), or a
    one-line :class:`SpecschedError`."""
    from .spectrum import as_spectrum

    spec = as_spectrum(spec)
    if not isinstance(sampler, str):
        raise SpecschedError(f"sampler must be a name such as 'ddim', got {sampler!r}")
    get_sampler(sampler).check_options(options)
    return spec


def as_schedule(sched: Any) -> Schedule:
    """A :class:`Schedule`, or a list of integer timesteps of the default model as one."""
    if isinstance(sched, Schedule):
        return sched
    if sched is None or isinstance(sched, str | bytes | dict):
        raise SpecschedError(
            f"sched must be a Schedule or a list of integer timesteps, got {sched!r}: e.g. "
            "Schedule.from_timesteps([999, 899, 799])"
        )
    return Schedule.from_timesteps(sched)  # DDPM linear betas, 1000 steps, like the default model


#: steps of the DPM-Solver++(2M) run that stands for a calibrated model's converged output
CONVERGED_STEPS = 100


def converged_moments(
    variances: Tensor, means: Tensor, tables: ModeTables, process: Process
) -> tuple[Tensor, Tensor]:
    """Output variance and mean of the calibrated model run to convergence (its own limit).

    A :data:`CONVERGED_STEPS`-step DPM-Solver++(2M) run, uniform in log-SNR over the
    calibration's grid and ending clean: the distribution the network generates with many steps,
    as the calibration predicts it. A schedule cannot correct the network's own errors; what it
    controls is how far a few-step run lands from this limit, so calibrated fits measure their
    objective against it (for the exact denoiser it is the data spectrum).
    """
    grid = tables.grid
    lam = torch.linspace(float(grid[0]), float(grid[-1]), CONVERGED_STEPS, dtype=torch.float64)
    lam = torch.cat([lam, torch.tensor([math.inf], dtype=torch.float64)])
    alpha, s = levels_from_log_snr(lam, process)
    with torch.no_grad():
        out = output_moments(
            variances, means, alpha, s, process=process, sampler="dpmpp_2m", calibration=tables
        )
    return out["var"], out["mean"]


def response(
    spec: Spectrum,
    sched: Schedule,
    sampler: str = "ddim",
    *,
    target: tuple[np.ndarray, np.ndarray] | None = None,
    **options: Any,
) -> Response:
    """Closed-form output distribution of ``sampler`` on ``spec`` under ``sched``.

    Parameters
    ----------
    spec : Spectrum
        The data's modes (a saved spectrum's path, a data source or an array of samples is
        estimated first, see :func:`specsched.spectrum.as_spectrum`).
    sched : Schedule or sequence of int
        Noise levels, noisiest first; the process decides the start distribution. A list of
        integer timesteps is taken as those of the default model (linear betas, 1000 steps).
    sampler : str, default "ddim"
        A name from :data:`specsched.SAMPLERS` (ddim, ddpm, euler, euler_ancestral, flow_euler, heun,
        dpmpp_2m, dpmpp_2m_sde, unipc, ipndm); ``options`` go to it (``eta`` for DDIM).
    target : (variances, means), optional
        Per-mode moments (flat, in the order of :meth:`Spectrum.modes`) the figures (``w2``,
        ``kl_gen_data``, ...) measure the output against, instead of the data's; calibrated fits
        use the model's converged output (:func:`converged_moments`).

    Examples
    --------
    >>> import specsched as ss
    >>> spec = ss.Spectrum.from_source("synthetic:powerlaw", n=500, size=8)
    >>> sched = ss.Schedule.from_timesteps(ss.spaced_timesteps(10, "trailing"))
    >>> r = ss.response(spec, sched, sampler="ddim", eta=0.0)
    >>> r.w2 > 0
    True
    """
    spec, sched = check_inputs(spec, sampler, options), as_schedule(sched)
    S, w, m = (torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)) for a in spec.modes())
    alpha, s = torch.from_numpy(sched.alpha.copy()), torch.from_numpy(sched.s.copy())
    tables = None if spec.calibration is None else ModeTables(spec.calibration, S.numpy())
    with torch.no_grad():
        out = output_moments(
            S,
            m,
            alpha,
            s,
            process=sched.process,
            sampler=sampler,
            trace=True,
            calibration=tables,
            **options,
        )
        St, mt = (S, m) if target is None else (torch.from_numpy(np.asarray(a)) for a in target)
        figures = {
            name: float(divergence.total(obj, St, w, mt, out["var"], out["mean"]))
            for name, obj in (("w2", "w2"), ("kl_gen_data", "kl"), ("kl_data_gen", "kl-data"))
        }
    bad = [k for k, v in figures.items() if not math.isfinite(v)]
    if bad or not torch.all(torch.isfinite(out["var"])):
        raise SpecschedError(
            f"the output spectrum is not finite in float64 ({', '.join(bad) or 'variances'}): "
            f"the data's scale (largest mode variance {float(spec.variances.max()):.3g}) is far "
            "from a diffusion model's; rescale the data to about [-1, 1]"
        )
    shape = spec.variances.shape
    target = alpha.numpy()[:, None] ** 2 * S.numpy()[None] + s.numpy()[:, None] ** 2
    return Response(
        spectrum=spec,
        schedule=sched,
        sampler=sampler,
        options=dict(options),
        output_mean=out["mean"].numpy().reshape(shape),
        output_var=out["var"].numpy().reshape(shape),
        transfer=out["transfer"].numpy().reshape(shape),
        trace_mean=out["trace_mean"].numpy().reshape(-1, *shape),
        trace_var=out["trace_var"].numpy().reshape(-1, *shape),
        target_var=target.reshape(-1, *shape),
        **figures,
    )
