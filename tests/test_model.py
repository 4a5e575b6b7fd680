"""ElmoModel on small random models: outputs, state modes, dtypes, gradients, bad input, edge cases."""

import random

import pytest
import torch
from transformers import AutoModel

from modeling_elmo import ElmoConfig, ElmoModel, ElmoScalarMix, ElmoTokenizer

SENTENCES = [
    "The cat sat on the mat .",
    "Play the music !",
    "I",
    "A much longer sentence with quite a few more words than the others in this batch , really .",
    "Émile wrote 😀 in 東京 .",
    "שלום עולם",
    "tab\tand\x07bell",
    "don't stop",
    "one two three four five",
    "x",
    "the play was a hit",
    "they play football on sunday",
    "?",
    "numbers 3.14 and 1,000",
    "U.S. officials said so",
    "end",
    "last one here",
]


def small_config(**overrides) -> ElmoConfig:
    values = dict(
        char_embedding_dim=4,
        char_cnn_filters=[[1, 4], [2, 8], [3, 8]],
        num_highway_layers=1,
        projection_dim=8,
        lstm_cell_dim=16,
        num_lstm_layers=2,
        cell_clip=3.0,
        projection_clip=3.0,
        use_skip_connections=True,
    )
    values.update(overrides)
    return ElmoConfig(**values)


@pytest.fixture(scope="module")
def tokenizer() -> ElmoTokenizer:
    return ElmoTokenizer()


def make_model(**overrides) -> ElmoModel:
    torch.manual_seed(0)
    return ElmoModel(small_config(**overrides)).eval()


def run(model, tokenizer, texts, **kwargs):
    inputs = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**inputs, output_hidden_states=True, **kwargs), inputs


def test_output_shapes_layers_and_padding(tokenizer):
    model = make_model()
    outputs, inputs = run(model, tokenizer, SENTENCES[:4])
    batch, words = inputs["attention_mask"].shape
    assert outputs.last_hidden_state.shape == (batch, words, 16)
    assert len(outputs.hidden_states) == 3
    assert torch.equal(outputs.hidden_states[-1], outputs.last_hidden_state)
    layer0 = outputs.hidden_states[0]
    assert torch.equal(layer0[..., :8], layer0[..., 8:])
    padding = ~inputs["attention_mask"].bool()
    assert padding.any()
    for layer in outputs.hidden_states:
        assert torch.all(layer[padding] == 0)
        assert torch.all(layer[~padding].abs().sum(-1) > 0)


