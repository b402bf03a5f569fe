"""Adaptive sampling: choose a device's next measurements from what the predictor still gets wrong, and stop once
it is accurate enough.

Each step fits a fast transfer (the ensemble's linear members on the source devices' latencies and the cost
features, no network fine-tuning: milliseconds) on the device's results so far and cross-validates it. The
out-of-fold log errors give the accuracy estimate: the ranking of the candidate pool by the model's predictions
against those predictions plus errors drawn from the out-of-fold ones, many times over, so the estimate is of
the SRCC over the pool (where a selected, spread-out sample would flatter it) and its spread is the
uncertainty. A gross error (a table's outlier) is drawn for any candidate at its rate, not for its neighbours.

What to measure is a design, not a hunt for large errors (which pulled the linear fit toward outliers): the
pool is cut into one stratum per pick by predicted latency, so the results span the whole range the SRCC is
over, and in each stratum the pick is the candidate whose features (the source devices' latencies and the cost
features, the linear members' inputs) the results so far pin down least: the largest ridge prediction variance,
updated after each pick (a greedy D-optimal design). The first batch is the same design before any result, with
the sources' mean (or MACs) standing in for the prediction.

Before a device stops on its target, one batch is measured at random from a check set the design never picks
(2% of the pool): a uniform sample of the candidates, whose errors say whether the model is as good off the
design's points as on them; they rescale the design's errors in the estimate from then on.

``latbench predictor eval --sampler adaptive`` runs this against a dataset's device as the oracle; an adaptive
collector campaign runs it on the fleet's results (``latbench.catalog.PredictorAcquisition``).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from latbench.predictor import members
from latbench.predictor.errors import PredictorError
from latbench.predictor.features import codes, cost_features
from latbench.predictor.predictor import DEFAULT_METHOD, ENSEMBLE, Predictor, note_echo
from latbench.predictor.samplers import encode
from latbench.predictor.sources import SourceTable
from latbench.predictor.stats import folds_of, zscore_stats
from latbench.protocol import AcquisitionStop
from latbench.ranking import spearman

BATCH = 5
FOLDS = 5
DRAWS = 40
"""Simulated rankings behind one accuracy estimate."""
ESTIMATE_POOL = 2000
"""Candidates the estimate ranks (a seeded subset of a larger pool): enough for a stable SRCC, cheap to rank."""
SCORED_POOL = 3000
"""Unmeasured candidates scored per step (a seeded subset of a larger pool)."""
NEIGHBOURS = 3
MIN_RESULTS = 4
"""Results before the first step: cross-validating needs each fold's fit to keep 3."""
MIN_TARGET_RESULTS = 10
"""Results before the estimate may reach the target (then ``VERIFY`` check results confirm it, so a target stop
comes at 15 at the earliest). From 5 the estimate was off by 0.13 on average (ND, FD, FA); from 10, with no check,
stops leaned high where 10 results fit too well, and the floor had been 15 (docs/benchmarks.md)."""
VERIFY = 5
"""Random check results a target stop needs: once the estimate first reaches the target, the next batch is drawn at
random from the check set (``Acquisition.check``), and the device stops only if the estimate, their errors in,
still reaches it. On all nine tasks target stops within 0.02 82% -> 87%, 0.05 or more too high 8 -> 2 of about
90, for 3.5 more results a device (against a 15-result floor and no check; docs/benchmarks.md)."""
CHECK_SHARE = 0.02
"""Share of the pool set aside for random checks (in a small pool, about ``4 * BATCH`` candidates, at most a
quarter): the design never picks them, so a result there is a uniform draw from the pool, not a design point at
its edge."""
CHECK_PRIOR = 2.0
"""Weight, in check results, of the design's own (leverage-corrected) errors when the check results rescale them."""
DESIGN_PRIOR = 1.0
"""Ridge penalty of the design's variance (z-scored features): as if each feature had been seen once."""
LEVERAGE_PRIOR = 10.0
"""Ridge penalty of the leverage correction's variances (chosen on the development tasks ND, FD, FA)."""
GROSS = 3.0
"""An out-of-fold error more than this many robust standard deviations from the errors' median is gross (the usual
outlier rule, not tuned): a table's measurement outlier, or a trait the fit has not seen, which says less about its
neighbours in the encoding or its place in the design than about how often a candidate is hit (``_gross``). On all
nine tasks, target stops within 0.02 87% -> 94%, none 0.05 or more too high (2 before), budget stops 38% -> 48%,
for 2.5 more results a device (docs/benchmarks.md, "Gross errors")."""


