"""Train a tiny epsilon-prediction UNet on 16x16 greyscale photo patches (CPU, wall-clock budget).

The model is the learned, non-Gaussian denoiser of specsched's real-denoiser benchmark: a small
diffusers ``UNet2DModel`` trained on ``builtin:photos`` patches (16x16, one channel, values in
[-1, 1]) under the linear-beta VP process of DDPM with 1000 timesteps
(``DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")``). It is *not* meant to be a
generative model of quality, only a realistic denoiser to run samplers and schedules against.

Training data are drawn with seed 1 (``--data-seed``); seed 0 is reserved for evaluation and is
refused here. Training stops after ``--minutes`` of wall clock (counted from the start of the
script). The EMA of the weights is checkpointed every ``--checkpoint-minutes`` into ``--out``
(atomically: written to a temporary folder beside it, then swapped in), so an interrupted run
still leaves a usable model. The folder is a diffusers ``DDPMPipeline`` (``model_index.json``,
``unet/`` with the EMA weights, ``scheduler/``) plus ``loss.json``, ``loss.png`` and
``MODEL_CARD.md``.

Usage::

    python benchmarks/train_tiny.py --minutes 55 --threads 1      # the real run
    python benchmarks/train_tiny.py --smoke                        # ~20 steps into a temp folder
    python benchmarks/train_tiny.py --image-channels 3 --out benchmarks/models/rgb16 \
        --minutes 45 --threads 1 --seed 2                          # colour patches (rgb16)
    python benchmarks/train_tiny.py --beta-schedule scaled_linear --prediction-type v_prediction \
        --out benchmarks/models/sv16 --minutes 45 --threads 1 --seed 5   # a fifth model (sv16)

``--beta-schedule`` and ``--prediction-type`` choose the training process and target (default: the
linear betas and epsilon prediction of tiny16 and rgb16). ``--data mnist`` trains on MNIST's
first 50,000 training digits at 16x16 instead of photo patches (``_common.mnist16``; grey only,
``--pool`` and ``--data-seed`` do not apply): the mn16 model, another kind of data.

Load the result with ``diffusers.DDPMPipeline.from_pretrained(out)``.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MNIST16_TRAIN, mnist16

START = time.monotonic()
DEFAULT_OUT = "benchmarks/models/tiny16"
EVAL_SEED = 0  # reserved for evaluation by the library: never trained on
LOG_EVERY = 100


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=DEFAULT_OUT, help="output folder (default %(default)s)")
    p.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget (default 60)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--seed", type=int, default=0, help="torch seed for init/noise/shuffle (0)")
    p.add_argument("--data-seed", type=int, default=1, help="seed of the patch pool (default 1)")
    p.add_argument("--pool", type=int, default=200_000, help="training patches (default 200000)")
    p.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--lr", type=float, default=2e-4, help="AdamW learning rate (default 2e-4)")
    p.add_argument("--warmup", type=int, default=200, help="linear lr warm-up steps (200)")
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay (default 0.999)")
    p.add_argument("--clip", type=float, default=1.0, help="gradient-norm clip (default 1.0)")
    p.add_argument(
        "--channels",
        default="32,48,64",
        help="UNet block_out_channels, comma separated (default %(default)s)",
    )
    p.add_argument("--norm-groups", type=int, default=16, help="GroupNorm groups (default 16)")
    p.add_argument(
        "--image-channels",
        type=int,
        choices=(1, 3),
        default=1,
        help="1: grey patches (tiny16, the default); 3: colour patches",
    )
    p.add_argument(
        "--checkpoint-minutes", type=float, default=5.0, help="EMA checkpoint period (5)"
    )
    p.add_argument(
        "--beta-schedule",
        choices=("linear", "scaled_linear", "squaredcos_cap_v2"),
        default="linear",
        help="DDPMScheduler beta_schedule (default %(default)s)",
    )
    p.add_argument(
        "--prediction-type",
        choices=("epsilon", "v_prediction"),
        default="epsilon",
        help="what the UNet predicts (default %(default)s)",
    )
    p.add_argument(
        "--data",
        choices=("photos", "mnist"),
        default="photos",
        help="photos: 16x16 photo patches (default); mnist: MNIST digits at 16x16 (mn16)",
    )
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: none)")
    p.add_argument(
        "--smoke", action="store_true", help="quick check: ~20 steps, small pool, temp folder"
    )
    args = p.parse_args(argv)
    if args.data_seed == EVAL_SEED:
        p.error(f"--data-seed {EVAL_SEED} is reserved for evaluation; train on another seed")
    if args.data == "mnist":
        if args.image_channels != 1:
            p.error("--data mnist is grey: leave --image-channels at 1")
        args.pool = MNIST16_TRAIN
    if args.smoke:
        args.out = tempfile.mkdtemp(prefix="train_tiny_smoke_")
        args.pool = min(args.pool, 2048)
        args.max_steps = args.max_steps or 20
        args.warmup = min(args.warmup, 5)
        args.minutes = min(args.minutes, 5.0)
    args.block_out_channels = tuple(int(c) for c in args.channels.split(","))
    return args


# --------------------------------------------------------------------------------------------
# model, data, EMA
# --------------------------------------------------------------------------------------------


def build_unet(args: argparse.Namespace):
    from diffusers import UNet2DModel

    n = len(args.block_out_channels)
    if n != 3:
        raise SystemExit("--channels must list exactly 3 widths (down: plain, attention, plain)")
    return UNet2DModel(
        sample_size=16,
        in_channels=args.image_channels,
        out_channels=args.image_channels,
        block_out_channels=args.block_out_channels,
        layers_per_block=1,
        norm_num_groups=args.norm_groups,
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
    )


def load_pool(args: argparse.Namespace) -> torch.Tensor:
    from specsched.data.builtin import photos

    if args.data == "mnist":
        x = mnist16("train", 0, args.pool)
        return torch.from_numpy(x.astype(np.float32))
    x = photos(size=16, channels=args.image_channels, n=args.pool, seed=args.data_seed)
    return torch.from_numpy(x.astype(np.float32))


def scheduler_kwargs(a: dict) -> dict:
    """The ``DDPMScheduler`` settings of the training process (``a``: the parsed arguments). The
    scaled-linear betas are Stable Diffusion's (0.00085 to 0.012), not diffusers' defaults."""
    kw = {
        "num_train_timesteps": 1000,
        "beta_schedule": a.get("beta_schedule", "linear"),
        "prediction_type": a.get("prediction_type", "epsilon"),
    }
    if kw["beta_schedule"] == "scaled_linear":
        kw.update(beta_start=0.00085, beta_end=0.012)
    return kw


@torch.no_grad()
def ema_update(ema_params, params, decay: float) -> None:
    torch._foreach_lerp_(ema_params, params, 1.0 - decay)


def ema_decay(step: int, decay: float) -> float:
    """EMA decay at optimiser step ``step`` (1-based): warmed up as min(decay, (1+n)/(10+n))."""
    return min(decay, (1.0 + step) / (10.0 + step))


# --------------------------------------------------------------------------------------------
# outputs
# --------------------------------------------------------------------------------------------


def write_loss(out: Path, history: dict) -> None:
    (out / "loss.json").write_text(json.dumps(history, indent=1) + "\n")
    steps, loss = history["step"], history["loss"]
    if not steps:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    ax.plot(steps, loss, lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel(f"MSE loss (running mean of {history['every']} steps)")
    ax.set_title(f"{out.name} UNet: training loss", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "loss.png")
    plt.close(fig)


def _photo_section(info: dict) -> str:
    """The model card's data section for photo patches."""
    a = info["args"]
    grey = a["image_channels"] == 1
    return f"""- Source: `builtin:photos` (specsched.data.builtin.photos): random 16x16 patches of the
  natural photographs bundled with scikit-image, {"grey (ITU-R 601 luma)" if grey else "RGB"}, scaled to [-1, 1].
- Training pool: {a["pool"]:,} patches, `photos(size=16, channels={a["image_channels"]}, n={a["pool"]},
  seed={a["data_seed"]})`, cast to float32, reshuffled every epoch.
- Pool statistics: mean {info["pool_mean"]:.4f}, std {info["pool_std"]:.4f}.
- Seed {EVAL_SEED} is reserved for evaluation and was not trained on. Note that seed-{EVAL_SEED}
  patches are new random crops of the *same* 15 photographs, so they can overlap the training
  crops spatially: they are held-out draws, not held-out images."""


