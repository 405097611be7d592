"""A trained network as a denoiser: the adapter of models trained on discrete-time VP processes.

:class:`ModelDenoiser` turns a network that predicts the noise (``epsilon``), the velocity
(``v_prediction``) or the clean sample (``sample``) at the timesteps of a discrete-time VP model
into the denoiser protocol of :mod:`specsched.samplers`, ``denoise(x, alpha, s) -> x0_hat``; the
core never learns the model's conventions. Like k-diffusion's ``external.py``, an adapter for
another model API subclasses it and overrides only :meth:`ModelDenoiser.call_model` (diffusers'
``UNet2DModel``: :class:`specsched.integrations.diffusers.UNetDenoiser`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, get_args

import numpy as np
import torch

from ..errors import SpecschedError
from ..levels import TrainSchedule

__all__ = ["PREDICTIONS", "ModelDenoiser", "Prediction", "x0_from_prediction"]

Tensor = torch.Tensor
Prediction = Literal["epsilon", "v_prediction", "sample"]
PREDICTIONS: tuple[str, ...] = get_args(Prediction)


def x0_from_prediction(prediction: str, x: Any, out: Any, alpha: Any, s: Any) -> Any:
    """The clean-sample estimate ``x0_hat`` from a network's output at the level ``(alpha, s)``.

    With ``x = alpha x0 + s eps`` (VP, ``alpha**2 + s**2 = 1``): ``epsilon`` gives
    ``(x - s eps_hat) / alpha``, ``v_prediction`` (``v = alpha eps - s x0``) gives
    ``alpha x - s v_hat``, ``sample`` is ``x0_hat`` itself. Works on tensors, arrays and floats.

    Parameters
    ----------
    prediction : {"epsilon", "v_prediction", "sample"}
        What the network predicts (diffusers' ``prediction_type``).
    x, out : Tensor or ndarray
        The network's input and output.
    alpha, s : float or Tensor
        The level.

    Examples
    --------
    >>> x0_from_prediction("epsilon", 2.0, 1.0, 0.6, 0.8)  # (2 - 0.8) / 0.6
    2.0000000000000004
    """
    if prediction == "epsilon":
        return (x - s * out) / alpha
    if prediction == "v_prediction":
        return alpha * x - s * out
    if prediction == "sample":
        return out
    raise SpecschedError(
        f"prediction {prediction!r} is not supported: use one of {', '.join(PREDICTIONS)}"
    )


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

    def call_model(self, x: Tensor, t: Tensor) -> Tensor:
        """The network's output at ``(x, t)``; adapters of other model APIs override this alone."""
        return self.model(x, t)

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
            out = self.call_model(x.to(self.device, self.dtype), steps)
        self.calls += 1
        out = out.to("cpu", torch.float64)
        if out.shape != x.shape:
            raise SpecschedError(
                f"the model returned shape {tuple(out.shape)} for input {tuple(x.shape)}: "
                "give a model whose output has its input's shape"
            )
        x0 = x0_from_prediction(self.prediction, x, out, a, sc)
        if self.clip is not None:
            x0 = x0.clamp(-self.clip, self.clip)
        return x0
