"""The models shipped inside the package.

`DEFAULT_MODEL` is the folder of `elmo-english-small`, a small English ELMo trained by this package's own
pipeline (`scripts/train_shipped_model.py`; its model card is the folder's README.md). It is the default model
of `elmo embed`, `elmo neighbors`, `elmo perplexity`, `elmo evaluate`, `ElmoEmbedder()` and
`pipeline("elmo-embeddings")`, and loads offline like any model folder:
`AutoModel.from_pretrained(DEFAULT_MODEL)`.

The folder holds no remote code (no `.py` files, no `auto_map` or `custom_pipelines`): the package's registered
classes run it, also with `trust_remote_code=True` (`pipeline("elmo-embeddings", model=DEFAULT_MODEL)` either way),
and whatever is saved from it (`save_pretrained`, `push_to_hub`) carries the remote code that loads it elsewhere.
This module imports nothing heavy: the command line reads `DEFAULT_MODEL` from it before it imports torch.
"""

from pathlib import Path

DEFAULT_MODEL = str(Path(__file__).with_name("elmo-english-small"))
