"""`ElmoForBidirectionalLM`: losses and perplexity checked by hand, the sampled softmax, packed windows, saving."""

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoModelForPreTraining

from modeling_elmo import ElmoConfig, ElmoForBidirectionalLM, ElmoModel, ElmoTokenizer
from modeling_elmo.cli import main as elmo_main
from modeling_elmo.conversion.folder import save_with_remote_code
from modeling_elmo.modeling_elmo import (
    ElmoSoftmax,
    add_sentence_boundaries,
    log_uniform_probabilities,
    log_uniform_sample,
    sentence_marker_char_ids,
)
from modeling_elmo.perplexity import evaluate_perplexity
from modeling_elmo.training import PackedStream, TokenEncoder
from modeling_elmo.vocabulary import Vocabulary

pytestmark = pytest.mark.usefixtures("one_thread")


# A 3-word vocabulary (plus the special words); "fish" and "a" are out of it.
VOCAB = ["<S>", "</S>", "<UNK>", "cat", "dog", "sat"]
SENTENCES = [["cat", "sat"], ["dog", "fish", "sat", "a"], ["sat"]]


def tiny_lm(seed: int = 0, **overrides) -> ElmoForBidirectionalLM:
    torch.manual_seed(seed)
    fields = dict(
        char_embedding_dim=4,
        char_cnn_filters=[[1, 4], [2, 8], [3, 8]],
        num_highway_layers=1,
        projection_dim=8,
        lstm_cell_dim=16,
        lm_vocab_size=len(VOCAB),
        lm_begin_of_sentence_id=0,
        lm_end_of_sentence_id=1,
        lm_unknown_id=2,
        lm_dropout=0.0,
    )
    model = ElmoForBidirectionalLM(ElmoConfig(**{**fields, **overrides})).eval()
    with torch.no_grad():  # a softmax whose predictions depend clearly on the state
        model.softmax.weight.normal_(0.0, 2.0)
        model.softmax.bias.normal_(0.0, 1.0)
    model.vocabulary = list(VOCAB)
    return model


def word_ids(words):
    return [VOCAB.index(word) if word in VOCAB else VOCAB.index("<UNK>") for word in words]


def reference_top_layer(model: ElmoForBidirectionalLM, words: list[str]) -> np.ndarray:
    """The top biLSTM layer (n + 2, 2P) over `<S> words </S>` from a zero state, through `ElmoModel`'s own
    inference modules (token embedder and `ElmoBiLstm`), not the language model's code."""
    inputs = ElmoTokenizer()([words], is_split_into_words=True, return_tensors="pt")
    lengths = torch.tensor([len(words)])
    char_ids = add_sentence_boundaries(
        inputs["input_ids"].long(), lengths, *sentence_marker_char_ids(model.config, "cpu")
    )
    mask = torch.ones(1, len(words) + 2, dtype=torch.bool)
    config = model.config
    cell = torch.zeros(config.num_lstm_layers, 2, 1, config.lstm_cell_dim)
    hidden = torch.zeros(config.num_lstm_layers, 2, 1, config.projection_dim)
    with torch.no_grad():
        layers, *_ = model.elmo.bilstm(model.elmo.embed_tokens(char_ids, mask), mask, cell, hidden)
    return layers[-1][0].double().numpy()


def perplexities_by_hand(model: ElmoForBidirectionalLM, sentences) -> tuple[float, float, float]:
    weight = model.softmax.weight.detach().double().numpy()
    bias = model.softmax.bias.detach().double().numpy()
    size = model.config.projection_dim

    def log_probability(state: np.ndarray, target: int) -> float:
        logits = weight @ state + bias
        return logits[target] - (logits.max() + math.log(np.exp(logits - logits.max()).sum()))

    forward = backward = 0.0
    count = 0
    for words in sentences:
        top = reference_top_layer(model, words)
        ids = [VOCAB.index("<S>"), *word_ids(words), VOCAB.index("</S>")]
        for position in range(len(words) + 1):  # the forward state at position t predicts token t + 1
            forward -= log_probability(top[position, :size], ids[position + 1])
        for position in range(1, len(words) + 2):  # the backward state at position t predicts token t - 1
            backward -= log_probability(top[position, size:], ids[position - 1])
        count += len(words) + 1
    return math.exp(forward / count), math.exp(backward / count), math.exp((forward + backward) / (2 * count))


