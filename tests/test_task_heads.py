"""The task heads (ElmoForTokenClassification, ElmoForSequenceClassification) on tiny random models: training (plain
loop and Trainer), the scalar mix and its regularisation, freezing, padding and word alignment, classify_layers, saving
and loading (also as remote code), the token- and text-classification pipelines, and bad input."""

from __future__ import annotations

import json
import math
import textwrap

import numpy as np
import pytest
import torch
from test_model import small_config
from transformers import (
    AutoModel,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    DataCollatorForTokenClassification,
    Trainer,
    TrainingArguments,
    pipeline,
)

from fake_hub import run_python
from modeling_elmo import (
    ElmoConfig,
    ElmoForSequenceClassification,
    ElmoForTokenClassification,
    ElmoModel,
    ElmoTokenClassificationPipeline,
    ElmoTokenizer,
)
from modeling_elmo.conversion.folder import save_with_remote_code
from modeling_elmo.modeling_elmo import ElmoSequencePooler

TAGS = {0: "O", 1: "B-LOC", 2: "I-LOC", 3: "B-PER"}
LOCATIONS = {"Paris": "B-LOC", "Rome": "B-LOC", "New": "B-LOC", "York": "I-LOC"}
PEOPLE = {"Anna", "Bob", "Smith"}
TEXTS = [
    "Anna met Bob in Paris.",
    "Dr. Smith, from New York, visited Rome!",
    "the cat sat",
    "Rome",
    "Bob's friends (and Anna) like New York's parks...",
    "Nothing happens here, really.",
]
SENTIMENT_TEXTS = ["a good film", "bad", "good good good", "a bad bad film", "the film was good", "the film was bad"]
SENTIMENT_LABELS = [1, 0, 1, 0, 1, 0]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tokenizer() -> ElmoTokenizer:
    return ElmoTokenizer()


def head_config(**overrides) -> ElmoConfig:
    """A tiny biLM (P = 8, 2 layers) with a tiny task encoder and no dropout; the labels are `TAGS` unless
    `num_labels` is given."""
    values = dict(
        task_encoder_hidden_size=8,
        task_encoder_layers=1,
        scalar_mix_dropout=0.0,
        task_encoder_dropout=0.0,
        classifier_dropout=0.0,
    )
    values.update(overrides)
    if "num_labels" not in values:
        values.update(id2label=TAGS, label2id={label: index for index, label in TAGS.items()})
    return small_config(**values)


def make_head(cls, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return cls(head_config(**overrides))


def word_tags(tokenizer: ElmoTokenizer, text: str) -> list[int]:
    label_ids = {label: index for index, label in TAGS.items()}
    names = [LOCATIONS.get(word, "B-PER" if word in PEOPLE else "O") for word in tokenizer.tokenize(text)]
    return [label_ids[name] for name in names]


def token_batch(tokenizer: ElmoTokenizer, texts: list[str], padding_label: int = -100) -> dict[str, torch.Tensor]:
    """The padded batch of `texts` with each word's tag as `labels` (`padding_label` at padding)."""
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    labels = torch.full(batch["attention_mask"].shape, padding_label)
    for row, text in enumerate(texts):
        tags = word_tags(tokenizer, text)
        labels[row, : len(tags)] = torch.tensor(tags, dtype=torch.long)
    return {**batch, "labels": labels}


def sequence_batch(tokenizer: ElmoTokenizer) -> dict[str, torch.Tensor]:
    batch = tokenizer(SENTIMENT_TEXTS, padding=True, return_tensors="pt")
    return {**batch, "labels": torch.tensor(SENTIMENT_LABELS)}


def train(model, batch: dict[str, torch.Tensor], steps: int, lr: float = 0.1) -> list[float]:
    """Adam on one batch; the loss of every step."""
    model.train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def perturb_encoder_biases(model) -> None:
    """Random biases for the task LSTM: with its zero initial biases, an LSTM reading the zero vectors at padding stays
    at the zero state, which would hide padding that leaks into it."""
    with torch.no_grad():
        for name, parameter in model.encoder.lstm.named_parameters():
            if name.startswith("bias"):
                parameter.normal_(0.0, 0.5)


def bilm_state(model) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in model.elmo.state_dict().items()}


def mix_entropy(model) -> float:
    weights = model.scalar_mix.normalized_weights().detach()
    return float(-(weights * weights.log()).sum())


# ----------------------------------------------------------------------------------------------- training


