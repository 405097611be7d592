"""Markov samplers' moments composed from one-step maps equal the N-step run (issue 14).

``output_moments`` evaluates the samplers marked ``markov`` (the DDIM family) by running the sampler
one step from each level to the next, batched over the steps, and composing the affine maps; the
general path runs all N steps on ``2 + N`` coefficient rows. Both must agree to rounding, with
gradients, for deterministic and stochastic samplers, every process, batches of schedules and
traces. The general path is the same code with the ``markov`` flag off.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from specsched import samplers
from specsched.heuristics import heuristic_schedule
from specsched.levels import LevelRange
from specsched.response import output_moments

MARKOV = [name for name, spec in samplers.SAMPLERS.items() if spec.markov]
RANGES = {
    "vp": LevelRange.discrete("linear", 1000),
    "ve": LevelRange.continuous("ve"),
    "flow": LevelRange.continuous("flow"),
}


def test_the_ddim_family_is_marked_markov():
    assert set(MARKOV) == {"ddim", "ddpm", "euler", "euler_ancestral", "flow_euler"}
    assert all(samplers.SAMPLERS[n].fn is samplers.ddim for n in MARKOV)


def _levels(process, steps):
    name = {"vp": "karras", "ve": "karras", "flow": "flow_shift"}[process]
    lr = RANGES[process]
    a = [heuristic_schedule(name, steps, lr), heuristic_schedule("logsnr", steps, lr)]
    alpha = torch.from_numpy(np.stack([s.alpha for s in a], 1))  # a batch of two schedules
    s = torch.from_numpy(np.stack([s.s for s in a], 1))
    return alpha.requires_grad_(), s.requires_grad_()


@pytest.mark.parametrize("steps", [1, 2, 7, 40])
@pytest.mark.parametrize(
    "sampler, options",
    [
        ("ddim", {}),
        ("ddim", {"eta": 0.3}),
        ("ddpm", {}),
        ("euler", {}),
        ("euler_ancestral", {}),
        ("flow_euler", {}),
    ],
)
def test_composed_one_step_maps_equal_the_n_step_run(monkeypatch, sampler, options, steps):
    process = "flow" if sampler == "flow_euler" else ("ve" if "euler" in sampler else "vp")
    rng = np.random.default_rng(steps)
    S = torch.from_numpy(np.exp(rng.uniform(-8, 3, 64)))
    m = torch.from_numpy(np.where(np.arange(64) < 3, rng.normal(size=64), 0.0))

    def run() -> tuple[dict[str, torch.Tensor], tuple[torch.Tensor, ...]]:
        alpha, s = _levels(process, steps)
        out = output_moments(
            S, m, alpha, s, process=process, sampler=sampler, trace=True, **options
        )
        loss = (out["var"].sqrt() + out["mean"]).sum()
        return {k: v.detach() for k, v in out.items()}, torch.autograd.grad(loss, [alpha, s])

    composed, g_composed = run()
    general = dataclasses.replace(samplers.SAMPLERS[sampler], markov=False)
    monkeypatch.setitem(samplers.SAMPLERS, sampler, general)
    reference, g_reference = run()

    assert set(composed) == set(reference)
    for key in ("var", "transfer", "trace_var"):
        np.testing.assert_allclose(composed[key], reference[key], rtol=1e-12, atol=0, err_msg=key)
    for key in ("mean", "trace_mean"):
        np.testing.assert_allclose(
            composed[key], reference[key], rtol=1e-12, atol=1e-13, err_msg=key
        )
    for a, b in zip(g_composed, g_reference, strict=True):
        # NaN where the general path has NaN too (flow's first level t = 1 has alpha = 0)
        np.testing.assert_array_equal(torch.isnan(a), torch.isnan(b))
        scale = float(np.nanmax(np.abs(b.numpy())))
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12 * scale)


@pytest.mark.parametrize("pinned", [False, True])
@pytest.mark.parametrize("sampler, objective", [("ddim", "w2"), ("ddpm", "kl")])
def test_polish_moves_equal_full_evaluations(sampler, objective, pinned):
    """The polish's incremental move values (``optimize._MarkovMoves``) equal full N-step
    evaluations of the moved schedules, while the schedule changes under the cache: one level
    at a time (an accepted move), several at once, the first and the last level."""
    from specsched.optimize import _MarkovMoves, _Problem

    rng = np.random.default_rng(1)
    M = 48
    S = np.exp(rng.uniform(-8, 3, M))
    m = np.where(np.arange(M) < 3, rng.normal(size=M), 0.0)
    w = rng.uniform(1, 2, M)
    lr = RANGES["vp"]
    table = lr.train.log_snr
    prob = _Problem(S, w, m, lr, 6, sampler, objective, {}, table[999] if pinned else None)
    moves = _MarkovMoves(prob, table)

    def full(ts: np.ndarray) -> np.ndarray:
        lam = np.concatenate([table[ts], np.full((len(ts), 1), np.inf)], 1).T
        with torch.no_grad():
            return prob.value_of_levels(torch.from_numpy(np.ascontiguousarray(lam))).numpy()

    t = np.array([999, 800, 620, 400, 150, 20])
    checked = 0
    for step in range(40):
        i = int(rng.integers(1 if pinned else 0, len(t)))
        hi = t[i - 1] - 1 if i > 0 else 999
        lo = t[i + 1] + 1 if i + 1 < len(t) else 0
        values = np.unique(rng.integers(lo, hi + 1, 5))
        got = moves(t, i, values)
        cands = np.repeat(t[None], len(values), 0)
        cands[:, i] = values
        np.testing.assert_allclose(got, full(cands), rtol=1e-12, err_msg=f"query {step}")
        checked += len(values)
        if step % 5 == 4:  # several levels at once
            t = np.sort(rng.choice(np.arange(1, 999), len(t), replace=False))[::-1]
            if pinned:
                t[0] = 999
        else:  # a candidate of the query, as the polish accepts one
            t = cands[int(rng.integers(len(values)))]
    assert checked > 100