def fast_members() -> list[str]:
    """The ensemble's members less the network (fine-tuning takes minutes), read from the one ``ENSEMBLE`` list at
    each call, so a campaign's model and a transfer's cannot drift apart."""
    return [m for m in ENSEMBLE if m != "network"]


SHORT_OF_TARGET = "the target was not reached, so the estimate never settled: it is rough, as wide as its ± says"
"""The caveat of a ``budget`` or ``exhausted`` stop: in the benchmark (docs/benchmarks.md, "Adaptive sampling")
such estimates were off by 0.033 on average (their spread 0.045), against 0.007 at a verified ``target`` stop."""
UNVERIFIED = (
    "the target was reached with {checks} of {verify} random check results (no room was left for more): "
    "unchecked, the estimate may be too high (in the benchmark 3 of 11 such stops were truly below the target, "
    "1 of 40 verified ones)"
)
"""The caveat of a ``target`` stop short of ``VERIFY`` check results: without them the estimate rests on the
design's own points, which the model fits best. Measured with a budget of 15 (docs/benchmarks.md, "The verification
batch"): target stops with no check within 0.02 of the truth in 73% of runs, verified ones in 95%."""


@dataclass(frozen=True)
class Estimate:
    """The accuracy estimate after ``samples`` results (``checks`` of them random check results, which say how
    good the model is off the design's points): SRCC over the candidate pool and its spread."""

    samples: int
    srcc: float
    srcc_std: float
    checks: int = 0


@dataclass(frozen=True)
class Step:
    """One acquisition step: the estimate from the results so far, the model it describes, and what to measure
    next (empty once ``stop`` says why not)."""

    estimate: Estimate
    model: Predictor
    next: list[str]
    stop: AcquisitionStop | None
    caveat: str | None = None
    """Why the stopped estimate is less sure than its ± says, if it is (``stop_caveat``)."""


def stop_caveat(stop: AcquisitionStop, checks: int) -> str | None:
    """The caveat of a device stopped for ``stop`` with ``checks`` check results: short of its target, the
    estimate is rough (``SHORT_OF_TARGET``); on its target short of ``VERIFY`` checks, unverified (``UNVERIFIED``)."""
    if stop != "target":
        return SHORT_OF_TARGET
    return UNVERIFIED.format(checks=checks, verify=VERIFY) if checks < VERIFY else None


def stop_reason(estimate: Estimate | None, measured: int, target_srcc: float, budget: int) -> AcquisitionStop | None:
    """``target`` once at least ``MIN_TARGET_RESULTS`` are measured and the estimated SRCC reaches
    ``target_srcc`` with one standard deviation to spare (a young estimate is both high and uncertain),
    ``budget`` once ``measured`` reaches ``budget``, else None. ``Acquisition.step`` stops a device on ``target``
    only once ``VERIFY`` random check results are in too."""
    if estimate is not None and measured >= MIN_TARGET_RESULTS and estimate.srcc - estimate.srcc_std >= target_srcc:
        return "target"
    if measured >= budget:
        return "budget"
    return None


