"""`ElmoModel` against AllenNLP's ELMo (packaged as `simple_elmo_pytorch`), used only as a black-box oracle.

Both load the same random original-format model (`original_format.write_random_original`); every returned
layer must agree within 1e-5 at every word, stateless and stateful, for 1–3 LSTM layers, 0–2 highway
layers, relu and tanh, with and without clipping. The weights are scaled so that both clippings really
fire, which `test_clipping_fires` checks (the oracle's output changes when a clip is switched off).
`ElmoScalarMix` is checked against the oracle's `ScalarMix`.

Oracle API used: `ElmoBiLmSentence(options_file, weight_file)(char_ids)` returns `activations` (L + 1 tensors
(B, T + 2, 2P), with the `<S>`/`</S>` positions) and `mask`; its LSTM (`._elmo_lstm`) always carries its
state between calls, `._elmo_lstm.reset_states()` clears it.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

simple_elmo = pytest.importorskip("simple_elmo_pytorch")
oracle_scalar_mix = pytest.importorskip("simple_elmo_pytorch.models.scalar_mix")

from modeling_elmo import ElmoScalarMix, ElmoTokenizer  # noqa: E402
from modeling_elmo.conversion.original import load_original  # noqa: E402
from original_format import write_random_original  # noqa: E402

TOLERANCE = 1e-5
MIX_TOLERANCE = 1e-6

# Three batches of 4 sentences: different lengths (padding), 1-word sentences, non-ASCII words (2-, 3- and
# 4-byte UTF-8) and a word longer than the 48 bytes a token keeps.
BATCHES = [
    [
        ["The", "cat", "sat", "on", "the", "mat", "."],
        ["Hi"],
        ["naïve", "Zürich", "日本語", "x"],
        ["a", "b", "c"],
    ],
    [
        ["Once", "more"],
        ["Ein", "längeres", "Beispiel", "🙂", "und", "noch", "eins", "!"],
        ["?"],
        ["Pneumonoultramicroscopicsilicovolcanoconiosis" * 2, "z"],
    ],
    [
        ["Ω"],
        ["Short", "one", "."],
        ["We", "went", "to", "Straße", "Nr.", "5", "yesterday"],
        ["ok", "ok"],
    ],
]
# Batch sizes that grow and shrink: row r always continues row r's state.
RESIZED_BATCHES = [
    BATCHES[0],
    BATCHES[1][:2],
    BATCHES[2][:3],
    [*BATCHES[0], ["Extra", "row"], ["another", "new", "row"]],
    BATCHES[1][:1],
    BATCHES[2],
]
# Words that are exactly the sentence markers: the oracle's character mapper gives them the markers' ids.
MARKER_SENTENCES = [["A", "</S>", "in", "the", "middle", "."], ["<S>", "starts", "</S>", "<S>"], ["</S>"], ["<s>", "x"]]


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """The tensors here are tiny: one intra-op thread is fastest, and avoids OpenMP spin-waiting (10x slower
    runs) when other processes share the CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclass(frozen=True)
class Case:
    n_layers: int
    n_highway: int
    activation: str
    cell_clip: float | None
    proj_clip: float | None

    @property
    def id(self) -> str:
        return f"L{self.n_layers}-hw{self.n_highway}-{self.activation}-cell{self.cell_clip}-proj{self.proj_clip}"


CASES = [
    Case(1, 0, "relu", 3.0, 3.0),
    Case(2, 1, "relu", 3.0, 3.0),
    Case(3, 2, "tanh", 3.0, 3.0),
    Case(2, 1, "tanh", 2.0, 1.5),
    Case(2, 0, "tanh", 3.0, None),
    Case(3, 1, "relu", None, 3.0),
    Case(1, 1, "tanh", None, None),
    Case(2, 2, "tanh", None, None),
    Case(3, 0, "relu", None, None),
]
CLIPPED_CASES = [case for case in CASES if case.cell_clip is not None or case.proj_clip is not None]


def write_case(directory: Path, case: Case, **overrides) -> tuple[Path, Path]:
    """The random original model of `case` (same weights for every clip setting of the same sizes)."""
    settings = dict(
        n_layers=case.n_layers,
        n_highway=case.n_highway,
        activation=case.activation,
        cell_clip=case.cell_clip,
        proj_clip=case.proj_clip,
    )
    settings.update(overrides)
    return write_random_original(directory, **settings)


def load_oracle(options_path: Path, weights_path: Path) -> torch.nn.Module:
    return simple_elmo.ElmoBiLmSentence(str(options_path), str(weights_path)).eval()


def char_ids(sentences: list[list[str]]) -> torch.Tensor:
    return simple_elmo.batch_to_ids(sentences)


