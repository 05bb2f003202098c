import json

from django.core.management.base import BaseCommand, CommandError

from embeddings import encoders
from embeddings.models import ModelVersion
from embeddings.selectors import version_active
from embeddings.spaces import space_for
from search.evaluation import judged_metrics
from search.judgments import judged_text_queries
from search.query_vectors import query_texts_vectors
from search.selectors import MODES, Filters, fused_ranking


class Command(BaseCommand):
    help = "nDCG@10, Recall@10 and MRR of a model version over the curators' judged text queries."

    def add_arguments(self, parser):
        # Not --version: every Django command already answers that with its Django version.
        parser.add_argument("--model-version", type=int, dest="number", help="version number (default: the active one)")
        parser.add_argument("--mode", choices=MODES, default="semantic", help="ranking to evaluate (default: semantic, the model's part)")
        parser.add_argument("--json", action="store_true", help="also print one JSON object on the last line")

    def handle(self, *args, number: int | None, mode: str, **options):
        if number is None:
            chosen = version_active()
        else:
            chosen = ModelVersion.objects.filter(number=number).first()
            if chosen is None:
                raise CommandError(f"there is no version {number}")
        judged = judged_text_queries()
        if not judged:
            raise CommandError("there are no judged text queries yet; judge results on the search page first")
        queries = sorted(judged)
        if chosen.embeddings.exists():
            source = "stored vectors, SQL ranking"
            rankings = {}
            for query, vectors in zip(queries, query_texts_vectors(texts=queries, version=chosen)):
                ranking = fused_ranking(
                    mode=mode, vector=vectors.vector, multilingual=vectors.multilingual, english=vectors.english, text=query,
                    version=chosen, filters=Filters(),
                )
                rankings[query] = [image_id for image_id, _ in ranking]
        else:
            raw = encoders.text_encoder().encode(queries)
            space = space_for(chosen)
            if mode != "semantic":
                raise CommandError(f"v{chosen.number} has no stored vectors; only --mode semantic can be computed in memory")
            source = "no stored vectors: computed in memory from the base vectors"
            from search.training_data import Catalog  # brings torch: only when ranking in memory

            rankings = Catalog().rankings(space, queries, raw, borrowed_share=chosen.borrowed_share)
        metrics = judged_metrics(rankings, judged)
        self.stdout.write(f"v{chosen.number} ({chosen.get_kind_display()}, {chosen.state}), {mode} ranking, {source}")
        self.stdout.write("| nDCG@10 | Recall@10 | MRR | judged queries |")
        self.stdout.write("|---|---|---|---|")
        self.stdout.write(f"| {metrics['nDCG@10']:.4f} | {metrics['Recall@10']:.4f} | {metrics['MRR']:.4f} | {metrics['queries']} |")
        if options["json"]:
            self.stdout.write(json.dumps({"version": chosen.number, "mode": mode, **metrics}))
