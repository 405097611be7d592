"""The ``specsched`` command: a thin shell over the Python API.

Every command prints a table for people and, with ``--json``, the same figures as JSON on stdout.
Errors a user can cause print one line (``error: ...``) and exit with status 2.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from .errors import SpecschedError

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
        help="Data: builtin:photos, builtin:digits, builtin:faces, synthetic:powerlaw, a .npy/.npz "
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
LayoutOpt = Annotated[
    str | None, typer.Option(help="Array layout when ambiguous: NL, NCL, NHW, NCHW, NHWC.")
]
KindOpt = Annotated[str, typer.Option(help="fourier (shift-invariant) or pca (full covariance).")]
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


def _source_options(**given: Any) -> dict[str, Any]:
    names = {"num_samples": "n"}
    return {
        names.get(k, k): str(v) if isinstance(v, Path) else v
        for k, v in given.items()
        if v is not None
    }


SOURCE_OPTIONS = (
    "size", "channels", "num_samples", "seed", "exponent", "crop", "sample_rate", "segment",
    "column", "vae", "vae_scaling_factor", "limit", "workers", "dask", "strict", "batch_size",
    "progress",
)  # fmt: skip


def spectrum_from_params(source: str, params: dict[str, Any]):
    """The spectrum a command was asked for: its source and the source options it was given."""
    opts = _source_options(**{k: params[k] for k in SOURCE_OPTIONS if k in params})
    return load_spectrum(
        source, kind=params.get("kind", "fourier"), layout=params.get("layout"), **opts
    )


def load_spectrum(source: str, *, kind: str = "fourier", layout: str | None = None, **opts: Any):
    """A spectrum file as saved, or the spectrum of a data source estimated now.

    Unreadable items skipped on the way are reported on stderr (one line).
    """
    from .spectrum import Spectrum

    p = Path(source)
    if p.suffix == ".npz" and p.is_file():
        with np.load(p, allow_pickle=False) as z:
            is_spectrum = "header" in z.files
        if is_spectrum:
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


def check_output_path(path: Path | None) -> None:
    """Fail before any work if an output file could not be written."""
    if path is not None and not (path.parent if str(path.parent) else Path(".")).is_dir():
        raise SpecschedError(
            f"output folder {path.parent} does not exist: create it or choose another path"
        )


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=_json_default) + "\n")


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
def spectrum(
    source: SourceArg,
    size: SizeOpt = None,
    channels: ChannelsOpt = None,
    num_samples: NumSamplesOpt = None,
    seed: SeedOpt = None,
    exponent: ExponentOpt = None,
    layout: LayoutOpt = None,
    kind: KindOpt = "fourier",
    crop: CropOpt = None,
    sample_rate: SampleRateOpt = None,
    segment: SegmentOpt = None,
    column: ColumnOpt = None,
    vae: VaeOpt = None,
    vae_scaling_factor: VaeScalingOpt = None,
    limit: LimitOpt = None,
    workers: WorkersOpt = None,
    dask: DaskOpt = None,
    strict: StrictOpt = None,
    batch_size: BatchSizeOpt = None,
    progress: ProgressOpt = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the spectrum to this .npz file.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Estimate the spectrum of a data source and summarise it."""
    if output is not None and output.suffix != ".npz":
        raise SpecschedError(f"--output {output} must end in .npz")
    check_output_path(output)
    t0 = time.perf_counter()
    spec = spectrum_from_params(source, locals())
    summary = {"source": source, **spec.summary(), "seconds": time.perf_counter() - t0}
    if output is not None:
        spec.save(output)
        summary["output"] = str(output)
    if json_out:
        emit_json(summary)
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
    ):
        if key in summary:
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
    process: Annotated[str, typer.Option(help="vp, ve or flow (with --sigmas).")] = "ve",
    train_schedule: Annotated[
        str, typer.Option(help="Training betas: linear, scaled_linear, cosine.")
    ] = "linear",
    num_train_timesteps: Annotated[int, typer.Option(help="Training timesteps T.")] = 1000,
    sampler: Annotated[str, typer.Option(help="ddim or ddpm.")] = "ddim",
    eta: Annotated[float | None, typer.Option(help="DDIM stochasticity (0..1).")] = None,
    size: SizeOpt = None,
    channels: ChannelsOpt = None,
    num_samples: NumSamplesOpt = None,
    seed: SeedOpt = None,
    exponent: ExponentOpt = None,
    layout: LayoutOpt = None,
    kind: KindOpt = "fourier",
    crop: CropOpt = None,
    sample_rate: SampleRateOpt = None,
    segment: SegmentOpt = None,
    column: ColumnOpt = None,
    vae: VaeOpt = None,
    vae_scaling_factor: VaeScalingOpt = None,
    limit: LimitOpt = None,
    workers: WorkersOpt = None,
    dask: DaskOpt = None,
    strict: StrictOpt = None,
    batch_size: BatchSizeOpt = None,
    progress: ProgressOpt = None,
    json_out: JsonOpt = False,
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
    spec = spectrum_from_params(source, locals())
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
    from .optimize import level_range

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
    if text is None or text == "free":
        return None
    if text in ("max", "T-1", "sigma_max", "t_max"):
        return "max"
    try:
        return float(text)
    except ValueError:
        raise SpecschedError(
            f"--start-at {text!r} is not understood: use free, T-1 (or sigma_max), or a number"
        ) from None


