"""Verification of a fit by sampling: the fitted schedule against the best heuristics, measured.

:func:`verify` takes a :class:`~specsched.optimize.FitResult` and a denoiser (a trained network,
say), samples a few hundred images with the fit's own choice and every heuristic (or the best
few by the fit's objective), all from the same seeded starting noise (:func:`~specsched.generation.generate`), scores
each against reference data (:func:`~specsched.evaluate.score`: by default the pixel Fréchet
distance with a paired bootstrap) and keeps the schedule that measures best. Where others are
within the paired noise (:func:`~specsched.evaluate.paired_tie`) of the lowest, a final round
samples the lowest few of them again with four times the samples, from fresh noise, and keeps
the lowest of that round. A tie never keeps the fit's choice for being the fit's: on 31 cells of
three networks the lowest never lost at 4x the samples, while letting a tie keep the fit's choice
kept a fit that loses by 46 % (benchmarks/RESULTS.md, "Verifying on the network"); and on the
exact mixture denoiser 256 samples could not tell a fit from logSNR-uniform spacing, which is
twice as good ("A final round for verification").
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import SpecschedError, check_int

if TYPE_CHECKING:  # pragma: no cover
    from .evaluate import Reference
    from .fid import InceptionFeatures
    from .optimize import FitResult
    from .response import Response
    from .samplers import Denoiser
    from .schedules import Schedule
    from .spectrum import Spectrum

__all__ = ["Verification", "calibrated_design", "gaussian_design", "verify", "verify_candidates"]


@dataclass(frozen=True)
class Verification:
    """What :func:`verify` measured, and what it chose.

    Attributes
    ----------
    metric : str
        The metric's name in :data:`specsched.evaluate.METRICS`, or ``"sampled <objective>"``
        for the fit's objective measured on the samples against its spectrum (lower is
        better).
    rows : list of dict
        One row per candidate, the fit's own choice first: ``schedule`` (name), ``role``
        (``"fit"``, ``"fallback"`` when the fit had already returned a heuristic, or
        ``"heuristic"``), ``objective`` (the fit's objective value), ``value`` and ``sd`` (the
        metric and its bootstrap standard deviation), ``best`` (lowest value),
        ``tie_with_best`` (within 2 sd of the paired bootstrap differences; true for the best),
        ``finalist`` (sampled again in the final round) with ``final_value``, ``final_sd``
        and ``final_tie_with_best`` (``None`` for the others), ``chosen``, ``timesteps``
        (None for continuous schedules), ``log_snr`` (``None`` for the clean end) and
        ``seconds`` (sampling and scoring, both rounds).
    chosen : str
        Name of the schedule kept.
    kept : bool
        Whether the fit's own choice was kept (it measured lowest, in the final round if there
        was one).
    note : str
        One sentence on the outcome (also appended to :attr:`FitResult.notes`).
    num_samples, final_samples, seed, n_boot, reference_samples : int
        The sampling and bootstrap settings (``final_samples``: per schedule in the final
        round, 0 where there was none), and the number of reference samples (0: scored against
        the fit's spectrum, ``metric`` ``"sampled w2"`` or another objective).
    seconds : float
        Wall time of the verification.
    """

    metric: str
    rows: list[dict[str, Any]]
    chosen: str
    kept: bool
    note: str
    num_samples: int
    final_samples: int
    seed: int
    n_boot: int
    reference_samples: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready."""
        return {
            "metric": self.metric,
            "lower_is_better": True,
            "tie_rule": "tie_with_best: |value - best| < 2 sd of the paired bootstrap differences "
            "(same starting noise and resamples for every candidate); where more than one is "
            "tied with the lowest, the lowest few of them are sampled again with final_samples "
            "each (fresh noise) and the lowest of that round is kept; the lowest is kept, tie or "
            "not",
            "final_samples": self.final_samples,
            "chosen": self.chosen,
            "kept_fit_choice": self.kept,
            "note": self.note,
            "num_samples": self.num_samples,
            "seed": self.seed,
            "n_boot": self.n_boot,
            "reference_samples": self.reference_samples,
            "seconds": self.seconds,
            "candidates": self.rows,
        }


def _same_levels(a: Schedule, b: Schedule) -> bool:
    """Whether two schedules have the same levels (names aside)."""
    if a.timesteps is not None and b.timesteps is not None:
        return bool(np.array_equal(a.timesteps, b.timesteps))
    la, lb = a.log_snr, b.log_snr
    return la.shape == lb.shape and bool(np.allclose(la, lb, rtol=1e-12, atol=1e-12))


def _finalists(values: list[float], ties: list[bool], k: int) -> list[int]:
    """The candidates of the final round: the ``k`` lowest of those tied with the lowest, lowest
    first, or none where the lowest has no tie."""
    tied = sorted((i for i in range(len(values)) if ties[i]), key=lambda i: values[i])
    return tied[:k] if len(tied) > 1 else []


def verify_candidates(
    result: FitResult,
    candidates: int | Literal["all"] = "all",
    designs: Sequence[Schedule] = (),
) -> list[tuple[str, Schedule, Response]]:
    """The schedules :func:`verify` samples: the fit's choice, other designs, then heuristics.

    Parameters
    ----------
    result : FitResult
        A fit with its heuristic baselines (``fit(..., heuristics=True)``, the default).
    candidates : int or "all", default "all"
        How many heuristics, with the fit's choice (at least 1): the fit's choice and
        ``candidates - 1`` heuristics, best by the fit's objective first; ``"all"``: every
        heuristic. Heuristics with the same levels as a schedule already taken (the fit's
        fallback, a design, or another heuristic under another name) are skipped, so the next
        ones come in.
    designs : sequence of Schedule
        Other designed schedules, sampled after the fit's choice and in addition to
        ``candidates`` (for instance the Gaussian fit of a calibrated spectrum, which
        ``specsched fit --verify`` adds); their responses are computed on the fit's model
        (:attr:`FitResult.respond`). One with the fit's levels is not sampled twice.

    Returns
    -------
    list of (role, Schedule, Response)
        ``role`` is ``"fit"``, ``"fallback"`` (the fit had already returned a heuristic),
        ``"design"`` or ``"heuristic"``; the responses are those of the fit's model (objective
        values).
    """
    if isinstance(candidates, str) and candidates == "all":
        candidates = len(result.baselines) + 1
    candidates = check_int("candidates", candidates, hint=" (or 'all')")
    role = "fit" if result.fallback is None else "fallback"
    out = [(role, result.schedule, result.response)]
    for sched in designs:
        if result.respond is None:
            raise SpecschedError(
                "this fit cannot evaluate other designs on its model: make it with specsched.fit"
            )
        if sched.process != result.schedule.process:
            raise SpecschedError(
                f"the design {sched.name!r} is for a {sched.process} model but the fit for a "
                f"{result.schedule.process} one: design it for the fit's model"
            )
        if not any(_same_levels(sched, s) for _, s, _ in out):
            out.append(("design", sched, result.respond(sched)))
    taken = len(out) - 1  # the designs do not count against ``candidates``
    for sched, resp in result.baselines:
        if len(out) - taken >= candidates:
            break
        if not any(_same_levels(sched, s) for _, s, _ in out):
            out.append(("heuristic", sched, resp))
    return out


def gaussian_design(
    spec: Spectrum,
    result: FitResult,
    *,
    start_at: str | float | None = None,
    max_step: float | None = None,
) -> Schedule:
    """The Gaussian model's design for the cell of a calibrated fit, named ``"gaussian"``.

    :func:`specsched.fit` on ``spec`` with its calibration dropped, for ``result``'s sampler,
    options, step count, objective and levels, with the defaults of an uncalibrated fit unless
    ``start_at`` or ``max_step`` are given. ``specsched fit --verify`` samples it as a
    ``design`` beside the calibrated fit: on a network the calibration describes well it can
    measure better (benchmarks/RESULTS.md, "A final round for verification").

    Raises
    ------
    SpecschedError
        If ``spec`` has no calibration.
    """
    if spec.calibration is None:
        raise SpecschedError("the spectrum has no calibration: its fit is already Gaussian")
    plain = dataclasses.replace(spec, calibration=None)
    gauss = _cell_fit(plain, result, start_at=start_at, max_step=max_step)
    return dataclasses.replace(gauss, name="gaussian")


def _cell_fit(spec: Spectrum, result: FitResult, **options: Any) -> Schedule:
    """:func:`specsched.fit` on ``spec`` for the cell of ``result`` (its step count, sampler and
    options, objective and levels), with ``options``."""
    from .optimize import fit

    return fit(
        spec,
        result.schedule.steps,
        sampler=result.sampler,
        objective=result.objective,  # type: ignore[arg-type]
        levels=result.levels,
        **options,
        **result.options,
    ).schedule


def calibrated_design(
    spec: Spectrum,
    result: FitResult,
    *,
    start_at: str | float | None = None,
    max_step: float | None = None,
) -> Schedule:
    """The calibrated fit alone for the cell of a fit that returned the Gaussian design
    (:attr:`FitResult.gaussian_design`), named ``"calibrated"``.

    :func:`specsched.fit` on ``spec`` for ``result``'s sampler, options, step count, objective
    and levels with ``gaussian_design=False``, and ``start_at`` and ``max_step`` as given.
    ``specsched fit --verify`` samples it as a ``design`` where the fit's choice is the Gaussian
    design, as it samples :func:`gaussian_design` where it is not.

    Raises
    ------
    SpecschedError
        If ``spec`` has no calibration.
    """
    if spec.calibration is None:
        raise SpecschedError("the spectrum has no calibration: there is no calibrated fit")
    alone = _cell_fit(spec, result, start_at=start_at, max_step=max_step, gaussian_design=False)
    return dataclasses.replace(alone, name="calibrated")


def verify(
    result: FitResult,
    denoiser: Denoiser,
    reference: np.ndarray | Reference | Spectrum,
    *,
    shape: tuple[int, ...],
    num_samples: int = 256,
    candidates: int | Literal["all"] = "all",
    designs: Sequence[Schedule] = (),
    final_samples: int | None = None,
    finalists: int = 3,
    seed: int = 0,
    metric: str = "fd",
    n_boot: int = 20,
    batch_size: int = 256,
    progress: Callable[[int, int], None] | None = None,
    inception: InceptionFeatures | None = None,
) -> FitResult:
    """Sample with the fit's choice and the best heuristics, and keep what measures best.

    Every candidate (:func:`verify_candidates`) is sampled with the fit's sampler and options from
    the same seeded starting noise (paired samples), and scored against ``reference`` with
    ``metric`` and a bootstrap whose resamples are shared by all candidates. Where no other
    candidate is within the paired noise of the lowest (:func:`~specsched.evaluate.paired_tie`,
    2 sd), the lowest is kept; otherwise the ``finalists`` lowest of those tied are sampled
    again with ``final_samples`` each (fresh noise, paired among them) and the lowest of that
    round is kept, tie or not. Until the
    twenty-fourth session a tie kept the fit's choice: on the benchmark's sv16 and lv16 models
    that kept three fallbacks that lose by 3-22 % and a fit that loses by 46 % at 1,024
    samples, where the lowest measured never lost (benchmarks/RESULTS.md, "Verifying on the
    network").

    Parameters
    ----------
    result : FitResult
        The output of :func:`specsched.fit` for the model ``denoiser`` samples from.
    denoiser : callable
        ``denoise(x, alpha, s) -> x0_hat``, e.g. from
        :meth:`specsched.integrations.diffusers.UNetDenoiser.from_pipeline`.
    reference : ndarray, shape (m, *shape), Reference, or Spectrum
        Data to score the samples against (at least 2 samples, in the denoiser's value range),
        or the spectrum the fit was made on (a calibration file's): the samples are then scored
        by the fit's objective measured on them
        (:func:`~specsched.evaluate.spectral_objective`), and ``metric`` is not used. That needs
        no data beyond the spectrum; on the benchmark's cells where the models' choices lost,
        it chose as pixel FD did (benchmarks/README.md, "Verifying without data").
    shape : tuple of int
        Shape of one sample, e.g. ``(1, 16, 16)``.
    num_samples : int, default 256
        Samples per candidate (at least 2). The metric's noise falls like ``1/sqrt(num_samples)``.
    candidates : int or "all", default "all"
        Schedules to compare: the fit's choice and the ``candidates - 1`` best other heuristics
        by the fit's objective, or ``"all"`` of them (each costs ``num_samples`` samples). On
        the benchmark's sv16 model the best heuristic of three of five losing cells was not
        among the objective's two best (benchmarks/RESULTS.md, "Verifying on the network").
    designs : sequence of Schedule
        Other designed schedules to sample too, in addition to ``candidates``
        (:func:`verify_candidates`): ``specsched fit --verify`` on a calibration file adds the
        Gaussian fit of its spectrum, which measured better than the calibrated fit in 4 of
        lv16's 10 cells (benchmarks/RESULTS.md, "A final round for verification").
    final_samples : int, optional
        Samples per schedule of the final round (default ``4 * num_samples``; 0: one round).
        Where more than one candidate is within the paired noise of the lowest after the first
        round, the ``finalists`` lowest of them are sampled again, ``final_samples`` each from
        fresh seeded noise (seed ``seed + 2``), and the lowest of that round is kept. On the
        exact Gaussian-mixture denoiser's UniPC-10 cell, 256 samples could not tell the fit
        from logSNR-uniform spacing, which is twice as good by FD at 2,560
        (benchmarks/RESULTS.md, "A final round for verification").
    finalists : int, default 3
        How many of the candidates tied with the lowest go to the final round (at least 2).
    seed : int, default 0
        Seed of the starting noise (the same for every candidate) and of the bootstrap.
    metric : str, default "fd"
        A name from :data:`specsched.evaluate.METRICS` ("fd": pixel Fréchet distance), or
        ``"fid"`` (Fréchet distance of Inception-v3 features, :mod:`specsched.fid`), for
        reference data. The spectral objectives rank schedules by FID no better than pixel FD
        does (on MNIST, Kendall's tau with measured FID 0.49 for the calibrated W2, 0.34 for
        KL; benchmarks/README.md, "fid_agreement.py"): where FID is what counts, verify by it.
    n_boot : int, default 20
        Bootstrap resamples (at least 2).
    batch_size : int, default 256
        Samples per denoiser call.
    progress : callable, optional
        ``progress(done, total)`` in samples, after each batch (with ``metric="fid"``, images
        through Inception count too: the reference's, then each sample's).
    inception : InceptionFeatures, optional
        The Inception network for ``metric="fid"`` (default: :func:`specsched.fid.find_backend`'s
        weights, on the CPU); pass one to choose the weights, the device or a feature cache.

    Returns
    -------
    FitResult
        A copy of ``result`` whose ``schedule`` (with ``value`` and ``response``) is the
        candidate kept, with ``verification`` (:class:`Verification`) set and the outcome
        appended to ``notes`` (the note that the schedule starts where a calibrated network
        fails, which asks for this check, is dropped).

    Raises
    ------
    SpecschedError
        On bad settings, a reference of another sample shape, a schedule the denoiser cannot
        run, or samples with NaN or Inf values.

    Examples
    --------
    >>> import numpy as np, specsched as ss
    >>> from specsched.denoisers import GaussianDenoiser
    >>> x = np.random.default_rng(0).standard_normal((500, 1, 4, 4))
    >>> spec = ss.Spectrum.from_array(x)
    >>> res = ss.fit(spec, 4, sampler="ddim")
    >>> out = verify(res, GaussianDenoiser(spec), x, shape=(1, 4, 4), num_samples=64)
    >>> [row["schedule"] for row in out.verification.rows][0] == res.schedule.name
    True
    """
    from .calibrate import FAILURE_NOTE
    from .evaluate import METRICS, Reference, evaluate_schedules, spectral_scorer
    from .spectrum import Spectrum

    t_start = time.perf_counter()
    num_samples = check_int("num_samples", num_samples, 2)
    n_boot = check_int("n_boot", n_boot, 2)
    seed = check_int("seed", seed, 0)
    batch_size = check_int("batch_size", batch_size)
    finalists = check_int("finalists", finalists, 2)
    if final_samples is None:
        final_samples = 4 * num_samples
    final_samples = check_int("final_samples", final_samples, 0)
    if 0 < final_samples <= num_samples:
        raise SpecschedError(
            f"final_samples={final_samples} is not more than num_samples={num_samples}: give "
            "more samples for the final round, or 0 for one round"
        )
    if metric not in (*METRICS, "fid"):
        known = ", ".join((*METRICS, "fid"))
        raise SpecschedError(f"unknown metric {metric!r}: use one of {known}")
    if inception is not None and metric != "fid":
        raise SpecschedError(f"inception is for metric='fid', not {metric!r}: drop it")
    shape = tuple(int(n) for n in shape)
    scorers = None
    if isinstance(reference, Spectrum) and metric == "fid":
        raise SpecschedError(
            "metric='fid' scores the samples against data: give reference samples, not a spectrum"
        )
    if isinstance(reference, Spectrum):
        spec = reference
        have = (spec.channels, *spec.signal_shape)
        if have != shape:
            raise SpecschedError(
                f"the spectrum is of samples of shape {have}, but the model makes samples of "
                f"shape {shape}: give the spectrum of the model's data"
            )
        metric = f"sampled {result.objective}"
        measured = spectral_scorer(spec, str(result.objective), n_boot=n_boot, seed=seed)
        ref, scorers, ref_n = None, {metric: measured}, 0
    else:
        ref = reference if isinstance(reference, Reference) else Reference(reference)
        if ref.sample_shape != shape:
            raise SpecschedError(
                f"the reference has samples of shape {ref.sample_shape}, but the model makes "
                f"samples of shape {shape}: give reference data of the model's size and channels"
            )
        ref_n = ref.n
    train = getattr(denoiser, "train", None)
    if train is not None and result.levels.train is not None and train != result.levels.train:
        raise SpecschedError(
            f"the fit is for a model trained on {result.levels.train.name}-"
            f"{result.levels.train.T} levels but the denoiser's were {train.name}-{train.T}: fit "
            "for the denoiser's model (e.g. --scheduler-config PIPELINE/scheduler)"
        )
    cands = verify_candidates(result, candidates, designs)
    # with FID, progress counts Inception's images too: the reference's, and each sample's
    per_sample = 2 if metric == "fid" else 1
    total = num_samples * len(cands) * per_sample + (ref_n if metric == "fid" else 0)
    done = 0

    def advance(k: int) -> None:
        nonlocal done
        done += k
        if progress is not None:
            progress(done, total)

    if metric == "fid":
        from .fid import InceptionFeatures, fid_scorer, find_backend

        net = inception if inception is not None else InceptionFeatures(*find_backend())
        scorer = fid_scorer(net, ref.samples, n_boot=n_boot, seed=seed, progress=advance)
        ref, scorers = None, {"fid": scorer}

    def measure(idx: list[int], n: int, round_seed: int) -> tuple[list[tuple], int, list[bool]]:
        """((value, bootstrap, seconds) per candidate in ``idx``, the lowest's position, ties)."""
        try:
            evaluated = evaluate_schedules(
                denoiser,
                [cands[i][1] for i in idx],
                ref,
                shape=shape,
                sampler=result.sampler,
                sampler_options=result.options,
                metrics=[metric],
                scorers=scorers,
                num_samples=n,
                batch_size=batch_size,
                seed=round_seed,
                n_boot=n_boot,
                progress=advance,
            )
        except SpecschedError as exc:
            raise SpecschedError(f"verifying {exc}") from None
        got = [
            (*row.scores[metric], row.sampling_seconds + row.scoring_seconds) for row in evaluated
        ]
        best = next(i for i, row in enumerate(evaluated) if row.best[metric])
        return got, best, [bool(row.tie[metric]) for row in evaluated]

    measured, best, ties = measure(list(range(len(cands))), num_samples, seed)
    # a final round where the first cannot tell the lowest from others: the lowest few of those
    # tied with it, sampled again with more samples from fresh noise
    final = _finalists([m[0] for m in measured], ties, finalists) if final_samples else []
    final_rows: dict[int, tuple[float, float, bool, float]] = {}
    chosen = best
    if final:
        total = done + final_samples * len(final) * per_sample
        got, fbest, fties = measure(final, final_samples, seed + 2)
        chosen = final[fbest]
        for j, i in enumerate(final):
            value, boot, secs = got[j]
            final_rows[i] = (float(value), float(np.std(boot, ddof=1)), fties[j], secs)
    fit_name = cands[0][1].name
    which = "fit" if cands[0][0] == "fit" else "fit's fallback"
    chosen_name = cands[chosen][1].name
    if 0 in final_rows:  # compared in the final round
        values = f"{metric} {final_rows[0][0]:.4g} vs {final_rows[chosen][0]:.4g}"
        within = final_rows[0][2]
    else:
        values = f"{metric} {measured[0][0]:.4g} vs {measured[chosen][0]:.4g}"
        within = ties[0]
    if len(cands) == 1:
        note = f"{metric} {measured[0][0]:.4g}; no heuristic to compare with"
    elif chosen == 0:
        note = f"measured best of {len(cands)} schedules by {metric} ({fit_name!r})"
    elif within:
        note = (
            f"replaced the {which} {fit_name!r} by {chosen_name!r}: it measured lower ({values}), "
            "within the paired noise (2 sd): more samples per schedule would resolve it"
        )
    else:
        note = (
            f"replaced the {which} {fit_name!r} by {chosen_name!r}: it measured better beyond "
            f"the paired noise ({values})"
        )
    rounds = f"{num_samples} samples per schedule"
    if final:
        rounds += f", then the {len(final)} lowest within the noise on {final_samples} each"
    note = f"verified on {rounds}: {note}"
    rows = []
    for i, ((role, sched, resp), (value, boot, secs)) in enumerate(
        zip(cands, measured, strict=True)
    ):
        fv, fsd, ftie, fsecs = final_rows.get(i, (None, None, None, 0.0))
        rows.append(
            {
                "schedule": sched.name,
                "role": role,
                "objective": resp.value(result.objective),  # type: ignore[arg-type]
                "value": float(value),
                "sd": float(np.std(boot, ddof=1)),
                "best": i == best,
                "tie_with_best": bool(ties[i]),
                "finalist": i in final_rows,
                "final_value": fv,
                "final_sd": fsd,
                "final_tie_with_best": ftie,
                "chosen": i == chosen,
                "timesteps": None if sched.timesteps is None else [int(t) for t in sched.timesteps],
                "log_snr": [float(v) if np.isfinite(v) else None for v in sched.log_snr],
                "seconds": secs + fsecs,
            }
        )
    ver = Verification(
        metric=metric,
        rows=rows,
        chosen=cands[chosen][1].name,
        kept=chosen == 0,
        note=note,
        num_samples=num_samples,
        final_samples=final_samples if final else 0,
        seed=seed,
        n_boot=n_boot,
        reference_samples=ref_n,
        seconds=time.perf_counter() - t_start,
    )
    _, sched, resp = cands[chosen]
    return dataclasses.replace(
        result,
        schedule=sched,
        value=resp.value(result.objective),  # type: ignore[arg-type]
        response=resp,
        # the schedule is now measured on the network: what the failure note asked for is done
        notes=[*(n for n in result.notes if not n.startswith(FAILURE_NOTE)), note],
        verification=ver,
    )