@torch.no_grad()
def run_oracle(oracle: torch.nn.Module, ids: torch.Tensor, *, reset: bool) -> list[torch.Tensor]:
    """The oracle's L + 1 layers (B, T + 2, 2P), with the sentence boundaries."""
    if reset:
        oracle._elmo_lstm.reset_states()
    return list(oracle(ids)["activations"])


@torch.no_grad()
def run_ours(model: torch.nn.Module, ids: torch.Tensor) -> list[torch.Tensor]:
    """Our L + 1 layers (B, T, 2P)."""
    attention_mask = (ids > 0).any(dim=-1).long()
    output = model(input_ids=ids, attention_mask=attention_mask, output_hidden_states=True)
    return list(output.hidden_states)


def max_layer_diff(ours: list[torch.Tensor], oracle: list[torch.Tensor], sentences: list[list[str]]) -> float:
    """Max |ours - oracle| over all layers and words (oracle positions 1..n); also checks that our
    outputs are exactly zero past each sentence's end."""
    assert len(ours) == len(oracle)
    worst = 0.0
    for layer, (mine, theirs) in enumerate(zip(ours, oracle, strict=True)):
        assert mine.shape == (len(sentences), theirs.shape[1] - 2, theirs.shape[2]), f"layer {layer}"
        for row, sentence in enumerate(sentences):
            length = len(sentence)
            if length:
                worst = max(worst, (mine[row, :length] - theirs[row, 1 : length + 1]).abs().max().item())
            assert torch.all(mine[row, length:] == 0), f"layer {layer} row {row}: nonzero padding"
    return worst


def assert_matches(
    ours: list[torch.Tensor], oracle: list[torch.Tensor], sentences: list[list[str]], what: str
) -> float:
    difference = max_layer_diff(ours, oracle, sentences)
    assert difference < TOLERANCE, f"{what}: max abs diff {difference:.3g}"
    return difference


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_stateless_matches_oracle(tmp_path: Path, case: Case) -> None:
    paths = write_case(tmp_path, case)
    oracle = load_oracle(*paths)
    model = load_original(*paths)
    assert model.config.state_mode == "stateless"
    for index, sentences in enumerate(BATCHES):
        ids = char_ids(sentences)
        assert_matches(run_ours(model, ids), run_oracle(oracle, ids, reset=True), sentences, f"batch {index}")
    # Stateless really is stateless: the first batch again gives the same vectors.
    ids = char_ids(BATCHES[0])
    assert_matches(run_ours(model, ids), run_oracle(oracle, ids, reset=True), BATCHES[0], "first batch again")


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_stateful_matches_oracle(tmp_path: Path, case: Case) -> None:
    paths = write_case(tmp_path, case)
    oracle = load_oracle(*paths)
    model = load_original(*paths, state_mode="stateful")
    stateless = load_original(*paths)
    oracle._elmo_lstm.reset_states()
    for index, sentences in enumerate([*BATCHES, BATCHES[0]]):
        ids = char_ids(sentences)
        ours = run_ours(model, ids)
        assert_matches(ours, run_oracle(oracle, ids, reset=False), sentences, f"stateful batch {index}")
        # From the second call on the carried state must matter, or this test would prove nothing.
        change = max((a - b).abs().max().item() for a, b in zip(ours, run_ours(stateless, ids), strict=True))
        assert change > 1e-3 if index > 0 else change == 0.0
    # reset_states() on both sides starts over.
    model.reset_states()
    ids = char_ids(BATCHES[1])
    assert_matches(run_ours(model, ids), run_oracle(oracle, ids, reset=True), BATCHES[1], "after reset")


@pytest.mark.parametrize("case", [CASES[1], CASES[6]], ids=lambda case: case.id)
def test_stateful_with_changing_batch_size_matches_oracle(tmp_path: Path, case: Case) -> None:
    """Row r continues row r's state; new rows start from zero; rows absent from a smaller batch keep
    their state for later calls (the oracle's semantics, which ours follows)."""
    paths = write_case(tmp_path, case)
    oracle = load_oracle(*paths)
    model = load_original(*paths, state_mode="stateful")
    oracle._elmo_lstm.reset_states()
    for index, sentences in enumerate(RESIZED_BATCHES):
        ids = char_ids(sentences)
        assert_matches(run_ours(model, ids), run_oracle(oracle, ids, reset=False), sentences, f"call {index}")


@pytest.mark.parametrize("case", [CASES[1], CASES[6]], ids=lambda case: case.id)
def test_empty_row_matches_oracle(tmp_path: Path, case: Case) -> None:
    """A batch row without words is run as `<S> </S>` by both (and so advances a stateful row's state)."""
    paths = write_case(tmp_path, case)
    oracle = load_oracle(*paths)
    model = load_original(*paths, state_mode="stateful")
    oracle._elmo_lstm.reset_states()
    batches = [BATCHES[0], [["Only", "row"], [], ["x"], []], BATCHES[2]]
    for index, sentences in enumerate(batches):
        ids = char_ids(sentences)
        ours = run_ours(model, ids)
        assert_matches(ours, run_oracle(oracle, ids, reset=False), sentences, f"call {index}")


