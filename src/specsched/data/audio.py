"""Audio folders: fixed-length segments of WAV, FLAC and OGG files, for the 1-D spectrum.

Each file is read with ``soundfile`` as float64 in [-1, 1] (full scale), mixed down to mono
(``channels=1``, the default) or kept with its channels (``channels=C``: every file must have
``C``; the spectrum then holds the ``C x C`` cross-spectrum of each frequency), resampled to
``sample_rate`` with ``scipy.signal.resample_poly`` (polyphase, Kaiser window) when the file's rate
differs, and cut into non-overlapping segments of ``segment`` samples (the rest is dropped). The
samples are the segments: the spectrum is that of DESIGN §2 on signals of shape ``(segment,)``.

A file shorter than one segment gives no samples: it is skipped and counted like an unreadable
file (``strict=True`` fails on it). A file is read whole, so the memory a worker needs grows with
the longest file, not with the number of files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SpecschedError, check_int
from .images import find_files
from .sources import FileSource

__all__ = ["AUDIO_EXTENSIONS", "AudioFolder"]

AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg")


class TooShort(Exception):
    """A file shorter than one segment (skipped and counted, not fatal)."""


@dataclass(frozen=True, eq=False)
class AudioFolder(FileSource):
    """The audio files under a folder, as fixed-length segments. Use :meth:`open`."""

    files: tuple[str, ...]
    name: str
    sample_rate: int
    segment: int | None
    channels: int = 1
    resample: bool = True

    shape_hint = "pass --segment N to cut fixed-length segments"

    @classmethod
    def open(
        cls,
        root: str | Path,
        *,
        sample_rate: int | None = None,
        segment: int | None = None,
        channels: int | None = None,
        files: list[str] | None = None,
    ) -> AudioFolder:
        """Scan ``root`` (recursively) for WAV, FLAC and OGG files.

        Parameters
        ----------
        root : str or Path
        sample_rate : int, optional
            Resample every file to this rate (Hz); None: all files must have the rate of the
            first one.
        segment : int, optional
            Segment length in samples (at ``sample_rate``); None: every file is one sample and
            all must have one length.
        channels : int, optional
            1 (default): mix down to mono; ``C``: keep the files' ``C`` channels.
        files : list of str, optional
            The audio files, if the folder has been scanned already.
        """
        import soundfile as sf

        for name, value, hint in (
            ("sample_rate", sample_rate, " (--sample-rate HZ)"),
            ("segment", segment, " (--segment SAMPLES)"),
            ("channels", channels, " (--channels 1 for mono, or the files' channel count)"),
        ):
            if value is not None:
                check_int(name, value, 1, hint)
        files = find_files(root, AUDIO_EXTENSIONS) if files is None else files
        if not files:
            raise SpecschedError(
                f"folder {root} holds no audio files ({', '.join(AUDIO_EXTENSIONS)}): point at "
                "your audio data"
            )
        resample = sample_rate is not None
        if sample_rate is None:
            for path in files:
                try:
                    sample_rate = int(sf.info(path).samplerate)
                    break
                except Exception:
                    continue
            else:
                sample_rate = 0  # nothing readable: every item fails and the estimator says so
        return cls(tuple(files), str(root), sample_rate, segment, channels or 1, resample)

    def load_item(self, i: int) -> np.ndarray:
        import soundfile as sf
        from scipy.signal import resample_poly

        path = self.files[i]
        data, rate = sf.read(path, dtype="float64", always_2d=True)  # (frames, channels)
        if self.channels == 1:
            data = data.mean(axis=1, keepdims=True)
        elif data.shape[1] != self.channels:
            raise SpecschedError(
                f"{path} has {data.shape[1]} channels, not {self.channels}: pass --channels 1 "
                "to mix down to mono, or give files with one channel count"
            )
        if rate != self.sample_rate:
            if not self.resample:
                raise SpecschedError(
                    f"{path} is sampled at {rate} Hz, the first file at {self.sample_rate} Hz: "
                    "pass --sample-rate HZ to resample every file"
                )
            g = math.gcd(int(self.sample_rate), int(rate))
            data = resample_poly(data, self.sample_rate // g, rate // g, axis=0)
        x = data.T  # (C, frames)
        if self.segment is None:
            return x[None]
        k = x.shape[1] // self.segment
        if k == 0:
            raise TooShort(
                f"{x.shape[1]} samples, shorter than the segment of {self.segment}: pass a "
                "shorter --segment"
            )
        return x[:, : k * self.segment].reshape(self.channels, k, self.segment).transpose(1, 0, 2)