def test_perplexity_matches_a_computation_by_hand():
    model = tiny_lm()
    expected = perplexities_by_hand(model, SENTENCES)
    result = evaluate_perplexity(model, SENTENCES, batch_size=2)  # batches of different sentence lengths
    assert result.predictions == sum(len(words) + 1 for words in SENTENCES)
    found = (result.forward_perplexity, result.backward_perplexity, result.average_perplexity)
    np.testing.assert_allclose(found, expected, rtol=1e-5)
    assert abs(expected[0] - expected[1]) > 0.01  # the two directions really differ


def test_perplexity_of_a_fixed_distribution_is_the_textbook_value():
    model = tiny_lm()
    probabilities = [0.05, 0.15, 0.1, 0.3, 0.2, 0.2]  # <S>, </S>, <UNK>, cat, dog, sat
    with torch.no_grad():
        model.softmax.weight.zero_()
        model.softmax.bias.copy_(torch.tensor(probabilities).log())
    sentences = [["cat", "sat"], ["dog", "fish", "sat"]]
    # forward targets: cat sat </S> dog <UNK> sat </S>; backward: sat cat <S> sat <UNK> dog <S>
    forward = -sum(math.log(p) for p in [0.3, 0.2, 0.15, 0.2, 0.1, 0.2, 0.15]) / 7
    backward = -sum(math.log(p) for p in [0.2, 0.3, 0.05, 0.2, 0.1, 0.2, 0.05]) / 7
    result = evaluate_perplexity(model, sentences, batch_size=1)
    assert result.forward_perplexity == pytest.approx(math.exp(forward), rel=1e-6)
    assert result.backward_perplexity == pytest.approx(math.exp(backward), rel=1e-6)
    assert result.average_perplexity == pytest.approx(math.exp((forward + backward) / 2), rel=1e-6)


