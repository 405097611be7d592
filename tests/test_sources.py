"""Tests for the data sources (specsched.data: images, arrays, audio, datasets, latents).

Every expectation is computed by hand from the same pixels or samples with plain PIL, numpy,
soundfile and scipy, then estimated with ``Spectrum.from_array``: a source is right when it hands
the estimator exactly those samples.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from specsched import Spectrum
from specsched.data import open_source
from specsched.data.images import preprocess
from specsched.errors import SpecschedError

RTOL = 1e-12


def assert_same_spectrum(a: Spectrum, b: Spectrum, rtol: float = RTOL) -> None:
    assert a.n_samples == b.n_samples
    assert a.signal_shape == b.signal_shape and a.channels == b.channels
    scale = np.abs(b.cross_spectrum).max()
    np.testing.assert_allclose(a.cross_spectrum, b.cross_spectrum, rtol=0, atol=rtol * scale)
    np.testing.assert_allclose(a.channel_means, b.channel_means, rtol=0, atol=rtol)


def smooth_images(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """uint8 RGB images (n, h, w, 3) with some spatial correlation (photo-like)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h + 2, w + 2, 3)).cumsum(1).cumsum(2)
    x = x[:, 2:, 2:] - x[:, :-2, 2:] - x[:, 2:, :-2] + x[:, :-2, :-2]  # 2x2 box sums
    x = (x - x.min()) / (x.max() - x.min()) * 255
    return np.rint(x).astype(np.uint8)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """The same 24 images as a nested PNG folder, a .npy file and uint8 arrays (n, H, W, 3)."""
    root = tmp_path_factory.mktemp("images")
    x = smooth_images(24, 12, 12)
    for i, im in enumerate(x):
        folder = root / "png" / ("a" if i < 10 else "b/c")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(folder / f"{i:03d}.png")
    np.save(root / "x.npy", x)
    return root, x


# ------------------------------------------------------------------------------------- round trips
def test_folder_npy_hf_torch_give_the_same_spectrum(images, tmp_path):
    import datasets
    import torch

    root, x = images
    ref = Spectrum.from_array(x)  # NHWC uint8 -> [-1, 1]
    assert_same_spectrum(Spectrum.from_source(root / "png", batch_size=5), ref)
    assert_same_spectrum(Spectrum.from_source(str(root / "x.npy"), batch_size=7), ref)

    # Hugging Face: an Image column (PNG bytes, decoded to PIL) and an array column
    pil = [Image.fromarray(im) for im in x]
    ds = datasets.Dataset.from_dict({"image": pil, "label": list(range(len(x)))})
    ds = ds.cast_column("image", datasets.Image())
    ds.save_to_disk(str(tmp_path / "hf"))
    assert_same_spectrum(Spectrum.from_source(str(tmp_path / "hf"), batch_size=8), ref)
    arrays = datasets.Dataset.from_dict({"pixels": [im.tolist() for im in x]})
    arrays = arrays.cast_column("pixels", datasets.Array3D((12, 12, 3), "uint8"))
    assert_same_spectrum(Spectrum.from_source(arrays, column="pixels", batch_size=10), ref)

    class Pairs(torch.utils.data.Dataset):
        """torchvision-style (image tensor CHW, label) items."""

        def __len__(self):
            return len(x)

        def __getitem__(self, i):
            return torch.from_numpy(np.ascontiguousarray(x[i].transpose(2, 0, 1))), i

    assert_same_spectrum(Spectrum.from_source(Pairs(), batch_size=6), ref)
    loader = torch.utils.data.DataLoader(Pairs(), batch_size=5)
    assert_same_spectrum(Spectrum.from_source(loader), ref)


def test_hf_dataset_needs_a_column_and_a_split(images, tmp_path):
    import datasets

    _, x = images
    ds = datasets.Dataset.from_dict(
        {"a": [im.tolist() for im in x], "b": [im.tolist() for im in x]}
    )
    with pytest.raises(SpecschedError, match="--column"):
        open_source(ds)
    with pytest.raises(SpecschedError, match="no column 'c'"):
        open_source(ds, column="c")
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(SpecschedError, match=r"several splits.*train"):
        open_source(str(tmp_path / "dd"))
    spec = Spectrum.from_source(str(tmp_path / "dd" / "train"), column="b", layout="NHWC")
    assert_same_spectrum(spec, Spectrum.from_array(x))