@pytest.mark.parametrize("encoder", ["lstm", "none"])
def test_token_head_trains_and_the_mix_gets_gradients(tokenizer, encoder):
    # The layer norm scales the tiny random biLM's small vectors up, so that a few steps learn the words' tags.
    model = make_head(ElmoForTokenClassification, task_encoder=encoder, scalar_mix_layer_norm=True)
    batch = token_batch(tokenizer, TEXTS)
    before = bilm_state(model)
    losses = train(model, batch, steps=40)
    assert losses[-1] < 0.4 * losses[0]
    assert model.scalar_mix.scalar_parameters.grad.abs().sum() > 0
    assert model.scalar_mix.gamma.grad.abs().sum() > 0
    assert not any(parameter.requires_grad for parameter in model.elmo.parameters())
    for name, tensor in model.elmo.state_dict().items():  # frozen (the default): the biLM is untouched
        assert torch.equal(tensor, before[name]), name
    model.eval()
    with torch.no_grad():
        predicted = model(**batch).logits.argmax(-1)
    keep = batch["labels"] != -100
    accuracy = (predicted[keep] == batch["labels"][keep]).float().mean()
    assert accuracy > (0.9 if encoder == "lstm" else 0.75)


@pytest.mark.parametrize(("encoder", "pooling"), [("lstm", "mean"), ("lstm", "max"), ("none", "mean"), ("none", "max")])
def test_sequence_head_trains(tokenizer, encoder, pooling):
    model = make_head(ElmoForSequenceClassification, task_encoder=encoder, sequence_pooling=pooling, num_labels=2,
                      scalar_mix_layer_norm=True)  # fmt: skip
    batch = sequence_batch(tokenizer)
    losses = train(model, batch, steps=30)
    assert losses[-1] < 0.1 * losses[0]
    assert model.scalar_mix.scalar_parameters.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        assert model(**batch).logits.argmax(-1).tolist() == SENTIMENT_LABELS


@pytest.mark.parametrize("cls", [ElmoForTokenClassification, ElmoForSequenceClassification])
def test_fine_tuning_changes_the_bilm(tokenizer, cls):
    model = make_head(cls, freeze_elmo=False)
    batch = token_batch(tokenizer, TEXTS) if cls is ElmoForTokenClassification else sequence_batch(tokenizer)
    if cls is ElmoForSequenceClassification:
        batch["labels"] = batch["labels"] % len(TAGS)
    before = bilm_state(model)
    train(model, batch, steps=3)
    changed = [name for name, tensor in model.elmo.state_dict().items() if not torch.equal(tensor, before[name])]
    assert "token_embedder.projection.weight" in changed and "bilstm.layers.1.input_weight" in changed


def test_regularization_alone_pulls_the_mix_towards_uniform(tokenizer):
    """With every label ignored there is no task signal: λ ‖s‖² is the whole loss, so plain SGD shrinks s by the
    factor 1 - 2 lr λ per step, and λ = 0 leaves it alone."""
    batch = token_batch(tokenizer, TEXTS[:2])
    batch["labels"] = torch.full_like(batch["labels"], -100)
    start = torch.tensor([2.0, -1.0, 0.5])
    entropies = {}
    for strength in (0.0, 0.5):
        model = make_head(ElmoForTokenClassification, scalar_mix_regularization=strength)
        with torch.no_grad():
            model.scalar_mix.scalar_parameters.copy_(start)
        optimizer = torch.optim.SGD([model.scalar_mix.scalar_parameters], lr=0.1)
        for step in range(1, 11):
            optimizer.zero_grad()
            model(**batch).loss.backward()
            optimizer.step()
            expected = start * (1 - 2 * 0.1 * strength) ** step
            torch.testing.assert_close(model.scalar_mix.scalar_parameters.detach(), expected)
        entropies[strength] = mix_entropy(model)
    assert entropies[0.5] > entropies[0.0] + 0.2
    assert entropies[0.5] < math.log(3)


def test_strong_regularization_keeps_the_mix_closer_to_uniform_while_learning(tokenizer):
    batch = token_batch(tokenizer, TEXTS)
    entropies = {}
    for strength in (0.0, 10.0):
        model = make_head(ElmoForTokenClassification, scalar_mix_regularization=strength, scalar_mix_layer_norm=True)
        train(model, batch, steps=30)
        entropies[strength] = mix_entropy(model)
    assert entropies[10.0] > entropies[0.0]
    assert math.log(3) - entropies[10.0] < 1e-3


