import hashlib
import json
import os
import tempfile
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from json import dumps
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test.utils import override_settings, setup_databases, teardown_databases
from tqdm import tqdm

from catalog.exceptions import InvalidManifest
from catalog.signals import images_need_embedding
from search.evaluation import KS, WORST_BY, described_captions, first_relevant_rank, random_scores, score, scores_by_label, worst_labels

DEFAULT_QUERY_FIELD = "caption"
# Where no row has a caption (the shipped demo), the titles are the queries by default.
FALLBACK_QUERY_FIELD = "title"


@dataclass(frozen=True)
class Plan:
    """What one run stores and asks, from the options."""

    text_fields: tuple[str, ...]
    query_fields: tuple[str, ...]
    described_field: str | None  # stored as the described images' description; None: nothing of it
    described_share: float
    queries_side: str
    seed: int
    zero_shot: bool
    worst_labels: int
    read: bool = False


@dataclass
class FieldQueries:
    """One query field's queries and their answers."""

    queries: list[str]
    images_of: dict[str, set[int]]  # query -> the images that share it
    label_of: dict[str, str]  # query -> its first image's label
    rows_without: int  # rows that lack the field, so give it no query


class Command(BaseCommand):
    help = (
        "Measure retrieval on a labelled folder (images + JSONL manifest with file, caption, optional "
        "label/group_id). The folder is imported into a throwaway database and embedded there; text→image "
        "uses each caption (or --query-field; the title where no row has a caption) as the query, image→image treats images sharing group_id (else label) as hits."
    )

    def add_arguments(self, parser):
        parser.add_argument("dataset", type=Path)
        parser.add_argument("--manifest", default="data.jsonl")
        parser.add_argument(
            "--query-field",
            action="append",
            metavar="FIELD",
            help=f"manifest field whose texts are the queries (default {DEFAULT_QUERY_FIELD}, or {FALLBACK_QUERY_FIELD} where no row "
            f"has {DEFAULT_QUERY_FIELD}); repeat it or separate "
            "fields with commas (caption_en,caption_zh) to measure each on the same catalog. A query's answers are the "
            "images that share its text; rows that lack the field give it no query and are counted",
        )
        parser.add_argument(
            "--text-fields",
            default="",
            help="manifest fields stored as the images' text, e.g. title,description,keywords (first = title); "
            "default: none, so the figures measure the vectors alone",
        )
        parser.add_argument(
            "--described-share",
            type=float,
            default=0.0,
            help="a mixed catalog: this share of the images, chosen at random, is stored with --described-field as "
            "the description (plus --text-fields); the other images are stored bare and their texts are the queries",
        )
        parser.add_argument(
            "--described-field",
            metavar="FIELD",
            help="with --described-share: the field stored as the described images' description (a list is joined "
            "with ', '); default: the first query field, which --queries described never stores",
        )
        parser.add_argument(
            "--queries",
            choices=("bare", "described"),
            default="bare",
            help="with --described-share: the bare side's texts as queries (default), or the described side's, whose "
            "images then keep only --text-fields and an explicit --described-field, to measure the pictures that have words",
        )
        parser.add_argument("--seed", type=int, default=0, help="the random split of --described-share")
        parser.add_argument("--limit", type=int, help="use only the first N manifest rows")
        parser.add_argument(
            "--worst-labels",
            type=int,
            default=5,
            metavar="N",
            help=f"print the N labels (manifest field `label`) whose queries have the lowest R@{WORST_BY}; --json has all",
        )
        parser.add_argument(
            "--zero-shot",
            action="store_true",
            help="also make the catalog's zero-shot version (manage.py zero_shot_version), backfill and switch to it, "
            "and measure it the same way",
        )
        parser.add_argument(
            "--read",
            action="store_true",
            help="read the text in every picture, as workers do (GLIMPSE_READING), and measure the hybrid and keyword "
            "rankings too, which find it",
        )
        parser.add_argument("--json", action="store_true", help="also print the results as one JSON object on the last line")

    def handle(self, *args, dataset: Path, manifest: str, limit, verbosity: int, **options):
        plan_from(options)  # bad options fail before any file is read
        manifest_path = dataset / manifest
        if not manifest_path.exists():
            raise CommandError(f"{manifest_path} does not exist")
        records = list(read_jsonl(manifest_path))[:limit]
        if not records:
            raise CommandError(f"{manifest_path} has no rows")
        if not options["query_field"] and fallback_query_field(records):
            self.stderr.write(
                f"no row of {manifest_path.name} has {DEFAULT_QUERY_FIELD!r}: the queries are its {FALLBACK_QUERY_FIELD!r} field "
                "(name another with --query-field)"
            )
            options["query_field"] = [FALLBACK_QUERY_FIELD]
        plan = plan_from(options)
        fields_check(records, plan, manifest_path.name)

        self.quiet = verbosity == 0
        try:
            # The dataset's copies (pictures, thumbnails) go with the run, also on an error or Ctrl-C.
            with throwaway_database("glimpse_eval"), tempfile.TemporaryDirectory(prefix="glimpse-eval-") as media, override_settings(MEDIA_ROOT=media):
                results = self.evaluate(dataset, records, plan)
        except InvalidManifest as error:
            raise CommandError(str(error)) from None

        self.print_tables(dataset, plan, results)
        if options["json"]:
            self.stdout.write(dumps(results, sort_keys=True))

    def evaluate(self, dataset: Path, records: list[dict], plan: Plan) -> dict:
        from catalog.manifests import row_from_record
        from embeddings.borrowing import neighbour_vectors_refresh
        from embeddings.selectors import version_active
        from search.selectors import search_depth

        rows = [row_from_record(record, line=line + 1, folder=dataset, text_fields=plan.text_fields) for line, record in enumerate(records)]
        described_keys, described_lines = mixed_catalog_split(rows, records, plan)
        image_of_line = self.import_rows(rows, records, described_lines, plan)
        ids = sorted(set(image_of_line.values()))
        self.embed(ids)
        read = self.read(ids) if plan.read else {}
        version = version_active()
        # Embedding refreshes the bare images near each batch's described ones; measured
        # here is the settled state, as if every described image had been there first.
        for start in range(0, len(ids), 500):
            neighbour_vectors_refresh(version=version, image_ids=ids[start : start + 500])

        side = {field: field_queries(records, image_of_line, field, described_keys, plan.queries_side) for field in plan.query_fields}
        group_of = {}
        for line, image_id in image_of_line.items():
            group = records[line].get("group_id") or records[line].get("label")
            if group is not None:
                group_of[image_id] = str(group)
        results = {
            "dataset": str(dataset), "images": len(ids), "text_fields": list(plan.text_fields), "version": version.number,
            "query_fields": list(plan.query_fields), "described_field": plan.described_field,
            "described_share": plan.described_share, "queries_side": plan.queries_side, "seed": plan.seed,
            "described_images": len({image_of_line[line] for line in described_lines if line in image_of_line}),
            "rows_without_query_field": {field: queries.rows_without for field, queries in side.items()},
            "read": read,
        }
        text_modes = ("hybrid", "semantic", "keyword") if plan.text_fields or plan.described_share or plan.read else ("semantic",)
        results.update(self.measure(version, side, text_modes, ids, group_of))
        if plan.zero_shot:
            version = self.zero_shot_version()
            results["zero_shot"] = {"version": version.number, **self.measure(version, side, text_modes, ids, group_of)}
        results["ranking_depth"] = search_depth()
        return results

    def import_rows(self, rows: list, records: list[dict], described_lines: set[int], plan: Plan) -> dict[int, int]:
        """Each manifest line's image id; the import keeps one image for rows of the same picture."""
        from catalog.services import ImageInput, images_create

        image_of_line: dict[int, int] = {}
        with tqdm(total=len(records), desc="importing", unit="image", disable=self.quiet) as progress:
            for start in range(0, len(records), 64):
                items = []
                for line in range(start, min(start + 64, len(records))):
                    row, content = rows[line], rows[line].path.read_bytes()
                    if not plan.described_share:
                        items.append(ImageInput(content=content, title=row.title, description=row.description, tags=row.tags, name=str(line)))
                    elif line in described_lines:
                        words = field_text(records[line].get(plan.described_field)) if plan.described_field else ""
                        description = ". ".join(filter(None, (words, row.description)))
                        items.append(ImageInput(content=content, title=row.title, description=description, tags=row.tags, name=str(line)))
                    else:
                        items.append(ImageInput(content=content, name=str(line)))
                report = images_create(items=items)
                for item, reason in report.invalid:
                    self.stderr.write(f"skipped {records[int(item.name)]['file']}: {reason}")
                image_of_line.update({int(name): image_id for name, image_id in report.ids_by_name.items()})
                progress.update(len(items))
        return image_of_line

    def embed(self, ids: list[int]) -> None:
        from embeddings.services import images_embed

        with tqdm(total=len(ids), desc="embedding", unit="image", disable=self.quiet) as progress:
            for start in range(0, len(ids), 32):
                images_embed(image_ids=ids[start : start + 32])
                progress.update(len(ids[start : start + 32]))

    def read(self, ids: list[int]) -> dict:
        """Read the text in the pictures as a worker does: how many have words, and how many failed."""
        from embeddings.picture_text import pictures_read

        with_text, failed = 0, 0
        with tqdm(total=len(ids), desc="reading", unit="picture", disable=self.quiet) as progress:
            for start in range(0, len(ids), 32):
                report = pictures_read(image_ids=ids[start : start + 32])
                with_text += sum(1 for text in report.read.values() if text)
                failed += len(report.failed)
                progress.update(len(ids[start : start + 32]))
        return {"pictures_with_words": with_text, "failed": failed}

    def zero_shot_version(self):
        """The catalog's zero-shot version, built by the release job's own steps, run here:
        the shared queue's workers serve the real database."""
        from embeddings import encoders
        from embeddings.services import version_backfill, version_mark_backfilling, version_zero_shot_create
        from embeddings.zero_shot import tower_classifier

        weight, bias = tower_classifier()
        version = version_zero_shot_create(classifier_weight=weight, classifier_bias=bias, class_embeddings=encoders.class_embeddings())
        version_mark_backfilling(version=version)
        version_backfill(version=version)
        version.refresh_from_db()
        return version

    def measure(self, version, side: dict[str, FieldQueries], text_modes: tuple[str, ...], ids: list[int], group_of: dict) -> dict:
        """The first query field's figures at the top, as with one field; every field's under by_query_field when there are several."""
        by_field = {field: self.measure_text(version, field, queries, text_modes, ids) for field, queries in side.items()}
        first = next(iter(by_field.values()))
        results = {**first, **self.measure_pictures(version, ids, group_of)}
        if len(by_field) > 1:
            results["by_query_field"] = by_field
        return results

    def measure_text(self, version, field: str, side: FieldQueries, text_modes: tuple[str, ...], ids: list[int]) -> dict:
        from search.query_vectors import query_texts_vectors
        from search.selectors import Filters, fused_ranking

        results = {"text_to_image": {}, "by_label": defaultdict(dict)}
        # Each query through the towers that read it, weighed as the site weighs them.
        vectors = query_texts_vectors(texts=side.queries, version=version)
        labels = [side.label_of.get(query) for query in side.queries]
        for mode in text_modes:
            ranks = []
            for query, vector in tqdm(list(zip(side.queries, vectors)), desc=f"v{version.number} {field} → image {mode}", unit="query", disable=self.quiet):
                ranking = fused_ranking(
                    mode=mode, vector=vector.vector, multilingual=vector.multilingual, english=vector.english, text=query,
                    version=version, filters=Filters(),
                )
                ranks.append(first_relevant_rank([image_id for image_id, _ in ranking], side.images_of[query]))
            results["text_to_image"][mode] = score(ranks).as_dict()
            for label, scores in scores_by_label(ranks, labels).items():
                results["by_label"][label][mode] = scores
        results["text_to_image"]["random"] = random_scores([(len(ids), len(side.images_of[query])) for query in side.queries]).as_dict()
        # Ordered worst first by the first mode (hybrid where words are stored), so the JSON reads as the table does.
        order = worst_labels({label: scores[text_modes[0]] for label, scores in results["by_label"].items()}, count=len(results["by_label"]))
        results["by_label"] = {label: {mode: scores.as_dict() for mode, scores in results["by_label"][label].items()} for label in order}
        return results

    def measure_pictures(self, version, ids: list[int], group_of: dict) -> dict:
        from search.selectors import Filters, checked_vector, fused_ranking, stored_vectors

        members = defaultdict(set)
        for image_id, group in group_of.items():
            members[group].add(image_id)
        probes = [image_id for image_id in ids if len(members.get(group_of.get(image_id), ())) > 1]
        if not probes:
            return {}
        # Picture queries rank by the CNN's features, as uploads and "more like this" do.
        ranks = []
        for image_id in tqdm(probes, desc=f"v{version.number} image→image", unit="query", disable=self.quiet):
            _, features = stored_vectors(image_id=image_id, version=version)
            ranking = fused_ranking(
                mode="semantic", vector=None, features=checked_vector(features), text="",
                version=version, filters=Filters(), exclude_id=image_id,
            )
            ranks.append(first_relevant_rank([other for other, _ in ranking], members[group_of[image_id]] - {image_id}))
        random = random_scores([(len(ids) - 1, len(members[group_of[image_id]]) - 1) for image_id in probes])
        return {"image_to_image": {"semantic": score(ranks).as_dict(), "random": random.as_dict()}}

    def print_tables(self, dataset: Path, plan: Plan, results: dict) -> None:
        several = len(plan.query_fields) > 1
        for measured in [results] + ([results["zero_shot"]] if "zero_shot" in results else []):
            self.stdout.write(f"{dataset}: {results['images']} images, model v{measured['version']}, stored text: {stored_text(plan, results)}")
            by_field = measured.get("by_query_field") or {plan.query_fields[0]: measured}
            for field, scores_of in by_field.items():
                without = results["rows_without_query_field"][field]
                if several or without:
                    count = next(iter(scores_of["text_to_image"].values()))["queries"]
                    self.stdout.write(f"query field {field}: {count} queries" + (f"; rows without it (no query): {without}" if without else ""))
                directions = [("text → image", scores_of["text_to_image"])]
                if not several:
                    directions.append(("image → image", measured.get("image_to_image", {})))
                self.print_directions(directions)
                self.print_worst_labels(scores_of["by_label"], plan.worst_labels)
            if several:
                self.print_directions([("image → image", measured.get("image_to_image", {}))])
                self.print_by_field(by_field)

    def print_directions(self, directions: list[tuple[str, dict]]) -> None:
        if not any(scores_of for _, scores_of in directions):
            return
        self.print_row(["direction", "mode", *(f"R@{k}" for k in KS), "MRR", "queries"], header=True)
        for direction, scores_of in directions:
            for mode, scores in scores_of.items():
                self.print_row([direction, mode, *(f"{scores[f'R@{k}']:.3f}" for k in KS), f"{scores['MRR']:.3f}", str(scores["queries"])])

    def print_worst_labels(self, by_label: dict, count: int) -> None:
        if not by_label or count <= 0:
            return
        modes = list(next(iter(by_label.values())))
        self.stdout.write(f"worst labels by R@{WORST_BY} ({modes[0]}), {min(count, len(by_label))} of {len(by_label)}:")
        # The first mode's MRR orders labels of equal R@10, so it is shown too.
        self.print_row(["label", "queries", *(f"R@{WORST_BY} {mode}" for mode in modes), f"MRR {modes[0]}"], header=True)
        for label in list(by_label)[:count]:
            scores_of = by_label[label]
            recalls = [f"{scores_of[mode][f'R@{WORST_BY}']:.3f}" for mode in modes]
            self.print_row([label, str(scores_of[modes[0]]["queries"]), *recalls, f"{scores_of[modes[0]]['MRR']:.3f}"])

    def print_by_field(self, by_field: dict) -> None:
        modes = [mode for mode in next(iter(by_field.values()))["text_to_image"] if mode != "random"]
        self.stdout.write("text → image by query field:")
        self.print_row(["query field", "queries", *(f"{mode} {metric}" for mode in modes for metric in (*(f"R@{k}" for k in KS), "MRR"))], header=True)
        for field, scores_of in by_field.items():
            cells = [f"{scores_of['text_to_image'][mode][metric]:.3f}" for mode in modes for metric in (*(f"R@{k}" for k in KS), "MRR")]
            self.print_row([field, str(scores_of["text_to_image"][modes[0]]["queries"]), *cells])

    def print_row(self, cells: list[str], *, header: bool = False) -> None:
        self.stdout.write("| " + " | ".join(cells) + " |")
        if header:
            self.stdout.write("|" + "---|" * len(cells))


