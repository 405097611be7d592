"""Gaussian mixtures and their exact posterior-mean (oracle) denoiser.

A :class:`GaussianMixture` with full covariances is a non-Gaussian data model whose denoiser is
still available in closed form. :class:`MixtureDenoiser` implements the denoiser protocol of
:mod:`specsched.samplers`, ``denoise(x, alpha, s) -> x0_hat``, as the exact
``E[x0 | x = alpha x0 + s eps]``: with it, a sampler's error comes from the schedule and the
discretisation only, never from the denoiser.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

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
        x = self.means[comp] + np.einsum("nij,nj->ni", chol[comp], z)
        return x.reshape(n, *self.shape)


class MixtureDenoiser:
    """Exact ``E[x0 | x]`` for Gaussian-mixture data, ``x = alpha x0 + s eps``.

    With ``A_k = alpha^2 Sigma_k + s^2 I``, the component posteriors and means are::

        r_k(x) ∝ w_k N(x; alpha mu_k, A_k)
        E_k(x) = mu_k + alpha Sigma_k A_k^-1 (x - alpha mu_k)
        x0_hat = sum_k r_k(x) E_k(x)

    The responsibilities are computed in log space from the Cholesky factor of ``A_k``. The
    factorisations are cached per level ``(alpha, s)``, since a sampler calls the denoiser at the
    same few levels over and over. At ``alpha = 0`` the estimate is the mixture mean.

    Parameters
    ----------
    mixture : GaussianMixture
        The data model.
    cache_size : int, default 256
        The most levels whose factorisations are kept (least recently used go first).

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

    def __init__(self, mixture: GaussianMixture, *, cache_size: int = 256):
        self.mixture = mixture
        self.shape = mixture.shape
        self.dim = mixture.dim
        self.cache_size = int(cache_size)
        with np.errstate(divide="ignore"):
            self._log_w = torch.from_numpy(np.log(mixture.weights))  # (K,)
        self._mu = torch.from_numpy(mixture.means)  # (K, d)
        self._sigma = torch.from_numpy(mixture.covs)  # (K, d, d)
        self._mean = torch.from_numpy(mixture.mean())  # (d,)
        self._eye = torch.eye(self.dim, dtype=torch.float64)
        self._cache: OrderedDict[tuple[float, float], tuple[Tensor, Tensor, Tensor]] = OrderedDict()

    def _level(self, a: float, s: float) -> tuple[Tensor, Tensor, Tensor]:
        """Cholesky factors ``L_k`` of ``A_k``, ``log det A_k`` and ``A_k^-1 alpha Sigma_k``."""
        key = (a, s)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        A = a * a * self._sigma + s * s * self._eye  # (K, d, d)
        L, info = torch.linalg.cholesky_ex(A)
        if bool((info != 0).any()):
            raise SpecschedError(
                f"alpha^2 Sigma_k + s^2 I is not positive definite at alpha={a}, s={s}; "
                "regularise the mixture covariances (fit(..., reg=...))"
            )
        logdet = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)  # (K,)
        gain_t = torch.cholesky_solve(a * self._sigma, L)  # A^-1 alpha Sigma = (alpha Sigma A^-1)^T
        out = (L, logdet, gain_t)
        self._cache[key] = out
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    def responsibilities(self, x: Tensor, alpha: Tensor | float, s: Tensor | float) -> Tensor:
        """The component posteriors ``r_k(x)``, shape ``(B, K)``.

        Parameters
        ----------
        x : Tensor, shape (B, *shape)
        alpha, s : scalar Tensor or float
        """
        a, sv = float(alpha), float(s)
        y = self._flatten(x)
        if a == 0.0:
            return torch.exp(self._log_w).expand(y.shape[0], -1).clone()
        L, logdet, _ = self._level(a, sv)
        r = y.unsqueeze(1) - a * self._mu  # (B, K, d)
        return torch.softmax(self._log_lik(r, L, logdet), dim=1)

    def _flatten(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.shape and tuple(x.shape[1:]) != (self.dim,):
            raise SpecschedError(
                f"the denoiser expects x of shape (B, *{self.shape}) (got {tuple(x.shape)})"
            )
        return x.reshape(x.shape[0], self.dim).to(torch.float64)

    def _log_lik(self, r: Tensor, L: Tensor, logdet: Tensor) -> Tensor:
        """``log w_k + log N(x; alpha mu_k, A_k)`` from the residuals ``r = x - alpha mu_k``."""
        z = torch.linalg.solve_triangular(L, r.unsqueeze(-1), upper=False).squeeze(-1)
        maha = (z * z).sum(-1)  # (B, K)
        return self._log_w - 0.5 * (maha + logdet + self.dim * math.log(2.0 * math.pi))

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
        y = self._flatten(x)
        if a == 0.0:
            return self._mean.expand(y.shape[0], -1).reshape(x.shape).clone()
        if a * a + sv * sv == 0.0:
            raise SpecschedError("alpha and s cannot both be zero")
        L, logdet, gain_t = self._level(a, sv)
        r = y.unsqueeze(1) - a * self._mu  # (B, K, d)
        resp = torch.softmax(self._log_lik(r, L, logdet), dim=1)  # (B, K)
        comp = self._mu + torch.einsum("bki,kij->bkj", r, gain_t)  # (B, K, d)
        out = torch.einsum("bk,bkd->bd", resp, comp)
        return out.reshape(x.shape)

    denoise = __call__
