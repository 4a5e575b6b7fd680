"""Remote code for everything an ELMo class saves: `save_pretrained` / `push_to_hub` of every class (loaded with this
package, or from the shipped `DEFAULT_MODEL`) writes the `.py` files, an `auto_map` naming every ELMo class and the
`elmo-embeddings` pipeline, so that the folder loads in a fresh interpreter where `modeling_elmo` cannot be imported
(`trust_remote_code=True`); `elmo push` accepts such folders; folders saved before `kernels_elmo.py`,
`loading_elmo.py` and `inputs_elmo.py` existed still load with the package installed; the shipped model works with
`trust_remote_code=True` too."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from test_model import small_config
from transformers import AutoModel, AutoTokenizer, pipeline

import modeling_elmo
from fake_hub import FakeHub, run_python
from modeling_elmo import (
    DEFAULT_MODEL,
    ElmoForBidirectionalLM,
    ElmoForSequenceClassification,
    ElmoForTokenClassification,
    ElmoModel,
    ElmoTokenizer,
)
from modeling_elmo.cli import main as elmo_main

pytestmark = pytest.mark.usefixtures("one_thread")

PACKAGE = Path(modeling_elmo.__file__).parent
#: The remote-code files of a saved folder: every model file of the package.
CODE_FILES = (
    "configuration_elmo.py",
    "inputs_elmo.py",
    "kernels_elmo.py",
    "loading_elmo.py",
    "modeling_elmo.py",
    "pipeline_elmo.py",
    "tokenization_elmo.py",
)
AUTO_MAP = {
    "AutoConfig": "configuration_elmo.ElmoConfig",
    "AutoModel": "modeling_elmo.ElmoModel",
    "AutoModelForPreTraining": "modeling_elmo.ElmoForBidirectionalLM",
    "AutoModelForTokenClassification": "modeling_elmo.ElmoForTokenClassification",
    "AutoModelForSequenceClassification": "modeling_elmo.ElmoForSequenceClassification",
}
CUSTOM_PIPELINES = {"elmo-embeddings": {"impl": "pipeline_elmo.ElmoEmbeddingsPipeline", "pt": ["AutoModel"]}}
TEXTS = ["The play was a hit .", "They play football on Sunday !"]
LABELS = {0: "O", 1: "B-LOC", 2: "I-LOC"}
#: Each folder's class and the Auto class that loads it.
CLASSES = {
    "bilm": (ElmoModel, "AutoModel"),
    "language-model": (ElmoForBidirectionalLM, "AutoModelForPreTraining"),
    "tagger": (ElmoForTokenClassification, "AutoModelForTokenClassification"),
    "classifier": (ElmoForSequenceClassification, "AutoModelForSequenceClassification"),
}


def tiny_model(model_class: type, seed: int):
    """A tiny random model of `model_class` (a language model of 6 words, or heads with 3 labels)."""
    torch.manual_seed(seed)
    config = small_config(
        lm_vocab_size=6, lm_begin_of_sentence_id=0, lm_end_of_sentence_id=1, lm_unknown_id=2,
        id2label=LABELS, label2id={label: index for index, label in LABELS.items()}, task_encoder_hidden_size=4,
        task_encoder_layers=1,
    )  # fmt: skip
    return model_class(config).eval()


def outputs(model, tokenizer) -> np.ndarray:
    """The model's characteristic output on `TEXTS`: all layers of a biLM, the losses of a language model, logits."""
    inputs = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        if isinstance(model, ElmoForBidirectionalLM):
            labels = torch.where(inputs["attention_mask"].bool(), 3, -100)
            result = model(**inputs, labels=labels)
            return torch.stack([result.forward_loss, result.backward_loss]).numpy()
        if isinstance(model, ElmoModel):
            return torch.stack(model(**inputs, output_hidden_states=True).hidden_states).numpy()
        return model(**inputs).logits.numpy()


def saved_with_save_pretrained(model, tokenizer, folder: Path) -> Path:
    """`folder` written by the plain `save_pretrained` of the model and the tokenizer (as the Trainer, a script or
    `push_to_hub` does)."""
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def assert_has_remote_code(folder: Path) -> None:
    for name in CODE_FILES:
        assert (folder / name).read_bytes() == (PACKAGE / name).read_bytes(), name
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == AUTO_MAP
    assert config["custom_pipelines"] == CUSTOM_PIPELINES
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert tokenizer_config["auto_map"]["AutoTokenizer"][0] == "tokenization_elmo.ElmoTokenizer"