@pytest.mark.parametrize("cls", [ElmoForTokenClassification, ElmoForSequenceClassification])
def test_short_trainer_run_lowers_the_loss(tokenizer, tmp_path, cls):
    sizes = {} if cls is ElmoForTokenClassification else {"num_labels": 2}
    model = make_head(cls, scalar_mix_layer_norm=True, **sizes)
    if cls is ElmoForTokenClassification:
        examples = [{**tokenizer(text), "labels": word_tags(tokenizer, text)} for text in TEXTS]
        collator = DataCollatorForTokenClassification(tokenizer)
    else:  # the Trainer's default collator pads the words; "label" becomes "labels"
        pairs = zip(SENTIMENT_TEXTS, SENTIMENT_LABELS, strict=True)
        examples = [{**tokenizer(text), "label": label} for text, label in pairs]
        collator = None
    arguments = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=24,
        per_device_train_batch_size=6,
        learning_rate=0.1,
        lr_scheduler_type="constant",
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    trainer = Trainer(
        model=model, args=arguments, train_dataset=examples, data_collator=collator, processing_class=tokenizer
    )
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 24
    assert np.mean(losses[-4:]) < 0.6 * np.mean(losses[:4])


# ------------------------------------------------------------------------------------ padding and alignment


def test_words_line_up_with_labels_and_padding_never_leaks(tokenizer):
    """Each text alone and inside a padded batch of different lengths gives the same logits for its words, and the
    loss ignores padding even where the labels there are valid ids."""
    model = make_head(ElmoForTokenClassification).eval()
    perturb_encoder_biases(model)
    batch = token_batch(tokenizer, TEXTS, padding_label=1)
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    assert len(set(lengths)) > 2 and min(lengths) == 1
    words = tokenizer.tokenize(TEXTS[1])
    assert words[:3] == ["Dr.", "Smith", ","] and len(words) == lengths[1]
    assert word_tags(tokenizer, TEXTS[1])[1] == 3
    with torch.no_grad():
        batched = model(**batch)
        total, count = 0.0, 0
        for row, text in enumerate(TEXTS):
            alone = model(**token_batch(tokenizer, [text]))
            torch.testing.assert_close(batched.logits[row, : lengths[row]], alone.logits[0], atol=1e-5, rtol=1e-5)
            total += alone.loss.item() * lengths[row]
            count += lengths[row]
    penalty = model.scalar_mix.regularization_loss(model.config.scalar_mix_regularization).item()
    expected = (total - penalty * count) / count + penalty  # each alone loss carries the penalty once
    assert batched.loss.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_sequence_pooling_ignores_padding(tokenizer, pooling):
    model = make_head(ElmoForSequenceClassification, sequence_pooling=pooling, num_labels=3).eval()
    perturb_encoder_biases(model)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        batched = model(**batch).logits
        for row, text in enumerate(TEXTS):
            alone = model(**tokenizer([text], return_tensors="pt")).logits
            torch.testing.assert_close(batched[row], alone[0], atol=1e-5, rtol=1e-5)


def test_pooler_uses_only_each_sequences_own_words():
    encoded = -torch.arange(1.0, 13.0).view(2, 3, 2)  # all negative: a zero from padding would win the max
    mask = torch.tensor([[True, True, False], [False, False, False]])
    torch.testing.assert_close(ElmoSequencePooler("max")(encoded, mask), torch.tensor([[-1.0, -2.0], [0.0, 0.0]]))
    torch.testing.assert_close(ElmoSequencePooler("mean")(encoded, mask), torch.tensor([[-2.0, -3.0], [0.0, 0.0]]))
    empty = torch.zeros(2, 0, 2)
    for pooling in ("mean", "max"):
        assert torch.equal(ElmoSequencePooler(pooling)(empty, mask[:, :0]), torch.zeros(2, 2))


# --------------------------------------------------------------------------------------------- classify_layers


