"""Documentation that must stay true to the code."""

import re
from pathlib import Path

from pydantic import BaseModel

from adversarial_seg.config import Config

DOCS = Path(__file__).resolve().parents[1] / "docs"


def config_keys(model: type[BaseModel] = Config, prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        annotation = field.annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                keys += config_keys(candidate, prefix + name + ".")
    return keys


def test_every_config_key_is_documented():
    from adversarial_seg.gan.config import GANConfig

    text = (DOCS / "configuration.md").read_text()
    documented = set(re.findall(r"`([a-z0-9_.]+)`", text))
    missing = [key for key in config_keys() + config_keys(GANConfig) if key not in documented]
    assert not missing, f"docs/configuration.md does not describe {missing}"


def test_every_reliability_case_is_listed():
    """Each test id of tests/reliability/ (a parametrised case, or a test's name) stands in
    docs/reliability.md in backticks, with its behaviour beside it."""
    import subprocess
    import sys

    listed = set(re.findall(r"`([^`]+)`", (DOCS / "reliability.md").read_text()))
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests/reliability"],
        cwd=DOCS.parent, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    ids = [line.split("::")[-1] for line in collected.splitlines() if "::" in line]
    assert len(ids) >= 40
    missing = []
    for test_id in ids:
        name, _, param = test_id.partition("[")
        case = param[:-1] if param and not name.startswith("test_failed_checkpoint") else test_id.removeprefix("test_")
        if case not in listed and name != "test_the_table_is_large_enough":
            missing.append(test_id)
    assert not missing, f"docs/reliability.md does not list {missing}"
