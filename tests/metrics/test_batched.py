"""Batched metrics equal the scalar ones row by row, and give the same bootstrap results."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import numpy as np
import pytest

from evalsuite.metrics import batched as B
from evalsuite.metrics import classification as C
from evalsuite.metrics import ood as O
from evalsuite.metrics import stats as S

SEEDS = range(8)


def _rowwise(fn: Callable[..., float], *arrays: np.ndarray) -> np.ndarray:
    return np.array([fn(*(a[r] for a in arrays)) for r in range(arrays[0].shape[0])])


def _calib_data(seed: int, b: int = 6, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Confidences with heavy ties: rounded, many exactly on bin edges (incl. 0 and 1), some constant rows."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 200)) if n is None else n
    kind = seed % 3
    if kind == 0:
        conf = np.round(rng.uniform(size=(b, n)), 1)
    elif kind == 1:
        conf = np.round(rng.uniform(size=(b, n)), 2)
    else:
        edges = np.linspace(0.0, 1.0, 16)
        conf = rng.choice(np.r_[edges, 0.0, 1.0, 0.5], size=(b, n))
    conf[0] = conf[0, 0]  # an all-equal row
    correct = rng.uniform(size=(b, n)) < conf
    return conf, correct


def _score_data(seed: int, b: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """ID / OOD scores with heavy ties within and across the two sides, plus constant and tiny rows."""
    rng = np.random.default_rng(100 + seed)
    n, m = int(rng.integers(1, 150)), int(rng.integers(1, 150))
    dec = 1 + seed % 2
    s_id = np.round(rng.normal(0.0, 1.0, size=(b, n)), dec)
    s_ood = np.round(rng.normal(0.5, 1.0, size=(b, m)), dec)
    s_id[0], s_ood[0] = 0.3, 0.3  # everything tied
    s_ood[1] = s_id[1, 0]  # OOD all tied with one ID score
    if seed % 4 == 3:
        s_id[2, 0], s_ood[2, -1] = np.inf, -np.inf
        s_id[3] = -0.0  # -0.0 ties with 0.0
        s_ood[3, 0] = 0.0
    return s_id, s_ood


# ------------------------------------------------------------------------------------------------- mean


@pytest.mark.parametrize("dtype", [np.float64, np.float32, bool])
def test_mean_b_exact(dtype: type) -> None:
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(7, 10001)) > 0) if dtype is bool else rng.normal(size=(7, 10001)).astype(dtype)
    assert np.array_equal(B.mean_b(x), _rowwise(lambda r: float(np.mean(r)), x))
    assert B.mean_b(x).dtype == np.float64


# ------------------------------------------------------------------------------------------- calibration


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_bins", [1, 10, 15])
def test_calibration_b_exact(seed: int, n_bins: int) -> None:
    conf, correct = _calib_data(seed)
    for scalar, batched in [
        (C.ece, B.ece_b),
        (C.ece_adaptive, B.ece_adaptive_b),
        (C.mce, B.mce_b),
        (functools.partial(C.mce, scheme="adaptive"), functools.partial(B.mce_b, scheme="adaptive")),
    ]:
        want = _rowwise(lambda c, k, f=scalar: f(c, k, n_bins), conf, correct)
        assert np.array_equal(batched(conf, correct, n_bins), want), (scalar, n_bins)


def test_calibration_b_small_and_large() -> None:
    # N < n_bins (empty adaptive bins), N == 1, 0/1 correctness as floats, and a large N.
    for n in (1, 7, 15, 16, 3001):
        conf, correct = _calib_data(n, b=4, n=n)
        correct = correct.astype(np.float64)
        for scalar, batched in [(C.ece, B.ece_b), (C.ece_adaptive, B.ece_adaptive_b), (C.mce, B.mce_b)]:
            assert np.array_equal(batched(conf, correct), _rowwise(scalar, conf, correct)), (scalar, n)


def test_uniform_bin_edges_exact() -> None:
    # Every value next to every edge, where floor(c * n_bins) and the linspace edges can disagree.
    for n_bins in (3, 7, 10, 15, 49):
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        near = np.unique(np.clip(np.r_[edges, np.nextafter(edges, 2.0), np.nextafter(edges, -1.0)], 0.0, 1.0))
        conf = np.tile(near, (3, 1))
        correct = np.random.default_rng(n_bins).uniform(size=conf.shape) < 0.5
        assert np.array_equal(
            B.ece_b(conf, correct, n_bins), _rowwise(functools.partial(C.ece, n_bins=n_bins), conf, correct)
        )
        assert np.array_equal(
            B.mce_b(conf, correct, n_bins), _rowwise(functools.partial(C.mce, n_bins=n_bins), conf, correct)
        )


def test_stable_argsort_rows() -> None:
    rng = np.random.default_rng(3)
    for x in (np.round(rng.uniform(size=(5, 999)), 1), rng.uniform(size=(3, 50)), np.zeros((2, 40))):
        assert np.array_equal(B._stable_argsort_rows(x), np.argsort(x, axis=1, kind="stable"))


def test_calibration_b_validation() -> None:
    conf, correct = _calib_data(0)
    with pytest.raises(ValueError, match=r"confidences must have shape \[b, N\] with b, N > 0"):
        B.ece_b(conf[None], correct[None])
    with pytest.raises(ValueError, match=r"correct must have shape \(6, 170\)"):
        B.ece_b(conf, correct[:, :-1])
    with pytest.raises(ValueError, match=r"confidences must lie in \[0, 1\]"):
        B.ece_b(conf + 1.0, correct)
    with pytest.raises(ValueError, match="unknown binning scheme 'nope'; expected 'uniform' or 'adaptive'"):
        B.mce_b(conf, correct, scheme="nope")
    with pytest.raises(ValueError, match="n_bins must be a positive integer"):
        B.ece_adaptive_b(conf, correct, 0)


# --------------------------------------------------------------------------------------------------- OOD


@pytest.mark.parametrize("seed", SEEDS)
def test_ood_b_equal(seed: int) -> None:
    s_id, s_ood = _score_data(seed)
    assert np.array_equal(B.auroc_b(s_id, s_ood), _rowwise(O.auroc, s_id, s_ood))
    for tpr in (0.95, 0.5, 0.07, 1.0, 1e-9):
        got = B.fpr_at_tpr_b(s_id, s_ood, tpr)
        assert np.array_equal(got, _rowwise(lambda i, o, t=tpr: O.fpr_at_tpr(i, o, t), s_id, s_ood)), tpr
    assert np.array_equal(B.fpr95_b(s_id, s_ood), _rowwise(O.fpr95, s_id, s_ood))
    # Average precision: the same sum in another order, so equal to a few ulps.
    np.testing.assert_allclose(
        B.aupr_out_b(s_id, s_ood), _rowwise(O.aupr_out, s_id, s_ood), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(B.aupr_in_b(s_id, s_ood), _rowwise(O.aupr_in, s_id, s_ood), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 2), (100, 3)])
def test_ood_b_single_positive_and_tiny(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    n, m = shape
    s_id = rng.integers(0, 3, size=(6, n)).astype(np.float64)
    s_ood = rng.integers(0, 3, size=(6, m)).astype(np.float64)
    assert np.array_equal(B.auroc_b(s_id, s_ood), _rowwise(O.auroc, s_id, s_ood))
    assert np.array_equal(B.fpr95_b(s_id, s_ood), _rowwise(O.fpr95, s_id, s_ood))
    np.testing.assert_allclose(
        B.aupr_out_b(s_id, s_ood), _rowwise(O.aupr_out, s_id, s_ood), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(B.aupr_in_b(s_id, s_ood), _rowwise(O.aupr_in, s_id, s_ood), rtol=0, atol=1e-12)


def test_ood_b_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Several row blocks, including a block of a single row, give the same answer as one block.
    s_id, s_ood = _score_data(5, b=7)
    want = [f(s_id, s_ood) for f in (B.auroc_b, B.aupr_in_b, B.aupr_out_b, B.fpr95_b)]
    monkeypatch.setattr(B, "_BLOCK_ELEMENTS", 1)
    got = [f(s_id, s_ood) for f in (B.auroc_b, B.aupr_in_b, B.aupr_out_b, B.fpr95_b)]
    for w, g in zip(want, got):
        assert np.array_equal(w, g)


def test_ood_b_validation() -> None:
    s_id, s_ood = _score_data(0)
    bad = s_id.copy()
    bad[1, 0] = np.nan
    for fn in (B.auroc_b, B.aupr_in_b, B.aupr_out_b, B.fpr95_b):
        with pytest.raises(ValueError, match="scores_id contains NaN"):
            fn(bad, s_ood)
        with pytest.raises(ValueError, match="scores_id and scores_ood need the same number of rows"):
            fn(s_id[:2], s_ood)
        with pytest.raises(ValueError, match=r"scores_id must have shape \[b, N\] with b, N > 0"):
            fn(s_id[None], s_ood[None])
    with pytest.raises(ValueError, match=r"tpr must lie in \(0, 1\]"):
        B.fpr_at_tpr_b(s_id, s_ood, 0.0)


# ---------------------------------------------------------------------------------------------- registry


def test_plain_1d_inputs_give_floats() -> None:
    conf, correct = _calib_data(2)
    s_id, s_ood = _score_data(2)
    for fn, scalar, args in [
        (B.ece_b, C.ece, (conf[1], correct[1])),
        (B.mce_b, C.mce, (conf[1], correct[1])),
        (B.auroc_b, O.auroc, (s_id[2], s_ood[2])),
        (B.fpr95_b, O.fpr95, (s_id[2], s_ood[2])),
        (B.mean_b, np.mean, (conf[1],)),
    ]:
        got = fn(*args)
        assert isinstance(got, float) and got == scalar(*args)


def test_registry() -> None:
    assert set(B.BATCHED) >= {"ece", "ece_adaptive", "mce", "auroc", "aupr_in", "aupr_out", "fpr95", "mean"}
    for fn in (C.ece, C.ece_adaptive, C.mce, O.auroc, O.aupr_in, O.aupr_out, O.fpr95):
        assert B.batched_for(fn) is B.BATCHED[fn.__name__]
    assert B.batched_for(np.mean) is B.mean_b

    def _mean(x: np.ndarray) -> float:
        return float(np.mean(x))

    assert B.batched_for(_mean) is B.mean_b
    assert B.batched_for(lambda c, k: C.ece(c, k, 10)) is None
    assert B.batched_for(C.brier) is None
    part = B.batched_for(functools.partial(C.ece, n_bins=10))
    conf, correct = _calib_data(1)
    assert np.array_equal(part(conf, correct), B.ece_b(conf, correct, 10))


# ---------------------------------------------------------------------------------------------- end to end


def _e2e_data(seed: int = 0, n: int = 400, m: int = 700) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    conf = np.round(rng.beta(5, 1, size=n), 2)
    return {
        "conf": conf,
        "correct": rng.uniform(size=n) < conf,
        "conf_b": np.clip(conf + np.round(rng.normal(0, 0.05, size=n), 2), 0.0, 1.0),
        "id": np.round(rng.normal(size=n), 1),
        "ood": np.round(rng.normal(0.7, size=m), 1),
        "id_b": np.round(rng.normal(size=n), 1),
        "ood_b": np.round(rng.normal(0.9, size=m), 1),
    }


def _close(x: object, y: object) -> None:
    np.testing.assert_allclose(np.asarray(x, dtype=float), np.asarray(y, dtype=float), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["ece", "ece_adaptive", "mce"])
def test_bootstrap_calibration_end_to_end(name: str) -> None:
    d = _e2e_data()
    scalar, batched = getattr(C, name), B.BATCHED[name]
    arrays = [d["conf"], d["correct"]]
    assert S.bootstrap_ci(scalar, arrays, n_boot=60, seed=3) == S.bootstrap_ci(
        batched, arrays, n_boot=60, seed=3, batched=True
    )
    kw = {"n_boot": 60, "seed": 4}
    want = S.paired_bootstrap(scalar, arrays, [d["conf_b"], d["correct"]], **kw)
    assert S.paired_bootstrap(batched, arrays, [d["conf_b"], d["correct"]], batched=True, **kw) == want


def test_bootstrap_mean_end_to_end() -> None:
    d = _e2e_data()
    x = d["correct"].astype(np.float64)
    assert S.bootstrap_ci(np.mean, [x], n_boot=80) == S.bootstrap_ci(B.mean_b, [x], n_boot=80, batched=True)


@pytest.mark.parametrize("name", ["auroc", "aupr_in", "aupr_out", "fpr95"])
def test_bootstrap_ood_end_to_end(name: str) -> None:
    d = _e2e_data(1)
    scalar, batched = getattr(O, name), B.BATCHED[name]
    kw = {"n_boot": 50, "seed": 7}
    want = S.bootstrap_ci_two_sample(scalar, [d["id"]], [d["ood"]], **kw)
    got = S.bootstrap_ci_two_sample(batched, [d["id"]], [d["ood"]], batched=True, **kw)
    _close(got, want)
    args = ([d["id"]], [d["ood"]], [d["id_b"]], [d["ood_b"]])
    want_p = S.paired_bootstrap_two_sample(scalar, *args, **kw)
    got_p = S.paired_bootstrap_two_sample(batched, *args, batched=True, **kw)
    assert got_p.keys() == want_p.keys()
    for key in want_p:
        _close(got_p[key], want_p[key])
    if name in ("auroc", "fpr95"):  # bit-identical metrics give bit-identical results
        assert got == want and got_p == want_p


# --------------------------------------------------------------------------------------------------- timing


def test_timing_print(capsys: pytest.CaptureFixture[str]) -> None:
    """Speedup of the batched bootstrap on CIFAR-sized data (printed with -s, not asserted)."""
    rng = np.random.default_rng(0)
    n, m, n_boot = 10000, 26000, 200
    conf = rng.beta(5, 1, size=n)
    correct = rng.uniform(size=n) < conf
    s_id, s_ood = rng.normal(size=n), rng.normal(1.0, size=m)
    lines = []
    for name, mod in [("ece", C), ("ece_adaptive", C), ("auroc", O), ("aupr_out", O), ("fpr95", O)]:
        times = []
        for fn, batched in ((getattr(mod, name), False), (B.BATCHED[name], True)):
            t0 = time.perf_counter()
            if mod is C:
                S.bootstrap_ci(fn, [conf, correct], n_boot=n_boot, batched=batched)
            else:
                S.bootstrap_ci_two_sample(fn, [s_id], [s_ood], n_boot=n_boot, batched=batched)
            times.append(time.perf_counter() - t0)
        lines.append(
            f"{name:13s} scalar {times[0]:6.2f}s  batched {times[1]:6.2f}s  x{times[0] / times[1]:.1f}"
        )
    with capsys.disabled():
        print(f"\nbootstrap N={n} M={m} n_boot={n_boot}\n" + "\n".join(lines))