def test_npy_is_mapped_in_windows_and_npz_members_too(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((53, 2, 6, 6)).astype(np.float32)
    ref = Spectrum.from_array(x)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "f.npy", np.asfortranarray(x))
    np.savez(tmp_path / "one.npz", x)
    np.savez_compressed(tmp_path / "packed.npz", x)
    np.savez(tmp_path / "two.npz", data=x, other=x[:3])
    for name in ("x.npy", "f.npy", "one.npz", "packed.npz"):
        assert_same_spectrum(Spectrum.from_source(str(tmp_path / name), batch_size=10), ref)
    src = open_source(str(tmp_path / "one.npz"))
    assert src.array is None and src.path is not None  # an uncompressed member is mapped
    with pytest.raises(SpecschedError, match=r"holds 2 arrays.*key=NAME"):
        open_source(str(tmp_path / "two.npz"))
    assert_same_spectrum(Spectrum.from_source(str(tmp_path / "two.npz"), key="data"), ref)
    with pytest.raises(SpecschedError, match="do not apply to array files"):
        open_source(str(tmp_path / "x.npy"), size=8)


def test_generator_of_batches_and_pca(images):
    _, x = images
    grey = x[..., 0]  # (n, 12, 12) uint8

    def batches():
        for i in range(0, len(grey), 7):
            yield grey[i : i + 7]

    assert_same_spectrum(Spectrum.from_source(batches()), Spectrum.from_array(grey))
    got = Spectrum.from_source(grey[:, :6, :6].copy(), kind="pca", batch_size=5)
    want = Spectrum.from_array(grey[:, :6, :6], kind="pca")
    np.testing.assert_allclose(got.variances, want.variances, atol=1e-12 * want.variances.max())
    with pytest.raises(SpecschedError, match="one-pass iterable"):
        Spectrum.from_source(batches(), workers=2)

    import torch

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(grey)

    with pytest.raises(SpecschedError, match="DataLoader"):
        Spectrum.from_source(Stream())


def test_limit_reads_the_first_items(images):
    root, x = images
    got = Spectrum.from_source(str(root / "x.npy"), limit=10, batch_size=4)
    assert_same_spectrum(got, Spectrum.from_array(x[:10]))
    assert got.meta["items"] == 10


# ------------------------------------------------------------------------------------- images
def _hand_resize_crop(im: Image.Image, size: int) -> np.ndarray:
    """torchvision's Resize(size, BILINEAR) + CenterCrop(size), written out with PIL."""
    w, h = im.size
    if w <= h:
        new = (size, int(size * h / w))
    else:
        new = (int(size * w / h), size)
    r = im.resize(new, Image.Resampling.BILINEAR)
    left, top = round((new[0] - size) / 2.0), round((new[1] - size) / 2.0)
    return np.asarray(r.crop((left, top, left + size, top + size)))


@pytest.mark.parametrize("wh", [(40, 30), (30, 47), (16, 16), (16, 33)])
def test_resize_short_side_and_center_crop_match_pil(wh):
    im = Image.fromarray(smooth_images(1, wh[1], wh[0], seed=3)[0])
    got = preprocess(im, size=16)
    np.testing.assert_array_equal(got, _hand_resize_crop(im, 16).transpose(2, 0, 1))


def test_random_crop_is_a_window_of_the_resized_image_and_reproducible():
    im = Image.fromarray(smooth_images(1, 30, 50, seed=4)[0])
    resized = np.asarray(im.resize((int(16 * 50 / 30), 16), Image.Resampling.BILINEAR))
    crops = [preprocess(im, size=16, crop="random", seed=s, index=0) for s in range(6)]
    for c in crops:
        windows = [resized[:, j : j + 16].transpose(2, 0, 1) for j in range(resized.shape[1] - 15)]
        assert any(np.array_equal(c, w) for w in windows)
    assert len({c.tobytes() for c in crops}) > 1  # different seeds, different crops
    again = preprocess(im, size=16, crop="random", seed=2, index=0)
    np.testing.assert_array_equal(again, crops[2])


