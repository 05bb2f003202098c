from django.core.management.base import BaseCommand, CommandError

from embeddings.exceptions import EmptyCatalog
from embeddings.services import version_start_release, version_zero_shot_create


class Command(BaseCommand):
    help = (
        "Make a zero-shot version adapted to the catalog as it is now (version 1's label bridge with the "
        "catalog's class prior removed and the class names centred; docs/retrieval.md, 'Version-1 variants') and start "
        "its release: a training-queue worker backfills it from the stored vectors, with no forward pass, "
        "and switches searches to it."
    )

    def handle(self, *args, **options):
        from embeddings import encoders
        from embeddings.zero_shot import tower_classifier

        weight, bias = tower_classifier()
        try:
            version = version_zero_shot_create(classifier_weight=weight, classifier_bias=bias, class_embeddings=encoders.class_embeddings())
        except EmptyCatalog as error:
            raise CommandError(str(error)) from None
        version_start_release(version=version)
        self.stdout.write(f"v{version.number}: class prior from {version.metrics['prior_images']} images; backfill queued, searches switch when it is done")