def test_perplexity_command_prints_the_hand_computed_values(tmp_path, capsys):
    model = tiny_lm()
    folder = tmp_path / "lm"
    save_with_remote_code(model, ElmoTokenizer(), folder)
    text = tmp_path / "held-out.txt"
    text.write_text("\n".join(" ".join(words) for words in SENTENCES) + "\n\n", encoding="utf-8")
    assert elmo_main(["perplexity", str(text), "--model", str(folder), "--tokenized", "--json", "--no-progress"]) == 0
    values = json.loads(capsys.readouterr().out)
    found = (values["forward_perplexity"], values["backward_perplexity"], values["average_perplexity"])
    np.testing.assert_allclose(found, perplexities_by_hand(model, SENTENCES), rtol=1e-5)
    assert values["sentences"] == 3 and values["state_mode"] == "stateless"
    assert elmo_main(["perplexity", str(text), "--model", str(folder), "--tokenized", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "forward perplexity:" in printed and "average perplexity:" in printed


def test_log_uniform_sampler_follows_its_distribution():
    torch.manual_seed(0)
    probabilities = log_uniform_probabilities(torch.arange(10), 10)
    assert probabilities.sum().item() == pytest.approx(1.0)
    assert torch.all(probabilities[:-1] > probabilities[1:])
    frequencies = torch.bincount(log_uniform_sample(10, 400_000, torch.device("cpu")), minlength=10) / 400_000
    np.testing.assert_allclose(frequencies.numpy(), probabilities.numpy(), atol=0.003)


def zipf_softmax(vocab_size: int = 400, width: int = 16) -> tuple[ElmoSoftmax, torch.Tensor, torch.Tensor]:
    """A softmax whose word frequencies fall off like a frequency-sorted vocabulary's, states and targets."""
    torch.manual_seed(1)
    softmax = ElmoSoftmax(vocab_size, width)
    with torch.no_grad():
        softmax.weight.normal_(0.0, 0.3)
        softmax.bias.copy_(-torch.log(torch.arange(1.0, vocab_size + 1)))
    hidden = torch.randn(512, width)
    with torch.no_grad():
        targets = torch.multinomial(torch.softmax(hidden @ softmax.weight.T + softmax.bias, dim=-1), 1)[:, 0]
    return softmax, hidden, targets


def test_sampled_softmax_loss_estimates_the_full_loss():
    softmax, hidden, targets = zipf_softmax()
    full = softmax.full_loss(hidden, targets).mean().item()
    estimates = torch.stack([softmax.sampled_loss(hidden, targets, 64).mean() for _ in range(200)])
    assert estimates.mean().item() == pytest.approx(full, rel=0.02)
    assert estimates.std().item() < 0.05 * full  # single batches are usable estimates too


def test_sampled_softmax_gradient_points_where_the_full_gradient_does():
    softmax, hidden, targets = zipf_softmax()
    softmax.full_loss(hidden, targets).mean().backward()
    full = softmax.weight.grad.clone()
    softmax.weight.grad = None
    for _ in range(50):
        softmax.sampled_loss(hidden, targets, 64).mean().backward()
    cosine = torch.nn.functional.cosine_similarity(full.flatten(), softmax.weight.grad.flatten(), dim=0)
    assert cosine.item() > 0.95


def test_training_uses_the_sampled_softmax_and_evaluation_the_full_one():
    model = tiny_lm(lm_num_sampled=3)
    inputs = ElmoTokenizer()(SENTENCES, is_split_into_words=True, padding=True, return_tensors="pt")
    labels = torch.full(inputs["attention_mask"].shape, -100)
    for row, words in enumerate(SENTENCES):
        labels[row, : len(words)] = torch.tensor(word_ids(words))
    with torch.no_grad():
        evaluation = [model(**inputs, labels=labels).loss.item() for _ in range(3)]
        model.train()
        training = [model(**inputs, labels=labels).loss.item() for _ in range(3)]
    assert evaluation[0] == evaluation[1] == evaluation[2]  # full softmax: deterministic
    assert len(set(training)) > 1  # sampled negatives differ from call to call


def packed_batch(encoder: TokenEncoder, windows) -> dict[str, torch.Tensor]:
    labels, input_ids = encoder.encode([forward for forward, _ in windows])
    backward_labels, backward_input_ids = encoder.encode([backward for _, backward in windows])
    return {
        "input_ids": input_ids,
        "labels": labels,
        "backward_input_ids": backward_input_ids,
        "backward_labels": backward_labels,
    }


def test_a_window_holding_one_sentence_gives_the_sentence_loss():
    model = tiny_lm()
    encoder = TokenEncoder(Vocabulary(VOCAB), model.config.max_characters_per_token)
    words = ["dog", "fish", "sat"]
    stream = PackedStream(iter([words, ["cat"]]), unroll_steps=len(words) + 1)
    forward, backward = stream.next_window()
    assert forward == ["<S>", "dog", "fish", "sat", "</S>"]
    assert backward == ["</S>", "sat", "fish", "dog", "<S>"]
    with torch.no_grad():
        packed = model(**packed_batch(encoder, [(forward, backward)]))
        model.reset_states()
        inputs = ElmoTokenizer()([words], is_split_into_words=True, return_tensors="pt")
        sentence = model(**inputs, labels=torch.tensor([word_ids(words)]))
    assert packed.num_targets.tolist() == sentence.num_targets.tolist() == [4, 4]
    torch.testing.assert_close(packed.forward_loss, sentence.forward_loss)
    torch.testing.assert_close(packed.backward_loss, sentence.backward_loss)


def test_packed_windows_carry_the_state_across_calls():
    model = tiny_lm()
    encoder = TokenEncoder(Vocabulary(VOCAB), model.config.max_characters_per_token)
    text = [["cat", "sat"], ["dog", "sat", "fish"], ["sat"], ["dog", "cat"]] * 2

    def total_loss(unroll_steps: int, windows: int) -> float:
        model.reset_states()
        streams = [PackedStream(iter(text), unroll_steps), PackedStream(iter(text[1:]), unroll_steps)]
        total = 0.0
        with torch.no_grad():
            for _ in range(windows):
                outputs = model(**packed_batch(encoder, [stream.next_window() for stream in streams]))
                total += (
                    outputs.forward_loss * outputs.num_targets[0] + outputs.backward_loss * outputs.num_targets[1]
                ).item()
        return total

    carried = total_loss(unroll_steps=4, windows=3)
    assert carried == pytest.approx(total_loss(unroll_steps=12, windows=1), rel=1e-5)
    model.reset_states()
    stream = PackedStream(iter(text), 4)
    with torch.no_grad():
        windows = [model(**packed_batch(encoder, [stream.next_window()])) for _ in range(2)]
        model.reset_states()
        fresh = model(**packed_batch(encoder, [stream.next_window()]))
    assert windows[0].loss.item() != pytest.approx(fresh.loss.item())


def test_folder_loads_with_the_auto_classes_and_keeps_the_vocabulary(tmp_path):
    model = tiny_lm()
    folder = tmp_path / "lm"
    save_with_remote_code(model, ElmoTokenizer(), folder)
    assert (folder / "vocab.txt").read_text(encoding="utf-8").split() == VOCAB
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_elmo.ElmoModel"
    assert config["auto_map"]["AutoModelForPreTraining"] == "modeling_elmo.ElmoForBidirectionalLM"
    language_model = AutoModelForPreTraining.from_pretrained(folder)
    assert isinstance(language_model, ElmoForBidirectionalLM) and language_model.vocabulary == VOCAB
    for name, tensor in model.state_dict().items():
        assert torch.equal(language_model.state_dict()[name], tensor), name
    bilm = AutoModel.from_pretrained(folder)
    assert type(bilm) is ElmoModel
    inputs = ElmoTokenizer()(SENTENCES, is_split_into_words=True, padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(bilm(**inputs).last_hidden_state, model.elmo(**inputs).last_hidden_state)


REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import sys

    class BlockModelingElmo:
        def find_spec(self, name, path=None, target=None):
            if name == "modeling_elmo" or name.startswith("modeling_elmo."):
                raise ImportError("modeling_elmo is blocked in this test")
            return None

    sys.meta_path.insert(0, BlockModelingElmo())
    import torch
    from transformers import AutoModelForPreTraining, AutoTokenizer

    folder = sys.argv[1]
    model = AutoModelForPreTraining.from_pretrained(folder, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    ids = {word: index for index, word in enumerate(model.vocabulary)}
    inputs = tokenizer([["cat", "sat"]], is_split_into_words=True, return_tensors="pt")
    labels = torch.tensor([[ids["cat"], ids["sat"]]])
    with torch.no_grad():
        print("loss", model(**inputs, labels=labels).loss.item())
    """
)


def test_remote_code_language_model_loads_without_the_package(tmp_path):
    model = tiny_lm()
    folder = tmp_path / "lm"
    save_with_remote_code(model, ElmoTokenizer(), folder)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf-home"))
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_CODE_SCRIPT, str(folder)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    inputs = ElmoTokenizer()([["cat", "sat"]], is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**inputs, labels=torch.tensor([word_ids(["cat", "sat"])])).loss.item()
    assert float(result.stdout.split()[-1]) == pytest.approx(expected, rel=1e-6)


def test_bad_labels_are_named():
    model = tiny_lm()
    inputs = ElmoTokenizer()([["cat", "sat"]], is_split_into_words=True, return_tensors="pt")
    with pytest.raises(ValueError, match="needs labels"):
        model(**inputs)
    with pytest.raises(ValueError, match=r"labels must be a \(1, 2\) tensor"):
        model(**inputs, labels=torch.tensor([[3]]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\]"):
        model(**inputs, labels=torch.tensor([[3, 6]]))
    with pytest.raises(ValueError, match="lm_vocab_size"):
        ElmoForBidirectionalLM(ElmoConfig(projection_dim=8, lstm_cell_dim=16))


def test_bad_packed_windows_are_named():
    model = tiny_lm()
    windows = ElmoTokenizer()([["<S>", "cat", "sat"]], is_split_into_words=True, return_tensors="pt")["input_ids"]
    labels = torch.tensor([[0, 3, 4]])
    good = {"input_ids": windows, "labels": labels, "backward_input_ids": windows.flip(1), "backward_labels": labels}
    assert torch.isfinite(model(**good).loss)
    cases = [
        ({"attention_mask": torch.ones(1, 3)}, "are full: pass no attention_mask"),
        ({"backward_labels": None}, "need backward_labels"),
        ({"backward_input_ids": windows[:, :2]}, r"backward_input_ids must be shaped like input_ids \(1, 3, 50\)"),
        ({"input_ids": windows[:, :1], "backward_input_ids": windows[:, :1]}, r"\(batch, T \+ 1 >= 2, characters\)"),
        ({"backward_input_ids": windows.clamp(max=0) + 300}, r"input_ids must lie in \[0, 261\]"),
        ({"backward_labels": torch.tensor([[0, 3, 9]])}, r"backward_labels must lie in \[0, 5\] \(or -100\)"),
    ]
    for changes, message in cases:
        with pytest.raises(ValueError, match=message):
            model(**{**good, **changes})
