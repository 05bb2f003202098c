import hashlib
import json
import os
import tempfile
from collections import defaultdict
from json import dumps
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test.utils import override_settings, setup_databases, teardown_databases
from tqdm import tqdm

from catalog.exceptions import InvalidManifest
from catalog.signals import images_need_embedding
from search.evaluation import KS, described_captions, first_relevant_rank, random_scores, score

QUERY_FIELD = "caption"


class Command(BaseCommand):
    help = (
        "Measure retrieval on a labelled folder (images + JSONL manifest with file, caption, optional "
        "label/group_id). The folder is imported into a throwaway database and embedded there; text→image "
        "uses each caption as the query, image→image treats images sharing group_id (else label) as hits."
    )

    def add_arguments(self, parser):
        parser.add_argument("dataset", type=Path)
        parser.add_argument("--manifest", default="data.jsonl")
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
            help="a mixed catalog: this share of the captions, chosen at random, is stored as its images' "
            "description (plus --text-fields); the other images are stored bare and their captions are the queries",
        )
        parser.add_argument(
            "--queries",
            choices=("bare", "described"),
            default="bare",
            help="with --described-share: the bare side's captions (default), or the described side's, whose images "
            "then keep only --text-fields (never their caption), to measure the pictures that have words",
        )
        parser.add_argument("--seed", type=int, default=0, help="the random split of --described-share")
        parser.add_argument("--limit", type=int, help="use only the first N manifest rows")
        parser.add_argument(
            "--zero-shot",
            action="store_true",
            help="also make the catalog's zero-shot version (manage.py zero_shot_version), backfill and switch to it, "
            "and measure it the same way",
        )
        parser.add_argument("--json", action="store_true", help="also print the results as one JSON object on the last line")

    def handle(
        self, *args, dataset: Path, manifest: str, text_fields: str, described_share: float, queries: str, seed: int, limit, zero_shot: bool,
        verbosity: int, **options
    ):
        fields = tuple(field.strip() for field in text_fields.split(",") if field.strip())
        if not 0 <= described_share < 1:
            raise CommandError("--described-share must be at least 0 and below 1: the queries come from the bare side")
        if queries == "described" and not (described_share and text_fields):
            raise CommandError("--queries described needs a --described-share above 0 and --text-fields for the described images' words")
        if QUERY_FIELD in fields:
            raise CommandError(f"--text-fields must not include {QUERY_FIELD!r}: it is the query, storing it would leak the answer")
        manifest_path = dataset / manifest
        if not manifest_path.exists():
            raise CommandError(f"{manifest_path} does not exist")
        records = list(read_jsonl(manifest_path))[:limit]
        if not records:
            raise CommandError(f"{manifest_path} has no rows")
        if any(QUERY_FIELD not in record for record in records):
            raise CommandError(f"every manifest row needs a {QUERY_FIELD!r}")

        self.quiet = verbosity == 0
        state = throwaway_database()
        # Rows of the throwaway database are embedded here, in-process; the shared queue's
        # workers serve the real database and must never see their ids.
        images_need_embedding.disconnect(dispatch_uid="embeddings.queue_embedding")
        try:
            # The dataset's copies (pictures, thumbnails) go with the run, also on an error or Ctrl-C.
            with tempfile.TemporaryDirectory(prefix="glimpse-eval-") as media, override_settings(MEDIA_ROOT=media):
                results = self.evaluate(dataset, records, fields, described_share, queries, seed, zero_shot)
        except InvalidManifest as error:
            raise CommandError(str(error)) from None
        finally:
            teardown_databases(state, verbosity=0)

        self.print_table(dataset, fields, results)
        if options["json"]:
            self.stdout.write(dumps(results, sort_keys=True))

    def evaluate(
        self, dataset: Path, records: list[dict], fields: tuple[str, ...], described_share: float, queries_side: str, seed: int, zero_shot: bool
    ) -> dict:
        from catalog.manifests import row_from_record
        from catalog.services import ImageInput, images_create
        from embeddings.selectors import version_active
        from embeddings.services import images_embed, neighbour_vectors_refresh
        from search.selectors import search_depth

        # The split is by caption over distinct contents, so all rows of one picture (the
        # import keeps one image for them) fall on one side.
        rows = [row_from_record(record, line=line + 1, folder=dataset, text_fields=fields) for line, record in enumerate(records)]
        captions_of_content = defaultdict(set)
        for row, record in zip(rows, records):
            content = row.path.read_bytes() if described_share else b""
            captions_of_content[hashlib.sha256(content).hexdigest()].add(record[QUERY_FIELD])
        described = described_captions(dict(enumerate(captions_of_content.values())), share=described_share, seed=seed)
        image_of_line: dict[int, int] = {}
        with tqdm(total=len(records), desc="importing", unit="image", disable=self.quiet) as progress:
            for start in range(0, len(records), 64):
                chunk = list(enumerate(records[start : start + 64], start=start))
                items = []
                for line, record in chunk:
                    row = rows[line]
                    content = row.path.read_bytes()
                    if not described_share:
                        items.append(ImageInput(content=content, title=row.title, description=row.description, tags=row.tags, name=str(line)))
                    elif record[QUERY_FIELD] in described:
                        # A described-side query must not find its own words stored verbatim.
                        caption = record[QUERY_FIELD] if queries_side == "bare" else ""
                        description = ". ".join(filter(None, (caption, row.description)))
                        items.append(ImageInput(content=content, title=row.title, description=description, tags=row.tags, name=str(line)))
                    else:
                        items.append(ImageInput(content=content, name=str(line)))
                report = images_create(items=items)
                for item, reason in report.invalid:
                    self.stderr.write(f"skipped {records[int(item.name)]['file']}: {reason}")
                image_of_line.update({int(name): image_id for name, image_id in report.ids_by_name.items()})
                progress.update(len(chunk))
        ids = sorted(set(image_of_line.values()))
        with tqdm(total=len(ids), desc="embedding", unit="image", disable=self.quiet) as progress:
            for start in range(0, len(ids), 32):
                images_embed(image_ids=ids[start : start + 32])
                progress.update(len(ids[start : start + 32]))

        version = version_active()
        # Embedding refreshes the bare images near each batch's described ones; measured
        # here is the settled state, as if every described image had been there first.
        for start in range(0, len(ids), 500):
            neighbour_vectors_refresh(version=version, image_ids=ids[start : start + 500])
        captions_of = defaultdict(set)
        group_of = {}
        for line, image_id in image_of_line.items():
            record = records[line]
            captions_of[image_id].add(record[QUERY_FIELD])
            group = record.get("group_id") or record.get("label")
            if group is not None:
                group_of[image_id] = str(group)
        images_of_caption = defaultdict(set)
        for image_id, captions in captions_of.items():
            for caption in captions:
                images_of_caption[caption].add(image_id)

        results = {
            "dataset": str(dataset), "images": len(ids), "text_fields": list(fields), "version": version.number,
            "described_share": described_share, "queries_side": queries_side, "seed": seed,
            "described_images": len({image_of_line[line] for line, record in enumerate(records) if line in image_of_line and record[QUERY_FIELD] in described}),
        }
        queries = sorted(caption for caption in images_of_caption if (caption in described) == (queries_side == "described"))
        text_modes = ("hybrid", "semantic", "keyword") if fields or described_share else ("semantic",)
        results.update(self.measure(version, queries, images_of_caption, text_modes, ids, group_of))
        if zero_shot:
            version = self.zero_shot_version()
            results["zero_shot"] = {"version": version.number, **self.measure(version, queries, images_of_caption, text_modes, ids, group_of)}
        results["ranking_depth"] = search_depth()
        return results

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

    def measure(self, version, queries: list[str], images_of_caption: dict, text_modes: tuple[str, ...], ids: list[int], group_of: dict) -> dict:
        from embeddings.spaces import space_for
        from search.selectors import Filters, fused_ranking, stored_vectors, vector_literal

        results = {"text_to_image": {}}
        vectors = space_for(version).embed_texts(queries)
        for mode in text_modes:
            ranks = []
            for query, vector in tqdm(list(zip(queries, vectors)), desc=f"v{version.number} text→image {mode}", unit="query", disable=self.quiet):
                ranking = fused_ranking(mode=mode, vector=vector_literal(vector), text=query, version=version, filters=Filters())
                ranks.append(first_relevant_rank([image_id for image_id, _ in ranking], images_of_caption[query]))
            results["text_to_image"][mode] = score(ranks).as_dict()
        results["text_to_image"]["random"] = random_scores([(len(ids), len(images_of_caption[query])) for query in queries]).as_dict()

        members = defaultdict(set)
        for image_id, group in group_of.items():
            members[group].add(image_id)
        probes = [image_id for image_id in ids if len(members.get(group_of.get(image_id), ())) > 1]
        if probes:
            # Picture queries rank by the CNN's features, as uploads and "more like this" do.
            ranks = []
            for image_id in tqdm(probes, desc=f"v{version.number} image→image", unit="query", disable=self.quiet):
                _, features = stored_vectors(image_id=image_id, version=version)
                ranking = fused_ranking(
                    mode="semantic", vector=None, features=vector_literal(features), text="",
                    version=version, filters=Filters(), exclude_id=image_id,
                )
                ranks.append(first_relevant_rank([other for other, _ in ranking], members[group_of[image_id]] - {image_id}))
            results["image_to_image"] = {"semantic": score(ranks).as_dict()}
            results["image_to_image"]["random"] = random_scores(
                [(len(ids) - 1, len(members[group_of[image_id]]) - 1) for image_id in probes]
            ).as_dict()
        return results

    def print_table(self, dataset: Path, fields, results: dict) -> None:
        stored = ", ".join(fields) if fields else "none (vectors alone)"
        if results["described_share"]:
            words = ", ".join(fields) if results["queries_side"] == "described" else "caption" + (" + " + ", ".join(fields) if fields else "")
            stored = (
                f"{words} on {results['described_images']} images "
                f"(described share {results['described_share']}, seed {results['seed']}), none on the rest; "
                f"queries: the {results['queries_side']} images' captions"
            )
        measured = [results] + ([results["zero_shot"]] if "zero_shot" in results else [])
        for number, scores_of in ((each["version"], each) for each in measured):
            self.stdout.write(f"{dataset}: {results['images']} images, model v{number}, stored text: {stored}")
            header = "| direction | mode | " + " | ".join(f"R@{k}" for k in KS) + " | MRR | queries |"
            self.stdout.write(header)
            self.stdout.write("|" + "---|" * (header.count("|") - 1))
            for direction, label in (("text_to_image", "text → image"), ("image_to_image", "image → image")):
                for mode, scores in scores_of.get(direction, {}).items():
                    cells = " | ".join(f"{scores[f'R@{k}']:.3f}" for k in KS)
                    self.stdout.write(f"| {label} | {mode} | {cells} | {scores['MRR']:.3f} | {scores['queries']} |")


def read_jsonl(path: Path):
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise CommandError(f"{path} line {number}: not JSON ({error.msg})") from None


def throwaway_database():
    """A fresh database beside the configured one, migrated, and selected for this process."""
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"glimpse_eval_{os.getpid()}"
    return setup_databases(verbosity=0, interactive=False, keepdb=False)
