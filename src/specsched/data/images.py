"""Image folders: files found, decoded and preprocessed (:mod:`specsched.data.imaging`) per item."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SpecschedError
from .imaging import GREY_MODES, Crop, check_image_options, preprocess
from .sources import FileSource

__all__ = ["IMAGE_EXTENSIONS", "ImageFolder", "find_files", "preprocess"]

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def find_files(root: str | Path, extensions: tuple[str, ...]) -> list[str]:
    """Files under ``root`` (recursively, following no symlinked folders) with one of
    ``extensions`` (case-insensitive), hidden files and folders skipped, in sorted order."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(
            os.path.join(folder, f)
            for f in files
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in extensions
        )
    return sorted(found)


def load_image(path: str, **options: Any) -> np.ndarray:
    """Decode and :func:`preprocess` one image file (``(C, H, W)`` uint8)."""
    from PIL import Image

    with Image.open(path) as im:
        return preprocess(im, **options)


@dataclass(frozen=True, eq=False)
class ImageFolder(FileSource):
    """The images under a folder (recursively), preprocessed as a diffusion pipeline does.

    Use :meth:`open`. The file list is made once, sorted, and shipped to the workers with the
    options; every worker reopens the files by path (on a Dask cluster they must be readable at
    the same path on every worker).
    """

    files: tuple[str, ...]
    name: str
    size: int | None = None
    crop: Crop = "center"
    channels: int = 3
    seed: int = 0

    shape_hint = "pass --size N to resize the short side of every image and crop"

    @classmethod
    def open(
        cls,
        root: str | Path,
        *,
        size: int | None = None,
        crop: Crop = "center",
        channels: int | None = None,
        seed: int = 0,
        files: list[str] | None = None,
    ) -> ImageFolder:
        """Scan ``root`` for images (PNG, JPEG, WebP, BMP, TIFF).

        Parameters
        ----------
        root : str or Path
            A folder, searched recursively.
        size : int, optional
            Resize (short side) and crop every image to ``size x size``; without it all images
            must have one size.
        crop : {"center", "random"}, default "center"
        channels : {3, 1, None}, default None
            3: RGB, 1: greyscale; None: those of the first readable image (1 for greyscale
            images, else 3).
        seed : int, default 0
            Seed of the random crops.
        files : list of str, optional
            The image files, if the folder has been scanned already.
        """
        size, crop, channels, seed = check_image_options(size, crop, channels, seed)
        files = find_files(root, IMAGE_EXTENSIONS) if files is None else files
        if not files:
            raise SpecschedError(
                f"folder {root} holds no images ({', '.join(IMAGE_EXTENSIONS)}): point at the "
                "folder of your training images"
            )
        if channels is None:
            channels = _first_channels(files)
        return cls(tuple(files), str(root), size, crop, channels, seed)

    def load_item(self, i: int) -> np.ndarray:
        return load_image(
            self.files[i],
            size=self.size,
            crop=self.crop,
            channels=self.channels,
            seed=self.seed,
            index=i,
        )[None]


def _first_channels(files: list[str]) -> int:
    """1 if the first image that opens is greyscale, else 3 (3 if none opens)."""
    from PIL import Image

    for path in files:
        try:
            with Image.open(path) as im:
                return 1 if im.mode in GREY_MODES else 3
        except Exception:
            continue
    return 3