def comparison_table(rows: list[dict[str, Any]], objective: str, title: str) -> Table:
    table = Table(title=title)
    table.add_column("schedule", no_wrap=True)
    for col in ("W2^2", "KL(gen||data)", "KL(data||gen)", f"{objective} / best heuristic"):
        table.add_column(col, justify="right")
    for i, row in enumerate(rows):
        style = "bold green" if i == 0 and row["schedule"] == "spectral" else None
        table.add_row(
            row["schedule"],
            _fmt(row["w2"]),
            _fmt(row["kl"]),
            _fmt(row["kl_data"]),
            f"{row['ratio_to_best_heuristic']:.3f}",
            style=style,
        )
    return table


def schedule_forms(sched) -> dict[str, Any]:
    """The schedule in the forms users' software takes."""
    d = sched.to_dict()
    return {
        k: d[k] for k in ("timesteps", "sigmas", "alphas_cumprod", "log_snr") if d[k] is not None
    }


def print_schedule(sched, sampler: str) -> None:
    from .integrations.diffusers import snippet

    forms = schedule_forms(sched)
    for key, vals in forms.items():
        shown = [v for v in vals if v is not None]
        if key == "timesteps":
            out.print(f"[bold]{key}[/bold]: {shown}")
        else:
            out.print(f"[bold]{key}[/bold]: [{', '.join(f'{v:.5g}' for v in shown)}]")
    out.print("\n[bold]diffusers[/bold]:")
    out.print(snippet(sched, sampler), markup=False, highlight=False)


