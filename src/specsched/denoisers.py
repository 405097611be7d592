"""Denoisers in the pixel domain, behind the one protocol ``denoise(x, alpha, s) -> x0_hat``.

:class:`GaussianDenoiser` is the exact posterior mean of a stationary Gaussian with the cross-
spectra of a :class:`~specsched.spectrum.Spectrum`; with it, the samplers of
:mod:`specsched.samplers` produce pixel-domain samples whose moments the closed-form response
predicts (a Monte-Carlo check of the theory on the user's own spectrum).
"""

from __future__ import annotations

import torch

from .errors import SpecschedError
from .spectrum import Spectrum

__all__ = ["GaussianDenoiser"]

Tensor = torch.Tensor


class GaussianDenoiser:
    """Exact ``E[x0 | x]`` for Gaussian data with a spectrum's covariance.

    Fourier spectra (stationary data): with ``X = FFT_ortho(x - alpha mu)`` per channel and the
    cross-spectrum ``Sigma(k)``::

        x0_hat = mu + IFFT( alpha Sigma(k) (alpha^2 Sigma(k) + s^2 I)^-1 X(k) )

    PCA spectra: with the eigenvectors ``V``, variances ``S`` and mean image ``m``::

        x0_hat = m + V diag(alpha S / (alpha^2 S + s^2)) V^T (x - alpha m)

    Parameters
    ----------
    spectrum : Spectrum
        A Fourier spectrum (it stores the cross-spectra) or a PCA spectrum with eigenvectors.

    Examples
    --------
    >>> import torch, specsched as ss
    >>> spec = ss.Spectrum.from_source("synthetic:powerlaw", n=200, size=8, channels=3)
    >>> den = ss.GaussianDenoiser(spec)
    >>> den(torch.zeros(2, 3, 8, 8, dtype=torch.float64), torch.tensor(0.5), torch.tensor(0.8)).shape
    torch.Size([2, 3, 8, 8])
    """

    def __init__(self, spectrum: Spectrum):
        self.signal_shape = spectrum.signal_shape
        self.channels = spectrum.channels
        self.pca: tuple[Tensor, Tensor, Tensor] | None = None
        if spectrum.kind == "pca" and spectrum.eigenvectors is not None:
            V = spectrum.eigenvectors
            self.pca = (
                torch.from_numpy(V),
                torch.from_numpy(spectrum.variances.astype("float64")),
                torch.from_numpy(spectrum.mean_image().ravel()),
            )
            return
        if spectrum.kind != "fourier" or spectrum.cross_spectrum is None:
            raise SpecschedError(
                "a Gaussian pixel denoiser needs a Fourier spectrum with cross-spectra or a PCA "
                "spectrum with eigenvectors: estimate the spectrum again with Spectrum.from_source"
            )
        self.sigma = torch.from_numpy(spectrum.cross_spectrum)  # (*F, C, C)
        self.mu = torch.from_numpy(spectrum.channel_means).to(torch.float64)
        self._axes = tuple(range(-len(self.signal_shape), 0))
        self._eye = torch.eye(self.channels, dtype=torch.complex128)

    def __call__(self, x: Tensor, alpha: Tensor, s: Tensor) -> Tensor:
        if self.pca is not None:
            V, S, m = self.pca
            a, s2 = float(alpha), float(s) ** 2
            coef = (x.reshape(x.shape[0], -1) - a * m) @ V
            return (m + (coef * (a * S / (a**2 * S + s2))) @ V.T).reshape(x.shape)
        mu = self.mu.reshape(1, -1, *([1] * len(self.signal_shape)))
        X = torch.fft.rfftn(x - alpha * mu, dim=self._axes, norm="ortho")  # (B, C, *F)
        a, s2 = complex(float(alpha)), complex(float(s) ** 2)
        G = torch.linalg.solve(a**2 * self.sigma + s2 * self._eye, a * self.sigma)  # (A^-1 B)
        # G = (a^2 Sigma + s^2 I)^-1 a Sigma, which equals a Sigma (a^2 Sigma + s^2 I)^-1
        Xf = X.movedim(1, -1).unsqueeze(-1)  # (B, *F, C, 1)
        Y = (G @ Xf).squeeze(-1).movedim(-1, 1)
        return mu + torch.fft.irfftn(Y, s=self.signal_shape, dim=self._axes, norm="ortho")