def check_plan(target_srcc: float, budget: int, batch: int) -> None:
    """Refuse a target outside (0, 1], a batch below 1, or a budget under one batch or under 4 (cross-validating
    needs 4 results)."""
    if not 0 < target_srcc <= 1:
        raise PredictorError(f"the target SRCC must be in (0, 1], got {target_srcc}")
    if batch < 1:
        raise PredictorError(f"the batch must be at least 1, got {batch}")
    if budget < max(batch, 4):
        raise PredictorError(f"the budget must be at least the batch and at least {MIN_RESULTS}, got {budget}")


def unverified_budget(budget: int) -> str | None:
    """Why a ``budget`` under ``MIN_TARGET_RESULTS + VERIFY`` cannot give a verified target stop, else None: said
    when the plan is made, since the stop's caveat would only say it once the results are in."""
    if budget >= MIN_TARGET_RESULTS + VERIFY:
        return None
    return (
        f"a budget of {budget} leaves no room for the {VERIFY} random check results that confirm a target stop "
        f"(the estimate may reach the target from {MIN_TARGET_RESULTS} results): a device that reaches it stops "
        f"unverified; {MIN_TARGET_RESULTS + VERIFY} or more leaves room"
    )


def source_free(space: str, archs: Sequence[str]) -> Predictor:
    """A pretrained stand-in for a space without source devices: cost features alone (the ensemble's cost members),
    z-scored over ``archs``."""
    arch_codes = codes(space, list(archs))
    empty = SourceTable(space, (), arch_codes[:0], np.zeros((0, 0), dtype=np.float32))
    return Predictor(
        space=space,
        method=DEFAULT_METHOD,
        source=empty,
        cost_stats=zscore_stats(cost_features(space, arch_codes)),
        source_stats=(np.zeros(0), np.ones(0)),
        info={"pretrained_on": []},
    )


def fast_transfer(pretrained: Predictor, device: str, x: members.Inputs, y: np.ndarray) -> Predictor:
    """The ensemble's fast members fitted on the device's ``y`` (log ms) at inputs ``x``: a complete predictor,
    saved and loaded like any other, that needs no network."""
    names = [m for m in fast_members() if x.has_sources or not members.MEMBERS[m][2]]
    out = copy.copy(pretrained)
    out.method, out.target, out.target_row = DEFAULT_METHOD, device, None
    out.network, out.network_config = None, None
    out.head = members.fit_ensemble(x, y, names)
    out.info = {**pretrained.info, "target": device, "samples": len(y), "adaptive": True}
    note_echo(out, x, np.exp(y))
    return out


