"""YAML loading with errors that name the file and the line."""

import re
from pathlib import Path
from typing import Any

import yaml

from mlbench.errors import UsageError

# A float without a dot (`1e-4`, `5e3`): YAML 1.2 (and serde on the Rust side) reads it as a number,
# PyYAML's YAML 1.1 resolver as a string.
EXPONENT_FLOAT = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


class Loader(yaml.SafeLoader):
    """SafeLoader that reads `1e-4` as a float, as YAML 1.2 (and serde on the Rust side) does."""


class Dumper(yaml.SafeDumper):
    """SafeDumper that quotes a string YAML 1.2 would read as a float: a job id such as
    `51354728963299e1` (hex digits that happen to be all decimal but one `e`), written plain by
    PyYAML, is a number to serde_yaml and to `Loader`, and the job would be refused."""


for _cls in (Loader, Dumper):
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", EXPONENT_FLOAT, list("-+0123456789."))


def dump_yaml(data: Any) -> str:
    """YAML text every reader of this project reads back as `data` (key order kept)."""
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, allow_unicode=True)


def load_yaml(path: str | Path) -> Any:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: cannot read: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return yaml.load(text, Loader=Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{path}: malformed YAML: {where}{problem}") from None