@pytest.mark.parametrize("cls", [ElmoForTokenClassification, ElmoForSequenceClassification])
def test_classify_layers_equals_forward(tokenizer, cls):
    model = make_head(cls, scalar_mix_layer_norm=True).eval()
    if cls is ElmoForTokenClassification:
        batch = token_batch(tokenizer, TEXTS)
    else:
        batch = {**tokenizer(TEXTS, padding=True, return_tensors="pt"), "labels": torch.tensor([0, 1, 2, 3, 0, 1])}
    with torch.no_grad():
        full = model(**batch, output_hidden_states=True)
        layers = model.elmo(batch["input_ids"], batch["attention_mask"], output_hidden_states=True).hidden_states
        cached = model.classify_layers(list(layers), batch["attention_mask"].bool(), batch["labels"])
    assert len(full.hidden_states) == 3
    assert all(torch.equal(a, b) for a, b in zip(full.hidden_states, layers, strict=True))
    assert torch.equal(cached.logits, full.logits)
    assert torch.equal(cached.loss, full.loss)
    assert cached.hidden_states is None
    logits_only = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], return_dict=False)
    assert len(logits_only) == 1 and torch.equal(logits_only[0], full.logits)


def test_training_on_cached_layers_reaches_the_mix(tokenizer):
    model = make_head(ElmoForTokenClassification)
    batch = token_batch(tokenizer, TEXTS)
    with torch.no_grad():
        layers = model.elmo(batch["input_ids"], batch["attention_mask"], output_hidden_states=True).hidden_states
    loss = model.classify_layers(list(layers), batch["attention_mask"].bool(), batch["labels"]).loss
    loss.backward()
    assert model.scalar_mix.scalar_parameters.grad.abs().sum() > 0 and model.classifier.weight.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------- saving, loading


@pytest.mark.parametrize(
    ("cls", "auto_class"),
    [
        (ElmoForTokenClassification, AutoModelForTokenClassification),
        (ElmoForSequenceClassification, AutoModelForSequenceClassification),
    ],
)
def test_save_and_load_round_trip(tokenizer, tmp_path, cls, auto_class):
    model = make_head(cls, seed=1)
    with torch.no_grad():
        model.scalar_mix.scalar_parameters.copy_(torch.tensor([0.3, -0.2, 0.9]))
    model.save_pretrained(tmp_path / "head")
    loaded = auto_class.from_pretrained(tmp_path / "head")
    assert type(loaded) is cls and loaded.config.id2label == TAGS and loaded.config.label2id["B-PER"] == 3
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert not any(parameter.requires_grad for parameter in loaded.elmo.parameters())
    unfrozen = auto_class.from_pretrained(tmp_path / "head", freeze_elmo=False)
    assert all(parameter.requires_grad for parameter in unfrozen.elmo.parameters())
    inputs = tokenizer(TEXTS[:3], padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(**inputs).logits, model.eval()(**inputs).logits)
        bilm = AutoModel.from_pretrained(tmp_path / "head").eval()  # the biLM alone from the head's folder
        assert type(bilm) is ElmoModel
        torch.testing.assert_close(bilm(**inputs).last_hidden_state, model.elmo(**inputs).last_hidden_state)


def test_a_head_starts_from_a_bilm_folder(tokenizer, tmp_path):
    torch.manual_seed(2)
    bilm = ElmoModel(head_config()).eval()
    bilm.save_pretrained(tmp_path / "bilm")
    head = AutoModelForTokenClassification.from_pretrained(tmp_path / "bilm")
    assert type(head) is ElmoForTokenClassification and head.config.num_labels == 4
    for name, tensor in bilm.state_dict().items():
        assert torch.equal(head.elmo.state_dict()[name], tensor), name
    assert torch.equal(head.scalar_mix.scalar_parameters, torch.zeros(3)) and head.scalar_mix.gamma.item() == 1.0
    assert torch.isfinite(head.classifier.weight).all() and 0 < head.classifier.weight.std() < 0.1


