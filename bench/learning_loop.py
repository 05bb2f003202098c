"""The learning loop, simulated: a curator judges, the heads retrain, a better model ships.

    python bench/learning_loop.py /path/to/dataset [--rounds 4] [--described-share 0.5] [--pages 4]

The dataset is a folder with a JSONL manifest (file, caption, optional label), imported
into a throwaway database and embedded. As in `evaluate_retrieval --described-share`, the
captions are split at random (captions sharing an image fall on one side): the described
side's images are stored with their caption as the description, the others bare. Only the
bare side's captions are queries, so no query is ever a stored description; they are split
into training queries, which the simulated curator judges, and held-out queries, which
nobody ever judges and on which every round is measured. (`--described-share 0`: no text
at all, every caption a query.)

Each round the curator searches a batch of training queries and grades what the site
shows, a page of 24, from the dataset's ground truth (caption match = 3, same label = 1,
else 0), paging on while the page held no exact match, up to `--pages` pages, and tags each exact
match shown with the query (the "tag" box of the search page; `--no-tags`: never), which
re-embeds it so it is ranked by those words and lends them to look-alikes; then a
training run fits new heads on the catalog's descriptions and the judgments, its own
held-out split of the judged queries gates the release, and a released version is
backfilled and switched to, as a worker would.

Each round is measured, through `image_search` (so the judged-query list counts), on the
held-out queries and on every judged query asked again: against the ground truth, and
against the curator's own grades (what a curator who asks again sees).

`--ceiling` runs no rounds; it asks how far training can move held-out exact recall at all.
Heads are trained once on the catalog's descriptions alone, once with every training
query judged and every one of its matches found (more than any number of rounds gives),
and once on the held-out queries' own matches (memorising the test: an upper bound, not
learning). Each is ranked in memory as the site serves it, without the judged-query list.
The frozen
towers' outputs are cached per dataset under .glimpse/bench-cache/, so a second run skips the CNN.
"""
import argparse
import hashlib
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from common import manifest_rows, table, throwaway_database

PAGE_SIZE = 24  # the search page's (search/views.py)


def held_out(query: str, share: float) -> bool:
    return int.from_bytes(hashlib.sha256(f"bench:{query}".encode()).digest()[:4], "big") / 2**32 < share


def cache_path(dataset: Path) -> Path:
    from django.conf import settings

    key = hashlib.sha256(str(dataset.resolve()).encode()).hexdigest()[:12]
    return settings.DATA_DIR / "bench-cache" / f"{dataset.name}-{key}.npz"


def frozen_outputs_restore(dataset: Path, ids: list[int]) -> set[int]:
    """Write version 1's rows from the cache (keyed by file hash); returns the ids restored."""
    from catalog.models import Image
    from embeddings import encoders
    from embeddings.rows import version_rows_write
    from embeddings.selectors import version_base
    from embeddings.spaces import ImageVectors

    path = cache_path(dataset)
    if not path.exists():
        return set()
    cache = np.load(path)
    position = {content_hash: index for index, content_hash in enumerate(cache["hashes"])}
    images = Image.objects.in_bulk(ids)
    found = [(image_id, position[image.content_hash]) for image_id, image in sorted(images.items()) if image.content_hash in position]
    if not found:
        return set()
    rows = [index for _, index in found]
    base = ImageVectors(text_space=cache["bridge"][rows], features=cache["features"][rows])
    # The text tower is cheap; only the CNN's outputs are cached.
    texted = [place for place, (image_id, _) in enumerate(found) if images[image_id].text]
    raw_texts = dict(zip(texted, encoders.text_encoder().encode([images[found[place][0]].text for place in texted]))) if texted else {}
    version_rows_write(version=version_base(), image_ids=[image_id for image_id, _ in found], base=base, raw_texts=raw_texts)
    Image.objects.filter(id__in=[image_id for image_id, _ in found]).update(embedding_status=Image.EmbeddingStatus.READY)
    return {image_id for image_id, _ in found}


