"""ELMo (Peters et al. 2018) as a Hugging Face transformers model.

Importing the package registers the classes with `AutoConfig`, `AutoModel` (the biLM), `AutoModelForPreTraining`
(the biLM with its word softmax, `ElmoForBidirectionalLM`) and `AutoTokenizer`, and the `elmo-embeddings` pipeline
with `transformers.pipeline`.
"""

from transformers import AutoConfig, AutoModel, AutoModelForPreTraining, AutoTokenizer
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_elmo import ElmoConfig
from .embedder import ElmoEmbedder
from .modeling_elmo import (
    ElmoForBidirectionalLM,
    ElmoLanguageModelOutput,
    ElmoModel,
    ElmoModelOutput,
    ElmoPreTrainedModel,
    ElmoScalarMix,
)
from .pipeline_elmo import ElmoEmbeddingsPipeline
from .tokenization_elmo import ElmoTokenizer

__all__ = [
    "ElmoConfig",
    "ElmoEmbedder",
    "ElmoEmbeddingsPipeline",
    "ElmoForBidirectionalLM",
    "ElmoLanguageModelOutput",
    "ElmoModel",
    "ElmoModelOutput",
    "ElmoPreTrainedModel",
    "ElmoScalarMix",
    "ElmoTokenizer",
]
__version__ = "0.1.0"

AutoConfig.register("elmo", ElmoConfig, exist_ok=True)
AutoModel.register(ElmoConfig, ElmoModel, exist_ok=True)
AutoModelForPreTraining.register(ElmoConfig, ElmoForBidirectionalLM, exist_ok=True)
AutoTokenizer.register(ElmoConfig, tokenizer_class=ElmoTokenizer, exist_ok=True)
PIPELINE_REGISTRY.register_pipeline("elmo-embeddings", pipeline_class=ElmoEmbeddingsPipeline, pt_model=AutoModel)
