"""The base of the models' typed configs (models/*/constants.py): built from a dict that
may name only the config's fields, so a mistyped key fails instead of being ignored."""
import dataclasses
from typing import Mapping, Optional, TypeVar, Union

T = TypeVar("T", bound="Config")


@dataclasses.dataclass(frozen=True)
class Config:
    """A frozen dataclass of hyper-parameters; `of` applies overrides to the defaults."""

    @classmethod
    def of(cls: type[T], overrides: Optional[Union[Mapping, T]] = None) -> T:
        """The defaults with `overrides` (e.g. a Trainer's custom_config) applied.

        Raises:
          ValueError: naming the unknown keys and listing the valid ones.
        """
        if isinstance(overrides, cls):
            return overrides
        overrides = dict(overrides or {})
        valid = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown key(s) {', '.join(map(repr, unknown))}; "
                             f"the valid keys are {', '.join(valid)}")
        return cls(**overrides)
