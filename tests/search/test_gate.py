"""The release gate on hand-made per-query figures: released only when the gain holds in most folds."""
import pytest

from search.evaluation import ndcg_by_query
from search.gate import GateDecision, gate_decide, held_out_folds

FOLDS = [["a", "b"], ["c", "d"], ["e", "f"]]
ACTIVE = {query: 0.5 for query in "abcdef"}


def test_folds_are_balanced_deterministic_and_hold_every_query_once():
    queries = ["apple", "boat", "car", "cat", "dog", "house", "tree"]
    folds = held_out_folds(queries, folds=3, seed=0)
    assert sorted(len(fold) for fold in folds) == [2, 2, 3]
    assert sorted(query for fold in folds for query in fold) == queries
    assert held_out_folds(list(reversed(queries)), folds=3, seed=0) == folds
    assert held_out_folds(queries, folds=3, seed=1) != folds
    assert held_out_folds(["apple", "boat"], folds=5, seed=0) in ([["apple"], ["boat"]], [["boat"], ["apple"]])
    assert held_out_folds([], folds=5, seed=0) == []


def test_a_gain_from_one_fold_alone_is_not_released():
    # The mean gain (+0.1) beats the margin, but only because of a and b; the other four
    # held-out queries got worse, as unjudged queries would.
    candidate = {"a": 0.9, "b": 0.9, "c": 0.45, "d": 0.45, "e": 0.45, "f": 0.45}
    decision = gate_decide(candidate=candidate, active=ACTIVE, folds=FOLDS, margin=0.005)
    assert decision == GateDecision(
        released=False,
        rule="nDCG@10 gain ≥ 0.005 over all 6 held-out queries and in at least 2 of 3 folds",
        gain=0.1,
        folds=(
            {"queries": 2, "candidate": 0.9, "active": 0.5, "gain": 0.4},
            {"queries": 2, "candidate": 0.45, "active": 0.5, "gain": -0.05},
            {"queries": 2, "candidate": 0.45, "active": 0.5, "gain": -0.05},
        ),
        folds_won=1,
    )


def test_a_gain_that_holds_in_most_folds_is_released():
    candidate = {"a": 0.6, "b": 0.6, "c": 0.52, "d": 0.52, "e": 0.49, "f": 0.5}
    decision = gate_decide(candidate=candidate, active=ACTIVE, folds=FOLDS, margin=0.01)
    assert (decision.released, decision.folds_won, decision.gain) == (True, 2, 0.0383)
    assert [row["gain"] for row in decision.folds] == [0.1, 0.02, -0.005]
    assert decision.as_dict()["folds"][2] == {"queries": 2, "candidate": 0.495, "active": 0.5, "gain": -0.005}


def test_winning_most_folds_is_not_enough_when_the_mean_loses():
    candidate = {"a": 0.52, "b": 0.52, "c": 0.52, "d": 0.52, "e": 0.2, "f": 0.2}
    decision = gate_decide(candidate=candidate, active=ACTIVE, folds=FOLDS, margin=0.01)
    assert (decision.released, decision.folds_won, decision.gain) == (False, 2, -0.0867)


def test_no_held_out_query_releases_nothing():
    assert gate_decide(candidate={}, active={}, folds=[], margin=-1.0) == GateDecision(
        released=False, rule="no held-out judged queries to compare on", gain=0.0, folds=(), folds_won=0
    )


def test_ndcg_by_query_condenses_to_judged_images():
    judged = {"cat": {1: 3.0, 2: 0.0}, "dog": {3: 2.0}}
    rankings = {"cat": [9, 2, 1], "dog": [3]}
    assert ndcg_by_query(rankings, judged, condensed=True) == pytest.approx({"cat": 3 / 1.5849625 / 3, "dog": 1.0})
    assert ndcg_by_query(rankings, judged) == pytest.approx({"cat": (3 / 2) / 3, "dog": 1.0})
