"""ELMo (Peters et al. 2018) as a Hugging Face transformers model.

Importing the package registers the classes with `AutoConfig`, `AutoModel` (the biLM), `AutoModelForPreTraining`
(the biLM with its word softmax, `ElmoForBidirectionalLM`), `AutoModelForTokenClassification` and
`AutoModelForSequenceClassification` (the task heads) and `AutoTokenizer`, and the pipelines with
`transformers.pipeline`: `elmo-embeddings`, and `ElmoTokenClassificationPipeline` for `pipeline("token-classification")`
on ELMo models (other models keep transformers' own). It also registers every class for saving with its remote code
(`register_for_auto_class`), so that whatever an ELMo class saves (`save_pretrained`, `push_to_hub`) loads where the
package is not installed, with `trust_remote_code=True`. `DEFAULT_MODEL` is the folder of the English model shipped
with the package (the default of the command line, `ElmoEmbedder()` and `pipeline("elmo-embeddings")`).
"""

import transformers
from transformers import AutoConfig, AutoModel, AutoTokenizer
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_elmo import ElmoConfig
from .embedder import ElmoEmbedder
from .modeling_elmo import (
    AUTO_CLASSES,
    ElmoForBidirectionalLM,
    ElmoForSequenceClassification,
    ElmoForTokenClassification,
    ElmoLanguageModelOutput,
    ElmoModel,
    ElmoModelOutput,
    ElmoPreTrainedModel,
    ElmoScalarMix,
    ElmoTaskModel,
)
from .pipeline_elmo import (
    ElmoEmbeddingsPipeline,
    ElmoTokenClassificationPipeline,
    register_token_classification_pipeline,
)
from .pretrained import DEFAULT_MODEL
from .tokenization_elmo import ElmoTokenizer

__all__ = [
    "DEFAULT_MODEL",
    "ElmoConfig",
    "ElmoEmbedder",
    "ElmoEmbeddingsPipeline",
    "ElmoForBidirectionalLM",
    "ElmoForSequenceClassification",
    "ElmoForTokenClassification",
    "ElmoLanguageModelOutput",
    "ElmoModel",
    "ElmoModelOutput",
    "ElmoPreTrainedModel",
    "ElmoScalarMix",
    "ElmoTaskModel",
    "ElmoTokenClassificationPipeline",
    "ElmoTokenizer",
]
__version__ = "0.1.0"

AutoConfig.register("elmo", ElmoConfig, exist_ok=True)
ElmoConfig.register_for_auto_class()
for auto_class, model_class in AUTO_CLASSES.items():
    getattr(transformers, auto_class).register(ElmoConfig, model_class, exist_ok=True)
    model_class.register_for_auto_class(auto_class)
AutoTokenizer.register(ElmoConfig, tokenizer_class=ElmoTokenizer, exist_ok=True)
ElmoTokenizer.register_for_auto_class("AutoTokenizer")
PIPELINE_REGISTRY.register_pipeline(
    "elmo-embeddings",
    pipeline_class=ElmoEmbeddingsPipeline,
    pt_model=AutoModel,
    default={"model": (DEFAULT_MODEL, None)},
)
register_token_classification_pipeline()