# argv: output .npz, then (name, folder, Auto class) triples. Loads every folder without the package, through its own
# Auto class and AutoModel; builds both heads from the biLM's folder; saves the tagger again and reloads it.
LOAD_WITHOUT_THE_PACKAGE = textwrap.dedent(
    """
    import sys
    import numpy as np
    import torch
    import transformers
    from transformers import AutoModel, AutoTokenizer, pipeline

    try:
        import modeling_elmo  # noqa: F401
        sys.exit("modeling_elmo should be blocked")
    except ImportError:
        pass
    torch.set_num_threads(1)
    texts = ["The play was a hit .", "They play football on Sunday !"]
    out, arguments = sys.argv[1], sys.argv[2:]
    arrays, classes = {}, {}

    def characteristic(model, tokenizer):
        inputs = tokenizer(texts, padding=True, return_tensors="pt")
        with torch.no_grad():
            if type(model).__name__ == "ElmoForBidirectionalLM":
                result = model(**inputs, labels=torch.where(inputs["attention_mask"].bool(), 3, -100))
                return torch.stack([result.forward_loss, result.backward_loss]).numpy()
            if type(model).__name__ == "ElmoModel":
                return torch.stack(model(**inputs, output_hidden_states=True).hidden_states).numpy()
            return model(**inputs).logits.numpy()

    folders = {}
    for name, folder, auto_class in zip(arguments[::3], arguments[1::3], arguments[2::3]):
        folders[name] = folder
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
        model = getattr(transformers, auto_class).from_pretrained(folder, trust_remote_code=True).eval()
        bilm = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
        arrays[name] = characteristic(model, tokenizer)
        arrays[name + "-bilm"] = characteristic(bilm, tokenizer)
        classes[name] = [type(model).__module__.split(".")[0], type(model).__name__, type(bilm).__name__]
    for auto_class in ("AutoModelForTokenClassification", "AutoModelForSequenceClassification"):
        head = getattr(transformers, auto_class).from_pretrained(folders["bilm"], trust_remote_code=True, num_labels=3)
        classes[auto_class] = [type(head).__name__]
    again = folders["tagger"] + "-saved-again"
    model = transformers.AutoModelForTokenClassification.from_pretrained(folders["tagger"], trust_remote_code=True)
    model.save_pretrained(again)
    AutoTokenizer.from_pretrained(folders["tagger"], trust_remote_code=True).save_pretrained(again)
    tokenizer = AutoTokenizer.from_pretrained(again, trust_remote_code=True)
    arrays["tagger-saved-again"] = characteristic(
        transformers.AutoModelForTokenClassification.from_pretrained(again, trust_remote_code=True).eval(), tokenizer
    )
    embeddings = pipeline(model=folders["bilm"], trust_remote_code=True)
    arrays["pipeline"] = embeddings(texts[0], layer="top")["vectors"]
    classes["pipeline"] = [type(embeddings).__name__]
    np.savez(out, **arrays)
    print(__import__("json").dumps(classes))
    """
)


def test_every_class_saves_a_folder_that_loads_without_the_package(tmp_path):
    tokenizer = ElmoTokenizer()
    expected, arguments = {}, []
    for seed, (name, (model_class, auto_class)) in enumerate(CLASSES.items()):
        model = tiny_model(model_class, seed)
        folder = saved_with_save_pretrained(model, tokenizer, tmp_path / name)
        assert_has_remote_code(folder)
        expected[name] = outputs(model, tokenizer)
        expected[name + "-bilm"] = outputs(model if model_class is ElmoModel else model.elmo, tokenizer)
        arguments += [name, folder, auto_class]
    shipped = AutoModel.from_pretrained(DEFAULT_MODEL).eval()
    shipped_tokenizer = AutoTokenizer.from_pretrained(DEFAULT_MODEL)
    folder = saved_with_save_pretrained(shipped, shipped_tokenizer, tmp_path / "default")
    assert_has_remote_code(folder)
    expected["default"] = expected["default-bilm"] = outputs(shipped, shipped_tokenizer)
    arguments += ["default", folder, "AutoModel"]

    result = run_python(LOAD_WITHOUT_THE_PACKAGE, tmp_path / "remote.npz", *arguments, endpoint=None,
                        hf_home=tmp_path / "hf", offline=True, block_package=True)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    classes = json.loads(result.stdout.splitlines()[-1])
    for name, (model_class, _) in CLASSES.items():
        assert classes[name] == ["transformers_modules", model_class.__name__, "ElmoModel"]
    assert classes["AutoModelForTokenClassification"] == ["ElmoForTokenClassification"]
    assert classes["AutoModelForSequenceClassification"] == ["ElmoForSequenceClassification"]
    assert classes["pipeline"] == ["ElmoEmbeddingsPipeline"]
    remote = np.load(tmp_path / "remote.npz")
    for name, array in expected.items():
        np.testing.assert_array_equal(remote[name], array, err_msg=name)
    np.testing.assert_array_equal(remote["tagger-saved-again"], expected["tagger"])
    np.testing.assert_array_equal(remote["pipeline"], expected["bilm"][-1, 0])
    assert_has_remote_code(tmp_path / "tagger-saved-again")