def test_tuple_output_and_config_default_for_hidden_states(tokenizer):
    model = make_model()
    inputs = tokenizer(SENTENCES[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        as_tuple = model(**inputs, return_dict=False)
        as_output = model(**inputs)
    assert len(as_tuple) == 1 and as_output.hidden_states is None
    assert torch.equal(as_tuple[0], as_output.last_hidden_state)


def test_stateless_is_independent_of_batch_composition_and_order(tokenizer):
    model = make_model()
    full, _ = run(model, tokenizer, SENTENCES)
    reference = [
        [layer[i, : len(tokenizer.split_words(text))] for layer in full.hidden_states]
        for i, text in enumerate(SENTENCES)
    ]
    for size in (1, 3):
        for start in range(0, len(SENTENCES), size):
            chunk = SENTENCES[start : start + size]
            outputs, _ = run(model, tokenizer, chunk)
            for offset, text in enumerate(chunk):
                n = len(tokenizer.split_words(text))
                for layer, expected in zip(outputs.hidden_states, reference[start + offset], strict=True):
                    torch.testing.assert_close(layer[offset, :n], expected, atol=1e-5, rtol=0)
    order = list(range(len(SENTENCES)))
    random.Random(1).shuffle(order)
    shuffled, _ = run(model, tokenizer, [SENTENCES[i] for i in order])
    for row, index in enumerate(order):
        n = len(tokenizer.split_words(SENTENCES[index]))
        torch.testing.assert_close(shuffled.last_hidden_state[row, :n], reference[index][-1], atol=1e-5, rtol=0)


def test_stateless_same_batch_twice_is_bit_identical(tokenizer):
    model = make_model()
    first, _ = run(model, tokenizer, SENTENCES)
    second, _ = run(model, tokenizer, SENTENCES)
    for a, b in zip(first.hidden_states, second.hidden_states, strict=True):
        assert torch.equal(a, b)


def test_stateful_carries_each_rows_state_and_resets(tokenizer):
    model = make_model(state_mode="stateful")
    first_batch, second_batch = SENTENCES[:2], SENTENCES[2:4]
    fresh, _ = run(model, tokenizer, second_batch)
    model.reset_states()
    run(model, tokenizer, first_batch)
    carried, _ = run(model, tokenizer, second_batch)
    assert not torch.allclose(fresh.last_hidden_state, carried.last_hidden_state, atol=1e-3)
    model.reset_states()
    again, _ = run(model, tokenizer, second_batch)
    assert torch.equal(again.last_hidden_state, fresh.last_hidden_state)
    # Row r of a call continues row r of the previous call, and nothing else.
    for row in range(2):
        single = make_model(state_mode="stateful")
        run(single, tokenizer, [first_batch[row]])
        alone, _ = run(single, tokenizer, [second_batch[row]])
        n = alone.last_hidden_state.shape[1]
        torch.testing.assert_close(carried.last_hidden_state[row, :n], alone.last_hidden_state[0], atol=1e-5, rtol=0)


def test_stateful_smaller_batch_keeps_other_rows_state(tokenizer):
    model = make_model(state_mode="stateful")
    run(model, tokenizer, SENTENCES[:3])
    run(model, tokenizer, SENTENCES[3:4])
    third_row_after, _ = run(model, tokenizer, SENTENCES[4:7])
    reference = make_model(state_mode="stateful")
    run(reference, tokenizer, SENTENCES[:3])
    expected, _ = run(reference, tokenizer, SENTENCES[4:7])
    n = len(tokenizer.split_words(SENTENCES[6]))
    torch.testing.assert_close(
        third_row_after.last_hidden_state[2, :n], expected.last_hidden_state[2, :n], atol=1e-6, rtol=0
    )


def test_state_mode_selected_by_from_pretrained(tmp_path, tokenizer):
    make_model().save_pretrained(tmp_path)
    model = AutoModel.from_pretrained(tmp_path, state_mode="stateful").eval()
    assert isinstance(model, ElmoModel) and model.config.state_mode == "stateful"
    first, _ = run(model, tokenizer, SENTENCES[:2])
    second, _ = run(model, tokenizer, SENTENCES[:2])
    assert not torch.equal(first.last_hidden_state, second.last_hidden_state)


def test_primed_state_is_deterministic_saved_and_differs_from_zero(tmp_path, tokenizer):
    model = make_model()
    stateless, _ = run(model, tokenizer, SENTENCES[:3])
    warm_up = [tokenizer(SENTENCES[i : i + 4], padding=True, return_tensors="pt") for i in range(0, 16, 4)]
    model.prime_states(warm_up)
    assert model.config.state_mode == "stateless"
    assert model.primed_cell_state.abs().sum() > 0 and model.primed_hidden_state.abs().sum() > 0
    model.config.state_mode = "primed"
    primed, _ = run(model, tokenizer, SENTENCES[:3])
    assert not torch.allclose(primed.last_hidden_state, stateless.last_hidden_state, atol=1e-3)
    again, _ = run(model, tokenizer, SENTENCES[:3])
    assert torch.equal(primed.last_hidden_state, again.last_hidden_state)
    alone, _ = run(model, tokenizer, SENTENCES[1:2])
    n = alone.last_hidden_state.shape[1]
    torch.testing.assert_close(primed.last_hidden_state[1, :n], alone.last_hidden_state[0], atol=1e-5, rtol=0)
    model.save_pretrained(tmp_path)
    reloaded = ElmoModel.from_pretrained(tmp_path).eval()
    assert reloaded.config.state_mode == "primed"
    assert torch.equal(reloaded.primed_cell_state, model.primed_cell_state)
    reloaded_out, _ = run(reloaded, tokenizer, SENTENCES[:3])
    assert torch.equal(reloaded_out.last_hidden_state, primed.last_hidden_state)


def test_prime_states_needs_text():
    with pytest.raises(ValueError, match="at least one batch"):
        make_model().prime_states([])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_runs_close_to_float32(dtype, tmp_path, tokenizer):
    model = make_model()
    reference, _ = run(model, tokenizer, SENTENCES[:4])
    model.save_pretrained(tmp_path)
    half = AutoModel.from_pretrained(tmp_path, dtype=dtype).eval()
    assert half.token_embedder.projection.weight.dtype == dtype
    outputs, inputs = run(half, tokenizer, SENTENCES[:4])
    assert outputs.last_hidden_state.dtype == dtype
    padding = ~inputs["attention_mask"].bool()
    assert torch.all(outputs.last_hidden_state[padding] == 0)
    torch.testing.assert_close(outputs.last_hidden_state.float(), reference.last_hidden_state, atol=0.1, rtol=0.05)


def test_device_map_loads(tmp_path, tokenizer):
    model = make_model()
    reference, _ = run(model, tokenizer, SENTENCES[:2])
    model.save_pretrained(tmp_path)
    mapped = AutoModel.from_pretrained(tmp_path, device_map="cpu").eval()
    outputs, _ = run(mapped, tokenizer, SENTENCES[:2])
    assert torch.equal(outputs.last_hidden_state, reference.last_hidden_state)


def _gradients(model, inputs):
    model.zero_grad()
    outputs = model(**inputs, output_hidden_states=True)
    sum(layer.pow(2).sum() for layer in outputs.hidden_states).backward()
    return {name: param.grad.clone() for name, param in model.named_parameters()}


def test_gradients_reach_every_parameter_and_checkpointing_matches(tokenizer):
    model = make_model().train()
    inputs = tokenizer(SENTENCES[:4], padding=True, return_tensors="pt")
    plain = _gradients(model, inputs)
    for name, grad in plain.items():
        assert grad.abs().sum() > 0, name
    assert torch.all(plain["token_embedder.char_cnn.embedding.weight"][0] == 0)
    model.activation_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in model.bilstm.layers)
    checkpointed = _gradients(model, inputs)
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], atol=1e-6, rtol=1e-5)


