"""The one exception type of the data layer."""

from __future__ import annotations

from adversarial_seg.errors import InputError


class DataError(InputError):
    """The dataset on disk is wrong; ``problems`` holds one sentence per problem (file + fix)."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        count = len(self.problems)
        heading = "1 problem in the dataset" if count == 1 else f"{count} problems in the dataset"
        super().__init__(heading + ":\n" + "\n".join(f"- {p}" for p in self.problems))
