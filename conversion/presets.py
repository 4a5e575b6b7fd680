"""The four English ELMo models that AllenNLP published, with where their files live and what is known about them.

Used by `elmo convert --preset NAME` (which files to download, and a check that the downloaded options describe
the expected architecture) and by the model card (training data, licence, published quality figures).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALLENNLP_BASE_URL = "https://allennlp.s3.amazonaws.com/models/elmo"
ONE_BILLION_WORD = "billion-word-benchmark/lm1b"  # the 1B Word Benchmark on the Hugging Face Hub


@dataclass(frozen=True)
class PublishedModel:
    """One published model: its files (`{base}/{directory}/{stem}_options.json` and `..._weights.hdf5`), its
    architecture (to recognise its options file), and the facts its model card states."""

    key: str
    title: str
    stem: str
    directory: str
    lstm_dim: int
    projection_dim: int
    num_highway: int
    training_data: str
    datasets: tuple[str, ...] = ()
    perplexity: float | None = None
    downstream_results: tuple[tuple[str, str], ...] = ()
    # Size in bytes and SHA-256 of each published file where known: a download (from AllenNLP or a `--mirror`) is
    # verified against them. None for every model here: no size or checksum of the published files could be
    # verified (they cannot be downloaded where this package is developed), and a guessed value would refuse the
    # genuine file. A download is still complete only when it has the size its server announced.
    options_size: int | None = None
    weights_size: int | None = None
    options_sha256: str | None = None
    weights_sha256: str | None = None
    num_layers: int = 2
    license: str = "apache-2.0"
    language: tuple[str, ...] = field(default=("en",))

    def options_url(self, base_url: str = ALLENNLP_BASE_URL) -> str:
        return f"{base_url.rstrip('/')}/{self.directory}/{self.stem}_options.json"

    def weights_url(self, base_url: str = ALLENNLP_BASE_URL) -> str:
        return f"{base_url.rstrip('/')}/{self.directory}/{self.stem}_weights.hdf5"

    def expected_file(self, role: str) -> tuple[int | None, str | None]:
        """The known size and SHA-256 (each None if not known) of the published `options` or `weights` file."""
        if role == "options":
            return self.options_size, self.options_sha256
        if role == "weights":
            return self.weights_size, self.weights_sha256
        raise ValueError(f"a published model has an options and a weights file, not {role!r}")

    def architecture_mismatch(self, options: dict) -> str | None:
        """None if a parsed `options.json` describes this model's architecture, else which field differs."""
        lstm, char_cnn = options.get("lstm", {}), options.get("char_cnn", {})
        for where, actual, expected in (
            ("lstm.dim", lstm.get("dim"), self.lstm_dim),
            ("lstm.projection_dim", lstm.get("projection_dim"), self.projection_dim),
            ("lstm.n_layers", lstm.get("n_layers"), self.num_layers),
            ("char_cnn.n_highway", char_cnn.get("n_highway"), self.num_highway),
        ):
            if actual != expected:
                return f"{where} is {actual!r}, {self.title} has {expected}"
        return None


# Table 1 of Peters et al. (2018), "ELMo + baseline" column: obtained with the Original biLM.
_PAPER_RESULTS = (
    ("SQuAD (F1)", "85.8"),
    ("SNLI (accuracy)", "88.7"),
    ("SRL (F1)", "84.6"),
    ("Coreference (average F1)", "70.4"),
    ("NER (F1)", "92.22"),
    ("SST-5 (accuracy)", "54.7"),
)
_ONE_BILLION_WORD_TEXT = "the 1B Word Benchmark (news text; Chelba et al., 2013)"

PUBLISHED_MODELS: dict[str, PublishedModel] = {
    model.key: model
    for model in (
        PublishedModel(
            key="small",
            title="ELMo Small",
            stem="elmo_2x1024_128_2048cnn_1xhighway",
            directory="2x1024_128_2048cnn_1xhighway",
            lstm_dim=1024,
            projection_dim=128,
            num_highway=1,
            training_data=_ONE_BILLION_WORD_TEXT,
            datasets=(ONE_BILLION_WORD,),
        ),
        PublishedModel(
            key="medium",
            title="ELMo Medium",
            stem="elmo_2x2048_256_2048cnn_1xhighway",
            directory="2x2048_256_2048cnn_1xhighway",
            lstm_dim=2048,
            projection_dim=256,
            num_highway=1,
            training_data=_ONE_BILLION_WORD_TEXT,
            datasets=(ONE_BILLION_WORD,),
        ),
        PublishedModel(
            key="original",
            title="ELMo Original",
            stem="elmo_2x4096_512_2048cnn_2xhighway",
            directory="2x4096_512_2048cnn_2xhighway",
            lstm_dim=4096,
            projection_dim=512,
            num_highway=2,
            training_data=_ONE_BILLION_WORD_TEXT,
            datasets=(ONE_BILLION_WORD,),
            perplexity=39.7,
            downstream_results=_PAPER_RESULTS,
        ),
        PublishedModel(
            key="original-5.5b",
            title="ELMo Original (5.5B)",
            stem="elmo_2x4096_512_2048cnn_2xhighway_5.5B",
            directory="2x4096_512_2048cnn_2xhighway_5.5B",
            lstm_dim=4096,
            projection_dim=512,
            num_highway=2,
            training_data="Wikipedia and news crawl text, 5.5B tokens in all",
        ),
    )
}