def test_bad_inputs_get_clear_errors(tokenizer):
    model = make_model()
    inputs = tokenizer(SENTENCES[:2], padding=True, return_tensors="pt")
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    with pytest.raises(ValueError, match="input_ids must be a"):
        model(input_ids=ids[:, :, 0])
    with pytest.raises(ValueError, match="characters per word"):
        model(input_ids=ids[:, :, :20])
    with pytest.raises(ValueError, match="must lie in"):
        model(input_ids=ids + 300)
    with pytest.raises(ValueError, match="integer character ids"):
        model(input_ids=ids.float())
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(input_ids=ids, attention_mask=mask[:, :-1])
    with pytest.raises(ValueError, match="right padding"):
        model(input_ids=ids, attention_mask=mask.flip(1))


def test_attention_mask_is_optional(tokenizer):
    model = make_model()
    inputs = tokenizer(SENTENCES[:3], padding=True, return_tensors="pt")
    with torch.no_grad():
        with_mask = model(**inputs).last_hidden_state
        without = model(input_ids=inputs["input_ids"]).last_hidden_state
    assert torch.equal(with_mask, without)


def test_edge_cases_through_tokenizer_and_model(tokenizer):
    model = make_model()
    empty, _ = run(model, tokenizer, [""])
    assert empty.last_hidden_state.shape == (1, 0, 16)
    no_texts, _ = run(model, tokenizer, [])
    assert no_texts.last_hidden_state.shape == (0, 0, 16)
    assert len(no_texts.hidden_states) == 3
    mixed_empty, _ = run(model, tokenizer, ["", "two words"])
    assert mixed_empty.last_hidden_state.shape == (2, 2, 16)
    assert torch.all(mixed_empty.last_hidden_state[0] == 0)

    huge_word = "x" * 1000
    long_word, _ = run(model, tokenizer, [huge_word])
    truncated, _ = run(model, tokenizer, ["x" * 48])
    assert torch.equal(long_word.last_hidden_state, truncated.last_hidden_state)

    odd, _ = run(model, tokenizer, ["😀 🇺🇸 東京都 مرحبا \u200f\u0000\u001b[31m e\u0301"])
    assert torch.isfinite(odd.last_hidden_state).all() and odd.last_hidden_state.shape[1] > 0

    long_sentence = " ".join(f"w{i % 50}" for i in range(2000))
    long_out, _ = run(model, tokenizer, [long_sentence])
    assert long_out.last_hidden_state.shape == (1, 2000, 16)
    assert torch.isfinite(long_out.last_hidden_state).all()

    short, many = "word", " ".join(["many"] * 300)
    both, _ = run(model, tokenizer, [short, many])
    alone, _ = run(model, tokenizer, [short])
    assert both.last_hidden_state.shape == (2, 300, 16)
    torch.testing.assert_close(both.last_hidden_state[0, :1], alone.last_hidden_state[0], atol=1e-5, rtol=0)
    assert torch.all(both.last_hidden_state[0, 1:] == 0)


