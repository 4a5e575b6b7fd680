"""ELMo (Peters et al. 2018) as a Hugging Face transformers model.

Importing the package registers the classes with `AutoConfig`, `AutoModel` (the biLM), `AutoModelForPreTraining`
(the biLM with its word softmax, `ElmoForBidirectionalLM`), `AutoModelForTokenClassification` and
`AutoModelForSequenceClassification` (the task heads) and `AutoTokenizer`, and the `elmo-embeddings` pipeline with
`transformers.pipeline` (importing `configuration_elmo` points `pipeline("token-classification")` at
`ElmoTokenClassificationPipeline` for ELMo models). `DEFAULT_MODEL` is the folder of the English model shipped with
the package (the default of the command line, `ElmoEmbedder()` and `pipeline("elmo-embeddings")`).
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
)
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_elmo import ElmoConfig
from .embedder import ElmoEmbedder
from .modeling_elmo import (
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
from .pipeline_elmo import ElmoEmbeddingsPipeline, ElmoTokenClassificationPipeline
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
AutoModel.register(ElmoConfig, ElmoModel, exist_ok=True)
AutoModelForPreTraining.register(ElmoConfig, ElmoForBidirectionalLM, exist_ok=True)
AutoModelForTokenClassification.register(ElmoConfig, ElmoForTokenClassification, exist_ok=True)
AutoModelForSequenceClassification.register(ElmoConfig, ElmoForSequenceClassification, exist_ok=True)
AutoTokenizer.register(ElmoConfig, tokenizer_class=ElmoTokenizer, exist_ok=True)
PIPELINE_REGISTRY.register_pipeline(
    "elmo-embeddings",
    pipeline_class=ElmoEmbeddingsPipeline,
    pt_model=AutoModel,
    default={"model": (DEFAULT_MODEL, None)},
)
