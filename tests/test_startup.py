"""Start-up: `import modeling_elmo`, `elmo --help` and argument errors import neither torch nor transformers, and the
registration that `import modeling_elmo` promises takes effect whatever the order of the imports.

Every check runs in a fresh interpreter (a module imported once stays imported), which reports what it imported
when it exits. The registration checks load tiny saved folders through the Auto classes without
`trust_remote_code`, and build the pipelines."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertForTokenClassification, BertTokenizer

from fake_hub import run_python
from modeling_elmo import DEFAULT_MODEL, ElmoConfig, ElmoForTokenClassification, ElmoModel, ElmoTokenizer

#: Prints, as the interpreter exits, which of torch and transformers it imported (a JSON list on stderr).
REPORT_AT_EXIT = textwrap.dedent(
    """
    import atexit, json, sys
    atexit.register(lambda: print("imported:", json.dumps(sorted({"torch", "transformers"} & set(sys.modules))),
                                  file=sys.stderr))
    """
)


def run_reporting(code: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run `code` in a fresh interpreter; its result and the heavy libraries it had imported at exit."""
    result = subprocess.run(
        [sys.executable, "-c", REPORT_AT_EXIT + code], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    reports = [line for line in result.stderr.splitlines() if line.startswith("imported: ")]
    assert reports, result.stderr[-3000:]
    return result, json.loads(reports[-1].removeprefix("imported: "))


@pytest.mark.parametrize(
    ("arguments", "status", "expected_output"),
    [
        (["--help"], 0, "embed"),
        (["embed"], 2, "the following arguments are required"),
        (["embed", "in.txt", "out.hdf5", "--batch-size", "many"], 2, "--batch-size"),
        (["no-such-command"], 2, "invalid choice"),
    ],
    ids=["help", "missing-argument", "bad-value", "unknown-command"],
)
def test_help_and_argument_errors_import_neither_torch_nor_transformers(tmp_path, arguments, status, expected_output):
    code = f"sys.argv = ['elmo', *{arguments!r}]\nfrom modeling_elmo.cli import run\nrun()\n"
    result, imported = run_reporting(code, tmp_path)
    assert result.returncode == status, result.stderr[-3000:]
    assert expected_output in result.stdout + result.stderr
    assert imported == []


def test_importing_the_package_imports_neither_torch_nor_transformers(tmp_path):
    code = textwrap.dedent(
        """
        import modeling_elmo
        names = dir(modeling_elmo)
        assert {"ElmoModel", "ElmoTokenizerFast", "DEFAULT_MODEL", "ElmoEmbedder"} <= set(names), names
        assert modeling_elmo.DEFAULT_MODEL.endswith("elmo-english-small")
        """
    )
    result, imported = run_reporting(code, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert imported == []


def test_public_names_are_imported_on_use(tmp_path):
    code = textwrap.dedent(
        """
        import modeling_elmo
        from modeling_elmo import ElmoModel, ElmoTokenizerFast
        from modeling_elmo.modeling_elmo import ElmoModel as defined
        from modeling_elmo.tokenization_elmo_fast import ElmoTokenizerFast as fast_defined
        assert ElmoModel is defined and ElmoTokenizerFast is fast_defined
        assert set(modeling_elmo.__all__) <= set(dir(modeling_elmo))
        for name in modeling_elmo.__all__:
            getattr(modeling_elmo, name)
        try:
            modeling_elmo.NoSuchName
        except AttributeError as error:
            assert "NoSuchName" in str(error)
        else:
            raise AssertionError("no AttributeError")
        """
    )
    result, imported = run_reporting(code, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert imported == ["torch", "transformers"]


# ---------------------------------------------------------------------------------------------- registration

AUTO_IMPORTS = (
    "from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification, AutoTokenizer, pipeline"
)
#: The imports of each order; then the same loads. `bert-between` imports a transformers model module between the
#: package and the Auto classes (transformers.modeling_layers imports the Auto model classes while half executed).
ORDERS = {
    "package-first": f"import modeling_elmo\n{AUTO_IMPORTS}\n",
    "transformers-first": f"{AUTO_IMPORTS}\nimport modeling_elmo\n",
    "bert-between": f"import modeling_elmo\nimport transformers.models.bert.modeling_bert\n{AUTO_IMPORTS}\n",
}
# argv: the biLM folder, the tagger folder, a BERT tagger folder, the shipped model. Nothing passes
# trust_remote_code: the package's registered classes must do.
LOADS = textwrap.dedent(
    """
    import json, sys
    bilm, tagger, bert, shipped = sys.argv[1:5]

    def named(value):
        value = value if isinstance(value, type) else type(value)
        return f"{value.__module__}.{value.__name__}"

    print(json.dumps({
        "config": named(AutoConfig.from_pretrained(bilm)),
        "model": named(AutoModel.from_pretrained(bilm)),
        "tagger": named(AutoModelForTokenClassification.from_pretrained(tagger)),
        "tagger-bilm": named(AutoModel.from_pretrained(tagger)),
        "tokenizer": named(AutoTokenizer.from_pretrained(bilm)),
        "embeddings": named(pipeline("elmo-embeddings", model=shipped)),
        "default": named(pipeline("elmo-embeddings")),
        "token-classification": named(pipeline("token-classification", model=tagger)),
        "bert-token-classification": named(pipeline("token-classification", model=bert)),
        "tags": [entity["word"] for entity in pipeline("ner", model=tagger)("New York is big", ignore_labels=[])],
    }))
    """
)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """A tiny biLM and tagger saved by the package, and a tiny BERT tagger saved by transformers."""
    root = tmp_path_factory.mktemp("startup")
    torch.manual_seed(0)
    labels = {0: "O", 1: "B-LOC", 2: "I-LOC"}
    config = ElmoConfig(char_cnn_filters=[[1, 4], [2, 4]], char_embedding_dim=4, num_highway_layers=1,
                        projection_dim=4, lstm_cell_dim=8, num_lstm_layers=1, id2label=labels,
                        label2id={label: index for index, label in labels.items()}, task_encoder_hidden_size=4,
                        task_encoder_layers=1)  # fmt: skip
    for name, model_class in (("bilm", ElmoModel), ("tagger", ElmoForTokenClassification)):
        model_class(config).save_pretrained(root / name)
        ElmoTokenizer().save_pretrained(root / name)
    vocab = root / "bert-vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "new", "york", "is", "big"]) + "\n")
    bert_config = BertConfig(vocab_size=9, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=16, num_labels=3)  # fmt: skip
    BertForTokenClassification(bert_config).save_pretrained(root / "bert")
    BertTokenizer(vocab_file=str(vocab)).save_pretrained(root / "bert")
    return {"bilm": root / "bilm", "tagger": root / "tagger", "bert": root / "bert"}


@pytest.mark.parametrize("order", ORDERS)
def test_registration_whatever_the_import_order(folders, order, tmp_path):
    result = run_python(ORDERS[order] + LOADS, folders["bilm"], folders["tagger"], folders["bert"], DEFAULT_MODEL,
                        endpoint=None, hf_home=tmp_path / "hf", offline=True)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.splitlines()[-1])
    assert found == {
        "config": "modeling_elmo.configuration_elmo.ElmoConfig",
        "model": "modeling_elmo.modeling_elmo.ElmoModel",
        "tagger": "modeling_elmo.modeling_elmo.ElmoForTokenClassification",
        "tagger-bilm": "modeling_elmo.modeling_elmo.ElmoModel",
        "tokenizer": "modeling_elmo.tokenization_elmo_fast.ElmoTokenizerFast",
        "embeddings": "modeling_elmo.pipeline_elmo.ElmoEmbeddingsPipeline",
        "default": "modeling_elmo.pipeline_elmo.ElmoEmbeddingsPipeline",
        "token-classification": "modeling_elmo.pipeline_elmo.ElmoTokenClassificationPipeline",
        "bert-token-classification": "transformers.pipelines.token_classification.TokenClassificationPipeline",
        "tags": ["New", "York", "is", "big"],
    }


def test_classes_imported_alone_are_registered_for_saving_with_their_remote_code(tmp_path):
    """`conversion` and training import the model module itself, not the Auto classes: what they save still carries
    its remote code."""
    code = textwrap.dedent(
        """
        import json, sys
        from modeling_elmo.configuration_elmo import ElmoConfig
        from modeling_elmo.modeling_elmo import ElmoModel
        from modeling_elmo.tokenization_elmo import ElmoTokenizer

        config = ElmoConfig(char_cnn_filters=[[1, 4]], char_embedding_dim=4, num_highway_layers=1, projection_dim=4,
                            lstm_cell_dim=8, num_lstm_layers=1)
        ElmoModel(config).save_pretrained(sys.argv[1])
        ElmoTokenizer().save_pretrained(sys.argv[1])
        """
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "saved")], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    saved = tmp_path / "saved"
    names = {path.name for path in saved.iterdir()}
    assert {"configuration_elmo.py", "modeling_elmo.py", "tokenization_elmo.py"} <= names
    assert json.loads((saved / "config.json").read_text())["auto_map"]["AutoModel"] == "modeling_elmo.ElmoModel"
    assert json.loads((saved / "tokenizer_config.json").read_text())["auto_map"]["AutoTokenizer"][0] == (
        "tokenization_elmo.ElmoTokenizer"
    )
