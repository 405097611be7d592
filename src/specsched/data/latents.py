"""Latent spectra: images encoded by a diffusers ``AutoencoderKL``, as a latent diffusion model
sees them.

A latent diffusion model (Stable Diffusion, SDXL, SD3, Flux, ...) is trained on
``z = (E(x) - shift_factor) * scaling_factor`` where ``E`` is its VAE's encoder, not on pixels, so
its schedule should be designed from the spectrum of ``z``. :class:`LatentSource` wraps any image
source (a folder, a Hugging Face or torch dataset, an array of images in [-1, 1]) and encodes
each batch on the fly.

The latent of an image is the **mean of the encoder's posterior** (``latent_dist.mean``), which is
deterministic; training pipelines usually draw ``latent_dist.sample()``, which adds the
posterior's small, nearly white noise ``std^2`` to every mode's variance. ``scaling_factor`` and
``shift_factor`` default to the VAE's config (SD 1.x: 0.18215; SDXL: 0.13025; SD3: 1.5305 and
0.0609). The VAE runs in float32 (its own precision) on ``device``; the spectrum is accumulated in
float64.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import SpecschedError
from .sources import Batch, Source, unreadable_reason

__all__ = ["LatentSource", "load_vae"]


def _vae_folder(path: str | Path) -> tuple[str, str | None]:
    """The folder and subfolder of a VAE: ``path`` itself, or ``path/vae`` of a pipeline."""
    p = Path(path)
    if not (p / "config.json").is_file() and (p / "vae" / "config.json").is_file():
        return str(p), "vae"
    return str(p), None


def check_vae_path(path: str | Path) -> None:
    """Fail at once unless ``path`` is a local folder (a VAE is never looked up on the Hub)."""
    p = Path(path)
    if not p.exists():
        raise SpecschedError(
            f"VAE folder {p} does not exist: give the folder written by "
            "AutoencoderKL.save_pretrained (or a pipeline folder with vae/); Hub ids are not "
            "downloaded, save the VAE locally first"
        )
    if not p.is_dir():
        raise SpecschedError(
            f"--vae {p} is a file: give the folder written by AutoencoderKL.save_pretrained"
        )


@functools.lru_cache(maxsize=2)
def load_vae(path: str, device: str = "cpu"):
    """Load (once per process) the ``AutoencoderKL`` saved at ``path`` (or ``path/vae``)."""
    try:
        from diffusers import AutoencoderKL
    except ImportError:  # pragma: no cover - diffusers is an optional extra
        raise SpecschedError(
            "latent spectra need diffusers: pip install 'specsched[diffusers]'"
        ) from None
    check_vae_path(path)
    folder, subfolder = _vae_folder(path)
    try:
        vae = AutoencoderKL.from_pretrained(folder, subfolder=subfolder, local_files_only=True)
    except Exception as exc:
        raise SpecschedError(
            f"cannot load a diffusers AutoencoderKL from {path} ({unreadable_reason(exc)}): give the folder "
            "written by AutoencoderKL.save_pretrained, or a pipeline folder with a vae/ subfolder"
        ) from None
    return vae.to(device).eval()


@dataclass(frozen=True, eq=False)
class LatentSource(Source):
    """The VAE latents of the images of ``images``. Use :meth:`open`.

    Attributes
    ----------
    images : Source
        Images in [-1, 1] with the VAE's input channels.
    vae : str
        Folder of the saved ``AutoencoderKL`` (each worker loads it once).
    scaling_factor, shift_factor : float
        ``z = (latent_dist.mean - shift_factor) * scaling_factor``.
    device : str
        Where the VAE runs (``"cpu"``, ``"cuda"``).
    """

    images: Source
    vae: str
    scaling_factor: float
    shift_factor: float = 0.0
    device: str = "cpu"

    @classmethod
    def open(
        cls,
        images: Source,
        vae: str | Path,
        *,
        scaling_factor: float | None = None,
        shift_factor: float | None = None,
        device: str = "cpu",
    ) -> LatentSource:
        """Latents of ``images`` under the VAE saved at ``vae``; factors default to its config."""
        model = load_vae(str(vae), device)
        cfg = model.config
        if scaling_factor is None:
            scaling_factor = float(getattr(cfg, "scaling_factor", None) or 1.0)
        if shift_factor is None:
            shift_factor = float(getattr(cfg, "shift_factor", None) or 0.0)
        for name, v in (("scaling_factor", scaling_factor), ("shift_factor", shift_factor)):
            if not np.isfinite(v) or (name == "scaling_factor" and v == 0):
                raise SpecschedError(f"{name}={v} is not usable: pass a finite, non-zero factor")
        return cls(images, str(vae), float(scaling_factor), float(shift_factor), device)

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"{self.images.name} (latents of {self.vae})"

    @property
    def n_items(self) -> int | None:
        return self.images.n_items

    def encode(self, x: np.ndarray) -> np.ndarray:
        """``(n, C, H, W)`` images in [-1, 1] to float64 latents ``(n, c, h, w)``."""
        import torch

        model = load_vae(self.vae, self.device)
        if x.shape[1] != model.config.in_channels:
            raise SpecschedError(
                f"the VAE takes {model.config.in_channels}-channel images, the data have "
                f"{x.shape[1]}: pass --channels {model.config.in_channels}"
            )
        dtype = next(model.parameters()).dtype
        with torch.no_grad():
            t = torch.from_numpy(np.ascontiguousarray(x)).to(self.device, dtype)
            z = model.encode(t).latent_dist.mean
        z = z.double().cpu().numpy()
        return (z - self.shift_factor) * self.scaling_factor

    def read(self, start, stop, *, batch_size, sample_shape=None) -> Iterator[Batch]:
        for batch in self.images.read(start, stop, batch_size=batch_size):
            if batch.x is None:
                yield batch
                continue
            z = self.encode(batch.x)
            if sample_shape is not None and z.shape[1:] != tuple(sample_shape):
                raise SpecschedError(
                    f"latents of shape {z.shape[1:]}, earlier ones {tuple(sample_shape)}: pass "
                    "--size N so every image has one size"
                )
            sample_shape = z.shape[1:]
            yield replace(
                batch,
                x=z,
                scaling=f"{batch.scaling}; VAE latent_dist.mean, (z - {self.shift_factor:g}) "
                f"* {self.scaling_factor:g}",
            )