PUSH = textwrap.dedent(
    """
    import sys
    import torch
    from modeling_elmo import ElmoConfig, ElmoForTokenClassification, ElmoTokenizer

    torch.manual_seed(0)
    config = ElmoConfig(char_embedding_dim=4, char_cnn_filters=[[1, 4], [2, 8]], num_highway_layers=1,
                        projection_dim=8, lstm_cell_dim=16, num_lstm_layers=1, num_labels=3,
                        task_encoder_hidden_size=4, task_encoder_layers=1)
    model = ElmoForTokenClassification(config).eval()
    model.push_to_hub(sys.argv[1])
    ElmoTokenizer().push_to_hub(sys.argv[1])
    inputs = ElmoTokenizer()(["The play was a hit ."], return_tensors="pt")
    with torch.no_grad():
        print(model(**inputs).logits.flatten().tolist())
    """
)
PULL = textwrap.dedent(
    """
    import sys
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    model = AutoModelForTokenClassification.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(sys.argv[1], trust_remote_code=True)
    inputs = tokenizer(["The play was a hit ."], return_tensors="pt")
    with torch.no_grad():
        print(type(model).__module__.split(".")[0], model(**inputs).logits.flatten().tolist())
    """
)


def test_push_to_hub_uploads_the_remote_code(tmp_path):
    repo_id = "org/elmo-tagger"
    with FakeHub() as hub:
        push = run_python(PUSH, repo_id, endpoint=hub.endpoint, hf_home=tmp_path / "push-home")
        assert push.returncode == 0, push.stderr[-3000:]
        files = hub.files(repo_id)
        for name in CODE_FILES:
            assert files[name] == (PACKAGE / name).read_bytes(), name
        assert json.loads(files["config.json"])["auto_map"] == AUTO_MAP
        pull = run_python(PULL, repo_id, endpoint=hub.endpoint, hf_home=tmp_path / "pull-home", block_package=True)
        assert pull.returncode == 0, pull.stderr[-3000:]
    module, logits = pull.stdout.splitlines()[-1].split(" ", 1)
    assert module == "transformers_modules"
    assert json.loads(logits) == json.loads(push.stdout.splitlines()[-1])


def test_elmo_push_accepts_trained_models_and_task_heads(tmp_path, hub_endpoint, capsys):
    """What training writes (`save_pretrained` of the language model, its biLM under `elmo.`) and a trained head."""
    tokenizer = ElmoTokenizer()
    language_model = saved_with_save_pretrained(tiny_model(ElmoForBidirectionalLM, 0), tokenizer, tmp_path / "lm")
    tagger = saved_with_save_pretrained(tiny_model(ElmoForTokenClassification, 1), tokenizer, tmp_path / "tagger")
    for folder in (language_model, tagger):
        assert elmo_main(["push", str(folder), "--repo-id", f"org/{folder.name}"]) == 0, capsys.readouterr().err
        files = hub_endpoint.files(f"org/{folder.name}")
        assert set(CODE_FILES) <= set(files) and "model.safetensors" in files


# argv: the shipped model folder, a folder saved without kernels_elmo.py, loading_elmo.py and inputs_elmo.py (as before
# they existed).
WITH_THE_PACKAGE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import modeling_elmo
    from transformers import AutoModel, AutoTokenizer, pipeline

    shipped, old = sys.argv[1], sys.argv[2]
    embeddings = pipeline("elmo-embeddings", model=shipped, trust_remote_code=True)
    model = AutoModel.from_pretrained(shipped, trust_remote_code=True)
    tokenizer = AutoTokenizer.from_pretrained(shipped, trust_remote_code=True)
    old_model = AutoModel.from_pretrained(old, trust_remote_code=True)
    old_pipeline = pipeline(model=old, trust_remote_code=True)
    print(json.dumps({
        "classes": [type(embeddings).__name__, type(model).__module__, type(tokenizer).__module__,
                    type(old_model).__module__, type(old_pipeline).__name__],
        "vectors": embeddings("The play was a hit.", layer="top")["vectors"].tolist(),
        "old": old_pipeline("The play was a hit.", layer="top")["vectors"].tolist(),
    }))
    """
)


def test_the_shipped_model_and_older_folders_with_trust_remote_code(tmp_path):
    shipped = Path(DEFAULT_MODEL)
    tokenizer = ElmoTokenizer()
    old = saved_with_save_pretrained(tiny_model(ElmoModel, 5), tokenizer, tmp_path / "old")
    for name in ("kernels_elmo.py", "loading_elmo.py", "inputs_elmo.py"):
        (old / name).unlink()
    result = run_python(WITH_THE_PACKAGE, shipped, old, endpoint=None, hf_home=tmp_path / "hf", offline=True)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.splitlines()[-1])
    pipeline_class, model_module, tokenizer_module, old_model_module, old_pipeline_class = found["classes"]
    assert pipeline_class == old_pipeline_class == "ElmoEmbeddingsPipeline"
    assert model_module == old_model_module == "modeling_elmo.modeling_elmo"  # the package's classes, not the folder's
    assert tokenizer_module == "modeling_elmo.tokenization_elmo_fast"
    expected = pipeline("elmo-embeddings")("The play was a hit.", layer="top")["vectors"]
    np.testing.assert_allclose(np.array(found["vectors"]), expected, atol=1e-6)
    assert np.array(found["old"]).shape == (6, 16)