def frozen_outputs_save(dataset: Path) -> None:
    """Add this run's frozen-tower outputs to the cache (a run on the first N rows keeps the rest)."""
    from embeddings.selectors import version_base

    rows = {row[0]: row[1:] for row in version_base().embeddings.values_list("image__content_hash", "image_vector", "feature_vector")}
    path = cache_path(dataset)
    if path.exists():
        cache = np.load(path)
        for content_hash, bridge, features in zip(cache["hashes"], cache["bridge"], cache["features"]):
            rows.setdefault(str(content_hash), (bridge, features))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        hashes=np.array(list(rows)),
        bridge=np.stack([row[0] for row in rows.values()]).astype(np.float32),
        features=np.stack([row[1] for row in rows.values()]).astype(np.float32),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--manifest", default="data.jsonl")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--queries-per-round", type=int, help="default: the training queries shared evenly over the rounds")
    parser.add_argument("--held-out-share", type=float, default=0.3, help="share of captions never judged, for measuring")
    parser.add_argument("--described-share", type=float, default=0.5, help="share of captions stored as descriptions (their images never answer a query)")
    parser.add_argument("--seed", type=int, default=0, help="the random split of --described-share")
    parser.add_argument("--pages", type=int, default=4, help="pages of 24 a curator grades per query, paging on while no exact match was shown")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--limit", type=int, help="use only the first N manifest rows")
    parser.add_argument("--no-tags", action="store_true", help="the curator grades but never tags an exact match with its query")
    parser.add_argument("--ceiling", action="store_true", help="no rounds: train once per judgment set, see the docstring")
    options = parser.parse_args()

    with throwaway_database():
        from django.contrib.auth.models import Permission, User

        from catalog.services import ImageInput, image_tags_add, images_create
        from embeddings import encoders
        from embeddings.borrowing import neighbour_vectors_refresh
        from embeddings.jobs import backfill_version
        from embeddings.selectors import version_active
        from embeddings.services import images_embed
        from embeddings.spaces import space_for
        from embeddings.training.trainer import TrainingOptions
        from search.evaluation import described_captions, judged_metrics
        from search.judgments import judgment_record, query_key_for
        from search.models import JudgedQuery, RelevanceJudgment
        from search.selectors import image_search
        from search.training import training_run

        started = time.perf_counter()
        records = manifest_rows(options.dataset / options.manifest)
        records = records[: options.limit] if options.limit else records
        contents = [(options.dataset / record["file"]).read_bytes() for record in records]
        captions_of_content = defaultdict(set)
        for content, record in zip(contents, records):
            captions_of_content[hashlib.sha256(content).hexdigest()].add(record["caption"])
        described = described_captions(dict(enumerate(captions_of_content.values())), share=options.described_share, seed=options.seed) if options.described_share else set()
        image_of = {}
        for start in range(0, len(records), 64):
            items = [
                ImageInput(content=contents[line], description=records[line]["caption"] if records[line]["caption"] in described else "", name=str(line))
                for line in range(start, min(start + 64, len(records)))
            ]
            image_of.update({int(name): image_id for name, image_id in images_create(items=items).ids_by_name.items()})
        ids = sorted(set(image_of.values()))
        cached = frozen_outputs_restore(options.dataset, ids)
        for start in range(0, len(ids), 64):
            missing = [image_id for image_id in ids[start : start + 64] if image_id not in cached]
            if missing:
                images_embed(image_ids=missing)
        frozen_outputs_save(options.dataset)
        # The settled state, as if every described image had been there first (evaluate_retrieval does the same).
        for start in range(0, len(ids), 500):
            neighbour_vectors_refresh(version=version_active(), image_ids=ids[start : start + 500])
        print(f"imported and embedded {len(ids)} images ({len(cached)} from the cache) in {time.perf_counter() - started:.0f} s", flush=True)

        captions, labels = defaultdict(set), defaultdict(set)
        for line, image_id in image_of.items():
            captions[records[line]["caption"].lower()].add(image_id)
            if records[line].get("label"):
                labels[records[line]["label"]].add(image_id)
        caption_label = {records[line]["caption"].lower(): records[line].get("label") for line in image_of}

        def truth(query: str) -> dict[int, float]:
            grades = {image_id: 1.0 for image_id in labels.get(caption_label[query], ())}
            grades.update({image_id: 3.0 for image_id in captions[query]})
            return grades

        # Queries only from the bare side: a described image's caption is its stored description.
        queries = sorted(set(captions) - {caption.lower() for caption in described})
        test_queries = [query for query in queries if held_out(query, options.held_out_share)]
        train_queries = [query for query in queries if not held_out(query, options.held_out_share)]
        rng = np.random.default_rng(0)
        rng.shuffle(train_queries)
        options.queries_per_round = options.queries_per_round or -(-len(train_queries) // options.rounds)
        curator = User.objects.create_user("simulated-curator")
        curator.user_permissions.add(Permission.objects.get(codename="add_relevancejudgment"))
        curator = User.objects.get(id=curator.id)

        raw_of = dict(zip(queries, encoders.text_encoder().encode(queries)))

        def rank(query_texts: list[str], version) -> dict[str, list[int]]:
            """The semantic ranking a visitor gets, judged-query list included, 100 deep."""
            space = space_for(version)
            return {
                query: image_search(
                    text=query, vector=space.texts_from_base(raw_of[query][None, :])[0], raw_vector=raw_of[query],
                    mode="semantic", limit=100, include_distant=True, version=version,
                ).image_ids
                for query in query_texts
            }

        def measure(version, measured: list[str]) -> dict:
            return judged_metrics(rank(measured, version), {query: truth(query) for query in measured})

        def measure_asked(version, asked: list[str]) -> tuple[dict, dict]:
            """Against the ground truth, and against the curator's own grades."""
            ranked = rank(asked, version)
            return judged_metrics(ranked, {query: truth(query) for query in asked}), judged_metrics(ranked, {query: curator_grades[query] for query in asked})

        if options.ceiling:
            print(table(["trained on", "pairs", "held-out nDCG@10", "held-out Recall@10", "held-out MRR"], ceiling(options, rank, truth, train_queries, test_queries, raw_of)))
            return
        curator_grades: dict[str, dict[int, float]] = {}

        rows = []
        version = version_active()
        rows.append([0, 0, 0, "—", f"v{version.number}", "—", "—", *cells(measure(version, test_queries)), *cells(None), "—"])
        print(f"round 0: {rows[-1]}", flush=True)
        judged_count = tags_added = 0
        asked: list[str] = []
        for round_number in range(1, options.rounds + 1):
            batch = train_queries[(round_number - 1) * options.queries_per_round : round_number * options.queries_per_round]
            if not batch:
                batch = train_queries[: options.queries_per_round]  # every query judged once: re-judge the new top 10
            exact_shown = 0
            tags: dict[int, list[str]] = defaultdict(list)
            for query, ranked in rank(batch, version).items():
                grades = truth(query)
                # The search page shows 24; a curator looking for a picture pages on until it shows up.
                seen = []
                for page in range(options.pages):
                    shown = ranked[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
                    seen += shown
                    if any(grades.get(image_id) == 3.0 for image_id in shown):
                        exact_shown += 1
                        break
                if query in curator_grades:  # judged in an earlier round: regrade through the service
                    for image_id in seen:
                        judgment_record(
                            curator=curator, image_id=image_id, grade=int(grades.get(image_id, 0)), query_text=query,
                            query_text_vector=raw_of[query], version=version,
                        )
                else:  # the rows judgment_record writes for a first grade, in two statements instead of ~6 per image
                    JudgedQuery.objects.create(query_key=query_key_for(text=query), text=" ".join(query.split()), vector=raw_of[query])
                    RelevanceJudgment.objects.bulk_create([
                        RelevanceJudgment(
                            query_key=query_key_for(text=query), query_text=" ".join(query.split()), image_id=image_id,
                            grade=int(grades.get(image_id, 0)), curator=curator, version=version,
                        )
                        for image_id in seen
                    ])
                curator_grades.setdefault(query, {}).update({image_id: grades.get(image_id, 0.0) for image_id in seen})
                judged_count += len(seen)
                for image_id in seen if not options.no_tags else ():
                    if grades.get(image_id) == 3.0:
                        tags[image_id].append(query)
            # What judgment_record(tag=True) does, then the worker's re-embedding, before training.
            tagged = [image_id for image_id, words in tags.items() if image_tags_add(image_id=image_id, tags=words)]
            for start in range(0, len(tagged), 64):
                images_embed(image_ids=tagged[start : start + 64])
            tags_added += len(tagged)
            asked += [query for query in batch if query not in asked]
            trained = training_run(seed=round_number, options=TrainingOptions(epochs=options.epochs, seed=round_number))
            gate = trained.metrics["held_out"]
            gate_text = f"{gate['candidate']['nDCG@10']:.4f} vs {next(v for k, v in gate.items() if k != 'candidate')['nDCG@10']:.4f}"
            if trained.metrics["released"]:
                backfill_version(trained.id)
            version = version_active()
            re_asked, re_asked_curator = measure_asked(version, asked)
            rows.append([
                round_number, judged_count, tags_added, f"{exact_shown}/{len(batch)}", f"v{version.number}",
                f"v{trained.number} {'released' if trained.metrics['released'] else 'kept back'}, borrows {trained.borrowed_share:g}", gate_text,
                *cells(measure(version, test_queries)), *cells(re_asked), cells(re_asked_curator)[0],
            ])
            print(f"round {round_number}: {rows[-1]}", flush=True)
        print(
            f"{options.dataset}: {len(ids)} images ({options.described_share:.0%} of captions stored as descriptions, seed {options.seed}), "
            f"{len(train_queries)} training queries (judged), {len(test_queries)} held-out queries (never judged), "
            f"{options.queries_per_round} queries judged per round, up to {options.pages} pages of {PAGE_SIZE}, "
            f"{time.perf_counter() - started:.0f} s in all"
        )
        print(table(
            [
                "round", "judgments", "images tagged", "exact match shown", "serving", "trained", "gate nDCG@10 new vs active",
                "held-out nDCG@10", "held-out Recall@10", "held-out MRR", "re-asked nDCG@10", "re-asked Recall@10", "re-asked MRR",
                "re-asked nDCG@10, curator's grades",
            ],
            rows,
        ))


def ceiling(options, rank, truth, train_queries: list[str], test_queries: list[str], raw_of: dict) -> list[list]:
    """Held-out metrics of heads trained once on each judgment set (in memory, as served)."""
    from embeddings import encoders
    from embeddings.selectors import version_active
    from embeddings.spaces import HeadsSpace, space_for
    from embeddings.training.trainer import TrainingOptions, heads_train
    from search.evaluation import judged_metrics
    from search.training_data import Catalog, training_set

    catalog = Catalog()
    active = version_active()
    test_raw = np.stack([raw_of[query] for query in test_queries])
    held_out_truth = {query: truth(query) for query in test_queries}

    def judged_fully(queries: list[str]) -> dict[str, dict[int, float]]:
        """A thorough curator: what the site showed graded, and every exact match found."""
        shown = rank(queries, active)
        judged = {}
        for query in queries:
            grades = truth(query)
            judged[query] = {image_id: grades.get(image_id, 0.0) for image_id in shown[query][: options.pages * PAGE_SIZE]}
            judged[query].update({image_id: grade for image_id, grade in grades.items() if grade == 3.0})
        return judged

    rows = [["nothing (version 1)", 0, *cells(judged_metrics(catalog.rankings(space_for(active), test_queries, test_raw), held_out_truth))]]
    for name, queries in (
        ("descriptions only", []),
        (f"descriptions + all {len(train_queries)} training queries, every match judged", train_queries),
        (f"descriptions + the {len(test_queries)} held-out queries themselves (memorised)", test_queries),
    ):
        judged = judged_fully(queries)
        raw = np.stack([raw_of[query] for query in queries]) if queries else np.zeros((0, test_raw.shape[1]), dtype=np.float32)
        data = training_set(catalog, judged, queries, raw, active)
        started = time.perf_counter()
        heads, _ = heads_train(data, options=TrainingOptions(epochs=options.epochs, seed=1), device=encoders.device())
        rows.append([name, len(data), *cells(judged_metrics(catalog.rankings(HeadsSpace(heads), test_queries, test_raw), held_out_truth))])
        print(f"{name}: {rows[-1][2:]} ({time.perf_counter() - started:.0f} s)", flush=True)
    return rows


def cells(result: dict | None) -> list[str]:
    return [f"{result[key]:.4f}" for key in ("nDCG@10", "Recall@10", "MRR")] if result else ["—"] * 3


if __name__ == "__main__":
    main()
