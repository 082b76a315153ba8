"""Imported by every Python task before scikit-learn: keep optional heavy imports out of the process.

scikit-learn imports pandas (and through it pyarrow) when it can, to accept DataFrames; a task only
ever hands it numpy arrays. Blocking them saves ~0.35 s of start-up per task process and their
memory; any module that then asks for them sees them as absent (ImportError), as on a machine
without pandas. Start-up is measured and reported (`process_timings_s.startup`), so this is a
cost every Python side pays alike, not a hidden one.
"""

import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

BLOCKED = frozenset({"pandas", "pyarrow"})


class KeepOut(MetaPathFinder):
    """An import hook that answers 'not installed' for the blocked packages. (Not a None entry in
    sys.modules: scikit-learn looks there directly and would take None for pandas.)"""

    def find_spec(self, name: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is kept out of mlbench task processes (mlbench.lean)", name=name)
        return None


if not any(isinstance(finder, KeepOut) for finder in sys.meta_path):
    sys.meta_path.insert(0, KeepOut())
