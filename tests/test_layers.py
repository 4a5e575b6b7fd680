"""The package's layers depend one way: model files ← conversion ← applications (embed, train, evaluate) ← CLI.

The import graph is read from the source (every `import` statement, also inside functions and `TYPE_CHECKING`
blocks) of `modeling_elmo/*.py` and `conversion/*.py`; nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "modeling_elmo"
CONVERSION = f"{PACKAGE}.conversion"
#: The files copied to the Hub as remote code (those present): they import each other and third-party libraries only.
MODEL_FILES = (
    "configuration_elmo",
    "modeling_elmo",
    "tokenization_elmo",
    "pipeline_elmo",
    "kernels_elmo",
    "loading_elmo",
    "inputs_elmo",
    "tokenization_elmo_fast",
)
#: Modules built on the conversion code, which the conversion code must not import.
APPLICATIONS = ("embed", "embedder", "corpora", "neighbors", "perplexity", "cli", "vocabulary")
APPLICATION_PREFIXES = ("training", "evaluation")
#: The one module below the applications that the conversion code reads text files and vocabularies with.
TEXT_FILES = f"{PACKAGE}.text_files"
MAX_LINES = 1_000
LONGER_FILES = {"modeling_elmo/modeling_elmo.py"}


def source_files() -> dict[str, Path]:
    """Module name → file, for `modeling_elmo/*.py` and `conversion/*.py` (installed as `modeling_elmo.conversion`)."""
    files = {}
    for folder, package in ((REPO / "modeling_elmo", PACKAGE), (REPO / "conversion", CONVERSION)):
        for path in sorted(folder.glob("*.py")):
            files[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return files


def imported_modules(name: str, path: Path, known: set[str]) -> list[tuple[str, ast.stmt]]:
    """The modules of `known` that the file of module `name` imports, with the import statement of each."""
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node) for alias in node.names if alias.name in known]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                if submodule in known:
                    found.append((submodule, node))
                elif module in known:
                    found.append((module, node))
    return found


def import_graph() -> dict[str, set[str]]:
    files = source_files()
    known = set(files)
    return {name: {target for target, _ in imported_modules(name, path, known)} for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module, or a module importing itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def is_application(module: str) -> bool:
    short = module.rpartition(".")[2]
    return module.startswith(f"{PACKAGE}.") and (short in APPLICATIONS or short.startswith(APPLICATION_PREFIXES))


def test_the_graph_sees_imports_inside_functions_and_type_checking_blocks():
    graph = import_graph()
    assert f"{PACKAGE}.embed" in graph[f"{PACKAGE}.cli"]  # imported inside the command functions only
    assert f"{PACKAGE}.conversion.folder" in graph[f"{PACKAGE}.embedder"]  # a relative import of the subpackage
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}, "b": set()}) == [["a"]]


def test_no_import_cycle():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("stem", MODEL_FILES)
def test_model_files_import_each_other_relatively_and_third_party_libraries_only(stem):
    path = REPO / "modeling_elmo" / f"{stem}.py"
    if not path.is_file():
        pytest.skip(f"{path.name} is not in this version of the package")
    model_files = {f"{PACKAGE}.{name}" for name in MODEL_FILES}
    wrong = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            targets = [f"{PACKAGE}.{node.module}"] if node.module else [f"{PACKAGE}.{a.name}" for a in node.names]
            if node.level != 1 or not set(targets) <= model_files:
                wrong.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module]
            if any(name.split(".")[0] in (PACKAGE, "conversion") for name in names):
                wrong.append(f"line {node.lineno}: {ast.unparse(node)}")
    assert wrong == [], f"{path.name} must import the other model files with `from .name import ...` only"


def test_the_conversion_code_imports_no_application():
    files = source_files()
    known = set(files)
    wrong = [
        f"{files[name].relative_to(REPO)}:{node.lineno} imports {target}"
        for name in files
        if name.startswith(CONVERSION)
        for target, node in imported_modules(name, files[name], known)
        if is_application(target)
    ]
    assert wrong == []


def test_the_text_files_module_imports_the_model_files_only():
    files = source_files()
    assert TEXT_FILES in files
    targets = {target for target, _ in imported_modules(TEXT_FILES, files[TEXT_FILES], set(files))}
    assert targets <= {f"{PACKAGE}.{name}" for name in MODEL_FILES}


def test_no_file_is_over_a_thousand_lines_but_the_model():
    long_files = {
        str(path.relative_to(REPO)): count
        for path in source_files().values()
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert {path: count for path, count in long_files.items() if path not in LONGER_FILES} == {}
