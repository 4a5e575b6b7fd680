"""`pipeline("feature-extraction")` and the `elmo-embeddings` pipeline, with this package and as remote code; where the
ELMo `token-classification` pipeline is registered, and that other models keep transformers' own."""

import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from embed_helpers import converted_model
from transformers import AutoModel, AutoTokenizer, BertConfig, BertForTokenClassification, BertTokenizer, pipeline
from transformers.pipelines import PIPELINE_REGISTRY, TokenClassificationPipeline

import modeling_elmo.pipeline_elmo as pipeline_module
from fake_hub import run_python
from modeling_elmo import ElmoConfig, ElmoEmbeddingsPipeline, ElmoModel, ElmoScalarMix, ElmoTokenizer

TEXTS = ["The play was a hit.", "They play football on Sunday!", "I", "", "Hamlet , the play , opened in 1603 ."]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return converted_model(tmp_path_factory.mktemp("pipelines"))


@pytest.fixture(scope="module")
def model_and_tokenizer(folder):
    return AutoModel.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def embeddings(folder):
    """The registered class with this package's classes. (A converted folder names the pipeline in its
    config.json, which transformers follows only with trust_remote_code=True; that path is tested below.)"""
    return pipeline("elmo-embeddings", model=str(folder), pipeline_class=ElmoEmbeddingsPipeline)


def model_layers(model_and_tokenizer, texts, **kwargs):
    """The model's L + 1 hidden states for `texts` run as one padded batch, (L + 1, B, T, 2P), and the lengths."""
    model, tokenizer = model_and_tokenizer
    inputs = tokenizer(texts, padding=True, return_tensors="pt", **kwargs)
    with torch.no_grad():
        layers = model(**inputs, output_hidden_states=True).hidden_states
    return torch.stack(layers).numpy(), inputs["attention_mask"].sum(dim=1).tolist()


def test_feature_extraction_single_texts_and_batches(folder, model_and_tokenizer):
    extractor = pipeline("feature-extraction", model=str(folder))
    for text in TEXTS:
        layers, _ = model_layers(model_and_tokenizer, [text])
        np.testing.assert_array_equal(extractor(text, return_tensors=True).numpy(), layers[-1])
    texts = [TEXTS[1], TEXTS[2], TEXTS[4]]
    batched = extractor(texts, batch_size=2, return_tensors=True)
    first_batch, lengths = model_layers(model_and_tokenizer, texts[:2])
    assert lengths == [6, 1]
    for row in range(2):  # rows of one padded batch: the model's outputs for that batch
        np.testing.assert_array_equal(batched[row][0].numpy(), first_batch[-1, row])
    assert batched[1].shape == (1, 6, 16) and not batched[1][0, 1:].any()  # padding rows are zero
    np.testing.assert_array_equal(batched[2].numpy(), model_layers(model_and_tokenizer, texts[2:])[0][-1])


def test_elmo_embeddings_is_registered_and_saved_with_the_model(folder):
    assert PIPELINE_REGISTRY.supported_tasks["elmo-embeddings"]["impl"] is ElmoEmbeddingsPipeline
    config = json.loads((folder / "config.json").read_text())
    assert config["custom_pipelines"] == {
        "elmo-embeddings": {"impl": "pipeline_elmo.ElmoEmbeddingsPipeline", "pt": ["AutoModel"]}
    }
    assert (folder / "pipeline_elmo.py").read_bytes() == Path(pipeline_module.__file__).read_bytes()
    config = ElmoConfig(char_cnn_filters=[[1, 4], [2, 4]], char_embedding_dim=4, num_highway_layers=1,
                        projection_dim=4, lstm_cell_dim=8, num_lstm_layers=1)  # fmt: skip
    fresh = pipeline("elmo-embeddings", model=ElmoModel(config).eval(), tokenizer=ElmoTokenizer())
    assert type(fresh) is ElmoEmbeddingsPipeline
    assert fresh("a b c", layer="all")["vectors"].shape == (3, 2, 8)