def _data_section(info: dict) -> str:
    """The model card's data section for MNIST at 16x16 (``--data mnist``)."""
    a = info["args"]
    return f"""- Source: `builtin:mnist` (specsched.data.builtin.mnist), the training split's first
  {a["pool"]:,} images, each padded from 28x28 to 32x32 with black and averaged over 2x2 blocks
  (`benchmarks/_common.py`, `mnist16`), values in [-1, 1], cast to float32, reshuffled every
  epoch. The training split's last 10,000 images and the test split were not trained on.
- Pool statistics: mean {info["pool_mean"]:.4f}, std {info["pool_std"]:.4f}."""


def model_card(info: dict) -> str:
    a = info["args"]
    final_loss = info["final_loss"]
    final_loss_s = f"{final_loss:.5f}" if final_loss is not None else "n/a"
    status = (
        "complete"
        if info["final"]
        else f"IN PROGRESS - interim checkpoint written at step {info['steps']}"
    )
    grey = a["image_channels"] == 1
    kind = "greyscale" if grey else "colour (RGB)"
    betas = a.get("beta_schedule", "linear")
    vpred = a.get("prediction_type", "epsilon") == "v_prediction"
    target = "velocity (v)" if vpred else "epsilon"
    beta_text = {
        "linear": "Linear-beta VP (DDPM) process (beta 1e-4 to 0.02)",
        "scaled_linear": "Scaled-linear-beta VP process (Stable Diffusion's betas, sqrt-linear from "
        "0.00085 to 0.012; the noisiest timestep keeps a signal-to-noise ratio of about 0.005)",
        "squaredcos_cap_v2": "Cosine VP process (squaredcos_cap_v2)",
    }[betas]
    digits = a.get("data", "photos") == "mnist"
    what = "MNIST digits" if digits else f"{kind} photo patches"
    return f"""# {Path(info["out_rel"]).name}: a small {target}-prediction UNet on 16x16 {what}

Status: **{status}** (written {info["written"]}).

## Intended use

Denoiser for specsched's real-denoiser benchmark; not a generative model of quality. It is a
learned, non-Gaussian {target}-predictor for running samplers and noise schedules against.

## How to load

The folder is a diffusers `DDPMPipeline` (`model_index.json`, `unet/`, `scheduler/`):

```python
from diffusers import DDPMPipeline

pipe = DDPMPipeline.from_pretrained("{info["out_rel"]}")  # EMA weights, float32
# x_t: (B, {a["image_channels"]}, 16, 16), data scaled to [-1, 1]; t in 0..999
out = pipe.unet(x_t, t).sample  # {target}
```

The scheduler is `DDPMScheduler(num_train_timesteps=1000, beta_schedule="{betas}",
prediction_type="{a.get("prediction_type", "epsilon")}", clip_sample=False)`: specsched's samplers do not clip the denoised estimate, and the pipeline's
own sampling should match them. `specsched evaluate --pipeline {info["out_rel"]} ...`
takes the folder as it is.

## Command

```
{info["command"]}
```

(run from `{info["cwd"]}`; torch {torch.__version__}, diffusers {info["diffusers"]},
numpy {np.__version__}, Python {sys.version.split()[0]}, {a["threads"]} CPU thread(s))

## Data

{_data_section(info) if digits else _photo_section(info)}

## Noise process and objective

- {beta_text}, 1000 timesteps: `DDPMScheduler(num_train_timesteps=1000,
  beta_schedule="{betas}")`; training inputs from its `add_noise`.
- Timesteps uniform in 0..999; {target} prediction (target from the scheduler's
  `get_velocity` for v); MSE loss.

## Architecture

diffusers `UNet2DModel`: sample_size 16, in/out channels {a["image_channels"]}, block_out_channels
{tuple(a["block_out_channels"])}, layers_per_block 1, norm_num_groups {a["norm_groups"]},
down blocks (DownBlock2D, AttnDownBlock2D, DownBlock2D), up blocks (UpBlock2D, AttnUpBlock2D,
UpBlock2D), other settings diffusers defaults. **{info["n_params"]:,} parameters.**

## Optimisation

- AdamW, lr {a["lr"]:g} (linear warm-up over {a["warmup"]} steps, then constant), betas
  (0.9, 0.999), weight decay 0, batch {a["batch"]}, gradient-norm clipping {a["clip"]:g}.
- EMA of the weights, decay {a["ema"]:g} (warmed up as min({a["ema"]:g}, (1+n)/(10+n)) over the
  first steps); the saved model is the EMA. No optimizer state is kept.
- torch seed {a["seed"]} (initialisation, shuffling, noise and timesteps).
- Wall-clock budget {a["minutes"]:g} min; EMA checkpoint every {a["checkpoint_minutes"]:g} min.

## Run

- Steps done: {info["steps"]:,} ({info["epochs"]:.2f} epochs of the pool, {info["samples"]:,} samples)
- Speed: {info["batches_per_s"]:.2f} batches/s ({info["samples_per_s"]:.0f} samples/s)
- Wall time: {info["wall_s"] / 60:.1f} min in all ({info["train_s"] / 60:.1f} min training,
  {info["prep_s"]:.1f} s data preparation)
- Final loss (running mean of the last {info["every"]} steps): {final_loss_s}
- Stopped because: {info["stop_reason"]}

![training loss](loss.png)

Loss per {info["every"]} steps (running means): `loss.json`.
"""