def test_modes_rgba_palette_grey_and_16_bit():
    rgb = smooth_images(1, 8, 8, seed=5)[0]
    alpha = np.full((8, 8, 1), 77, np.uint8)
    rgba = Image.fromarray(np.concatenate([rgb, alpha], axis=2), "RGBA")
    np.testing.assert_array_equal(preprocess(rgba), rgb.transpose(2, 0, 1))  # alpha dropped

    pal = Image.fromarray(rgb).quantize(16)
    pal.info["transparency"] = 0
    want = np.asarray(pal.convert("RGBA").convert("RGB")).transpose(2, 0, 1)
    np.testing.assert_array_equal(preprocess(pal), want)

    grey = preprocess(Image.fromarray(rgb), channels=1)
    np.testing.assert_array_equal(grey, np.asarray(Image.fromarray(rgb).convert("L"))[None])
    L = Image.fromarray(rgb[..., 0])
    np.testing.assert_array_equal(preprocess(L, channels=3), np.stack([rgb[..., 0]] * 3))
    assert preprocess(L, channels=None).shape == (1, 8, 8)

    deep = (rgb[..., 1].astype(np.uint16) * 257).astype(np.uint16)
    im16 = Image.fromarray(deep)
    assert im16.mode.startswith("I")
    np.testing.assert_array_equal(preprocess(im16, channels=1), rgb[None, ..., 1])


def test_grey_folder_gives_one_channel_and_options_apply(tmp_path):
    x = smooth_images(10, 12, 12, seed=6)[..., 0]
    for i, im in enumerate(x):
        Image.fromarray(im).save(tmp_path / f"{i}.bmp")
    spec = Spectrum.from_source(tmp_path)
    assert spec.channels == 1
    assert_same_spectrum(spec, Spectrum.from_array(x))
    assert Spectrum.from_source(tmp_path, channels=3).channels == 3
    assert Spectrum.from_source(tmp_path, size=8, crop="random").signal_shape == (8, 8)
    with pytest.raises(SpecschedError, match="do not apply to image folders"):
        open_source(tmp_path, segment=100)
    with pytest.raises(SpecschedError, match="crop must be"):
        open_source(tmp_path, crop="middle")


def test_jpeg_webp_tiff_are_read(tmp_path):
    x = smooth_images(3, 16, 16, seed=7)
    for i, fmt in enumerate(("JPEG", "WEBP", "TIFF")):
        Image.fromarray(x[i]).save(tmp_path / f"{i}.{fmt.lower()}", fmt)
    spec = Spectrum.from_source(tmp_path, strict=True)
    assert spec.n_samples == 3 and spec.meta["skipped"] == 0


# ------------------------------------------------------------------------------------- bad input
def test_corrupt_files_are_skipped_and_counted_or_fail_with_strict(images, tmp_path):
    _, x = images
    for i, im in enumerate(x[:8]):
        Image.fromarray(im).save(tmp_path / f"{i}.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    data = (tmp_path / "0.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    spec = Spectrum.from_source(tmp_path, batch_size=3)
    assert spec.meta["skipped"] == 2 and spec.meta["items"] == 10
    assert any("broken.png" in e for e in spec.meta["skipped_examples"])
    assert_same_spectrum(spec, Spectrum.from_array(x[:8]))
    with pytest.raises(SpecschedError, match=r"cannot read .*broken\.png.*--strict"):
        Spectrum.from_source(tmp_path, strict=True)


def test_mixed_sizes_need_size(tmp_path):
    Image.fromarray(smooth_images(1, 12, 12)[0]).save(tmp_path / "a.png")
    Image.fromarray(smooth_images(1, 12, 14)[0]).save(tmp_path / "b.png")
    with pytest.raises(SpecschedError, match=r"b\.png.*--size N"):
        Spectrum.from_source(tmp_path)
    assert Spectrum.from_source(tmp_path, size=10).signal_shape == (10, 10)


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "notes.txt").write_text("no data here")
    with pytest.raises(SpecschedError, match="holds no images"):
        Spectrum.from_source(tmp_path)
    with pytest.raises(SpecschedError, match="does not exist"):
        Spectrum.from_source(tmp_path / "nope")