class Acquisition:
    """The acquisition over one candidate pool of one space, for any number of devices: ``first`` is what every
    device measures first, ``step`` what one device measures next given its results."""

    def __init__(self, pretrained: Predictor, candidates: Sequence[str], batch: int = BATCH, seed: int = 0) -> None:
        if len(candidates) < 4:
            raise PredictorError(f"adaptive sampling needs at least 4 candidates, got {len(candidates)}")
        self.pretrained = pretrained
        self.space = pretrained.space
        self.candidates = list(candidates)
        self.batch = batch
        self.seed = seed
        self.codes = codes(self.space, self.candidates)
        self.position = {a: i for i, a in enumerate(self.candidates)}
        self.inputs = pretrained.inputs(self.codes)
        self.encoding = encode(self.space, self.codes)
        self.design = _design_features(self.inputs)
        """Per candidate, the linear members' inputs, centred over the pool: the space the design spreads over."""
        rng = np.random.default_rng(seed)
        size = min(len(self.candidates), ESTIMATE_POOL)
        self.estimate_rows = np.sort(rng.choice(len(self.candidates), size=size, replace=False))
        share = min(max(CHECK_SHARE, 4 * BATCH / len(self.candidates)), 0.25)
        self.check = _uniform_keys(self.candidates, seed) < share
        """Per candidate, whether it is in the check set the design leaves out: decided by the architecture alone
        (and the seed), so a pool that grows (a campaign's own architectures added, a collector restarted) keeps
        every result on the side it was measured on."""

    def first(self) -> list[str]:
        """One batch (at least ``MIN_RESULTS``) where every device starts: the design with nothing measured, the
        strata cut by the sources' mean latency (or MACs, for a space without sources)."""
        n = min(max(self.batch, MIN_RESULTS), len(self.candidates))
        pool = self._designable(self._scored_pool(np.arange(len(self.candidates)), np.random.default_rng(self.seed)), n)
        x = self.inputs.rows(pool)
        proxy = x.sources.mean(axis=1) if x.has_sources else x.costs[:, 0]
        picked = self._design(np.empty(0, dtype=np.int64), pool, proxy, n)
        return [self.candidates[i] for i in picked]

    def rows(self, archs: Sequence[str]) -> np.ndarray:
        missing = [a for a in archs if a not in self.position]
        if missing:
            raise PredictorError(f"{len(missing)} measured architecture(s) are not candidates, e.g. {missing[0]}")
        return np.array([self.position[a] for a in archs], dtype=np.int64)

    def step(
        self, device: str, archs: Sequence[str], latency_ms: Sequence[float] | np.ndarray, target_srcc: float = np.inf,
        budget: int | None = None, exclude: Sequence[str] = (),
    ) -> Step:  # fmt: skip
        """Fit, estimate and pick the next batch from the device's results (``archs`` measured ``latency_ms``),
        never one of ``exclude`` (those whose measurement failed, say).

        Stops (no next batch) once the estimate reaches ``target_srcc`` (never, by default) with ``VERIFY`` check
        results among the results (short of them, the next batch is those checks, drawn at random from the check
        set), or once the results reach ``budget`` (the pool's size, by default); the last batch is cut to what the
        budget leaves.
        """
        latency = np.asarray(latency_ms, dtype=np.float64)
        if len(archs) != len(latency) or len(latency) < MIN_RESULTS:
            raise PredictorError(
                f"a step needs at least {MIN_RESULTS} results, one per architecture; got {len(latency)}"
            )
        if not np.all(np.isfinite(latency)) or np.any(latency <= 0):
            raise PredictorError("measured latencies must be finite and positive")
        rows = self.rows(archs)
        y = np.log(latency)
        model = fast_transfer(self.pretrained, device, self.inputs.rows(rows), y)
        checked = self.check[rows]
        raw = y - self._out_of_fold(rows, y)
        gross = _gross(raw)
        residual = _checked(raw, self._leverage(rows), checked, gross)
        predicted = members.predict_ensemble(self.inputs, model.head)
        checks = int(checked.sum())
        estimate = self._estimate(rows, predicted, residual, gross, checks)
        budget = len(self.candidates) if budget is None else budget
        stop = stop_reason(estimate, len(y), target_srcc, budget)
        taken = np.r_[rows, [self.position[a] for a in exclude if a in self.position]]
        free = np.setdiff1d(np.arange(len(self.candidates)), taken)
        if stop == "target":  # verify first; with no budget or check candidate left, stop unverified
            free_checks = free[self.check[free]]
            wanted = min(VERIFY - checks, budget - len(y), len(free_checks))
            if wanted > 0:
                picked = np.random.default_rng([self.seed, len(rows), 2]).choice(free_checks, wanted, replace=False)
                return Step(estimate, model, [self.candidates[i] for i in picked], None)
        if stop is None and not len(free):
            stop = "exhausted"
        if stop is not None:
            return Step(estimate, model, [], stop, stop_caveat(stop, checks))
        k = min(self.batch, budget - len(y), len(free))
        pool = self._designable(self._scored_pool(free, np.random.default_rng(self.seed + len(rows))), k)
        picked = self._design(rows, pool, members.predict_ensemble(self.inputs.rows(pool), model.head), k)
        return Step(estimate, model, [self.candidates[i] for i in picked], None)

    def _out_of_fold(self, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each result predicted by the fast transfer fitted on the other folds (leave-one-out below ``FOLDS``)."""
        out = np.empty(len(y))
        for held, kept in folds_of(len(y), FOLDS):
            head = fast_transfer(self.pretrained, "", self.inputs.rows(rows[kept]), y[kept]).head
            out[held] = members.predict_ensemble(self.inputs.rows(rows[held]), head)
        return out

    def _leverage(self, rows: np.ndarray) -> np.ndarray:
        """Per result, how much smaller a typical candidate's error is than its out-of-fold one: the square root
        of (1 + the pool's mean ridge prediction variance given every result) over (1 + the result's variance
        given the other folds).

        The design measures the edges of the feature space, where a fit without the point extrapolates, so
        its raw out-of-fold errors paint the pool as harder than it is (the estimate leaned low by 0.03-0.06
        on the development tasks without this).
        """
        z = self.design
        prior = LEVERAGE_PRIOR * np.eye(z.shape[1])
        pool = z[self.estimate_rows]
        typical = float(_variance(pool, np.linalg.inv(prior + z[rows].T @ z[rows])).mean())
        held_variance = np.empty(len(rows))
        for held, kept in folds_of(len(rows), FOLDS):
            held_variance[held] = _variance(z[rows[held]], np.linalg.inv(prior + z[rows[kept]].T @ z[rows[kept]]))
        return np.sqrt((1 + typical) / (1 + held_variance))

    def _estimate(
        self, rows: np.ndarray, predicted: np.ndarray, residual: np.ndarray, gross: np.ndarray, checks: int
    ) -> Estimate:
        """SRCC of the pool's predictions against themselves plus out-of-fold errors, over ``DRAWS`` draws; its
        spread is the draws' combined with ``check_spread`` (the draws alone covered the truth within one
        standard deviation in 35% of the benchmark's runs).

        Each candidate's error is drawn from its ``NEIGHBOURS`` nearest results in the encoding space, not from
        all of them: errors drawn from anywhere painted the pool as harder than it was (the design's edge points
        are the farthest from a typical candidate). A ``gross`` error is no one's neighbour: it hits any candidate,
        at the rate it hit the results (drawn from the nearest, the two or three a table's outliers leave among
        the results reached a few candidates each: OFA's titan_rtx_1, one measurement in ten 25% high, stopped
        0.11 too high twice in four runs). Each draw first resamples the results (bootstrap), so the spread also
        covers how few of them there are.
        """
        rng = np.random.default_rng(self.seed + len(rows))
        pool = self.estimate_rows
        p = predicted[pool]
        distance = _distances(self.encoding[pool], self.encoding[rows])
        k = min(NEIGHBOURS, len(rows))
        scores = []
        for _ in range(DRAWS):
            drawn = rng.choice(len(rows), size=len(rows))
            outliers = drawn[gross[drawn]]
            kept = np.unique(drawn[~gross[drawn]] if len(outliers) < len(drawn) else drawn)
            near = min(k, len(kept))
            nearest = kept[np.argpartition(distance[:, kept], near - 1, axis=1)[:, :near]]
            pick = nearest[np.arange(len(pool)), rng.integers(near, size=len(pool))]
            if len(outliers):
                hit = rng.random(len(pool)) < len(outliers) / len(drawn)
                pick[hit] = outliers[rng.integers(len(outliers), size=int(hit.sum()))]
            scores.append(spearman(p, p + residual[pick]))
        values = np.nan_to_num(np.array(scores, dtype=np.float64), nan=0.0)
        srcc = float(values.mean())
        return Estimate(len(rows), srcc, float(np.hypot(values.std(), check_spread(srcc, len(rows)))), checks)

    def _scored_pool(self, free: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The candidates a batch is picked from: ``free``, or a seeded subset of ``SCORED_POOL`` of them."""
        return free if len(free) <= SCORED_POOL else rng.choice(free, size=SCORED_POOL, replace=False)

    def _designable(self, pool: np.ndarray, k: int) -> np.ndarray:
        """``pool`` less the check set, unless that leaves fewer than ``k`` (a nearly exhausted pool)."""
        kept = pool[~self.check[pool]]
        return kept if len(kept) >= k else pool

    def _design(self, rows: np.ndarray, pool: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
        """``k`` of ``pool``, one per stratum of ``predicted``: in each, the one of largest ridge prediction
        variance given ``rows`` and the picks before it."""
        z = self.design
        inverse = np.linalg.inv(DESIGN_PRIOR * np.eye(z.shape[1]) + z[rows].T @ z[rows])
        chosen: list[int] = []
        for stratum in np.array_split(np.argsort(predicted), k):
            best = int(pool[stratum][int(np.argmax(_variance(z[pool[stratum]], inverse)))])
            chosen.append(best)
            u = inverse @ z[best]
            inverse -= np.outer(u, u) / (1 + z[best] @ u)
        return np.array(chosen, dtype=np.int64)


def _uniform_keys(archs: Sequence[str], seed: int) -> np.ndarray:
    """A number in [0, 1) per architecture, uniform and fixed by the architecture and ``seed`` alone."""
    digests = (hashlib.blake2b(f"{seed}:{a}".encode(), digest_size=8).digest() for a in archs)
    return np.array([int.from_bytes(d, "big") / 2.0**64 for d in digests])


def _gross(residual: np.ndarray) -> np.ndarray:
    """Per result, whether its error lies more than ``GROSS`` robust standard deviations (1.4826 times the median
    absolute deviation) from the errors' median."""
    deviation = np.abs(residual - np.median(residual))
    scale = 1.4826 * float(np.median(deviation))
    return deviation > GROSS * scale if scale > 0 else np.zeros(len(residual), dtype=bool)


def _checked(residual: np.ndarray, leverage: np.ndarray, checked: np.ndarray, gross: np.ndarray) -> np.ndarray:
    """Out-of-fold errors as the estimate draws them: each scaled by its leverage correction, and the design
    results' then rescaled so their mean square matches the random check results' (``checked``), as far as
    ``CHECK_PRIOR`` lets that few: the check results are uniform draws from the pool, so where the model is worse
    on a typical candidate than on the design's points, they are what says so. ``gross`` errors are kept as they
    are (an outlier is no extrapolation) and stay out of both mean squares: one or two among the design's, and five
    checks without one, had scaled every other error down by a third."""
    r = residual * leverage
    body = ~gross
    design = r[~checked & body]
    typical = float(np.mean(design**2)) if len(design) else 0.0
    checks = checked & body
    if checks.any() and typical > 0:
        ratio = (float(np.sum(r[checks] ** 2)) + CHECK_PRIOR * typical) / ((checks.sum() + CHECK_PRIOR) * typical)
        r = np.where(checked, r, r * np.sqrt(ratio))
    return np.where(gross, residual, r)


def check_spread(srcc: float, samples: int) -> float:
    """The standard deviation of the SRCC of ``samples`` random architectures around the pool's ``srcc`` (Fieller's
    approximation: ``atanh`` of it has variance 1.06 / (n - 3)): what checking the model on that many held-back
    results would be off by, and the estimate, made from as many, comes out about as close.

    Measured: checking a stopped model on as many fresh random architectures as it measured (about 34) lands
    within 0.02 of its true SRCC in 62% of runs, the adaptive estimate in 66% (docs/benchmarks.md).
    """
    if samples <= 3:
        return 1.0
    return float((1 - min(abs(srcc), 1.0) ** 2) * np.sqrt(1.06 / (samples - 3)))


def _design_features(x: members.Inputs) -> np.ndarray:
    """The ridge members' columns (z-scored source log-latencies, unknown ones at the mean, and cost features),
    centred: the fit's intercept is free."""
    z = np.c_[np.nan_to_num(x.sources), x.costs]
    return z - z.mean(axis=0)


def _variance(z: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """Each row's ``z @ inverse @ z``: its ridge prediction variance, in units of the noise's."""
    return np.einsum("ij,jk,ik->i", z, inverse, z)


def _distances(points: np.ndarray, of: np.ndarray) -> np.ndarray:
    """Squared euclidean distance from each of ``points`` to each of ``of``."""
    return ((points[:, None, :] - of[None]) ** 2).sum(-1)


def pretrained_for(space: str, candidates: Sequence[str]) -> Predictor:
    """The sources a new device's fast transfer reads: every device of the space's built-in dataset (latencies
    only, no network), or for a space without one its cost features alone (``source_free``)."""
    from latbench import datasets
    from latbench.predictor.predictor import pretrain_on

    name = datasets.registry.BUILTIN_OF_SPACE.get(space)
    if name is None:
        return source_free(space, candidates)
    ds = datasets.load(name)
    return pretrain_on(ds, ds.device_names, "ridge")


def candidates_for(space: str, include: Sequence[str] = ()) -> list[str]:
    """The architectures an adaptive campaign picks from (``samplers.candidate_archs``: for a space too large to
    list without a built-in dataset, its seeded samples), with ``include`` added where missing."""
    from latbench.predictor.samplers import candidate_archs

    found = candidate_archs(space)
    known = set(found)
    return found + [a for a in dict.fromkeys(include) if a not in known]


def acquisition_for(space: str, batch: int = BATCH, include: Sequence[str] = ()) -> Acquisition:
    """The acquisition of an adaptive campaign in ``space``: its candidates (with ``include``), its sources."""
    from latbench.spaces import get_space

    space = get_space(space).name
    candidates = candidates_for(space, get_space(space).canonical_many(include))
    return Acquisition(pretrained_for(space, candidates), candidates, batch)


def first_batch(space: str, batch: int = BATCH) -> list[str]:
    """What every device of an adaptive campaign measures first (``Acquisition.first``)."""
    return acquisition_for(space, batch).first()


Oracle = Callable[[list[str]], np.ndarray]
"""Measures architectures on the device: latency in ms, one per architecture."""


def table_oracle(archs: Sequence[str], latency_ms: np.ndarray) -> Oracle:
    """An oracle that looks the latencies up in a dataset's (``archs``, ``latency_ms``) of the device."""
    position = {a: i for i, a in enumerate(archs)}
    return lambda wanted: latency_ms[[position[a] for a in wanted]]


@dataclass(frozen=True)
class Run:
    """A finished adaptive run: what was measured, in order, with the learning curve and why it stopped."""

    archs: list[str]
    latency_ms: np.ndarray
    curve: list[Estimate]
    stop: AcquisitionStop
    model: Predictor
    caveat: str | None = None
    """Why the run's estimate or model is less than it seems, if it is: the stop's (``stop_caveat``), and the
    model's own (``Predictor.caveat``) when the device's results are a source device's table read back."""


def run(acquisition: Acquisition, device: str, oracle: Oracle, budget: int, target_srcc: float | None = None) -> Run:
    """Measure ``acquisition.first()``, then step until it stops (``stop_reason``; with no ``target_srcc``, once
    the budget is spent), with ``oracle`` measuring."""
    check_plan(1.0 if target_srcc is None else target_srcc, budget, min(acquisition.batch, budget))
    target = np.inf if target_srcc is None else target_srcc
    archs = acquisition.first()[:budget]
    latency = np.asarray(oracle(archs), dtype=np.float64)
    curve: list[Estimate] = []
    while True:
        step = acquisition.step(device, archs, latency, target, budget)
        curve.append(step.estimate)
        if step.stop is not None:
            caveats = [c for c in (step.model.caveat, step.caveat) if c]
            return Run(archs, latency, curve, step.stop, step.model, "; ".join(caveats) or None)
        archs = archs + step.next
        latency = np.r_[latency, oracle(step.next)]
