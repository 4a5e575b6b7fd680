"""ELMo (Peters et al. 2018) as a Hugging Face transformers model.

Importing the package registers the classes with `AutoConfig`, `AutoModel` (the biLM), `AutoModelForPreTraining`
(the biLM with its word softmax, `ElmoForBidirectionalLM`), `AutoModelForTokenClassification` and
`AutoModelForSequenceClassification` (the task heads) and `AutoTokenizer` (`ElmoTokenizer` and `ElmoTokenizerFast`,
which `AutoTokenizer` prefers), and the pipelines with `transformers.pipeline`: `elmo-embeddings`, and
`ElmoTokenClassificationPipeline` for `pipeline("token-classification")` on ELMo models (other models keep
transformers' own). It also registers every class for saving with its remote code (`register_for_auto_class`), so
that whatever an ELMo class saves (`save_pretrained`, `push_to_hub`) loads where the package is not installed, with
`trust_remote_code=True`. `DEFAULT_MODEL` is the folder of the English model shipped with the package (the default
of the command line, `ElmoEmbedder()` and `pipeline("elmo-embeddings")`).

The import itself is light: it loads neither torch nor transformers. The public classes are imported when first
used (`from modeling_elmo import ElmoModel`, PEP 562), and each registration runs once both sides exist: the
transformers module holding the registry (`configuration_auto`, `modeling_auto`, `tokenization_auto`, `pipelines`)
and this package's module holding the classes. Whichever is imported first, importing it imports the other and
registers; a transformers module imported before this package registers at once. The hook that notices the
imports is `_RegistrationFinder` below.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
from collections.abc import Callable
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

from .pretrained import DEFAULT_MODEL

__version__ = "0.1.0"

#: Each public class and the module of this package that defines it (imported on first use).
_PUBLIC_CLASSES = {
    "ElmoConfig": "configuration_elmo",
    "ElmoEmbedder": "embedder",
    "ElmoEmbeddingsPipeline": "pipeline_elmo",
    "ElmoForBidirectionalLM": "modeling_elmo",
    "ElmoForSequenceClassification": "modeling_elmo",
    "ElmoForTokenClassification": "modeling_elmo",
    "ElmoLanguageModelOutput": "modeling_elmo",
    "ElmoModel": "modeling_elmo",
    "ElmoModelOutput": "modeling_elmo",
    "ElmoPreTrainedModel": "modeling_elmo",
    "ElmoScalarMix": "modeling_elmo",
    "ElmoTaskModel": "modeling_elmo",
    "ElmoTokenClassificationPipeline": "pipeline_elmo",
    "ElmoTokenizer": "tokenization_elmo",
    "ElmoTokenizerFast": "tokenization_elmo_fast",
}

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
    "ElmoTokenizerFast",
]


def __getattr__(name: str) -> Any:
    """A public class, imported from its module on first use (PEP 562)."""
    module = _PUBLIC_CLASSES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


# ---------------------------------------------------------------------------------------------- registration


def _register_configuration() -> None:
    """`AutoConfig` loads "elmo" folders, and a saved `ElmoConfig` names its remote code."""
    from transformers.models.auto.configuration_auto import AutoConfig

    from .configuration_elmo import ElmoConfig

    AutoConfig.register("elmo", ElmoConfig, exist_ok=True)
    # transformers' own `register_for_auto_class`: `ElmoConfig`'s adds the ELMo token-classification pipeline, which
    # imports transformers.pipelines; `_register_pipelines` does that once the pipelines are imported.
    super(ElmoConfig, ElmoConfig).register_for_auto_class("AutoConfig")


def _register_models() -> None:
    """Each model class with its Auto class, for loading and for saving with its remote code."""
    import transformers.models.auto.modeling_auto as modeling_auto

    from .configuration_elmo import ElmoConfig
    from .modeling_elmo import AUTO_CLASSES

    for auto_class, model_class in AUTO_CLASSES.items():
        getattr(modeling_auto, auto_class).register(ElmoConfig, model_class, exist_ok=True)
        model_class.register_for_auto_class(auto_class)


def _register_tokenizers() -> None:
    """Both tokenizers with `AutoTokenizer` (which then gives the fast one), and for saving with their remote code."""
    from transformers.models.auto.tokenization_auto import AutoTokenizer

    from .configuration_elmo import ElmoConfig
    from .tokenization_elmo import ElmoTokenizer
    from .tokenization_elmo_fast import ElmoTokenizerFast

    AutoTokenizer.register(
        ElmoConfig, slow_tokenizer_class=ElmoTokenizer, fast_tokenizer_class=ElmoTokenizerFast, exist_ok=True
    )
    ElmoTokenizer.register_for_auto_class("AutoTokenizer")
    ElmoTokenizerFast.register_for_auto_class("AutoTokenizer")


def _register_pipelines() -> None:
    """The `elmo-embeddings` task (its default model the shipped one) and ELMo's `token-classification` pipeline."""
    from transformers.models.auto.modeling_auto import AutoModel
    from transformers.pipelines import PIPELINE_REGISTRY

    from .pipeline_elmo import ElmoEmbeddingsPipeline, register_token_classification_pipeline

    PIPELINE_REGISTRY.register_pipeline(
        "elmo-embeddings",
        pipeline_class=ElmoEmbeddingsPipeline,
        pt_model=AutoModel,
        default={"model": (DEFAULT_MODEL, None)},
    )
    register_token_classification_pipeline()