def test_scalar_mix_weights_gamma_and_regularisation():
    torch.manual_seed(0)
    layers = [torch.randn(2, 5, 6) for _ in range(3)]
    mix = ElmoScalarMix(3, initial_scalar_parameters=[0.0, 1.0, 2.0], initial_gamma=0.5)
    weights = mix.normalized_weights()
    torch.testing.assert_close(weights, torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0))
    expected = 0.5 * sum(w * layer for w, layer in zip(weights, layers, strict=True))
    torch.testing.assert_close(mix(layers), expected)
    (mix(layers).sum() + mix.regularization_loss(1.0)).backward()
    assert mix.scalar_parameters.grad.abs().sum() > 0 and mix.gamma.grad.abs().sum() > 0

    pulled = ElmoScalarMix(3, initial_scalar_parameters=[0.0, 1.0, 2.0])
    optimizer = torch.optim.SGD(pulled.parameters(), lr=0.1)
    spread = pulled.normalized_weights().std()
    for _ in range(20):
        optimizer.zero_grad()
        pulled.regularization_loss(1.0).backward()
        optimizer.step()
    assert pulled.normalized_weights().std() < spread / 2


def test_scalar_mix_layer_norm_uses_masked_batch_statistics():
    torch.manual_seed(0)
    layers = [torch.randn(2, 4, 3) * (i + 1) + i for i in range(2)]
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)
    for layer in layers:
        layer[~mask] = 1000.0
    mix = ElmoScalarMix(2, do_layer_norm=True)
    mixed = mix(layers, mask)
    normalised = []
    for layer in layers:
        values = layer[mask]
        normalised.append((layer - values.mean()) / torch.sqrt(values.var(unbiased=False) + 1e-12))
    torch.testing.assert_close(mixed[mask], (0.5 * normalised[0] + 0.5 * normalised[1])[mask])
    with pytest.raises(ValueError, match="mask"):
        mix(layers)
    with pytest.raises(ValueError, match="expected 2 layers"):
        mix(layers[:1], mask)