def test_sentence_marker_words_match_oracle(tmp_path: Path) -> None:
    """A word that is exactly `<S>` or `</S>` gets the markers' character ids from our tokenizer, as from the
    oracle's `batch_to_ids`, and every layer of its sentence matches; encoded by its bytes it would not."""
    paths = write_case(tmp_path, CASES[1])
    oracle, model = load_oracle(*paths), load_original(*paths)
    ids = char_ids(MARKER_SENTENCES)
    encoded = ElmoTokenizer()(MARKER_SENTENCES, is_split_into_words=True, padding=True, return_tensors="pt")
    assert torch.equal(encoded["input_ids"], ids)
    ours = run_ours(model, encoded["input_ids"])
    assert_matches(ours, run_oracle(oracle, ids, reset=True), MARKER_SENTENCES, "sentence marker words")
    literal = ElmoTokenizer(literal_sentence_markers=True)
    literal_ids = literal(MARKER_SENTENCES, is_split_into_words=True, padding=True, return_tensors="pt")["input_ids"]
    change = max((a - b).abs().max().item() for a, b in zip(ours, run_ours(model, literal_ids), strict=True))
    assert change > 1e-3, change


@torch.no_grad()
def oracle_outputs(directory: Path, case: Case, batches: list[list[list[str]]], **overrides) -> list[torch.Tensor]:
    oracle = load_oracle(*write_case(directory, case, **overrides))
    layers = []
    for sentences in batches:
        layers.extend(run_oracle(oracle, char_ids(sentences), reset=True))
    return layers


@pytest.mark.parametrize("case", CLIPPED_CASES, ids=lambda case: case.id)
def test_clipping_fires(tmp_path: Path, case: Case) -> None:
    """With the test weights, switching a clip off changes the oracle's output (so the clip fired and the
    comparisons above do test it), and our model with the same clip switched off still matches."""
    clipped = oracle_outputs(tmp_path / "clipped", case, BATCHES)
    ablations = []
    if case.cell_clip is not None:
        ablations.append(({"cell_clip": None}, {"cell_clip": None}))
    if case.proj_clip is not None:
        ablations.append(({"proj_clip": None}, {"projection_clip": None}))
    for original_override, config_override in ablations:
        name = next(iter(original_override))
        directory = tmp_path / f"no_{name}"
        unclipped = oracle_outputs(directory, case, BATCHES, **original_override)
        change = max((a - b).abs().max().item() for a, b in zip(clipped, unclipped, strict=True))
        assert change > 1e-3, f"{name} never fires ({change:.3g})"
        model = load_original(*write_case(tmp_path / "ours", case), **config_override)
        assert getattr(model.config, next(iter(config_override))) is None
        oracle = load_oracle(directory / "options.json", directory / "weights.hdf5")
        for sentences in BATCHES:
            ids = char_ids(sentences)
            assert_matches(run_ours(model, ids), run_oracle(oracle, ids, reset=True), sentences, f"no {name}")
    # Both also show directly in the clipped oracle: its final memory cells (the state it carries) sit
    # exactly at ±cell_clip, and its projected states before clipping exceed proj_clip.
    clipped_dir = tmp_path / "clipped"
    oracle = load_oracle(clipped_dir / "options.json", clipped_dir / "weights.hdf5")
    largest_projection = []
    for module in oracle._elmo_lstm.modules():
        if hasattr(module, "state_projection"):
            module.state_projection.register_forward_hook(
                lambda _module, _inputs, output: largest_projection.append(output.abs().max().item())
            )
    for sentences in BATCHES:
        run_oracle(oracle, char_ids(sentences), reset=True)
        final_memory = oracle._elmo_lstm._states[1]
        if case.cell_clip is not None:
            assert final_memory.abs().max().item() == case.cell_clip
            assert (final_memory.abs() == case.cell_clip).sum().item() >= 2
    if case.proj_clip is not None:
        assert max(largest_projection) > case.proj_clip


def test_clipping_does_not_fire_at_small_scale(tmp_path: Path) -> None:
    """Control for `test_clipping_fires`: at weight_scale 0.3 the clips change nothing."""
    case = CASES[1]
    clipped = oracle_outputs(tmp_path / "clipped", case, BATCHES, weight_scale=0.3)
    unclipped = oracle_outputs(tmp_path / "unclipped", case, BATCHES, weight_scale=0.3, cell_clip=None, proj_clip=None)
    assert all(torch.equal(a, b) for a, b in zip(clipped, unclipped, strict=True))