def test_words_offsets_and_every_layer_choice(embeddings, model_and_tokenizer):
    text = TEXTS[0]
    layers = model_layers(model_and_tokenizer, [text])[0][:, 0]  # (L + 1, words, 2P)
    all_layers = embeddings(text, layer="all")
    assert all_layers["words"] == ["The", "play", "was", "a", "hit", "."]
    assert all(
        text[start:end] == word for word, (start, end) in zip(all_layers["words"], all_layers["offsets"], strict=True)
    )
    assert all_layers["offsets"][1] == (4, 8)
    np.testing.assert_array_equal(all_layers["vectors"], layers.transpose(1, 0, 2))  # (words, L + 1, 2P)
    np.testing.assert_array_equal(embeddings(text, layer="top")["vectors"], layers[-1])
    np.testing.assert_array_equal(embeddings(text)["vectors"], all_layers["vectors"])  # the default is "all"
    for number in range(3):
        np.testing.assert_array_equal(embeddings(text, layer=number)["vectors"], layers[number])
    average = torch.stack([torch.from_numpy(layer) for layer in layers]).mean(dim=0).numpy()
    np.testing.assert_array_equal(embeddings(text, layer="average")["vectors"], average)
    assert not np.array_equal(average, layers[-1])
    mix = ElmoScalarMix(3, initial_scalar_parameters=[0.5, -1.0, 2.0], initial_gamma=1.7)
    with torch.no_grad():
        expected = mix([torch.from_numpy(layer) for layer in layers]).numpy()
    weights = mix.normalized_weights().tolist()
    mixed = embeddings(text, layer="mix", mix_weights=weights, gamma=mix.gamma.item())["vectors"]
    np.testing.assert_array_equal(mixed, expected)


def test_batches_give_each_text_its_own_words_and_masked_pooling(embeddings, model_and_tokenizer):
    texts = TEXTS[1:4]  # 6 words, 1 word, no word: one padded batch
    results = embeddings(texts, batch_size=3, layer="top", pooling="max")
    layers, lengths = model_layers(model_and_tokenizer, texts)
    assert lengths == [6, 1, 0]
    for row, result in enumerate(results):
        own = layers[-1, row, : lengths[row]]
        np.testing.assert_array_equal(result["vectors"], own)
        assert len(result["words"]) == len(result["offsets"]) == lengths[row]
        expected = own.max(axis=0) if lengths[row] else np.zeros(16, np.float32)
        np.testing.assert_array_equal(result["sentence_vector"], expected)
    # the one-word text: zero padding would win the max where its vector is negative, so this checks the mask
    assert (results[1]["vectors"][0] < 0).any()
    means = embeddings(texts, batch_size=3, layer="all", pooling="mean")
    np.testing.assert_array_equal(means[0]["sentence_vector"], torch.from_numpy(layers[:, 0]).mean(dim=1).numpy())
    assert means[2]["vectors"].shape == (0, 3, 16) and not means[2]["sentence_vector"].any()
    for text, result in zip(texts, means, strict=True):  # batched or alone: the same up to float rounding
        np.testing.assert_allclose(result["vectors"], embeddings(text, layer="all")["vectors"], atol=1e-5)


def test_pre_split_words(embeddings, model_and_tokenizer):
    words = ["New", "York", "is", "big"]
    one = embeddings(words, is_split_into_words=True, layer="top")
    layers, _ = model_layers(model_and_tokenizer, [words], is_split_into_words=True)
    assert one["words"] == words and one["offsets"] == [(0, 3), (4, 8), (9, 11), (12, 15)]
    np.testing.assert_array_equal(one["vectors"], layers[-1, 0])
    several = embeddings([words, ["x"]], is_split_into_words=True, batch_size=2, layer=0)
    assert [result["words"] for result in several] == [words, ["x"]]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"layer": 3}, "layers 0-2"),
        ({"layer": "bottom"}, "layer must be one of"),
        ({"layer": "mix"}, "needs mix_weights"),
        ({"layer": "mix", "mix_weights": [1.0, 2.0]}, "has 2 values"),
        ({"layer": "top", "gamma": 2.0}, "only apply to layer='mix'"),
        ({"pooling": "sum"}, "pooling must be one of"),
        ({"layers": "top"}, "unexpected arguments"),
    ],
)
def test_bad_options_are_explained(embeddings, arguments, message):
    with pytest.raises((ValueError, TypeError), match=message):
        embeddings("a b", **arguments)