def test_token_cache_gives_the_uncached_results(tokenizer):
    model = make_model()
    texts = SENTENCES[:8]
    uncached, inputs = run(model, tokenizer, texts)
    vocabulary = [word for text in texts[:4] for word, _ in tokenizer.split_words(text)]
    model.cache_token_embeddings([*vocabulary, "unused", "the"], tokenizer=tokenizer)
    assert model.token_cache_char_ids.shape[0] == len(set(vocabulary) | {"unused", "the"}) + 2
    computed = []
    original_embedder = model.token_embedder.forward

    def counting_embedder(char_ids, word_ids=None):
        computed.append(char_ids.shape[0])
        return original_embedder(char_ids, word_ids)

    model.token_embedder.forward = counting_embedder
    cached, _ = run(model, tokenizer, texts)
    misses = sum(1 for text in texts[4:] for word, _ in tokenizer.split_words(text) if word not in vocabulary)
    assert computed == [misses]
    for a, b in zip(cached.hidden_states, uncached.hidden_states, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert "token_cache_keys" not in model.state_dict()
    model.clear_token_cache()
    computed.clear()
    run(model, tokenizer, texts)
    assert computed == [int(inputs["attention_mask"].sum()) + 2 * len(texts)]


def test_token_cache_is_bypassed_while_fine_tuning(tokenizer):
    model = make_model().train()
    model.cache_token_embeddings(["The", "cat"], tokenizer=tokenizer)
    inputs = tokenizer(["The cat"], return_tensors="pt")
    model(**inputs).last_hidden_state.sum().backward()
    assert model.token_embedder.projection.weight.grad.abs().sum() > 0


def test_replaced_or_updated_weights_are_used_by_the_fast_path(tokenizer):
    model = make_model()
    torch.manual_seed(1)
    other = ElmoModel(small_config()).eval()
    expected, _ = run(other, tokenizer, SENTENCES[:3])
    run(model, tokenizer, SENTENCES[:3])  # fills the packed-weight caches
    model.load_state_dict(other.state_dict(), assign=True)
    replaced, _ = run(model, tokenizer, SENTENCES[:3])
    assert torch.equal(replaced.last_hidden_state, expected.last_hidden_state)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(1.5)
        for parameter in other.parameters():
            parameter.mul_(1.5)
    updated, _ = run(model, tokenizer, SENTENCES[:3])
    expected_updated, _ = run(other, tokenizer, SENTENCES[:3])
    assert torch.equal(updated.last_hidden_state, expected_updated.last_hidden_state)
    assert not torch.allclose(updated.last_hidden_state, replaced.last_hidden_state)


def test_outputs_do_not_depend_on_earlier_calls(tokenizer):
    used = make_model()
    for texts in ([SENTENCES[2]], SENTENCES, SENTENCES[:5]):
        run(used, tokenizer, texts)
    fresh = make_model()
    used_out, _ = run(used, tokenizer, SENTENCES[3:9])
    fresh_out, _ = run(fresh, tokenizer, SENTENCES[3:9])
    for a, b in zip(used_out.hidden_states, fresh_out.hidden_states, strict=True):
        assert torch.equal(a, b)


def test_product_row_padding_is_bounded_in_sizes_and_waste():
    from modeling_elmo.kernels_elmo import padded_rows

    sizes = {padded_rows(rows) for rows in range(1, 200_001)}
    assert len(sizes) <= 8 + 4 * 12  # 8 sizes up to 64, then 4 per doubling
    for rows in range(1, 200_001):
        padded = padded_rows(rows)
        assert rows <= padded and (padded - rows < 8 if rows <= 64 else padded <= rows * 1.25)


def test_cache_without_a_tokenizer_encodes_words_as_the_default_tokenizer(tokenizer):
    from modeling_elmo.modeling_elmo import utf8_char_ids

    words = ["The", "<S>", "</S>", "Émile", "😀", "tab\tx", "", "x" * 80, "\ud800lone"]
    assert utf8_char_ids(words, small_config()).tolist() == tokenizer.convert_tokens_to_ids(words)
    assert utf8_char_ids([], small_config()).shape == (0, 50)
    with_tokenizer, without = make_model(), make_model()
    with_tokenizer.cache_token_embeddings(words, tokenizer=tokenizer)
    without.cache_token_embeddings(words)
    for name in ("token_cache_keys", "token_cache_char_ids", "token_cache_vectors"):
        assert torch.equal(getattr(with_tokenizer, name), getattr(without, name)), name
