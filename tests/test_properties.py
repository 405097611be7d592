"""Property-based tests (hypothesis) over the public API and the file readers.

The invariant of every case: a correct result or a :class:`SpecschedError`, never another
exception, never a non-finite number in a result, never a file left behind. Shapes are small and
the example counts modest, so the whole module runs in well under a minute.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, reject, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import specsched as ss
from specsched import SpecschedError
from specsched.cli import to_json

SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

DTYPES = st.sampled_from(
    [np.float64, np.float32, np.float16, np.uint8, np.int16, np.int64, np.bool_]
)
SHAPES = st.one_of(
    st.tuples(st.integers(0, 6), st.integers(1, 8)),  # (n, L)
    st.tuples(st.integers(0, 6), st.integers(1, 5), st.integers(1, 5)),  # (n, H, W) or (n, C, L)
    st.tuples(st.integers(0, 5), st.sampled_from([1, 3]), st.integers(1, 4), st.integers(1, 4)),
)
SCALES = st.integers(-300, 300).map(lambda k: 10.0**k)


def finite_spectrum(spec: ss.Spectrum) -> None:
    for a in (spec.variances, spec.weights, spec.means, spec.channel_means):
        assert np.all(np.isfinite(a))
    assert np.all(spec.variances >= 0)
    assert spec.problem() is None


@st.composite
def data_arrays(draw):
    shape = draw(SHAPES)
    dtype = draw(DTYPES)
    x = draw(hnp.arrays(np.float64, shape, elements=st.floats(-1, 1, width=64)))
    if dtype == np.bool_:
        return x > 0
    if np.issubdtype(dtype, np.integer):
        return np.clip(np.rint((x + 1) * 127.5), 0, 255).astype(dtype)
    with np.errstate(over="ignore"):
        return (x * draw(SCALES)).astype(dtype)


@SETTINGS
@given(x=data_arrays(), kind=st.sampled_from(["fourier", "pca"]))
def test_estimate_any_array(x, kind):
    try:
        spec = ss.Spectrum.from_array(x, kind=kind)
    except SpecschedError:
        event("refused")
        return
    event("computed")
    finite_spectrum(spec)
    assert spec.n_samples == x.shape[0]


@SETTINGS
@given(
    k=st.integers(-500, 500),
    seed=st.integers(0, 2**16),
    kind=st.sampled_from(["fourier", "pca"]),
)
def test_estimate_is_exactly_scale_equivariant(k, seed, kind):
    """Data scaled by 2**k have the spectrum scaled by 4**k, to rounding, at any k float64 can
    hold; beyond that a SpecschedError says the data must be rescaled."""
    x = np.random.default_rng(seed).standard_normal((12, 2, 4, 4))
    ref = ss.Spectrum.from_array(x, kind=kind)
    try:
        spec = ss.Spectrum.from_array(np.ldexp(x, k), kind=kind)
    except SpecschedError as exc:
        assert "rescale" in str(exc)
        assert abs(k) > 400  # variances near 4**k leave float64 only there
        return
    finite_spectrum(spec)
    big = ref.variances > 1e-12 * ref.variances.max()
    np.testing.assert_allclose(np.ldexp(spec.variances[big], -2 * k), ref.variances[big], rtol=1e-9)


@st.composite
def spectra(draw):
    seed = draw(st.integers(0, 2**16))
    shape = draw(st.sampled_from([(8,), (4, 4), (3, 5)]))
    channels = draw(st.sampled_from([1, 2]))
    x = np.random.default_rng(seed).standard_normal((10, channels, *shape))
    x = x * draw(st.integers(-150, 150).map(lambda k: 10.0**k)) + draw(st.floats(-3, 3))
    return ss.Spectrum.from_array(x, layout="NCL" if len(shape) == 1 else "NCHW")


@st.composite
def schedules(draw):
    kind = draw(st.sampled_from(["timesteps", "ve", "flow", "vp"]))
    n = draw(st.integers(1, 6))
    if kind == "timesteps":
        ts = draw(st.lists(st.integers(0, 999), min_size=n, max_size=n, unique=True))
        return ss.Schedule.from_timesteps(sorted(ts, reverse=True))
    hi = 1.0 if kind == "flow" else 100.0
    sig = draw(st.lists(st.floats(1e-3, hi), min_size=n, max_size=n, unique=True))
    try:
        return ss.Schedule.from_sigmas(sorted(sig, reverse=True), process=kind)
    except SpecschedError:  # two sigmas too close to tell apart: not a schedule
        reject()


@SETTINGS
@given(
    spec=spectra(),
    sched=schedules(),
    sampler=st.sampled_from(list(ss.SAMPLERS)),
    eta=st.one_of(st.none(), st.floats(-0.5, 1.5), st.just("0.5"), st.booleans()),
)
def test_response_is_finite_or_refused(spec, sched, sampler, eta):
    options = {} if eta is None else {"eta": eta}
    try:
        r = ss.response(spec, sched, sampler=sampler, **options)
    except SpecschedError:
        event("refused")
        return
    event("computed")
    for v in (r.w2, r.kl_gen_data, r.kl_data_gen):
        assert np.isfinite(v) and v >= 0
    assert np.all(np.isfinite(r.output_var)) and np.all(np.isfinite(r.output_mean))
    json.loads(to_json(r.to_dict()), parse_constant=_no_constant)


def _no_constant(name):
    raise AssertionError(f"non-standard JSON constant {name}")


@settings(max_examples=5, deadline=None, derandomize=True)
@given(spec=spectra(), steps=st.integers(1, 3), objective=st.sampled_from(["w2", "kl", "kl-data"]))
def test_fit_is_finite_or_refused(spec, steps, objective):
    try:
        res = ss.fit(spec, steps, objective=objective, starts=1)
    except SpecschedError:
        event("refused")
        return
    event("computed")
    assert np.isfinite(res.value)
    assert all(np.isfinite(r.value(objective)) for _, r in res.baselines)
    json.loads(to_json(res.to_dict()), parse_constant=_no_constant)


# ------------------------------------------------------------------------------------------
# file readers: garbage, truncation, random schedule JSON
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_files(tmp_path_factory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("good")
    x = np.random.default_rng(0).standard_normal((12, 1, 4, 4))
    np.save(d / "x.npy", x)
    np.savez(d / "x.npz", x=x)
    np.savez_compressed(d / "xc.npz", x=x)
    ss.Spectrum.from_array(x).save(d / "spec.npz")
    ss.Schedule.from_timesteps([999, 500, 20]).save(d / "sched.json")
    return {p.name: p.read_bytes() for p in d.iterdir()}


def _read(path: Path) -> None:
    """Every reader of ``path``; each must give a sound result or a SpecschedError."""
    if path.suffix == ".json":
        try:
            sched = ss.Schedule.load(path)
        except SpecschedError:
            return
        assert np.all(np.isfinite(sched.alpha)) and np.all(np.isfinite(sched.s))
        return
    try:
        finite_spectrum(ss.Spectrum.load(path))
    except SpecschedError:
        pass
    try:
        finite_spectrum(ss.Spectrum.from_source(path))
    except SpecschedError:
        pass


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    name=st.sampled_from(["x.npy", "x.npz", "xc.npz", "spec.npz", "sched.json"]),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=3),
)
def test_damaged_files_are_read_or_refused(good_files, name, cut, flips):
    blob = bytearray(good_files[name][: int(len(good_files[name]) * cut) or None])
    for where, value in flips:
        if blob:
            blob[int(where * (len(blob) - 1))] = value
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(bytes(blob))
        _read(path)
        assert os.listdir(d) == [name]


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@SETTINGS
@given(
    changes=st.dictionaries(
        st.sampled_from(
            ["alpha", "s", "process", "timesteps", "train_schedule", "name", "meta", "steps"]
        ),
        JSON_VALUES,
        max_size=3,
    ),
    drop=st.lists(st.sampled_from(["alpha", "s", "process", "timesteps"]), max_size=2),
)
def test_random_schedule_json(changes, drop):
    d = ss.Schedule.from_timesteps([999, 500, 20]).to_dict()
    d.update(changes)
    for k in drop:
        d.pop(k, None)
    try:
        sched = ss.Schedule.from_dict(d)
    except SpecschedError:
        event("refused")
        return
    event("computed")
    assert np.all(np.isfinite(sched.alpha)) and np.all(np.isfinite(sched.s))
    assert sched.steps >= 1


@SETTINGS
@given(
    target=st.sampled_from(["missing/s.npz", "folder", "folder/s.npz", "file/s.npz", "s.npz"]),
)
def test_saving_anywhere_writes_one_file_or_refuses(target):
    spec = ss.Spectrum.from_array(np.random.default_rng(0).standard_normal((5, 4, 4)))
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "folder").mkdir()
        (root / "file").write_text("x")
        before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
        try:
            spec.save(root / target)
        except SpecschedError:
            after = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
            assert after == before
            return
        assert ss.Spectrum.load(root / target).n_samples == 5
        after = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
        assert sorted({*before, target}) == after


@SETTINGS
@given(
    values=st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.none()),
        max_size=6,
    )
)
def test_json_output_is_strict(values):
    parsed = json.loads(
        to_json({"v": values, "a": np.array(values, dtype=float)}), parse_constant=_no_constant
    )
    for got, want in zip(parsed["v"], values, strict=True):
        if isinstance(want, float) and not np.isfinite(want):
            assert got is None
        else:
            assert got == want
