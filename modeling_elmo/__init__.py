"""ELMo (Peters et al. 2018) as a Hugging Face transformers model.

Importing the package registers the classes with `AutoConfig`, `AutoModel` and `AutoTokenizer`.
"""

from transformers import AutoConfig, AutoModel, AutoTokenizer

from .configuration_elmo import ElmoConfig
from .modeling_elmo import ElmoModel, ElmoModelOutput, ElmoPreTrainedModel, ElmoScalarMix
from .tokenization_elmo import ElmoTokenizer

__all__ = [
    "ElmoConfig",
    "ElmoModel",
    "ElmoModelOutput",
    "ElmoPreTrainedModel",
    "ElmoScalarMix",
    "ElmoTokenizer",
]
__version__ = "0.1.0"

AutoConfig.register("elmo", ElmoConfig, exist_ok=True)
AutoModel.register(ElmoConfig, ElmoModel, exist_ok=True)
AutoTokenizer.register(ElmoConfig, tokenizer_class=ElmoTokenizer, exist_ok=True)
