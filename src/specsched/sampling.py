"""Real sampling: a trained network as a denoiser, and batched, seeded generation with any schedule.

:class:`ModelDenoiser` turns a network that predicts the noise (``epsilon``), the velocity
(``v_prediction``) or the clean sample (``sample``) at the timesteps of a discrete-time VP model
into the denoiser protocol of :mod:`specsched.samplers`, ``denoise(x, alpha, s) -> x0_hat``.
:func:`generate` runs one of the samplers of :mod:`specsched.samplers` (the same functions that
give the closed-form spectral response) with such a denoiser, in batches, from seeded starting
noise: two schedules run with the same seed start from the same ``x_T``, so their samples are
paired.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import SpecschedError
from .levels import TrainSchedule, start_std
from .samplers import Denoiser, get_sampler
from .schedules import Schedule

__all__ = ["ModelDenoiser", "generate", "start_noise"]

Tensor = torch.Tensor
PREDICTIONS = ("epsilon", "v_prediction", "sample")


class ModelDenoiser:
    """A network trained on a discrete-time VP process, as ``denoise(x, alpha, s) -> x0_hat``.

    The level ``(alpha, s)`` is mapped to the model's timestep through the log-SNR of its training
    schedule: integer timesteps of the schedule map back exactly, and levels between two training
    timesteps get the real-valued timestep of the continuous relaxation
    (:meth:`~specsched.levels.TrainSchedule.timestep_of_log_snr`). The network runs in its own
    dtype and device; the sampler state stays float64 on the CPU.

    Parameters
    ----------
    model : callable
        ``model(x_t, t) -> output`` with ``x_t`` of shape ``(B, C, H, W)`` and ``t`` of shape
        ``(B,)``, e.g. ``lambda x, t: unet(x, t).sample``.
    train : TrainSchedule
        The levels the model was trained on.
    prediction : {"epsilon", "v_prediction", "sample"}, default "epsilon"
        What the model predicts (diffusers' ``prediction_type``).
    clip : float, optional
        Clip ``x0_hat`` to ``[-clip, clip]`` (diffusers' ``clip_sample_range`` when
        ``clip_sample`` is on); None does not clip.
    device : str or torch.device, default "cpu"
        Where the model runs.
    dtype : torch.dtype, default torch.float32
        The model's input dtype.

    Examples
    --------
    >>> import torch
    >>> from specsched.levels import TrainSchedule
    >>> den = ModelDenoiser(lambda x, t: torch.zeros_like(x), TrainSchedule("linear"))
    >>> den(torch.ones(1, 1, 2, 2, dtype=torch.float64), torch.tensor(0.5), torch.tensor(0.75**0.5))
    tensor([[[[2., 2.],
              [2., 2.]]]], dtype=torch.float64)
    """

    def __init__(
        self,
        model: Callable[[Tensor, Tensor], Tensor],
        train: TrainSchedule,
        *,
        prediction: str = "epsilon",
        clip: float | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        if prediction not in PREDICTIONS:
            raise SpecschedError(
                f"prediction {prediction!r} is not supported: use one of {', '.join(PREDICTIONS)}"
            )
        if clip is not None and not clip > 0:
            raise SpecschedError(f"clip={clip} must be positive (or None for no clipping)")
        self.model = model
        self.train = train
        self.prediction = prediction
        self.clip = None if clip is None else float(clip)
        self.device = torch.device(device)
        self.dtype = dtype
        self.calls = 0  # network evaluations (batches), for reports

    def timestep(self, alpha: float, s: float) -> float:
        """The (real-valued) training timestep of the level ``(alpha, s)``."""
        if not (alpha > 0 and s > 0):
            raise SpecschedError(
                f"level (alpha={alpha:g}, s={s:g}) is not a noisy VP level the model was trained on"
            )
        lam = 2.0 * (math.log(alpha) - math.log(s))
        table = self.train.log_snr
        if lam > table[0] + 1e-6 or lam < table[-1] - 1e-6:
            raise SpecschedError(
                f"level with log-SNR {lam:.3f} lies outside the model's training range "
                f"[{table[-1]:.3f}, {table[0]:.3f}]: use a schedule for this model's "
                "training schedule"
            )
        return float(self.train.timestep_of_log_snr(np.array([lam]))[0])

    def __call__(self, x: Tensor, alpha: Tensor | float, s: Tensor | float) -> Tensor:
        a, sc = float(alpha), float(s)
        t = self.timestep(a, sc)
        t_int = round(t)
        tt = float(t_int) if abs(t - t_int) < 1e-6 else t
        steps = torch.full((x.shape[0],), tt, device=self.device)
        if tt == t_int:
            steps = steps.long()
        with torch.inference_mode():
            out = self.model(x.to(self.device, self.dtype), steps)
        self.calls += 1
        out = out.to("cpu", torch.float64)
        if out.shape != x.shape:
            raise SpecschedError(
                f"the model returned shape {tuple(out.shape)} for input {tuple(x.shape)}: "
                "give a model whose output has its input's shape"
            )
        if self.prediction == "epsilon":
            x0 = (x - sc * out) / a
        elif self.prediction == "v_prediction":
            x0 = a * x - sc * out
        else:
            x0 = out
        if self.clip is not None:
            x0 = x0.clamp(-self.clip, self.clip)
        return x0

    @classmethod
    def from_pipeline(
        cls, path: str | Path, *, device: str | torch.device = "cpu"
    ) -> tuple[ModelDenoiser, tuple[int, ...]]:
        """Load the UNet and scheduler config of a saved diffusers pipeline folder.

        Parameters
        ----------
        path : str or Path
            A folder written by ``pipeline.save_pretrained`` with ``model_index.json``, ``unet/``
            and ``scheduler/`` (e.g. a ``DDPMPipeline`` or ``DDIMPipeline``).
        device : str or torch.device, default "cpu"
            Where the UNet runs.

        Returns
        -------
        denoiser : ModelDenoiser
        sample_shape : tuple of int
            ``(C, H, W)`` of one sample, from the UNet's config.

        Raises
        ------
        SpecschedError
            If the folder is not such a pipeline, or its scheduler is not a discrete-time VP one.
        """
        from .integrations.diffusers import model_from_config

        p = Path(path)
        if not (p / "model_index.json").is_file():
            raise SpecschedError(
                f"{path} is not a diffusers pipeline folder (no model_index.json): give the "
                "folder written by pipeline.save_pretrained(...)"
            )
        if not (p / "unet" / "config.json").is_file():
            raise SpecschedError(
                f"the pipeline in {path} has no unet/ (transformer and latent pipelines are not "
                "supported): give an unconditional UNet pipeline such as DDPMPipeline"
            )
        cfg_path = p / "scheduler" / "scheduler_config.json"
        try:
            cfg = json.loads(cfg_path.read_text())
        except FileNotFoundError:
            raise SpecschedError(
                f"the pipeline in {path} has no scheduler/scheduler_config.json: give a folder "
                "written by pipeline.save_pretrained(...)"
            ) from None
        except (OSError, json.JSONDecodeError) as exc:
            raise SpecschedError(f"cannot read scheduler config {cfg_path} ({exc})") from None
        levels, _, _ = model_from_config(cfg)
        if levels.process != "vp" or not levels.is_discrete:
            raise SpecschedError(
                f"the pipeline in {path} is a {levels.process} model: evaluate supports "
                "discrete-time VP (DDPM-trained) pipelines"
            )
        try:
            from diffusers import UNet2DModel
        except ImportError:
            raise SpecschedError(
                "loading a pipeline needs diffusers: pip install 'specsched[diffusers]'"
            ) from None
        try:
            unet = UNet2DModel.from_pretrained(p / "unet").to(device).eval()
        except Exception as exc:
            raise SpecschedError(
                f"cannot load the UNet of {path} as a UNet2DModel ({type(exc).__name__}): give an "
                "unconditional UNet2DModel pipeline"
            ) from None
        c = unet.config
        shape = (int(c.in_channels), int(c.sample_size), int(c.sample_size))
        if c.out_channels != c.in_channels:
            raise SpecschedError(
                f"the UNet of {path} maps {c.in_channels} to {c.out_channels} channels: "
                "give a model that predicts noise, velocity or the sample"
            )
        clip = float(cfg.get("clip_sample_range", 1.0)) if cfg.get("clip_sample") else None
        den = cls(
            lambda x, t: unet(x, t).sample,
            levels.train,
            prediction=cfg.get("prediction_type", "epsilon"),
            clip=clip,
            device=device,
            dtype=unet.dtype,
        )
        return den, shape


def start_noise(
    schedule: Schedule, num_samples: int, shape: tuple[int, ...], *, seed: int = 0
) -> Tensor:
    """The seeded starting noise ``x_T`` of :func:`generate`, float64, ``(num_samples, *shape)``.

    Drawn in one piece from a CPU generator seeded with ``seed``, so it does not depend on the
    batch size, and scaled by the process's starting standard deviation
    (:func:`~specsched.levels.start_std`).
    """
    g = torch.Generator().manual_seed(int(seed))
    z = torch.randn((int(num_samples), *shape), generator=g, dtype=torch.float64)
    return z * float(start_std(schedule.process, float(schedule.s[0])))


def generate(
    denoise: Denoiser,
    schedule: Schedule,
    sampler: str = "ddim",
    *,
    num_samples: int,
    shape: tuple[int, ...],
    batch_size: int = 256,
    seed: int = 0,
    x_start: Tensor | None = None,
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> np.ndarray:
    """Sample with ``schedule`` and ``sampler`` from a denoiser, in batches.

    Parameters
    ----------
    denoise : callable
        ``denoise(x, alpha, s) -> x0_hat``, e.g. a :class:`ModelDenoiser`, a
        :class:`~specsched.denoisers.GaussianDenoiser` or a
        :class:`~specsched.mixture.MixtureDenoiser`.
    schedule : Schedule
        The levels, noisiest first.
    sampler : str, default "ddim"
        A name from :data:`specsched.samplers.SAMPLERS`.
    num_samples : int
        How many samples.
    shape : tuple of int
        The shape of one sample, e.g. ``(1, 16, 16)``.
    batch_size : int, default 256
        Samples per denoiser call.
    seed : int, default 0
        Seeds the starting noise (:func:`start_noise`; independent of ``batch_size``) and, for
        stochastic samplers, the noise injected along the way (a generator seeded with
        ``seed + 1``, drawn batch after batch: reproducible for a fixed ``batch_size``).
    x_start : Tensor, optional
        Starting states ``(num_samples, *shape)`` instead of the seeded ones.
    progress : callable, optional
        ``progress(k)`` after each batch of ``k`` samples.
    **options
        Sampler options (e.g. ``eta`` for ddim).

    Returns
    -------
    ndarray, shape (num_samples, *shape)
        float64 samples.

    Examples
    --------
    >>> import numpy as np
    >>> from specsched import Spectrum, Schedule
    >>> from specsched.denoisers import GaussianDenoiser
    >>> spec = Spectrum.from_array(np.random.default_rng(0).standard_normal((64, 1, 4, 4)))
    >>> sched = Schedule.from_timesteps([999, 500, 0])
    >>> generate(GaussianDenoiser(spec), sched, num_samples=8, shape=(1, 4, 4)).shape
    (8, 1, 4, 4)
    """
    spec = get_sampler(sampler)
    spec.check_process(schedule.process)
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)):
        raise SpecschedError(f"num_samples={num_samples!r} is not an integer: give one >= 1")
    if num_samples < 1:
        raise SpecschedError(f"num_samples={num_samples} must be at least 1")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise SpecschedError(f"batch_size={batch_size!r} is not an integer: give one >= 1")
    if batch_size < 1:
        raise SpecschedError(f"batch_size={batch_size} must be at least 1")
    shape = tuple(int(n) for n in shape)
    if x_start is None:
        x_start = start_noise(schedule, num_samples, shape, seed=seed)
    elif tuple(x_start.shape) != (num_samples, *shape):
        raise SpecschedError(
            f"x_start has shape {tuple(x_start.shape)}, expected {(num_samples, *shape)}"
        )
    alpha = torch.tensor(np.array(schedule.alpha), dtype=torch.float64)
    s = torch.tensor(np.array(schedule.s), dtype=torch.float64)
    g = torch.Generator().manual_seed(int(seed) + 1)

    def noise(like: Tensor) -> Tensor:
        return torch.randn(like.shape, generator=g, dtype=torch.float64)

    out = np.empty((num_samples, *shape), dtype=np.float64)
    for lo in range(0, num_samples, batch_size):
        hi = min(lo + batch_size, num_samples)
        x = spec(
            denoise,
            x_start[lo:hi].to(torch.float64),
            alpha,
            s,
            noise=noise,
            process=schedule.process,
            **options,
        )
        out[lo:hi] = x.numpy()
        if progress is not None:
            progress(hi - lo)
    if not np.all(np.isfinite(out)):
        raise SpecschedError(
            "sampling produced NaN or Inf values: check the model's prediction type and the "
            "schedule's levels"
        )
    return out
