"""Retrieval metrics. Recall@k is the share of queries with at least one relevant image in
the top k (the usual R@k of image-retrieval papers); MRR uses the first relevant rank."""
from collections import defaultdict
from dataclasses import dataclass
from math import comb

import numpy as np

KS = (1, 5, 10)
WORST_BY = 10  # labels are ranked by Recall@WORST_BY: R@1 is too harsh on a handful of queries


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


def scores_by_label(first_ranks: list[int | None], labels: list[str | None]) -> dict[str, Scores]:
    """Each label's scores over its own queries (`labels[i]` is query i's); unlabelled queries count in no label."""
    ranks_of = defaultdict(list)
    for rank, label in zip(first_ranks, labels, strict=True):
        if label is not None:
            ranks_of[label].append(rank)
    return {label: score(ranks) for label, ranks in sorted(ranks_of.items())}


def worst_labels(by_label: dict[str, Scores], *, count: int) -> list[str]:
    """The `count` labels with the lowest Recall@10, then MRR; among equals the one with more
    queries first, as the surer failure."""
    return sorted(by_label, key=lambda label: (by_label[label].recall[WORST_BY], by_label[label].mrr, -by_label[label].queries, label))[:count]


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


RELEVANT_GRADE = 2


def ndcg_at_k(ranked_ids: list[int], grades: dict[int, float], k: int = 10) -> float:
    """nDCG with gain = grade (0–3); the ideal ranking orders every judged image by grade."""
    gains = [grades.get(image_id, 0.0) for image_id in ranked_ids[:k]]
    dcg = sum(gain / np.log2(rank + 1) for rank, gain in enumerate(gains, start=1))
    ideal = sorted(grades.values(), reverse=True)[:k]
    idcg = sum(gain / np.log2(rank + 1) for rank, gain in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else 0.0


def ndcg_by_query(rankings: dict[str, list[int]], judged: dict[str, dict[int, float]], k: int = 10, condensed: bool = False) -> dict[str, float]:
    """Each judged query's nDCG@k (`condensed` as in judged_metrics)."""
    return {
        query: ndcg_at_k([image_id for image_id in rankings.get(query, []) if image_id in grades or not condensed], grades, k)
        for query, grades in judged.items()
    }


def judged_metrics(rankings: dict[str, list[int]], judged: dict[str, dict[int, float]], k: int = 10, condensed: bool = False) -> dict:
    """nDCG@k, Recall@k (share of grade ≥ 2 images found in the top k) and MRR over judged queries.

    `condensed` drops unjudged images from each ranking first. Judgments are collected on
    the active model's top results, so without it an unjudged image counts as irrelevant
    and any other model is penalised for surfacing what nobody has looked at yet.
    """
    ndcgs, recalls, reciprocal = [], [], []
    for query, grades in judged.items():
        ranked = rankings.get(query, [])
        if condensed:
            ranked = [image_id for image_id in ranked if image_id in grades]
        relevant = {image_id for image_id, grade in grades.items() if grade >= RELEVANT_GRADE}
        ndcgs.append(ndcg_at_k(ranked, grades, k))
        if relevant:
            recalls.append(len(relevant & set(ranked[:k])) / len(relevant))
            rank = first_relevant_rank(ranked, relevant)
            reciprocal.append(1 / rank if rank else 0.0)
    return {
        f"nDCG@{k}": round(float(np.mean(ndcgs)), 4) if ndcgs else 0.0,
        f"Recall@{k}": round(float(np.mean(recalls)), 4) if recalls else 0.0,
        "MRR": round(float(np.mean(reciprocal)), 4) if reciprocal else 0.0,
        "queries": len(judged),
    }


def rank_in_memory(queries: np.ndarray, vectors: np.ndarray, has_text: np.ndarray, *, depth: int, rrf_k: int = 60) -> list[np.ndarray]:
    """Semantic-mode ranking, exactly, for vectors not in the database yet (a candidate
    version is judged before it is stored): as search/ranking.py ranks text queries, one
    list of the described images and one of the others, each image by its one vector in
    the text space (`vectors`), fused by reciprocal rank."""
    rankings = []
    scores = queries @ vectors.T
    kinds = [np.flatnonzero(has_text), np.flatnonzero(~has_text)]
    for row in range(len(queries)):
        fused = {}
        for rows in kinds:
            top = rows[np.argsort(-scores[row, rows], kind="stable")[:depth]]
            for rank, index in enumerate(top, start=1):
                fused[int(index)] = fused.get(int(index), 0.0) + 1 / (rrf_k + rank)
        rankings.append(np.array(sorted(fused, key=lambda index: (-fused[index], index)), dtype=np.int64))
    return rankings


def described_captions(captions_of: dict[int, set], *, share: float, seed: int) -> set:
    """The captions whose images keep their text in a mixed catalog, chosen at random.

    Captions that share an image are chosen together (each connected group of captions
    and images falls on one side), so no bare-side query has a described hit. A caption is
    any sortable key: with several query fields, a (field, text) pair, so that an image's
    queries in every field fall on its side.
    """
    parent: dict = {}

    def root(caption: str) -> str:
        while parent.setdefault(caption, caption) != caption:
            parent[caption] = parent[parent[caption]]
            caption = parent[caption]
        return caption

    for captions in captions_of.values():
        first, *rest = sorted(captions)
        for caption in rest:
            parent[root(caption)] = root(first)
    groups: dict[str, list[str]] = {}
    for caption in sorted({caption for captions in captions_of.values() for caption in captions}):
        groups.setdefault(root(caption), []).append(caption)
    ordered = [groups[key] for key in sorted(groups)]
    np.random.default_rng(seed).shuffle(ordered)
    return {caption for group in ordered[: round(share * len(ordered))] for caption in group}