@app.command()
def fit(
    source: SourceArg,
    steps: StepsOpt = 10,
    sampler: SamplerOpt = None,
    eta: EtaOpt = None,
    for_model: ForOpt = None,
    scheduler_config: SchedulerConfigOpt = None,
    objective: ObjectiveOpt = "w2",
    process: ProcessOpt = "vp",
    train_schedule: TrainOpt = "linear",
    num_train_timesteps: TOpt = 1000,
    sigma_min: SigmaMinOpt = None,
    sigma_max: SigmaMaxOpt = None,
    start_at: Annotated[
        str | None,
        typer.Option(help="First level: free (default), T-1 / sigma_max (pinned), or a number."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the schedule as JSON here.")
    ] = None,
    plots: PlotsOpt = None,
    size: SizeOpt = None,
    channels: ChannelsOpt = None,
    num_samples: NumSamplesOpt = None,
    seed: SeedOpt = None,
    exponent: ExponentOpt = None,
    layout: LayoutOpt = None,
    kind: KindOpt = "fourier",
    crop: CropOpt = None,
    sample_rate: SampleRateOpt = None,
    segment: SegmentOpt = None,
    column: ColumnOpt = None,
    vae: VaeOpt = None,
    vae_scaling_factor: VaeScalingOpt = None,
    limit: LimitOpt = None,
    workers: WorkersOpt = None,
    dask: DaskOpt = None,
    strict: StrictOpt = None,
    batch_size: BatchSizeOpt = None,
    progress: ProgressOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Design the schedule for your data, model and sampler, and compare it with every heuristic."""
    from .optimize import fit as run_fit

    check_output_path(output)
    lr, sampler, options = model_from_params(locals())
    spec = spectrum_from_params(source, locals())
    result = run_fit(
        spec,
        steps,
        sampler=sampler,
        objective=objective,  # type: ignore[arg-type]
        levels=lr,
        start_at=parse_start_at(start_at),
        **options,
    )
    sched = result.schedule.with_meta(
        value=result.value,
        spectrum=spec.summary(),
        version=_version(),
        command="specsched " + " ".join(sys.argv[1:]),
        table=result.table(),
    )
    payload = {"source": source, **result.to_dict(), "schedule": sched.to_dict()}
    if plots is not None:
        from .plots import write_plots

        payload["plots"] = [str(p) for p in write_plots(result, plots)]
    if output is not None:
        sched.save(output)
        payload["output"] = str(output)
    if json_out:
        emit_json(payload)
        return
    out.print(
        comparison_table(
            result.table(),
            objective,
            f"{sampler}, {steps} steps, {lr.process}"
            + (f" ({lr.train.name}-{lr.train.T})" if lr.train else "")
            + f": spectral schedule vs heuristics on {source}",
        )
    )
    for note in result.notes:
        out.print(f"note: {note}", highlight=False)
    print_schedule(sched, sampler)
    out.print(f"\nfitted in {result.seconds:.2f} s ({result.evaluations} evaluations)")
    for p in payload.get("plots", []):
        out.print(f"wrote {p}")
    if output is not None:
        out.print(f"wrote {output}")


@app.command()
def compare(
    source: SourceArg,
    schedule: Annotated[
        list[Path] | None,
        typer.Option("--schedule", help="A schedule JSON file (repeatable)."),
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Steps of the heuristics.")] = None,
    sampler: SamplerOpt = None,
    eta: EtaOpt = None,
    for_model: ForOpt = None,
    scheduler_config: SchedulerConfigOpt = None,
    objective: ObjectiveOpt = "w2",
    process: ProcessOpt = "vp",
    train_schedule: TrainOpt = "linear",
    num_train_timesteps: TOpt = 1000,
    sigma_min: SigmaMinOpt = None,
    sigma_max: SigmaMaxOpt = None,
    size: SizeOpt = None,
    channels: ChannelsOpt = None,
    num_samples: NumSamplesOpt = None,
    seed: SeedOpt = None,
    exponent: ExponentOpt = None,
    layout: LayoutOpt = None,
    kind: KindOpt = "fourier",
    crop: CropOpt = None,
    sample_rate: SampleRateOpt = None,
    segment: SegmentOpt = None,
    column: ColumnOpt = None,
    vae: VaeOpt = None,
    vae_scaling_factor: VaeScalingOpt = None,
    limit: LimitOpt = None,
    workers: WorkersOpt = None,
    dask: DaskOpt = None,
    strict: StrictOpt = None,
    batch_size: BatchSizeOpt = None,
    progress: ProgressOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Evaluate schedule files and every applicable heuristic on your data."""
    from .divergence import OBJECTIVES
    from .optimize import compare as run_compare
    from .schedules import Schedule

    if objective not in OBJECTIVES:
        raise SpecschedError(f"unknown objective {objective!r}: use one of {', '.join(OBJECTIVES)}")
    lr, sampler, options = model_from_params(locals())
    schedules = [Schedule.load(p) for p in schedule or []]
    spec = spectrum_from_params(source, locals())
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
            "schedule": s.name,
            "file": str(schedule[schedules.index(s)]) if s in schedules else None,
            "w2": r.w2,
            "kl": r.kl_gen_data,
            "kl_data": r.kl_data_gen,
            "ratio_to_best_heuristic": r.value(objective) / best,  # type: ignore[arg-type]
            "timesteps": None if s.timesteps is None else s.timesteps.tolist(),
        }
        for s, r in rows
    ]
    if json_out:
        emit_json(
            {"source": source, "sampler": sampler, "objective": objective, "table": table_rows}
        )
        return
    out.print(comparison_table(table_rows, objective, f"{sampler} on {source}"))


@app.command()
def plot(
    source: SourceArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the PNGs.")] = Path(
        "specsched-plots"
    ),
    steps: StepsOpt = 10,
    sampler: SamplerOpt = None,
    eta: EtaOpt = None,
    for_model: ForOpt = None,
    scheduler_config: SchedulerConfigOpt = None,
    objective: ObjectiveOpt = "w2",
    process: ProcessOpt = "vp",
    train_schedule: TrainOpt = "linear",
    num_train_timesteps: TOpt = 1000,
    sigma_min: SigmaMinOpt = None,
    sigma_max: SigmaMaxOpt = None,
    size: SizeOpt = None,
    channels: ChannelsOpt = None,
    num_samples: NumSamplesOpt = None,
    seed: SeedOpt = None,
    exponent: ExponentOpt = None,
    layout: LayoutOpt = None,
    kind: KindOpt = "fourier",
    crop: CropOpt = None,
    sample_rate: SampleRateOpt = None,
    segment: SegmentOpt = None,
    column: ColumnOpt = None,
    vae: VaeOpt = None,
    vae_scaling_factor: VaeScalingOpt = None,
    limit: LimitOpt = None,
    workers: WorkersOpt = None,
    dask: DaskOpt = None,
    strict: StrictOpt = None,
    batch_size: BatchSizeOpt = None,
    progress: ProgressOpt = None,
) -> None:
    """Fit and write the plots that show why the schedule is shaped the way it is."""
    from .optimize import fit as run_fit
    from .plots import write_plots

    lr, sampler, options = model_from_params(locals())
    spec = spectrum_from_params(source, locals())
    result = run_fit(spec, steps, sampler=sampler, objective=objective, levels=lr, **options)  # type: ignore[arg-type]
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
            "stochastic": s.stochastic or s.fixed.get("eta", 0) > 0,
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
    except (KeyboardInterrupt, typer.Abort):
        err.print("interrupted", highlight=False)
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
