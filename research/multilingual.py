"""How to serve queries in any language without losing English: the measurements behind the
two-tower design (docs/multilingual.md), in memory, on the frozen towers' vectors.

    python research/multilingual.py DATA   # DATA holds emoji-multilingual and openclipart-multilingual (make datasets)

Each picture is described in English (emoji: its CLDR keywords; openclipart: title,
description and keywords) or bare (the label bridge alone), and every query is the
picture's name in one of ten languages. Rows compare the English tower (all-MiniLM-L6-v2),
the multilingual one (multilingual-e5-small), both fused by reciprocal rank with the
English lists weighed by the query's Englishness (what search does), e5's prefixes, a
linear map from e5 into MiniLM's space (fitted on MiniLM's vocabulary and the class
prompts), and centring by the class prompts' mean. Recall@10 per language. Research code:
not part of the product, which it imports only for the towers.
"""
import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
LANGUAGES = ["en", "zh", "ja", "ko", "de", "es", "fr", "ru", "ar", "hi"]


def rows_of(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "data.jsonl").read_text().splitlines() if line.strip()]


def dataset(folder: Path, *, described_by) -> tuple[list[str], np.ndarray, list[set[int]], dict[str, list[str]], list[str]]:
    """(files, class probabilities, relevant pictures per query, queries per language, English words per picture)."""
    from PIL import Image as PILImage

    from embeddings import encoders

    rows = rows_of(folder)
    files = sorted({row["file"] for row in rows})
    index = {file: position for position, file in enumerate(files)}
    tower = encoders.image_encoder_on("onnxruntime")
    probabilities = np.concatenate([
        tower.encode(np.stack([tower.preprocess(PILImage.open(folder / file)) for file in files[start : start + 64]])).probabilities
        for start in range(0, len(files), 64)
    ])
    groups, first, words = defaultdict(set), {}, {}
    for row in rows:
        groups[row["group_id"]].add(index[row["file"]])
        first.setdefault(row["group_id"], row)
        words[index[row["file"]]] = described_by(row)
    keys = sorted(groups)
    queries = {language: [first[key][f"caption_{language}"] for key in keys] for language in LANGUAGES}
    return files, probabilities, [groups[key] for key in keys], queries, [words[position] for position in range(len(files))]


def recall_at_10(scores: np.ndarray, relevant: list[set[int]]) -> float:
    """R@10 as evaluate_retrieval computes it (search/evaluation.py)."""
    from search.evaluation import first_relevant_rank, score

    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    return score([first_relevant_rank(row.tolist(), wanted) for row, wanted in zip(top, relevant)]).recall[10]


def fused(english: np.ndarray, multilingual: np.ndarray, weights: np.ndarray, depth: int = 100) -> np.ndarray:
    """Reciprocal rank fusion of two score matrices, the first list's ranks weighed per query."""
    total = np.zeros_like(english)
    rows = np.arange(len(english))[:, None]
    for scores, weight in ((english, weights[:, None]), (multilingual, np.ones((len(english), 1)))):
        order = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
        total[rows, order] += weight / (60 + np.arange(1, depth + 1))[None, :]
    return total + 1e-9 * multilingual


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    options = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from embeddings import encoders
    from embeddings.encoders import MINILM, e5
    from embeddings.encoders.bridge import PROMPT, bridge_vectors, imagenet_class_names
    from embeddings.encoders.english import vocabulary

    minilm, multilingual = encoders.text_encoder_on("onnxruntime"), encoders.text_encoder_on("onnxruntime", name=e5.NAME)
    passage = encoders.text_encoder_on("onnxruntime", name=e5.NAME)
    passage.prefix = "passage: "
    prompts = [PROMPT.format(name=name) for name in imagenet_class_names()]
    fit_texts = sorted(word for word in vocabulary(encoders.text_model(MINILM).location) if len(word) >= 3) + prompts
    source, target = multilingual.encode(fit_texts), minilm.encode(fit_texts)
    linear = np.linalg.solve(source.T @ source + 0.01 * np.eye(source.shape[1]), source.T @ target)
    centre = multilingual.encode(prompts).mean(axis=0)
    unit = lambda rows: rows / np.linalg.norm(rows, axis=1, keepdims=True)  # noqa: E731
    sets = {
        "emoji-multilingual": lambda row: ", ".join(row["keywords"]),
        "openclipart-multilingual": lambda row: ". ".join(filter(None, [row["title"], row["description"], ", ".join(row["keywords"])])),
    }
    for name, described_by in sets.items():
        _, probabilities, relevant, queries, words = dataset(options.data / name, described_by=described_by)
        spaces = {
            "bare": (bridge_vectors(probabilities, minilm.encode(prompts)), bridge_vectors(probabilities, multilingual.encode(prompts))),
            "described": (minilm.encode(words), multilingual.encode(words)),
        }
        table = defaultdict(list)
        for language in LANGUAGES:
            english_weight = np.array([encoders.query_englishness(query) for query in queries[language]])
            q_minilm, q_e5 = minilm.encode(queries[language]), multilingual.encode(queries[language])
            for setting, (in_minilm, in_e5) in spaces.items():
                table[f"{setting}: English tower"].append(recall_at_10(q_minilm @ in_minilm.T, relevant))
                table[f"{setting}: multilingual tower"].append(recall_at_10(q_e5 @ in_e5.T, relevant))
                table[f"{setting}: both, English lists by Englishness (served)"].append(
                    recall_at_10(fused(q_minilm @ in_minilm.T, q_e5 @ in_e5.T, english_weight), relevant))
                table[f"{setting}: both, equal weights"].append(recall_at_10(fused(q_minilm @ in_minilm.T, q_e5 @ in_e5.T, np.ones(len(relevant))), relevant))
                table[f"{setting}: e5 mapped into MiniLM's space"].append(recall_at_10(unit(q_e5 @ linear) @ in_minilm.T, relevant))
            table["described: e5 query/passage prefixes"].append(recall_at_10(q_e5 @ passage.encode(words).T, relevant))
            table["described: e5 centred by the class prompts' mean"].append(
                recall_at_10(unit(q_e5 - centre) @ unit(spaces["described"][1] - centre).T, relevant))
        print(f"\n{name}: Recall@10, {len(relevant)} queries per language")
        print("| rows | " + " | ".join(LANGUAGES) + " |")
        print("|---" * (len(LANGUAGES) + 1) + "|")
        for label, cells in table.items():
            print(f"| {label} | " + " | ".join(f"{cell:.3f}" for cell in cells) + " |")


if __name__ == "__main__":
    main()