def plan_from(options: dict) -> Plan:
    """The options as a plan, or CommandError for a combination that measures nothing or leaks the answer."""
    query_fields = tuple(dict.fromkeys(field.strip() for value in options["query_field"] or [DEFAULT_QUERY_FIELD] for field in value.split(",") if field.strip()))
    text_fields = tuple(field.strip() for field in options["text_fields"].split(",") if field.strip())
    share, side = options["described_share"], options["queries"]
    if not query_fields:
        raise CommandError("--query-field needs a field name")
    if not 0 <= share < 1:
        raise CommandError("--described-share must be at least 0 and below 1: the queries come from the bare side")
    if options["described_field"] and not share:
        raise CommandError("--described-field needs a --described-share above 0: it is the text of the described images")
    if options["worst_labels"] < 0:
        raise CommandError("--worst-labels must be 0 or more")
    for field in text_fields:
        if field in query_fields:
            raise CommandError(f"--text-fields must not include {field!r}: it is a query field, storing it would leak the answer")
    if side == "described":
        if options["described_field"] in query_fields:
            raise CommandError(
                f"--described-field {options['described_field']} is a query field: with --queries described its images are the "
                "answers, so storing it would leak them; store another field, or measure the bare side"
            )
        if not (share and (text_fields or options["described_field"])):
            raise CommandError(
                "--queries described needs a --described-share above 0 and words for the described images: "
                "--text-fields, or a --described-field that is not a query field"
            )
    # By default the described images store their own query field's text; the described side's queries must not find it.
    described_field = options["described_field"] or (query_fields[0] if side == "bare" else None)
    return Plan(
        text_fields=text_fields, query_fields=query_fields, described_field=described_field if share else None,
        described_share=share, queries_side=side, seed=options["seed"], zero_shot=options["zero_shot"], worst_labels=options["worst_labels"],
        read=options["read"],
    )


