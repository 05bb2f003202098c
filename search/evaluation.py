"""Retrieval metrics. Recall@k is the share of queries with at least one relevant image in
the top k (the usual R@k of image-retrieval papers); MRR uses the first relevant rank."""
from dataclasses import dataclass
from math import comb

KS = (1, 5, 10)


@dataclass(frozen=True)
class Scores:
    recall: dict[int, float]
    mrr: float
    queries: int

    def as_dict(self) -> dict:
        return {**{f"R@{k}": round(value, 4) for k, value in self.recall.items()}, "MRR": round(self.mrr, 4), "queries": self.queries}


def first_relevant_rank(ranked_ids: list[int], relevant: set[int]) -> int | None:
    for rank, image_id in enumerate(ranked_ids, start=1):
        if image_id in relevant:
            return rank
    return None


def score(first_ranks: list[int | None]) -> Scores:
    count = len(first_ranks)
    if not count:
        return Scores(recall={k: 0.0 for k in KS}, mrr=0.0, queries=0)
    return Scores(
        recall={k: sum(1 for rank in first_ranks if rank is not None and rank <= k) / count for k in KS},
        mrr=sum(1 / rank for rank in first_ranks if rank is not None) / count,
        queries=count,
    )


def random_scores(cases: list[tuple[int, int]]) -> Scores:
    """Expected scores of a uniformly random ranking; each case is (candidates, relevant)."""
    if not cases:
        return score([])
    recall = {k: 0.0 for k in KS}
    mrr = 0.0
    for candidates, relevant in cases:
        for k in KS:
            recall[k] += 1 - comb(candidates - relevant, min(k, candidates)) / comb(candidates, min(k, candidates))
        # P(first relevant at rank i) = C(N - i, r - 1) / C(N, r)
        total = comb(candidates, relevant)
        mrr += sum(comb(candidates - rank, relevant - 1) / rank for rank in range(1, candidates - relevant + 2)) / total
    return Scores(recall={k: value / len(cases) for k, value in recall.items()}, mrr=mrr / len(cases), queries=len(cases))
