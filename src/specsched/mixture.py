"""Gaussian mixtures and their exact posterior-mean (oracle) denoiser.

A :class:`GaussianMixture` with full covariances is a non-Gaussian data model whose denoiser is
still available in closed form. :class:`MixtureDenoiser` implements the denoiser protocol of
:mod:`specsched.samplers`, ``denoise(x, alpha, s) -> x0_hat``, as the exact
``E[x0 | x = alpha x0 + s eps]``: with it, a sampler's error comes from the schedule and the
discretisation only, never from the denoiser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import SpecschedError

__all__ = ["GaussianMixture", "MixtureDenoiser"]

Tensor = torch.Tensor


@dataclass(frozen=True)
class GaussianMixture:
    """A mixture of ``K`` full-covariance Gaussians on flattened samples of shape ``shape``.

    Parameters
    ----------
    weights : ndarray, shape (K,)
        Mixture weights, non-negative, summing to one.
    means : ndarray, shape (K, d)
        Component means, ``d = prod(shape)``.
    covs : ndarray, shape (K, d, d)
        Component covariances, symmetric positive definite.
    shape : tuple of int
        The shape of one sample, e.g. ``(1, 16, 16)`` or ``(d,)``.

    Examples
    --------
    >>> import numpy as np
    >>> gm = GaussianMixture(np.array([0.5, 0.5]), np.array([[-1.0], [1.0]]),
    ...                      np.array([[[0.1]], [[0.1]]]), (1,))
    >>> gm.sample(3, seed=0).shape
    (3, 1)
    """

    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, dtype=np.float64)
        mu = np.asarray(self.means, dtype=np.float64)
        cov = np.asarray(self.covs, dtype=np.float64)
        shape = tuple(int(n) for n in self.shape)
        if w.ndim != 1 or mu.ndim != 2 or cov.ndim != 3:
            raise SpecschedError(
                "a Gaussian mixture needs weights (K,), means (K, d) and covs (K, d, d)"
            )
        k, d = mu.shape
        if w.shape[0] != k or cov.shape != (k, d, d):
            raise SpecschedError(
                f"inconsistent mixture shapes: weights {w.shape}, means {mu.shape}, covs {cov.shape}"
            )
        if math.prod(shape) != d:
            raise SpecschedError(f"sample shape {shape} does not hold d = {d} values")
        if np.any(w < 0) or not np.isclose(w.sum(), 1.0, rtol=0, atol=1e-8):
            raise SpecschedError("mixture weights must be non-negative and sum to one")
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "means", mu)
        object.__setattr__(self, "covs", cov)
        object.__setattr__(self, "shape", shape)

    @property
    def n_components(self) -> int:
        """The number of components ``K``."""
        return int(self.weights.shape[0])

    @property
    def dim(self) -> int:
        """The flattened dimension ``d``."""
        return int(self.means.shape[1])

    def mean(self) -> np.ndarray:
        """The mixture mean ``sum_k w_k mu_k``, shape ``(d,)``."""
        return self.weights @ self.means

    def covariance(self) -> np.ndarray:
        """The mixture covariance ``sum_k w_k (Sigma_k + mu_k mu_k^T) - m m^T``, shape ``(d, d)``."""
        m = self.mean()
        second = np.einsum("k,kij->ij", self.weights, self.covs)
        second += np.einsum("k,ki,kj->ij", self.weights, self.means, self.means)
        return second - np.outer(m, m)

    @classmethod
    def fit(
        cls, x: np.ndarray, k: int = 16, *, seed: int = 0, reg: float = 1e-6
    ) -> GaussianMixture:
        """Fit a full-covariance mixture by EM (:class:`sklearn.mixture.GaussianMixture`).

        Parameters
        ----------
        x : ndarray, shape (n, *shape)
            Training samples; each is flattened.
        k : int, default 16
            Number of components.
        seed : int, default 0
            ``random_state`` of the EM initialisation.
        reg : float, default 1e-6
            ``reg_covar``, added to each covariance's diagonal.

        Returns
        -------
        GaussianMixture
        """
        from sklearn.mixture import GaussianMixture as _SkGMM

        x = np.asarray(x, dtype=np.float64)
        if x.ndim < 2:
            raise SpecschedError("fit needs samples of shape (n, *shape)")
        if not 1 <= k <= x.shape[0]:
            raise SpecschedError(f"k must lie in [1, n = {x.shape[0]}] (got {k})")
        flat = x.reshape(x.shape[0], -1)
        gm = _SkGMM(n_components=k, covariance_type="full", random_state=seed, reg_covar=reg)
        gm.fit(flat)
        w = gm.weights_ / gm.weights_.sum()
        return cls(w, gm.means_, gm.covariances_, tuple(x.shape[1:]))

    def save(self, path: str | Path, *, float32: bool = False) -> None:
        """Write the mixture to an ``.npz`` file (atomically).

        Parameters
        ----------
        path : str or Path
            The file.
        float32 : bool, default False
            Store means and covariances in float32 (half the size). The mixture read back is
            then a slightly different, equally exact model: :meth:`load` checks that its
            covariances are still positive definite.
        """
        from ._io import atomic_path

        dtype = np.float32 if float32 else np.float64
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    weights=self.weights,
                    means=self.means.astype(dtype),
                    covs=self.covs.astype(dtype),
                    shape=np.array(self.shape, dtype=np.int64),
                )

    @classmethod
    def load(cls, path: str | Path) -> GaussianMixture:
        """Read a mixture written by :meth:`save` (as float64).

        Raises
        ------
        SpecschedError
            If the file is missing, not such a file, or a covariance is not positive definite.
        """
        try:
            with np.load(path) as z:
                w, mu, cov, shape = z["weights"], z["means"], z["covs"], z["shape"]
        except FileNotFoundError:
            raise SpecschedError(f"mixture file {path} does not exist") from None
        except (OSError, KeyError, ValueError) as exc:
            raise SpecschedError(
                f"{path} is not a mixture file written by GaussianMixture.save ({exc})"
            ) from None
        cov = cov.astype(np.float64)
        if np.any(np.linalg.eigvalsh(cov)[:, 0] <= 0):
            raise SpecschedError(f"{path} holds a covariance that is not positive definite")
        w = w.astype(np.float64)
        return cls(w / w.sum(), mu.astype(np.float64), cov, tuple(int(n) for n in shape))

    def sample(self, n: int, *, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """Draw ``n`` exact samples.

        Parameters
        ----------
        n : int
            Number of samples.
        seed : int or Generator, optional
            Seed of :func:`numpy.random.default_rng`.

        Returns
        -------
        ndarray, shape (n, *shape)
        """
        rng = np.random.default_rng(seed)
        comp = rng.choice(self.n_components, size=n, p=self.weights)
        chol = np.linalg.cholesky(self.covs)  # (K, d, d)
        z = rng.standard_normal((n, self.dim))
        x = np.empty((n, self.dim))
        for k in range(self.n_components):  # one matrix product per component, O(n d) memory
            idx = np.flatnonzero(comp == k)
            x[idx] = self.means[k] + z[idx] @ chol[k].T
        return x.reshape(n, *self.shape)


class MixtureDenoiser:
    """Exact ``E[x0 | x]`` for Gaussian-mixture data, ``x = alpha x0 + s eps``.

    With ``A_k = alpha^2 Sigma_k + s^2 I``, the component posteriors and means are::

        r_k(x) ∝ w_k N(x; alpha mu_k, A_k)
        E_k(x) = mu_k + alpha Sigma_k A_k^-1 (x - alpha mu_k)
        x0_hat = sum_k r_k(x) E_k(x)

    Each covariance is diagonalised once, ``Sigma_k = U_k diag(lambda_k) U_k^T``; at any level
    ``A_k`` is then diagonal in the same basis (``alpha^2 lambda_k + s^2``), so a call costs two
    batched matrix products per component and no factorisation, whatever the level. The
    responsibilities are computed in log space. At ``alpha = 0`` the estimate is the mixture mean.

    Parameters
    ----------
    mixture : GaussianMixture
        The data model.

    Examples
    --------
    >>> import numpy as np, torch
    >>> gm = GaussianMixture(np.array([0.5, 0.5]), np.array([[-1.0], [1.0]]),
    ...                      np.array([[[0.1]], [[0.1]]]), (1,))
    >>> den = MixtureDenoiser(gm)
    >>> den(torch.zeros(2, 1, dtype=torch.float64), torch.tensor(0.5), torch.tensor(0.8))
    tensor([[0.],
            [0.]], dtype=torch.float64)
    """

    def __init__(self, mixture: GaussianMixture):
        self.mixture = mixture
        self.shape = mixture.shape
        self.dim = mixture.dim
        with np.errstate(divide="ignore"):
            self._log_w = torch.from_numpy(np.log(mixture.weights))  # (K,)
        self._mu = torch.from_numpy(mixture.means)  # (K, d)
        lam, vecs = np.linalg.eigh(mixture.covs)
        self._lam = torch.from_numpy(np.clip(lam, 0.0, None))  # (K, d)
        self._U = torch.from_numpy(vecs)  # (K, d, d), columns are eigenvectors
        self._mean = torch.from_numpy(mixture.mean())  # (d,)

    def _rotated(self, x: Tensor, a: float, sv: float) -> tuple[Tensor, Tensor, Tensor]:
        """Residuals ``U_k^T (x - alpha mu_k)`` (K, B, d), log-likelihoods (K, B), variances."""
        if a * a + sv * sv == 0.0:
            raise SpecschedError("alpha and s cannot both be zero")
        y = self._flatten(x)
        r = y.unsqueeze(0) - a * self._mu.unsqueeze(1)  # (K, B, d)
        rp = torch.bmm(r, self._U)  # (K, B, d)
        var = a * a * self._lam + sv * sv  # (K, d)
        if bool((var <= 0).any()):
            raise SpecschedError(
                f"alpha^2 Sigma_k + s^2 I is singular at alpha={a}, s={sv}; regularise the "
                "mixture covariances (fit(..., reg=...))"
            )
        maha = (rp * rp / var.unsqueeze(1)).sum(-1)  # (K, B)
        logdet = torch.log(var).sum(-1)  # (K,)
        loglik = self._log_w.unsqueeze(1) - 0.5 * (
            maha + logdet.unsqueeze(1) + self.dim * math.log(2.0 * math.pi)
        )
        return rp, loglik, var

    def responsibilities(self, x: Tensor, alpha: Tensor | float, s: Tensor | float) -> Tensor:
        """The component posteriors ``r_k(x)``, shape ``(B, K)``.

        Parameters
        ----------
        x : Tensor, shape (B, *shape)
        alpha, s : scalar Tensor or float
        """
        a, sv = float(alpha), float(s)
        if a == 0.0:
            y = self._flatten(x)
            return torch.exp(self._log_w).expand(y.shape[0], -1).clone()
        _, loglik, _ = self._rotated(x, a, sv)
        return torch.softmax(loglik, dim=0).T

    def _flatten(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.shape and tuple(x.shape[1:]) != (self.dim,):
            raise SpecschedError(
                f"the denoiser expects x of shape (B, *{self.shape}) (got {tuple(x.shape)})"
            )
        return x.reshape(x.shape[0], self.dim).to(torch.float64)

    def __call__(self, x: Tensor, alpha: Tensor | float, s: Tensor | float) -> Tensor:
        """The posterior mean ``x0_hat``, shaped like ``x``.

        Parameters
        ----------
        x : Tensor, shape (B, *shape) or (B, d)
            The noisy state ``alpha x0 + s eps``, float64.
        alpha, s : scalar Tensor or float
            The level.

        Returns
        -------
        Tensor
            ``E[x0 | x]``, same shape as ``x``.
        """
        a, sv = float(alpha), float(s)
        if a == 0.0:
            y = self._flatten(x)
            return self._mean.expand(y.shape[0], -1).reshape(x.shape).clone()
        rp, loglik, var = self._rotated(x, a, sv)
        resp = torch.softmax(loglik, dim=0)  # (K, B)
        gain = (a * self._lam / var).unsqueeze(1)  # (K, 1, d): alpha Sigma A^-1 in the eigenbasis
        weighted = resp.unsqueeze(-1) * gain * rp  # (K, B, d)
        out = torch.bmm(weighted, self._U.transpose(1, 2)).sum(0) + resp.T @ self._mu
        return out.reshape(x.shape)

    denoise = __call__