def fallback_query_field(records: list[dict]) -> bool:
    """Whether the default query field is missing from every row and the fallback is text on some."""
    return not any(DEFAULT_QUERY_FIELD in record for record in records) and any(
        isinstance(record.get(FALLBACK_QUERY_FIELD), str) for record in records
    )


def fields_check(records: list[dict], plan: Plan, manifest: str) -> None:
    """CommandError for a field no row has, a query that is not text, or a stored field that repeats a query's text.

    A query field that only some rows lack is allowed: those rows give that field no query
    and the output counts them (a language without a name for some pictures).
    """
    named = [(field, "--query-field") for field in plan.query_fields] + [(field, "--text-fields") for field in plan.text_fields]
    if plan.described_field:
        named.append((plan.described_field, "--described-field"))
    for field, option in named:
        if not any(field in record for record in records):
            raise CommandError(fields_missing_message(records, field, manifest, option))
    for field in plan.query_fields:
        for line, record in enumerate(records, start=1):
            if record.get(field) is not None and not isinstance(record[field], str):
                raise CommandError(f"{manifest} line {line}: query field {field!r} holds {type(record[field]).__name__}, not text")
    stored = [*plan.text_fields, *([plan.described_field] if plan.queries_side == "described" and plan.described_field else [])]
    for field in stored:
        for query_field in plan.query_fields:
            if same_text(records, field, query_field):
                raise CommandError(f"{field!r} holds the same text as the query field {query_field!r} on every row: storing it would leak the answer")


