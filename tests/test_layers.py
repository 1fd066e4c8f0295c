"""The package's layers import only downwards: the GAN core knows nothing of medicine, and file
writing lives on the ground floor, not in the GAN trainer."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "adversarial_seg"


def imported_modules(path: Path) -> set[str]:
    """Every ``adversarial_seg...`` module a file imports (relative imports resolved), anywhere in it."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module) if p)
            found |= {module} | {f"{module}.{alias.name}" for alias in node.names}
    return {m for m in found if m.startswith("adversarial_seg")}


def imports_of(folder: str) -> dict[str, set[str]]:
    return {str(p.relative_to(PACKAGE)): imported_modules(p) for p in (PACKAGE / folder).rglob("*.py")}


def test_imported_modules_resolves_relative_imports(tmp_path):
    assert "adversarial_seg.data.io" in imported_modules(PACKAGE / "data" / "phantoms.py")


def test_the_gan_core_imports_nothing_from_data_or_seg():
    offending = {
        file: sorted(m for m in modules if m.startswith(("adversarial_seg.data", "adversarial_seg.seg")))
        for file, modules in imports_of("gan").items()
    }
    assert not {f: m for f, m in offending.items() if m}


def test_nothing_outside_the_core_imports_file_writing_from_the_trainer():
    writers = {"adversarial_seg.gan.trainer.atomic_write_bytes", "adversarial_seg.gan.trainer.atomic_torch_save"}
    offending = {
        file: sorted(modules & writers) for file, modules in imports_of(".").items() if not file.startswith("gan/")
    }
    assert not {f: m for f, m in offending.items() if m}
    assert not any(m.startswith("adversarial_seg.gan") for m in imported_modules(PACKAGE / "atomic_files.py"))
