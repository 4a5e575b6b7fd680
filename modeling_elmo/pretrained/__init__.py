"""The models shipped inside the package.

`DEFAULT_MODEL` is the folder of `elmo-english-small`, a small English ELMo trained by this package's own
pipeline (`scripts/train_shipped_model.py`; its model card is the folder's README.md). It is the default model
of `elmo embed`, `elmo neighbors`, `elmo perplexity`, `elmo evaluate`, `ElmoEmbedder()` and
`pipeline("elmo-embeddings")`, and loads offline like any model folder:
`AutoModel.from_pretrained(DEFAULT_MODEL)`.
"""

from pathlib import Path

DEFAULT_MODEL = str(Path(__file__).with_name("elmo-english-small"))
