"""diffusers: run a specsched schedule in a pipeline, and read a model's settings from its config.

- :func:`diffusers_kwargs` gives the exact call arguments (``timesteps=`` or ``sigmas=``) for a
  pipeline's scheduler: ``pipe(..., **diffusers_kwargs(sched, pipe.scheduler))``.
- :class:`SpecschedDDIMScheduler` (``make_ddim_scheduler``) is a drop-in ``DDIMScheduler`` that takes
  custom timesteps (diffusers' own cannot) and steps to the next listed timestep with specsched's
  DDIM update.
- :class:`UNetDenoiser` (``UNetDenoiser.from_pipeline(folder)``) runs a saved pipeline's UNet as
  specsched's denoiser, for :func:`specsched.generate` and :func:`specsched.calibrate`.
- :func:`model_from_config` reads the training schedule, prediction type and sampler from a
  diffusers scheduler config, so ``fit --for diffusers:NAME`` / ``--scheduler-config`` need no
  translation by hand.

diffusers is imported lazily: the rest of specsched works without it.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import SpecschedError
from ..levels import LevelRange, TrainSchedule
from ..schedules import Schedule
from .networks import ModelDenoiser, x0_from_prediction

__all__ = [
    "UNetDenoiser",
    "diffusers_kwargs",
    "make_ddim_scheduler",
    "model_from_config",
    "pinned_scheduler",
    "snippet",
]

# scheduler class -> (the specsched sampler it runs, what its set_timesteps takes)
SCHEDULERS: dict[str, tuple[str, str]] = {
    "DDIMScheduler": ("ddim", "none (use make_ddim_scheduler)"),
    "DDPMScheduler": ("ddpm", "timesteps"),
    "EulerDiscreteScheduler": ("euler", "timesteps or sigmas"),
    "EulerAncestralDiscreteScheduler": ("euler_ancestral", "none"),
    "HeunDiscreteScheduler": ("heun", "timesteps"),
    "DPMSolverMultistepScheduler": ("dpmpp_2m", "timesteps"),
    "UniPCMultistepScheduler": ("unipc", "sigmas (flow models only)"),
    "FlowMatchEulerDiscreteScheduler": ("flow_euler", "sigmas"),
    "FlowMatchHeunDiscreteScheduler": ("heun", "none"),
}


def _accepts(scheduler: Any) -> set[str]:
    params = inspect.signature(scheduler.set_timesteps).parameters
    return {p for p in ("timesteps", "sigmas") if p in params}


def diffusers_kwargs(schedule: Schedule, scheduler: Any) -> dict[str, Any]:
    """Keyword arguments that make a diffusers pipeline sample exactly at ``schedule``'s levels.

    Parameters
    ----------
    schedule : Schedule
    scheduler : diffusers scheduler or pipeline
        The scheduler that will run (a pipeline's ``.scheduler`` is taken).

    Returns
    -------
    dict
        ``{"timesteps": [...]}`` for discrete-time models whose scheduler takes custom timesteps,
        ``{"sigmas": [...]}`` for flow-matching schedulers (pre-compensated for the scheduler's
        static ``shift``, which diffusers applies to the sigmas it is given).

    Examples
    --------
    >>> pipe(prompt, **ss.diffusers_kwargs(sched, pipe.scheduler))  # doctest: +SKIP
    """
    scheduler = getattr(scheduler, "scheduler", scheduler)
    name = type(scheduler).__name__
    takes = _accepts(scheduler)
    if schedule.timesteps is not None:
        if "timesteps" not in takes:
            what = SCHEDULERS.get(name, ("", "no custom timesteps"))[1]
            raise SpecschedError(
                f"{name} cannot take custom timesteps (it takes: {what}): use "
                "specsched.integrations.diffusers.make_ddim_scheduler for DDIM, EulerDiscreteScheduler "
                "(= DDIM), DDPMScheduler, HeunDiscreteScheduler or DPMSolverMultistepScheduler"
            )
        T = scheduler.config.num_train_timesteps
        if schedule.train is not None and schedule.train.T != T:
            raise SpecschedError(
                f"the schedule is for a {schedule.train.T}-step model but the scheduler has {T}"
            )
        return {"timesteps": [int(t) for t in schedule.timesteps]}
    if schedule.process == "flow":
        if "sigmas" not in takes:
            raise SpecschedError(
                f"{name} cannot take custom sigmas: use FlowMatchEulerDiscreteScheduler"
            )
        cfg = scheduler.config
        if getattr(cfg, "use_dynamic_shifting", False):
            raise SpecschedError(
                f"{name} has use_dynamic_shifting=True, which re-shifts any sigmas by the image size: "
                f"set pipe.scheduler = {name}.from_config(pipe.scheduler.config, "
                "use_dynamic_shifting=False, shift=1.0)"
            )
        shift = float(getattr(cfg, "shift", 1.0))
        t = schedule.s[:-1]
        u = t / (shift - (shift - 1.0) * t)  # inverse of t = shift u / (1 + (shift - 1) u)
        return {"sigmas": [float(v) for v in u]}
    raise SpecschedError(
        f"{name}: continuous {schedule.process} schedules have no diffusers timesteps; fit for a "
        "discrete-time model (--train-schedule) or use k-diffusion (specsched.integrations.kdiffusion)"
    )


def snippet(schedule: Schedule, sampler: str = "ddim") -> str:
    """Two lines of Python that run ``schedule`` in a diffusers pipeline ``pipe``.

    Examples
    --------
    >>> from specsched import Schedule
    >>> print(snippet(Schedule.from_timesteps([999, 500, 100]), "ddpm"))
    pipe.scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    images = pipe(..., timesteps=[999, 500, 100]).images
    """
    by_sampler = {
        "ddim": "EulerDiscreteScheduler",  # Euler on the same timesteps is DDIM(0)
        "euler": "EulerDiscreteScheduler",
        "ddpm": "DDPMScheduler",
        "heun": "HeunDiscreteScheduler",
        "dpmpp_2m": "DPMSolverMultistepScheduler",
        "flow_euler": "FlowMatchEulerDiscreteScheduler",
    }
    name = by_sampler.get(sampler)
    if name is None:
        raise SpecschedError(
            f"no diffusers one-liner for sampler {sampler!r}: the schedule's timesteps/sigmas are "
            f"in the JSON; one-liners exist for {', '.join(by_sampler)}"
        )
    if schedule.timesteps is not None:
        arg = f"timesteps={[int(t) for t in schedule.timesteps]}"
        extra = ""
    elif schedule.process == "flow":
        name = "FlowMatchEulerDiscreteScheduler"
        arg = f"sigmas={[round(float(v), 6) for v in schedule.s[:-1]]}"
        extra = ", shift=1.0, use_dynamic_shifting=False"
    else:
        raise SpecschedError(
            "continuous-time VP/VE schedules have no diffusers timesteps: use the sigmas with "
            "k-diffusion (specsched.integrations.kdiffusion.sigmas)"
        )
    return (
        f"pipe.scheduler = {name}.from_config(pipe.scheduler.config{extra})\n"
        f"images = pipe(..., {arg}).images"
    )


# ------------------------------------------------------------------------------ config -> model
def model_from_config(
    config: Any, scheduler: str | None = None
) -> tuple[LevelRange, str, dict[str, Any]]:
    """The model's levels, the sampler and its options, from a diffusers scheduler config.

    Parameters
    ----------
    config : dict, path or scheduler
        A ``scheduler_config.json`` (or a pipeline folder containing ``scheduler/``), its dict, or a
        diffusers scheduler instance.
    scheduler : str, optional
        A diffusers scheduler class name; defaults to the config's ``_class_name``.
    """
    if hasattr(config, "set_timesteps"):
        scheduler = scheduler or type(config).__name__
        config = dict(config.config)  # type: ignore[union-attr]
    if not isinstance(config, dict):
        p = Path(config)
        if p.is_dir():
            p = (
                p / "scheduler" / "scheduler_config.json"
                if (p / "scheduler").is_dir()
                else p / "scheduler_config.json"
            )
        try:
            config = json.loads(p.read_text())
        except FileNotFoundError:
            raise SpecschedError(
                f"scheduler config {p} does not exist: give scheduler_config.json"
            ) from None
        except (OSError, json.JSONDecodeError) as exc:
            raise SpecschedError(f"cannot read scheduler config {p} ({exc})") from None
        if not isinstance(config, dict):
            raise SpecschedError(f"{p} is not a diffusers scheduler config")
    name = scheduler or config.get("_class_name")
    if name not in SCHEDULERS:
        raise SpecschedError(
            f"unknown or missing scheduler class {name!r}: use one of {', '.join(SCHEDULERS)}"
        )
    sampler, _ = SCHEDULERS[name]
    options: dict[str, Any] = {}
    pred = config.get("prediction_type", "epsilon")
    if pred not in ("epsilon", "v_prediction", "sample", "flow_prediction", None):
        raise SpecschedError(f"unsupported prediction_type {pred!r} in the scheduler config")
    if name.startswith("FlowMatch"):
        return LevelRange.continuous("flow"), sampler, options
    if name == "DPMSolverMultistepScheduler":
        algo = config.get("algorithm_type", "dpmsolver++")
        if algo == "sde-dpmsolver++":
            sampler = "dpmpp_2m_sde"
        elif algo != "dpmsolver++":
            raise SpecschedError(
                f"DPMSolverMultistepScheduler algorithm_type {algo!r} is not supported"
            )
        if config.get("solver_order", 2) != 2:
            raise SpecschedError("only solver_order=2 (DPM-Solver++ 2M) is supported")
    if name == "UniPCMultistepScheduler":
        options["order"] = int(config.get("solver_order", 2))
    missing = [k for k in ("num_train_timesteps", "beta_schedule") if k not in config]
    if missing:
        raise SpecschedError(
            f"the scheduler config lacks {', '.join(missing)}: a discrete-time model needs them"
        )
    beta = {"squaredcos_cap_v2": "cosine"}.get(config["beta_schedule"], config["beta_schedule"])
    kw = {}
    if beta in ("linear", "scaled_linear"):
        kw = {"beta_start": config.get("beta_start"), "beta_end": config.get("beta_end")}
    train = TrainSchedule(beta, int(config["num_train_timesteps"]), **kw)
    return LevelRange.discrete(train), sampler, options


# ------------------------------------------------------------------------------ drop-in DDIM
def make_ddim_scheduler(config: Any = None, **kwargs: Any) -> Any:
    """A ``DDIMScheduler`` that accepts ``set_timesteps(timesteps=[...])``.

    diffusers' DDIM always steps from ``t`` to ``t - T // N``, so it cannot run a non-uniform
    schedule. This subclass steps from each listed timestep to the next (the last one to the clean
    level, ``set_alpha_to_one``), using specsched's DDIM update (:func:`specsched.samplers.ddim`)
    on the model's prediction converted to ``x0_hat``.

    Examples
    --------
    >>> pipe.scheduler = make_ddim_scheduler(pipe.scheduler.config)  # doctest: +SKIP
    >>> pipe(..., **ss.diffusers_kwargs(sched, pipe.scheduler))  # doctest: +SKIP
    """
    cls = _ddim_class()
    return cls.from_config(config, **kwargs) if config is not None else cls(**kwargs)


_DDIM_CLASS: Any = None


def _ddim_class() -> Any:
    global _DDIM_CLASS
    if _DDIM_CLASS is not None:
        return _DDIM_CLASS
    try:
        from diffusers import DDIMScheduler
        from diffusers.schedulers.scheduling_ddim import DDIMSchedulerOutput
    except ImportError:
        raise SpecschedError(
            "diffusers is not installed: pip install 'specsched[diffusers]'"
        ) from None
    from ..samplers import ddim

    class SpecschedDDIMScheduler(DDIMScheduler):
        """DDIMScheduler with custom timesteps (see :func:`make_ddim_scheduler`)."""

        def set_timesteps(self, num_inference_steps=None, device=None, timesteps=None):  # type: ignore[override]
            if timesteps is None:
                return super().set_timesteps(num_inference_steps, device)
            ts = np.asarray(timesteps, dtype=np.int64)
            T = self.config.num_train_timesteps
            if (
                ts.ndim != 1
                or ts.size == 0
                or np.any(np.diff(ts) >= 0)
                or ts.min() < 0
                or ts.max() >= T
            ):
                raise SpecschedError(
                    f"timesteps must be strictly decreasing integers in 0..{T - 1}"
                )
            self.num_inference_steps = int(ts.size)
            self.timesteps = torch.from_numpy(ts).to(device)
            self._custom = ts.tolist()

        def step(
            self, model_output, timestep, sample, eta=0.0, generator=None, return_dict=True, **kw
        ):  # type: ignore[override]
            custom = getattr(self, "_custom", None)
            if custom is None:
                return super().step(
                    model_output,
                    timestep,
                    sample,
                    eta=eta,
                    generator=generator,
                    return_dict=return_dict,
                    **kw,
                )
            t = int(timestep)
            i = custom.index(t)
            ac = self.alphas_cumprod.to(torch.float64)
            abar = ac[t]
            abar_next = (
                ac[custom[i + 1]]
                if i + 1 < len(custom)
                else self.final_alpha_cumprod.to(torch.float64)
            )
            a = torch.stack([abar, abar_next]).sqrt()
            s = (1 - torch.stack([abar, abar_next])).clamp_min(0).sqrt()
            pred = self.config.prediction_type
            x = sample.to(torch.float64)
            out = model_output.to(torch.float64)

            def denoise(xx, aa, ss_):
                return x0_from_prediction(pred, xx, out, aa, ss_)

            def noise(like):
                return torch.randn(
                    like.shape, generator=generator, dtype=like.dtype, device=like.device
                )

            prev = ddim(denoise, x, a, s, eta=float(eta), noise=noise if eta > 0 else None)
            prev = prev.to(sample.dtype)
            x0 = denoise(x, a[0], s[0]).to(sample.dtype)
            if not return_dict:
                return (prev, x0)
            return DDIMSchedulerOutput(prev_sample=prev, pred_original_sample=x0)

    _DDIM_CLASS = SpecschedDDIMScheduler
    return _DDIM_CLASS


# ------------------------------------------------------------------------------ pipelines
def pinned_scheduler(schedule: Schedule, scheduler: Any) -> Any:
    """A copy of ``scheduler`` that always runs ``schedule``, whatever step count it is asked for.

    For pipelines that call ``set_timesteps(num_inference_steps)`` themselves and do not forward
    ``timesteps=`` (``DDIMPipeline``, ``DDPMPipeline``): ``pipe.scheduler = pinned_scheduler(sched,
    pipe.scheduler)``. A ``DDIMScheduler`` becomes the drop-in of :func:`make_ddim_scheduler`.
    """
    scheduler = getattr(scheduler, "scheduler", scheduler)
    base = type(scheduler)
    if base.__name__ == "DDIMScheduler":
        base = _ddim_class()
    kwargs = diffusers_kwargs(schedule, base.from_config(scheduler.config))
    original = base.set_timesteps

    def set_timesteps(self, num_inference_steps=None, device=None, **_ignored):
        return original(self, device=device, **kwargs)

    pinned = type(f"Pinned{base.__name__}", (base,), {"set_timesteps": set_timesteps})
    return pinned.from_config(scheduler.config)


# ------------------------------------------------------------------------------ model adapter
class UNetDenoiser(ModelDenoiser):
    """A diffusers ``UNet2DModel`` as ``denoise(x, alpha, s) -> x0_hat``.

    :class:`~specsched.integrations.networks.ModelDenoiser` with the UNet's call
    (``unet(x, t).sample``); :meth:`from_pipeline` loads it with its scheduler's settings.

    Examples
    --------
    >>> den, shape = UNetDenoiser.from_pipeline("benchmarks/models/tiny16")  # doctest: +SKIP
    >>> x = ss.generate(den, sched, "ddim", num_samples=64, shape=shape)  # doctest: +SKIP
    """

    def call_model(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.model(x, t).sample

    @classmethod
    def from_pipeline(
        cls, path: str | Path, *, device: str | torch.device = "cpu"
    ) -> tuple[UNetDenoiser, tuple[int, ...]]:
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
        denoiser : UNetDenoiser
        sample_shape : tuple of int
            ``(C, H, W)`` of one sample, from the UNet's config.

        Raises
        ------
        SpecschedError
            If the folder is not such a pipeline, or its scheduler is not a discrete-time VP one.
        """
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
            unet,
            levels.train,
            prediction=cfg.get("prediction_type", "epsilon"),
            clip=clip,
            device=device,
            dtype=unet.dtype,
        )
        return den, shape
