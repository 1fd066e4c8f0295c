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
    text = (DOCS / "configuration.md").read_text()
    documented = set(re.findall(r"`([a-z_.]+)`", text))
    missing = [key for key in config_keys() if key not in documented]
    assert not missing, f"docs/configuration.md does not describe {missing}"
