"""The release gate: whether a trained version ranks the held-out judged queries better
than the serving one, robustly enough to serve.

Tens of held-out queries make one mean noisy: a version that wins on a few queries by a
lot and loses on the rest can beat the margin on the mean and still be worse on queries
nobody judged. So the held-out queries are dealt into folds, and a version is released
only when its mean gain beats the margin on all of them together and on most folds.
"""
import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GateDecision:
    released: bool
    rule: str
    gain: float  # mean nDCG@10 gain over every held-out query
    folds: tuple[dict, ...]  # per fold: queries, candidate's and active's nDCG@10, gain
    folds_won: int

    def as_dict(self) -> dict:
        return {"released": self.released, "rule": self.rule, "gain": self.gain, "folds": list(self.folds), "folds_won": self.folds_won}


def held_out_folds(queries: list[str], *, folds: int, seed: int) -> list[list[str]]:
    """The queries in `folds` folds of sizes that differ by one at most, dealt in an order
    fixed by the seed (never by when a query was judged); empty folds are left out."""
    order = sorted(queries, key=lambda query: hashlib.sha256(f"{seed}:fold:{query.lower()}".encode()).digest())
    dealt = [sorted(order[start::folds]) for start in range(folds)]
    return [fold for fold in dealt if fold]


def gate_decide(*, candidate: dict[str, float], active: dict[str, float], folds: list[list[str]], margin: float) -> GateDecision:
    """`candidate` and `active`: each held-out query's nDCG@10 under either version.

    Released when the gain over every held-out query is at least `margin` and it is at
    least `margin` on more than half of the folds."""
    queries = [query for fold in folds for query in fold]
    if not queries:
        return GateDecision(released=False, rule="no held-out judged queries to compare on", gain=0.0, folds=(), folds_won=0)
    gain = float(np.mean([candidate[query] - active[query] for query in queries]))
    fold_gains = [float(np.mean([candidate[query] - active[query] for query in fold])) for fold in folds]
    rows = tuple(
        {
            "queries": len(fold),
            "candidate": round(float(np.mean([candidate[query] for query in fold])), 4),
            "active": round(float(np.mean([active[query] for query in fold])), 4),
            "gain": round(fold_gain, 4),
        }
        for fold, fold_gain in zip(folds, fold_gains)
    )
    won = sum(fold_gain >= margin for fold_gain in fold_gains)
    needed = len(folds) // 2 + 1
    return GateDecision(
        released=gain >= margin and won >= needed,
        rule=f"nDCG@10 gain ≥ {margin} over all {len(queries)} held-out queries and in at least {needed} of {len(folds)} folds",
        gain=round(gain, 4),
        folds=rows,
        folds_won=won,
    )