# --- ElmoScalarMix against the oracle's ScalarMix -------------------------------------------------------


@pytest.fixture
def oracle_layer_norm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The packaged ScalarMix's layer norm refers to a module `util` it never imports (it would raise
    NameError); supply the one constant it needs, AllenNLP's `tiny_value_of_dtype` for float32."""
    if not hasattr(oracle_scalar_mix, "util"):
        monkeypatch.setattr(
            oracle_scalar_mix,
            "util",
            types.SimpleNamespace(tiny_value_of_dtype=lambda dtype: 1e-13),
            raising=False,
        )


def mix_inputs(seed: int = 0) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Three (B, T, H) layers of different scales, garbage in the padding, and a (B, T) mask."""
    generator = torch.Generator().manual_seed(seed)
    layers = [torch.randn(3, 5, 6, generator=generator) * scale + shift for scale, shift in ((1, 0), (3, 1), (0.5, -2))]
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    return layers, mask


@pytest.mark.parametrize("do_layer_norm", [False, True])
def test_scalar_mix_matches_oracle(oracle_layer_norm: None, do_layer_norm: bool) -> None:
    scalars, gamma = [0.3, -1.2, 0.8], 1.7
    theirs = oracle_scalar_mix.ScalarMix(3, do_layer_norm=do_layer_norm, initial_scalar_parameters=scalars)
    with torch.no_grad():
        theirs.gamma.fill_(gamma)
    ours = ElmoScalarMix(3, do_layer_norm=do_layer_norm, initial_scalar_parameters=scalars, initial_gamma=gamma)

    layers, mask = mix_inputs()
    expected = theirs(layers, mask)
    actual = ours(layers, mask)
    assert actual.shape == expected.shape
    assert (actual - expected).abs().max().item() < MIX_TOLERANCE

    # The same gradients for s and gamma.
    weights = torch.randn(expected.shape, generator=torch.Generator().manual_seed(1))
    (expected * weights).sum().backward()
    (actual * weights).sum().backward()
    their_scalar_grad = torch.cat([parameter.grad for parameter in theirs.scalar_parameters])
    assert (ours.scalar_parameters.grad - their_scalar_grad).abs().max().item() < MIX_TOLERANCE
    assert (ours.gamma.grad - theirs.gamma.grad).abs().max().item() < MIX_TOLERANCE


def test_scalar_mix_on_elmo_layers_matches_oracle(tmp_path: Path, oracle_layer_norm: None) -> None:
    """The mix of real ELMo layers (zero padding, the usual use) with the word mask."""
    model = load_original(*write_case(tmp_path, CASES[2]))
    sentences = BATCHES[1]
    ids = char_ids(sentences)
    layers = run_ours(model, ids)
    mask = (ids > 0).any(dim=-1)
    scalars = [0.5, -0.25, 1.0, 0.0]
    for do_layer_norm in (False, True):
        theirs = oracle_scalar_mix.ScalarMix(
            len(layers), do_layer_norm=do_layer_norm, initial_scalar_parameters=scalars
        )
        with torch.no_grad():
            theirs.gamma.fill_(0.6)
        ours = ElmoScalarMix(
            len(layers), do_layer_norm=do_layer_norm, initial_scalar_parameters=scalars, initial_gamma=0.6
        )
        with torch.no_grad():
            difference = (ours(layers, mask) - theirs(layers, mask)).abs().max().item()
        assert difference < MIX_TOLERANCE, f"do_layer_norm={do_layer_norm}: {difference:.3g}"


def test_long_inputs_cross_the_chunk_and_block_boundaries_and_still_match(tmp_path: Path) -> None:
    """More words than one character-CNN chunk and more rows than one gate block (`CHAR_CNN_CHUNK_WORDS`,
    `GATE_BLOCK_ROWS`): one long text, and a batch whose sentences end inside a block."""
    from modeling_elmo.kernels_elmo import GATE_BLOCK_ROWS
    from modeling_elmo.modeling_elmo import CHAR_CNN_CHUNK_WORDS

    paths = write_case(tmp_path, CASES[1])
    oracle, model = load_oracle(*paths), load_original(*paths)
    vocabulary = [word for sentence in BATCHES[0] + BATCHES[1] for word in sentence]
    long_text = [vocabulary[index % len(vocabulary)] for index in range(CHAR_CNN_CHUNK_WORDS + GATE_BLOCK_ROWS + 37)]
    batch = [long_text[: 250 + 61 * row] for row in range(6)]
    assert sum(len(sentence) + 2 for sentence in batch) > 3 * GATE_BLOCK_ROWS
    for sentences in ([long_text], batch):
        ids = char_ids(sentences)
        assert_matches(run_ours(model, ids), run_oracle(oracle, ids, reset=True), sentences, "long input")
