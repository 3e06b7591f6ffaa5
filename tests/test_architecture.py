"""The import rules of docs/architecture.md, read from the source with ``ast``.

A rule broken anywhere in the package fails ``test_the_package_keeps_its_import_rules`` with the
module and the import that broke it; ``test_a_broken_rule_is_reported`` shows the checker catching
each kind of violation on a small package made for the purpose.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "tiktok_corpus"
ROOT = "tiktok_corpus"
# The folders that are stages: they hand work to each other through database rows, never imports.
# Libraries the pure contract may use: functions of their input, no I/O (orjson: a related list is
# ~140 KB of JSON, and json.loads of it was the crawler's largest cost per list).
PURE_PARSERS = frozenset({"orjson"})
STAGES = ("crawl", "download", "validate", "export", "train", "track", "features", "browse", "report")
# The few stage-to-stage imports the design allows, each with its reason.
ALLOWED_STAGE_IMPORTS = {
    ("crawl", "download"),  # `corpus crawl` runs the download stage alongside discovery
    ("train", "export"),  # training reads an export folder through the export's own reader and label map
    ("features", "export"),  # features are computed per export, fitted on its train split
    ("features", "train"),  # the video embedding reads the trainer's decode-once proxy cache
    ("train", "features"),  # gbdt, fusion and the ablation learn from the feature tables
    ("train", "validate"),  # `corpus predict` admits a loose file by the rules a download is validated by
    ("report", "export"),  # the report reads an export and its runs
    ("browse", "export"),  # the web app shows an export's labels and runs
}
# Only these may reach the bundled replica site; the product must work unchanged against tiktok.com.
REPLICA_USERS = ("replica", "demo", "cli")


def _modules(package_dir: Path, root: str) -> dict[str, Path]:
    found = {}
    for path in package_dir.rglob("*.py"):
        parts = path.relative_to(package_dir).with_suffix("").parts
        name = ".".join((root, *parts))
        found[name.removesuffix(".__init__")] = path
    return found


def _imports(module: str, path: Path) -> set[str]:
    """Absolute names of everything ``module`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _area(module: str, root: str) -> str:
    """The top-level part of the package a module belongs to (``crawl``, ``store``, ``cli``, ...)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def violations(package_dir: Path, root: str = ROOT) -> list[str]:
    """Every import that breaks a rule, as ``module: reason``."""
    found = []
    modules = _modules(package_dir, root)
    for module, path in sorted(modules.items()):
        area = _area(module, root)
        imported = _imports(module, path)
        reached = {_area(name, root) for name in imported if name.startswith(root + ".")}
        for target in sorted(reached):
            if area in STAGES and target in STAGES and target != area and (area, target) not in ALLOWED_STAGE_IMPORTS:
                found.append(f"{module}: stage {area} imports stage {target}; stages talk through rows")
            if target == "replica" and area not in REPLICA_USERS:
                found.append(f"{module}: imports the replica; only tests, the demo and the CLI may")
            if target == "cli" and area not in ("cli", "__main__"):
                found.append(f"{module}: imports the CLI; the library never depends on its front end")
            if area == "store" and target in STAGES:
                found.append(f"{module}: the store imports stage {target}; stages depend on the store")
        if (
            area != "store"
            and module != f"{root}.config"
            and any(name == "sqlalchemy" or name.startswith("sqlalchemy.") for name in imported)
        ):
            found.append(f"{module}: imports sqlalchemy; SQL lives in {root}.store")
        if module == f"{root}.tiktok.contract" or module.startswith(f"{root}.tiktok.contract."):
            impure = sorted(
                name
                for name in imported
                if name.split(".")[0] not in sys.stdlib_module_names
                and name not in PURE_PARSERS
                and name != "__future__"
                and not name.startswith((f"{root}.errors", f"{root}.tiktok.contract"))
            )
            if impure:
                allowed = f"stdlib, errors and {', '.join(sorted(PURE_PARSERS))} only"
                found.append(f"{module}: the contract must stay pure ({allowed}), imports {impure}")
    return found


def test_the_package_keeps_its_import_rules():
    assert violations(PACKAGE_DIR) == []


def test_every_package_ships_in_the_wheel():
    """setuptools lists packages by hand (migrations/ is mapped in): a new folder missing there would be
    absent from a non-editable install, such as the Docker image."""
    pyproject = tomllib.loads((PACKAGE_DIR.parent / "pyproject.toml").read_text("utf-8"))
    shipped = set(pyproject["tool"]["setuptools"]["packages"])
    folders = {
        ".".join((ROOT, *init.parent.relative_to(PACKAGE_DIR).parts)) for init in PACKAGE_DIR.rglob("__init__.py")
    }
    assert folders - shipped == set()


@pytest.mark.parametrize(
    ("module", "source", "reason"),
    [
        ("crawl/loop.py", "from ..validate import run_validate\n", "stage crawl imports stage validate"),
        ("download/run.py", "from ..replica import Replica\n", "imports the replica"),
        ("export/write.py", "import sqlalchemy\n", "imports sqlalchemy"),
        ("tiktok/contract.py", "import httpx\n", "the contract must stay pure"),
        ("store/db.py", "from ..crawl import CrawlOptions\n", "the store imports stage crawl"),
        ("validate/run.py", "from ..cli.app import app\n", "imports the CLI"),
    ],
)
def test_a_broken_rule_is_reported(tmp_path, module, source, reason):
    package = tmp_path / "pkg"
    path = package / module
    path.parent.mkdir(parents=True)
    for folder in (package, path.parent):
        (folder / "__init__.py").touch()
    path.write_text(source)

    (found,) = violations(package, root="pkg")

    assert reason in found and found.startswith(f"pkg.{module.removesuffix('.py').replace('/', '.')}:")


def _loaded_by(modules: tuple[str, ...], libraries: tuple[str, ...]) -> list[str]:
    """Which of ``libraries`` a fresh interpreter has loaded once it has imported ``modules``."""
    code = "; ".join(f"import {ROOT}.{module}" for module in modules)
    code += f"; import sys; print(' '.join(name for name in {libraries!r} if name in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.split()


def test_the_stages_without_a_model_never_import_torch():
    """torch takes seconds and about a gigabyte to import: the CLI, a crawl, a download, a validate, an
    export of any format, tracking, browsing and the report must not pay it (webdataset imports it)."""
    stages = ("cli", "crawl.run", "download.run", "validate.run", "export.run", "track.run", "browse.app")
    assert _loaded_by((*stages, "report.build"), ("torch",)) == []


def test_the_cli_starts_without_the_heavy_libraries():
    """``corpus --help``, a typo's error and every command's start read only the options: the libraries
    of the work itself (about 3 s on 2 cores) load when a command runs."""
    heavy = ("pandas", "pyarrow", "scipy", "playwright", "alembic", "httpx", "torch", "matplotlib", "starlette")
    assert _loaded_by(("cli",), heavy) == []


def _lazy_packages() -> dict[str, set[str]]:
    """The packages whose names load on first use, each with the names its TYPE_CHECKING block imports."""
    found = {}
    for init in PACKAGE_DIR.rglob("__init__.py"):
        tree = ast.parse(init.read_text("utf-8"))
        if not any(isinstance(node, ast.Import) and node.names[0].name == "lazy_loader" for node in tree.body):
            continue
        checked = next(node for node in tree.body if isinstance(node, ast.If))
        names = {alias.asname or alias.name for node in checked.body for alias in node.names}
        found[".".join((ROOT, *init.parent.relative_to(PACKAGE_DIR).parts))] = names
    return found


@pytest.mark.parametrize(("package", "typed_names"), sorted(_lazy_packages().items()))
def test_a_lazy_package_loads_each_name_it_declares(package, typed_names):
    """The names mypy sees (the TYPE_CHECKING imports) are the names the package gives, and each loads."""
    module = importlib.import_module(package)

    assert set(module.__all__) == typed_names
    assert all(getattr(module, name) is not None for name in module.__all__)