REMOTE_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from transformers import pipeline

    folder, out = sys.argv[1], sys.argv[2]
    texts = ["The play was a hit.", "They play football on Sunday!", "I", ""]
    try:
        import modeling_elmo  # noqa: F401
        sys.exit("modeling_elmo should not be importable here")
    except ImportError:
        pass
    extractor = pipeline("feature-extraction", model=folder, trust_remote_code=True)
    embeddings = pipeline(model=folder, trust_remote_code=True)  # the folder's only custom task
    arrays = {"single": np.array(extractor(texts[0]))[0]}
    for row, features in enumerate(extractor(texts[:2], batch_size=2)):
        arrays[f"batch{row}"] = np.array(features)[0]
    for row, result in enumerate(embeddings(texts, batch_size=4, layer="all", pooling="mean")):
        arrays[f"vectors{row}"], arrays[f"pooled{row}"] = result["vectors"], result["sentence_vector"]
        arrays[f"offsets{row}"] = np.array(result["offsets"]).reshape(-1, 2)
    np.savez(out, **arrays)
    print(type(extractor.model).__module__, type(embeddings).__module__)
    """
)


def test_both_pipelines_as_remote_code_without_the_package(folder, embeddings, model_and_tokenizer, tmp_path):
    out = tmp_path / "remote.npz"
    result = run_python(REMOTE_SCRIPT, folder, out, endpoint=None, hf_home=tmp_path / "hf", offline=True,
                        block_package=True)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    model_module, pipeline_module_name = result.stdout.split()
    assert model_module.startswith("transformers_modules") and pipeline_module_name.endswith(".pipeline_elmo")
    arrays = np.load(out)
    single, _ = model_layers(model_and_tokenizer, TEXTS[:1])
    np.testing.assert_array_equal(arrays["single"], single[-1, 0])
    batch, _ = model_layers(model_and_tokenizer, TEXTS[:2])
    for row in range(2):
        np.testing.assert_array_equal(arrays[f"batch{row}"], batch[-1, row])
    expected = embeddings(TEXTS[:4], batch_size=4, layer="all", pooling="mean")
    for row, result in enumerate(expected):
        np.testing.assert_array_equal(arrays[f"vectors{row}"], result["vectors"])
        np.testing.assert_array_equal(arrays[f"pooled{row}"], result["sentence_vector"])
        assert arrays[f"offsets{row}"].tolist() == [list(pair) for pair in result["offsets"]]


def test_other_models_still_get_transformers_token_pipeline(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world"]) + "\n")
    bert_tokenizer = BertTokenizer(vocab_file=str(vocab))
    config = BertConfig(vocab_size=7, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, num_labels=2)  # fmt: skip
    tagger = pipeline("token-classification", model=BertForTokenClassification(config), tokenizer=bert_tokenizer)
    assert type(tagger) is TokenClassificationPipeline
    assert [entity["word"] for entity in tagger("hello world", ignore_labels=[])] == ["hello", "world"]


# Imports a folder's copy of configuration_elmo.py (and pipeline_elmo.py) as transformers does for remote code, with
# the package blocked: importing registers nothing; `ElmoConfig.register_for_auto_class()`, which transformers calls
# when it loads a remote config, registers the ELMo token-classification pipeline.
REGISTRATION_SCRIPT = textwrap.dedent(
    """
    import sys
    from transformers.pipelines import PIPELINE_REGISTRY

    sys.path.insert(0, sys.argv[1])
    before = PIPELINE_REGISTRY.supported_tasks["token-classification"]["impl"]
    from remote_folder.configuration_elmo import ElmoConfig

    imported = PIPELINE_REGISTRY.supported_tasks["token-classification"]["impl"]
    ElmoConfig.register_for_auto_class()
    registered = PIPELINE_REGISTRY.supported_tasks["token-classification"]["impl"]
    names = [impl if isinstance(impl, str) else f"{impl.__module__}.{impl.__name__}" for impl in (before, imported)]
    print(*names, registered.__module__, registered.__name__)
    """
)


def test_the_token_pipeline_is_registered_by_registration_not_by_importing_the_configuration(tmp_path):
    folder = tmp_path / "code" / "remote_folder"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    for name in ("configuration_elmo.py", "pipeline_elmo.py"):
        shutil.copyfile(Path(pipeline_module.__file__).with_name(name), folder / name)
    result = run_python(REGISTRATION_SCRIPT, tmp_path / "code", endpoint=None, hf_home=tmp_path / "hf", offline=True,
                        block_package=True)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    before, imported, module, registered = result.stdout.split()
    assert before == imported == "transformers.pipelines.token_classification.TokenClassificationPipeline"
    assert (module, registered) == ("remote_folder.pipeline_elmo", "ElmoTokenClassificationPipeline")