def fields_missing_message(records: list[dict], field: str, manifest: str, option: str) -> str:
    fields = sorted({name for record in records for name in record} - {"file"})
    texts = [name for name in fields if any(isinstance(record.get(name), str) for record in records)]
    # The shipped demo names its pictures in `title`: the likeliest query field where `caption` is missing.
    example = "title" if "title" in texts else (texts or ["FIELD"])[0]
    return (
        f"no row of {manifest} has {field!r} (all {len(records)} rows lack it); its rows have {', '.join(fields) or 'only file'}. "
        f"Name the field with {option}, e.g. {option} {example}"
    )


def same_text(records: list[dict], first: str, second: str) -> bool:
    """Whether two fields agree on every row that has both (`caption` and `caption_en` of a multilingual set)."""
    pairs = [(record[first], record[second]) for record in records if first in record and second in record]
    return bool(pairs) and all(one == other for one, other in pairs)


def field_text(value) -> str:
    """A field's text to store: a list of words is joined as keywords are written."""
    if isinstance(value, list):
        return ", ".join(str(part) for part in value)
    return "" if value is None else str(value)


def mixed_catalog_split(rows: list, records: list[dict], plan: Plan) -> tuple[set, set[int]]:
    """(the described (field, text) keys, the described manifest lines) of a mixed catalog.

    The split is by picture: all rows of one picture (the import keeps one image for them)
    fall on one side, and so do pictures that share a query text in any query field, so
    that no query has answers on both sides and both sides are the same for every field.
    A key is a (field, text) pair; with one field they sort as its texts alone did, so a run
    with one query field splits exactly as before there could be several.
    """
    if not plan.described_share:
        return set(), set()
    contents = [hashlib.sha256(row.path.read_bytes()).hexdigest() for row in rows]
    keys_of_content = defaultdict(set)
    for content, record in zip(contents, records):
        keys_of_content[content] |= {(field, record[field]) for field in plan.query_fields if record.get(field)}
    described = described_captions(dict(enumerate(keys for keys in keys_of_content.values() if keys)), share=plan.described_share, seed=plan.seed)
    described_contents = {content for content, keys in keys_of_content.items() if keys & described}
    return described, {line for line, content in enumerate(contents) if content in described_contents}