REMOTE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer
    from transformers import pipeline

    token_folder, sequence_folder, text = sys.argv[1], sys.argv[2], sys.argv[3]
    try:
        import modeling_elmo  # noqa: F401
        sys.exit("modeling_elmo should not be importable here")
    except ImportError:
        pass
    model = AutoModelForTokenClassification.from_pretrained(token_folder, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(token_folder, trust_remote_code=True)
    with torch.no_grad():
        logits = model(**tokenizer([text], return_tensors="pt")).logits[0].tolist()
    tagger = pipeline("token-classification", model=token_folder, trust_remote_code=True)
    classifier = pipeline("text-classification", model=sequence_folder, trust_remote_code=True)
    sequence_model = AutoModelForSequenceClassification.from_pretrained(sequence_folder, trust_remote_code=True)
    print(json.dumps({
        "modules": [type(model).__module__, type(tagger).__name__, type(sequence_model).__module__],
        "logits": logits,
        "tags": tagger(text, ignore_labels=[]),
        "classes": classifier(text, top_k=None),
    }))
    """
)


def test_heads_load_as_remote_code_without_the_package(tokenizer, tmp_path):
    tagger_model = make_head(ElmoForTokenClassification, seed=3).eval()
    sequence_model = make_head(ElmoForSequenceClassification, seed=4).eval()
    save_with_remote_code(tagger_model, tokenizer, tmp_path / "tagger")
    save_with_remote_code(sequence_model, tokenizer, tmp_path / "classifier")
    auto_map = json.loads((tmp_path / "tagger" / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForTokenClassification"] == "modeling_elmo.ElmoForTokenClassification"
    assert auto_map["AutoModel"] == "modeling_elmo.ElmoModel"
    auto_map = json.loads((tmp_path / "classifier" / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForSequenceClassification"] == "modeling_elmo.ElmoForSequenceClassification"
    text = TEXTS[1]
    result = run_python(REMOTE_SCRIPT, tmp_path / "tagger", tmp_path / "classifier", text, endpoint=None,
                        hf_home=tmp_path / "hf", offline=True, block_package=True)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.splitlines()[-1])
    model_module, pipeline_name, sequence_module = remote["modules"]
    assert model_module.startswith("transformers_modules") and sequence_module.startswith("transformers_modules")
    assert pipeline_name == "ElmoTokenClassificationPipeline"
    inputs = tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(torch.tensor(remote["logits"]), tagger_model(**inputs).logits[0])
        probabilities = torch.softmax(sequence_model(**inputs).logits[0], dim=-1)
    assert [tag["word"] for tag in remote["tags"]] == tokenizer.tokenize(text)
    assert remote["tags"] == pipeline("token-classification", model=tmp_path / "tagger")(text, ignore_labels=[])
    expected = {TAGS[index]: probability for index, probability in enumerate(probabilities.tolist())}
    assert {entry["label"]: pytest.approx(entry["score"], rel=1e-5) for entry in remote["classes"]} == expected


# ---------------------------------------------------------------------------------------------------- pipelines


@pytest.fixture(scope="module")
def tagger_folder(tmp_path_factory, tokenizer):
    model = make_head(ElmoForTokenClassification, seed=5)
    with torch.no_grad():  # the tiny random biLM's vectors are small: scale them up, so that predictions vary
        model.scalar_mix.gamma.fill_(30.0)
    folder = tmp_path_factory.mktemp("tagger")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_token_classification_pipeline_labels_every_word(tagger_folder, tokenizer):
    tagger = pipeline("token-classification", model=tagger_folder)
    assert type(tagger) is ElmoTokenClassificationPipeline
    model = tagger.model
    for text in TEXTS:
        entities = tagger(text, ignore_labels=[])
        with torch.no_grad():
            logits = model(**tokenizer([text], return_tensors="pt")).logits[0]
        probabilities = torch.softmax(logits, dim=-1)
        assert [entity["word"] for entity in entities] == tokenizer.tokenize(text)
        assert [entity["index"] for entity in entities] == list(range(len(entities)))
        for entity, word_logits, word_probabilities in zip(entities, logits, probabilities, strict=True):
            assert text[entity["start"] : entity["end"]] == entity["word"]
            assert entity["entity"] == TAGS[int(word_logits.argmax())]
            assert entity["score"] == pytest.approx(float(word_probabilities.max()), rel=1e-5)
    assert len({entity["entity"] for text in TEXTS for entity in tagger(text, ignore_labels=[])}) > 1
    default = tagger(TEXTS[4])  # transformers' default leaves out the words tagged "O"
    everything = tagger(TEXTS[4], ignore_labels=[])
    assert default == [entity for entity in everything if entity["entity"] != "O"]


def test_token_classification_pipeline_batches_and_pre_split_words(tagger_folder):
    tagger = pipeline("ner", model=str(tagger_folder))
    singles = [tagger(text, ignore_labels=[]) for text in TEXTS]
    batched = tagger(TEXTS, batch_size=4, ignore_labels=[])
    assert len(batched) == len(TEXTS)
    for single, entities in zip(singles, batched, strict=True):
        assert [(e["word"], e["start"], e["end"], e["entity"]) for e in entities] == [
            (e["word"], e["start"], e["end"], e["entity"]) for e in single
        ]
        assert [e["score"] for e in entities] == pytest.approx([e["score"] for e in single], rel=1e-4)
    words = ["New", "York", "is", "big", "."]
    split = tagger(words, is_split_into_words=True, ignore_labels=[])
    assert [(e["word"], e["start"], e["end"]) for e in split] == [
        ("New", 0, 3), ("York", 4, 8), ("is", 9, 11), ("big", 12, 15), (".", 16, 17)
    ]  # fmt: skip
    assert [e["entity"] for e in split] == [e["entity"] for e in tagger("New York is big .", ignore_labels=[])]
    joined = tagger(words, is_split_into_words=True, delimiter="_", ignore_labels=[])
    assert [e["start"] for e in joined] == [0, 4, 9, 12, 16] and joined[1]["end"] == 8


def test_simple_aggregation_groups_begin_and_inside_tags(tagger_folder):
    tagger = pipeline("token-classification", model=tagger_folder)
    text = TEXTS[1]
    words = tagger(text, ignore_labels=[])
    groups = tagger(text, aggregation_strategy="simple", ignore_labels=[])
    expected, current = [], []
    for word in words:  # a group continues while the tag's type stays the same and the word is not a B- tag
        kind = word["entity"].split("-", 1)[-1]
        if current and kind == current[-1]["entity"].split("-", 1)[-1] and not word["entity"].startswith("B-"):
            current.append(word)
            continue
        if current:
            expected.append(current)
        current = [word]
    expected.append(current)
    assert len(groups) == len(expected) < len(words)
    for group, members in zip(groups, expected, strict=True):
        assert group["entity_group"] == members[0]["entity"].split("-", 1)[-1]
        assert (group["start"], group["end"]) == (members[0]["start"], members[-1]["end"])
        assert group["word"] == text[group["start"] : group["end"]]
        assert group["score"] == pytest.approx(np.mean([member["score"] for member in members]), rel=1e-5)
    assert tagger(text, aggregation_strategy="first", ignore_labels=[]) == groups


def test_text_classification_pipeline(tokenizer, tmp_path):
    model = make_head(ElmoForSequenceClassification, seed=6)
    with torch.no_grad():  # larger vectors and weights than a tiny random model has, so that predictions vary
        model.scalar_mix.gamma.fill_(30.0)
        model.classifier.weight.normal_(0.0, 2.0)
    model.save_pretrained(tmp_path / "classifier")
    tokenizer.save_pretrained(tmp_path / "classifier")
    classifier = pipeline("text-classification", model=tmp_path / "classifier")
    model.eval()
    with torch.no_grad():
        probabilities = torch.softmax(model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits, dim=-1)
    results = classifier(TEXTS, batch_size=4)
    for result, row in zip(results, probabilities, strict=True):
        assert result["label"] == TAGS[int(row.argmax())]
        assert result["score"] == pytest.approx(float(row.max()), rel=1e-5)
    assert len({result["label"] for result in results}) > 1
    ranked = classifier(TEXTS[0], top_k=None)
    assert [entry["label"] for entry in ranked] == [TAGS[int(i)] for i in probabilities[0].argsort(descending=True)]
    assert [entry["label"] for entry in classifier(TEXTS[0], top_k=2)] == [entry["label"] for entry in ranked[:2]]


# ---------------------------------------------------------------------------------------------------- bad input


def test_empty_texts_and_batches(tagger_folder, tokenizer, tmp_path):
    tagger = pipeline("token-classification", model=tagger_folder)
    assert tagger("", ignore_labels=[]) == []
    assert tagger(["", TEXTS[3]], batch_size=2, ignore_labels=[])[0] == []
    with pytest.raises(ValueError, match="At least one input is required"):
        tagger([])
    model = make_head(ElmoForSequenceClassification).eval()
    model.save_pretrained(tmp_path / "classifier")
    tokenizer.save_pretrained(tmp_path / "classifier")
    classifier = pipeline("text-classification", model=tmp_path / "classifier")
    empty = classifier("", top_k=None)  # no words pool to zeros: the classifier's bias alone
    with torch.no_grad():
        expected = torch.softmax(model.classifier.bias, dim=-1)
    assert sorted(entry["score"] for entry in empty) == pytest.approx(sorted(expected.tolist()), rel=1e-5)
    with torch.no_grad():
        outputs = model(**tokenizer(["", ""], padding=True, return_tensors="pt"), labels=torch.tensor([0, 1]))
    assert outputs.logits.shape == (2, 4) and torch.isfinite(outputs.loss)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (torch.tensor([[0, 1]]), r"labels must be a \(1, 3\) tensor"),
        (torch.tensor([[0, 1, 4]]), r"labels must lie in \[0, 3\] \(or -100\), got values in \[0, 4\]"),
        (torch.tensor([[0.0, 1.0, 2.0]]), "integer label ids"),
        ([[0, 1, 2]], "labels must be a"),
    ],
)
def test_bad_token_labels_are_named(tokenizer, labels, message):
    model = make_head(ElmoForTokenClassification)
    with pytest.raises(ValueError, match=message):
        model(**tokenizer(["a b c"], return_tensors="pt"), labels=labels)


def test_bad_sequence_labels_and_layers_are_named(tokenizer):
    model = make_head(ElmoForSequenceClassification)
    inputs = tokenizer(["a b c", "d"], padding=True, return_tensors="pt")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\], got"):
        model(**inputs, labels=torch.tensor([0, 7]))
    with pytest.raises(ValueError, match=r"labels must be a \(2,\) tensor"):
        model(**inputs, labels=torch.tensor([[0], [1]]))
    with pytest.raises(ValueError, match="labels must be a tensor, got list"):
        model(**inputs, labels=[0, 1])
    model.config.problem_type = "multi_label_classification"
    with pytest.raises(ValueError, match=r"shaped \(2, 4\)"):
        model(**inputs, labels=torch.tensor([1.0, 0.0]))
    assert model(**inputs, labels=torch.tensor([[1.0, 0, 0, 1], [0, 0, 1, 0]])).loss > 0
    with torch.no_grad():
        layers = model.elmo(**inputs, output_hidden_states=True).hidden_states
    mask = inputs["attention_mask"].bool()
    with pytest.raises(ValueError, match="expected the biLM's 3 layers"):
        model.classify_layers(list(layers[:2]), mask)
    with pytest.raises(ValueError, match=r"layer 1 must be a \(batch, words, 2P\) = \(2, 3, 16\) tensor"):
        model.classify_layers([layers[0], layers[1][:, :2], layers[2]], mask)
    with pytest.raises(ValueError, match="word_mask must be a"):
        model.classify_layers(list(layers), mask[0])


def test_regression_head():
    model = make_head(ElmoForSequenceClassification, num_labels=1).eval()
    inputs = ElmoTokenizer()(SENTIMENT_TEXTS, padding=True, return_tensors="pt")
    targets = torch.tensor([1.0, -1.0, 2.0, -2.0, 0.5, -0.5])
    outputs = model(**inputs, labels=targets)
    penalty = model.scalar_mix.regularization_loss(model.config.scalar_mix_regularization)
    torch.testing.assert_close(outputs.loss, torch.mean((outputs.logits[:, 0] - targets) ** 2) + penalty)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("task_encoder", "gru", r"task_encoder must be one of \('lstm', 'none'\), got 'gru'"),
        ("sequence_pooling", "sum", "sequence_pooling must be one of"),
        ("task_encoder_hidden_size", 0, "task_encoder_hidden_size must be an integer >= 1"),
        ("task_encoder_layers", 1.5, "task_encoder_layers must be an integer >= 1"),
        ("scalar_mix_regularization", -0.1, "scalar_mix_regularization must be a finite number >= 0"),
        ("scalar_mix_dropout", 1.0, r"scalar_mix_dropout must be a number in \[0, 1\)"),
        ("classifier_dropout", "0.1", "classifier_dropout must be a number"),
        ("freeze_elmo", "yes", "freeze_elmo must be true or false"),
        ("scalar_mix_layer_norm", 1, "scalar_mix_layer_norm must be true or false"),
    ],
)
def test_bad_head_config_is_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        ElmoConfig(**{field: value})


def test_head_config_round_trips(tmp_path):
    config = head_config(task_encoder="none", sequence_pooling="max", freeze_elmo=False, scalar_mix_regularization=0.1)
    config.save_pretrained(tmp_path)
    loaded = ElmoConfig.from_pretrained(tmp_path)
    for field in ("task_encoder", "sequence_pooling", "freeze_elmo", "scalar_mix_regularization", "id2label"):
        assert getattr(loaded, field) == getattr(config, field), field
    defaults = ElmoConfig()
    assert defaults.freeze_elmo is True and defaults.scalar_mix_regularization == 0.001
    assert defaults.task_encoder == "lstm"