def save_checkpoint(ema_model, out: Path, history: dict, info: dict) -> None:
    """Write the EMA weights, loss log/plot and card to ``out`` atomically (swap of folders)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        from diffusers import DDPMPipeline, DDPMScheduler

        scheduler = DDPMScheduler(**scheduler_kwargs(info["args"]), clip_sample=False)
        DDPMPipeline(unet=ema_model, scheduler=scheduler).save_pretrained(
            tmp, safe_serialization=True
        )
        write_loss(tmp, history)
        (tmp / "MODEL_CARD.md").write_text(model_card(info))
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            if old.exists():
                shutil.rmtree(old)
            os.rename(out, old)
        os.rename(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    import diffusers
    from diffusers import DDPMScheduler

    out = Path(args.out).resolve()
    try:
        out_rel = str(out.relative_to(Path.cwd()))
    except ValueError:
        out_rel = str(out)
    command = "python " + shlex.join(sys.argv) if argv is None else shlex.join(argv)

    stop = {"reason": None}

    def on_signal(signum, _frame):
        stop["reason"] = f"signal {signal.Signals(signum).name}"

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    t0 = time.monotonic()
    pool = load_pool(args)
    prep_s = time.monotonic() - t0
    pool_mean, pool_std = float(pool.mean()), float(pool.std())
    source = (
        f"MNIST train images 0..{args.pool - 1} at 16x16"
        if args.data == "mnist"
        else f"builtin:photos size=16 channels={args.image_channels} n={args.pool} "
        f"seed={args.data_seed}"
    )
    print(
        f"data: {source} "
        f"-> {tuple(pool.shape)} float32, mean {pool_mean:.4f} std {pool_std:.4f} "
        f"({prep_s:.1f} s)",
        flush=True,
    )

    unet = build_unet(args)
    n_params = sum(p.numel() for p in unet.parameters())
    print(
        f"model: UNet2DModel block_out_channels={args.block_out_channels} layers_per_block=1 "
        f"norm_num_groups={args.norm_groups} parameters={n_params:,}",
        flush=True,
    )
    ema_model = copy.deepcopy(unet).eval().requires_grad_(False)
    params = [p for p in unet.parameters()]
    ema_params = [p for p in ema_model.parameters()]

    scheduler = DDPMScheduler(**scheduler_kwargs(vars(args)))
    opt = torch.optim.AdamW(unet.parameters(), lr=args.lr, betas=(0.9, 0.999), weight_decay=0.0)
    warm = max(1, args.warmup)
    lr_sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm))

    budget_s = args.minutes * 60.0
    ckpt_s = args.checkpoint_minutes * 60.0
    log_every = LOG_EVERY if not args.smoke else 5
    history: dict = {
        "every": log_every,
        "step": [],
        "loss": [],
        "elapsed_s": [],
        "batches_per_s": [],
    }
    n = pool.shape[0]
    step = 0
    epoch = 0
    perm = torch.randperm(n)
    cursor = 0
    running = 0.0
    running_n = 0
    train_t0 = time.monotonic()
    window_t0, window_step = train_t0, 0
    last_ckpt = train_t0
    last_loss = None

    def make_info(final: bool, reason: str) -> dict:
        train_s = time.monotonic() - train_t0
        return {
            "args": vars(args),
            "command": command,
            "cwd": os.getcwd(),
            "diffusers": diffusers.__version__,
            "out_rel": out_rel,
            "n_params": n_params,
            "pool_mean": pool_mean,
            "pool_std": pool_std,
            "steps": step,
            "samples": step * args.batch,
            "epochs": step * args.batch / n,
            "batches_per_s": step / train_s if train_s > 0 else 0.0,
            "samples_per_s": step * args.batch / train_s if train_s > 0 else 0.0,
            "train_s": train_s,
            "prep_s": prep_s,
            "wall_s": time.monotonic() - START,
            "final_loss": last_loss,
            "every": log_every,
            "final": final,
            "stop_reason": reason,
            "written": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        }

    smoke_ckpt_done = False
    unet.train()
    while True:
        if stop["reason"] is None:
            if time.monotonic() - START >= budget_s:
                stop["reason"] = f"wall-clock budget of {args.minutes:g} min reached"
            elif args.max_steps and step >= args.max_steps:
                stop["reason"] = f"--max-steps {args.max_steps} reached"
        if stop["reason"] is not None:
            break

        if cursor + args.batch > n:
            epoch += 1
            perm = torch.randperm(n)
            cursor = 0
        x0 = pool[perm[cursor : cursor + args.batch]]
        cursor += args.batch
        noise = torch.randn_like(x0)
        t = torch.randint(0, 1000, (x0.shape[0],), dtype=torch.long)
        xt = scheduler.add_noise(x0, noise, t)
        pred = unet(xt, t).sample
        target = (
            noise if args.prediction_type == "epsilon" else scheduler.get_velocity(x0, noise, t)
        )
        loss = torch.nn.functional.mse_loss(pred, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), args.clip)
        opt.step()
        lr_sched.step()
        step += 1
        ema_update(ema_params, params, ema_decay(step, args.ema))

        lv = float(loss.detach())
        if not math.isfinite(lv):
            stop["reason"] = f"non-finite loss at step {step}"
            print(stop["reason"], flush=True)
            break
        running += lv
        running_n += 1
        if step % log_every == 0:
            now = time.monotonic()
            bps = (step - window_step) / (now - window_t0)
            window_t0, window_step = now, step
            last_loss = running / running_n
            running, running_n = 0.0, 0
            history["step"].append(step)
            history["loss"].append(last_loss)
            history["elapsed_s"].append(round(now - train_t0, 2))
            history["batches_per_s"].append(round(bps, 3))
            print(
                f"step {step:7d}  epoch {epoch:3d}  loss {last_loss:.5f}  "
                f"lr {lr_sched.get_last_lr()[0]:.2e}  {bps:.2f} batches/s  "
                f"elapsed {(now - START) / 60:.1f} min",
                flush=True,
            )

        now = time.monotonic()
        smoke_now = args.smoke and not smoke_ckpt_done and step >= 10
        if now - last_ckpt >= ckpt_s or smoke_now:
            save_checkpoint(ema_model, out, history, make_info(False, "n/a (still training)"))
            smoke_ckpt_done = smoke_ckpt_done or smoke_now
            last_ckpt = time.monotonic()
            print(f"checkpoint: EMA weights at step {step} -> {out}", flush=True)

    if running_n:
        last_loss = running / running_n if last_loss is None else last_loss
    reason = stop["reason"]
    info = make_info(True, reason)
    save_checkpoint(ema_model, out, history, info)
    print(
        f"done: {reason}; {step} steps, {info['batches_per_s']:.2f} batches/s, "
        f"final loss {last_loss}, wall {info['wall_s'] / 60:.1f} min -> {out}",
        flush=True,
    )

    if args.smoke:
        from diffusers import UNet2DModel

        reloaded = UNet2DModel.from_pretrained(out / "unet").eval()
        x = torch.randn(4, args.image_channels, 16, 16)
        tt = torch.tensor([0, 10, 500, 999])
        with torch.no_grad():
            diff = (reloaded(x, tt).sample - ema_model(x, tt).sample).abs().max().item()
        files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        print(f"smoke: reload max |diff| = {diff:.2e}; files {files}; {size / 1e6:.2f} MB")
        if diff > 1e-5:
            print("smoke: FAILED, reloaded model differs", flush=True)
            return 1
        print("smoke: OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