def field_queries(records: list[dict], image_of_line: dict[int, int], field: str, described_keys: set, side: str) -> FieldQueries:
    """The field's texts on the asked side of the catalog, each with the images that share it."""
    images_of, label_of = defaultdict(set), {}
    for line in sorted(image_of_line):
        record = records[line]
        if text := record.get(field):
            images_of[text].add(image_of_line[line])
            if record.get("label") is not None:
                label_of.setdefault(text, str(record["label"]))
    queries = sorted(text for text in images_of if ((field, text) in described_keys) == (side == "described"))
    return FieldQueries(queries=queries, images_of=images_of, label_of=label_of, rows_without=sum(1 for record in records if not record.get(field)))


def stored_text(plan: Plan, results: dict) -> str:
    read = f"; the text in the pictures read ({results['read']['pictures_with_words']} have words)" if plan.read else ""
    return stored_words(plan, results) + read


def stored_words(plan: Plan, results: dict) -> str:
    if not plan.described_share:
        return ", ".join(plan.text_fields) if plan.text_fields else "none (vectors alone)"
    words = " + ".join(filter(None, (plan.described_field, ", ".join(plan.text_fields))))
    return (
        f"{words} on {results['described_images']} images (described share {plan.described_share}, seed {plan.seed}), "
        f"none on the rest; queries: the {plan.queries_side} images' {', '.join(plan.query_fields)}"
    )


def read_jsonl(path: Path):
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise CommandError(f"{path} line {number}: not JSON ({error.msg})") from None


@contextmanager
def throwaway_database(prefix: str):
    """A fresh database beside the configured one (`<prefix>_<pid>`, so that runs and the
    test suite can go side by side), migrated and selected for this process, and dropped
    at the end, also on an error or Ctrl-C. bench/common.py uses it too."""
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"{prefix}_{os.getpid()}"
    state = setup_databases(verbosity=0, interactive=False, keepdb=False)
    # Rows of the throwaway database are embedded in-process; the shared queue's workers
    # serve the real database and must never see their ids.
    images_need_embedding.disconnect(dispatch_uid="embeddings.queue_embedding")
    try:
        yield
    finally:
        teardown_databases(state, verbosity=0)