def test_every_file_unreadable(tmp_path):
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(b"junk")
    with pytest.raises(SpecschedError, match=r"no sample could be read.*all 3 items"):
        Spectrum.from_source(tmp_path)


def test_nan_in_an_array_file(tmp_path):
    x = np.zeros((10, 4, 4))
    x[7, 1, 2] = np.nan
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(SpecschedError, match="NaN or Inf"):
        Spectrum.from_source(str(tmp_path / "x.npy"))


# ------------------------------------------------------------------------------------- audio
def _write(path, x, rate, subtype="DOUBLE"):
    import soundfile as sf

    sf.write(str(path), x, rate, subtype=subtype)


def test_audio_segments_mono_and_channels(tmp_path):
    import soundfile as sf

    rng = np.random.default_rng(8)
    stereo = [0.3 * rng.standard_normal((n, 2)) for n in (1000, 700, 1300)]
    (tmp_path / "sub").mkdir()
    names = ("a.wav", "b.flac", "sub/c.wav")
    for name, data in zip(names, stereo, strict=True):
        _write(tmp_path / name, data, 8000, "PCM_24" if name.endswith("flac") else "DOUBLE")
    read = [sf.read(str(tmp_path / name), always_2d=True)[0] for name in names]
    L = 256
    segs = np.concatenate(
        [r[: len(r) // L * L].T.reshape(2, -1, L).transpose(1, 0, 2) for r in read]
    )  # (k, 2, L)
    stereo_spec = Spectrum.from_source(tmp_path, segment=L, channels=2, batch_size=2)
    assert_same_spectrum(stereo_spec, Spectrum.from_array(segs, layout="NCL"))
    mono = Spectrum.from_source(tmp_path, segment=L)
    assert_same_spectrum(mono, Spectrum.from_array(segs.mean(1)))
    assert mono.meta["items"] == 3 and mono.n_samples == len(segs) == 3 + 2 + 5


def test_audio_resampling_matches_resample_poly(tmp_path):
    import soundfile as sf
    from scipy.signal import resample_poly

    rng = np.random.default_rng(9)
    _write(tmp_path / "lo.wav", rng.standard_normal(1500) * 0.2, 8000)
    _write(tmp_path / "hi.wav", rng.standard_normal(3000) * 0.2, 16000)
    with pytest.raises(SpecschedError, match=r"8000 Hz.*--sample-rate"):
        Spectrum.from_source(tmp_path, segment=200)
    lo = resample_poly(sf.read(str(tmp_path / "lo.wav"))[0], 2, 1)
    hi = sf.read(str(tmp_path / "hi.wav"))[0]
    segs = np.concatenate([s[: len(s) // 200 * 200].reshape(-1, 200) for s in (hi, lo)])
    got = Spectrum.from_source(tmp_path, segment=200, sample_rate=16000)
    assert_same_spectrum(got, Spectrum.from_array(segs))


def test_spectrum_of_a_sine_and_of_white_noise(tmp_path):
    L, k0, A = 128, 9, 0.5
    t = np.arange(L * 40)
    _write(tmp_path / "sine.wav", A * np.sin(2 * np.pi * k0 / L * t + 0.3), 16000)
    # every segment is the same sine (a fixed mean, not stationary: kind='auto' would take PCA);
    # the Fourier spectrum counts it as the variance of mode k0
    spec = Spectrum.from_source(tmp_path, segment=L, kind="fourier")
    S = spec.variances[:, 0]
    # X(k0) = A sqrt(L) / 2 e^{i phi} (orthonormal DFT): |X|^2 = A^2 L / 4, nothing elsewhere
    np.testing.assert_allclose(S[k0], A**2 * L / 4, rtol=1e-10)
    assert np.all(np.delete(S, k0) < 1e-20)

    sigma = 0.1
    noise = tmp_path / "noise"
    noise.mkdir()
    n_seg = 4000
    _write(noise / "n.wav", sigma * np.random.default_rng(10).standard_normal(L * n_seg), 16000)
    S = Spectrum.from_source(noise, segment=L).variances[:, 0]
    tol = 5 * np.sqrt(2.0 / n_seg)  # z = 5 relative standard errors of a real mode
    np.testing.assert_allclose(S / sigma**2, 1.0, atol=tol)


def test_audio_shorter_than_the_segment(tmp_path):
    _write(tmp_path / "short.wav", np.zeros(100), 8000)
    with pytest.raises(SpecschedError, match=r"all 1 items were skipped.*shorter than the segment"):
        Spectrum.from_source(tmp_path, segment=512)
    _write(tmp_path / "long.wav", np.random.default_rng(0).standard_normal(2048), 8000)
    spec = Spectrum.from_source(tmp_path, segment=512)
    assert spec.n_samples == 4 and spec.meta["skipped"] == 1
    with pytest.raises(SpecschedError, match="shorter than the segment"):
        Spectrum.from_source(tmp_path, segment=512, strict=True)
    with pytest.raises(SpecschedError, match="--segment"):
        Spectrum.from_source(tmp_path)  # whole files of different lengths


# ------------------------------------------------------------------------------------- latents
@pytest.fixture(scope="module")
def tiny_vae(tmp_path_factory):
    """A randomly initialised two-block AutoencoderKL (latents at half the image size)."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=(8, 8),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=32,
    )
    path = tmp_path_factory.mktemp("vae") / "vae"
    vae.save_pretrained(path)
    return path, vae.eval()


@pytest.mark.slow
def test_latent_spectrum_equals_hand_encoded_latents(images, tiny_vae):
    import torch

    root, x = images
    path, vae = tiny_vae
    spec = Spectrum.from_source(root / "png", vae=str(path), batch_size=len(x))
    pixels = torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0)
    with torch.no_grad():
        z = vae.encode(pixels).latent_dist.mean.double().numpy() * vae.config.scaling_factor
    assert spec.channels == 4 and spec.signal_shape == (6, 6)
    assert_same_spectrum(spec, Spectrum.from_array(z), rtol=1e-6)  # float32 VAE, two batchings

    two = Spectrum.from_source(root / "png", vae=str(path), batch_size=4, workers=2)
    assert_same_spectrum(two, spec, rtol=1e-6)  # forked workers run the same VAE
    scaled = Spectrum.from_source(root / "png", vae=str(path), vae_scaling_factor=2.0)
    ratio = (2.0 / vae.config.scaling_factor) ** 2
    np.testing.assert_allclose(scaled.variances, spec.variances * ratio, rtol=1e-5, atol=1e-12)
    with pytest.raises(SpecschedError, match="cannot load a diffusers AutoencoderKL"):
        open_source(root / "png", vae=str(root))
    with pytest.raises(SpecschedError, match="need vae=PATH"):
        open_source(root / "png", vae_scaling_factor=1.0)


@pytest.mark.slow
def test_cli_latent_spectrum(images, tiny_vae, tmp_path):
    import json
    import subprocess
    import sys

    root, _ = images
    path, _ = tiny_vae
    run = subprocess.run(
        [
            *(sys.executable, "-m", "specsched.cli", "spectrum", str(root / "png"), "--size", "8"),
            *("--vae", str(path), "--vae-scaling-factor", "0.5", "--json", "-o", "z.npz"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["channels"] == 4 and summary["signal_shape"] == [4, 4]
    assert "latent_dist.mean" in summary["scaling"]
    want = Spectrum.from_source(root / "png", size=8, vae=str(path), vae_scaling_factor=0.5)
    assert_same_spectrum(Spectrum.load(tmp_path / "z.npz"), want, rtol=1e-6)
