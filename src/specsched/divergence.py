"""Distances between the generated and the data distribution, mode by mode (DESIGN §2).

Both are Gaussian and diagonal in the same basis, so each objective is a weighted sum over modes of
a function of ``(S, m)`` (data variance and mean) and ``(P, mu)`` (generated variance and mean):

- ``W2^2 = sum_k w_k [(sqrt S_k - sqrt P_k)^2 + (mu_k - m_k)^2]``
- ``KL(gen || data) = 1/2 sum_k w_k [P/S - 1 - ln(P/S) + (mu - m)^2 / S]``
- ``KL(data || gen) = 1/2 sum_k w_k [S/P - 1 - ln(S/P) + (mu - m)^2 / P]``

Modes with zero data variance (constant pixels) have an infinite KL whatever the sampler does; the
KL objectives leave them out (:func:`zero_variance_mask` says which), W2 keeps them.

Names, one spelling per layer: an objective is *chosen* by ``"w2"``, ``"kl"`` (gen || data) or
``"kl-data"`` (data || gen), in Python (``objective=``) and on the command line (``--objective``);
its *value* is named ``w2``, ``kl_gen_data`` or ``kl_data_gen``: the attributes of
:class:`~specsched.response.Response`, the JSON keys and the rows of every results table
(:mod:`specsched.report`).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

from ._arrays import zero_variance_mask  # the one definition, shared with Spectrum.summary
from .errors import SpecschedError

__all__ = ["OBJECTIVES", "Objective", "per_mode", "total", "zero_variance_mask"]

Objective = Literal["w2", "kl", "kl-data"]
OBJECTIVES: tuple[str, ...] = get_args(Objective)
Tensor = torch.Tensor
_TINY = 1e-300


def per_mode(objective: Objective, S: Tensor, m: Tensor, P: Tensor, mu: Tensor) -> Tensor:
    """Unweighted contribution of each mode to ``objective`` (multiply by ``w`` and sum)."""
    if objective == "w2":
        return (S.sqrt() - P.clamp_min(_TINY).sqrt()) ** 2 + (mu - m) ** 2
    keep = ~zero_variance_mask(S)
    Sk = torch.where(keep, S, torch.ones_like(S))
    Pk = torch.where(keep, P.clamp_min(_TINY), torch.ones_like(P))
    d2 = torch.where(keep, (mu - m) ** 2, torch.zeros_like(m))
    if objective == "kl":
        r = Pk / Sk
        return 0.5 * (r - 1 - torch.log(r) + d2 / Sk)
    if objective == "kl-data":
        r = Sk / Pk
        return 0.5 * (r - 1 - torch.log(r) + d2 / Pk)
    raise SpecschedError(f"unknown objective {objective!r}: use one of {', '.join(OBJECTIVES)}")


def total(objective: Objective, S: Tensor, w: Tensor, m: Tensor, P: Tensor, mu: Tensor) -> Tensor:
    """``sum_k w_k * per_mode(...)_k``."""
    return (w * per_mode(objective, S, m, P, mu)).sum()