#: The registrations still to run, each with the modules it needs: the transformers module holding the registry and
#: this package's modules holding the classes. Once any of them is imported, the registration imports the others and
#: runs (see `_register_what_is_imported`).
_PENDING: dict[Callable[[], None], tuple[str, ...]] = {
    _register_configuration: ("transformers.models.auto.configuration_auto", f"{__name__}.configuration_elmo"),
    _register_models: ("transformers.models.auto.modeling_auto", f"{__name__}.modeling_elmo"),
    _register_tokenizers: (
        "transformers.models.auto.tokenization_auto",
        f"{__name__}.tokenization_elmo",
        f"{__name__}.tokenization_elmo_fast",
    ),
    _register_pipelines: ("transformers.pipelines", f"{__name__}.pipeline_elmo"),
}
#: The modules of transformers and of this package that are being executed right now (imported through the finder).
_EXECUTING: set[str] = set()


def _watched(name: str) -> bool:
    """Whether the finder follows the import of module `name`: transformers' and this package's modules."""
    return any(name == package or name.startswith(package + ".") for package in ("transformers", __name__))


def _register_what_is_imported() -> None:
    """Run each pending registration of which some module has been imported, once no module of transformers or of
    this package is being executed.

    Waiting for that keeps registering from re-entering a module that is half executed: transformers imports its
    registries from within other modules (`transformers.modeling_layers` imports `modeling_auto` before defining
    the layer classes that `modeling_elmo.py` imports), so a registry module can be complete while a module that
    the registration needs is not. A registration runs at the end of the outermost such import instead."""
    if _EXECUTING:
        return
    for register, modules in list(_PENDING.items()):
        if register not in _PENDING or not any(name in sys.modules for name in modules):
            continue
        for name in modules:
            importlib.import_module(name)  # runs this registration itself when it is the last module missing
            if register not in _PENDING:
                break
        else:
            del _PENDING[register]
            register()
    if not _PENDING and _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


class _RegisteringLoader(importlib.abc.Loader):
    """The loader of a watched module, around its own loader: notes the module as executing while it runs, then
    runs the registrations that can run (`_register_what_is_imported`)."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def __getattr__(self, name: str) -> Any:
        """The rest of the module's own loader (`get_code` for `python -m`, `get_source`, `is_package`, …)."""
        if name == "loader":
            raise AttributeError(name)
        return getattr(self.loader, name)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = module.__spec__.loader = self.loader  # the module sees its own loader (source, resources)
        _EXECUTING.add(module.__name__)
        try:
            self.loader.exec_module(module)
        finally:
            _EXECUTING.discard(module.__name__)
        _register_what_is_imported()


class _RegistrationFinder(importlib.abc.MetaPathFinder):
    """First on `sys.meta_path` until every registration has run: finds each watched module with the finders after
    it and wraps the loader in a `_RegisteringLoader`. Modules imported before this package are complete (transformers
    never imports this package), so only those imported later are followed."""

    def find_spec(self, fullname: str, path: Any, target: ModuleType | None = None) -> ModuleSpec | None:
        if not _watched(fullname):
            return None
        finders = sys.meta_path[sys.meta_path.index(self) + 1 :] if self in sys.meta_path else sys.meta_path
        for finder in finders:
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(fullname, path, target) if find_spec is not None else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RegisteringLoader(spec.loader)
                return spec
        return None


_FINDER = _RegistrationFinder()
sys.meta_path.insert(0, _FINDER)
_register_what_is_imported()
