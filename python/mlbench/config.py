"""Matrix, task spec and hardware profile: loaded, validated once, expanded into typed jobs."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from mlbench import datasets as ds
from mlbench import folds
from mlbench.errors import UsageError
from mlbench.evaluate import KINDS
from mlbench.paths import HARDWARE, TASK_SPECS
from mlbench.schema import check, load_schema
from mlbench.yamlio import load_yaml

LANGUAGES = ("python", "rust")
GRID_DATASETS = "datasets"  # reserved key in an algorithm's grid: that algorithm's own datasets

TASK_SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["task", "domain", "python", "rust", "devices", "precision", "kind", "datasets", "algorithms"],
    "properties": {
        "task": {"type": "string"},
        "domain": {"enum": ["classical", "deep_learning", "llm", "rl"]},
        # One script per task; it may host several Python frameworks (dispatching on job.framework).
        "python": {"type": "object", "required": ["script", "frameworks"], "additionalProperties": False,
                   "properties": {"script": {"type": "string"},
                                  "frameworks": {"type": "array", "items": {"type": "string"}, "minItems": 1}}},
        # What happens inside one repetition: fit/predict (`supervised`, `clustering`, chosen by the
        # task's algorithm objects), `train_classifier` (epochs over shared weights and batch order),
        # `env_steps` (an environment stepped through a rollouts set's actions, mlbench.stepping) or
        # `train_agent` (an agent trained on an environment from shared weights and streams, mlbench.agents)
        # or `generate` (a language model's generation and perplexity on a prompts set, mlbench.generation).
        "protocol": {"enum": ["supervised", "clustering", "train_classifier", "env_steps", "train_agent", "generate",
                                  "encode"]},
        "rust": {"type": "object", "required": ["binary", "frameworks"], "additionalProperties": False,
                 "properties": {"binary": {"type": "string"},
                                "frameworks": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                                # a framework whose arm is its own binary (e.g. a separate workspace)
                                "binaries": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "devices": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "precision": {"type": "string"},
        "kind": {"enum": sorted(KINDS)},
        "kinds": {"type": "object", "additionalProperties": {"enum": sorted(KINDS)}},
        "datasets": {"type": "array", "items": {"type": "string"}},
        "quality_tolerance": {"type": "number", "minimum": 0},
        # A rule an algorithm applies to its inputs that every side follows (stated in meta.json).
        "input_rules": {"type": "object", "additionalProperties": {"type": "string"}},
        "algorithms": {"type": "object", "additionalProperties": {"type": "object"}},
        # What a framework lacks: a job matching a rule (its framework, its algorithm, its dataset where
        # the rule lists `datasets`, and every key of `when`) is recorded `unsupported` with the reason
        # by both harnesses before any work, and `mlbench frameworks` reads the same rules.
        "unsupported": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["frameworks", "algorithms", "reason"],
            "properties": {"frameworks": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                           "algorithms": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                           "datasets": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                           "when": {"type": "object"},
                           "reason": {"type": "string", "minLength": 1}}}},
    },
}

HARDWARE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "device", "threads"],
    "properties": {
        "name": {"type": "string"},
        "device": {"enum": ["cpu", "cuda"]},
        "threads": {"type": "integer", "minimum": 1},
        # A phase call shorter than this is timed as a sample of k calls (k found by doubling).
        "min_sample_s": {"type": "number", "minimum": 0},
        # Resources each job asks a Slurm cluster for (`--executor slurm`); ignored by `local`.
        "slurm": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "gpus": {"type": "integer", "minimum": 0},
                "cpus_per_task": {"type": "integer", "minimum": 1},
                "mem": {"type": "string", "pattern": "^[0-9]+[KMGT]?$"},
                "time": {"type": "string"},
                "exclusive": {"type": "boolean"},
            },
        },
        # Training batch sizes under this profile, by task and algorithm: a matrix grid that says
        # `batch_size: profile` takes them (a GPU is launch-bound at a CPU's batch sizes).
        "batch_sizes": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": {"type": "array", "minItems": 1, "uniqueItems": True,
                                         "items": {"type": "integer", "minimum": 1}},
            },
        },
    },
}

# A grid value that the hardware profile supplies (HardwareProfile.batch_sizes).
FROM_PROFILE = "profile"
PROFILE_KEYS = {"batch_size": "batch_sizes"}


@dataclass(frozen=True)
class TaskSpec:
    """What configs/tasks/<task>.yaml declares: frameworks, datasets and each algorithm's parameters."""

    task: str
    domain: str
    python: dict[str, str]
    rust: dict[str, str]
    devices: list[str]
    precision: str
    kind: str
    datasets: list[str]
    algorithms: dict[str, dict[str, Any]]
    kinds: dict[str, str] = field(default_factory=dict)  # algorithms judged otherwise than `kind`
    quality_tolerance: float | None = None  # largest primary-metric gap still called the same quality
    input_rules: dict[str, str] = field(default_factory=dict)  # algorithm -> the rule every side applies
    protocol: str = "supervised"
    unsupported: list[dict[str, Any]] = field(default_factory=list)

    def unsupported_reason(self, framework: str, algorithm: str, params: dict[str, Any],
                           dataset: str | None = None) -> str | None:
        """The reason of the first `unsupported` rule the job matches, else None (a rule that lists
        `datasets` matches only those; with `dataset` None, any)."""
        for rule in self.unsupported:
            if (framework in rule["frameworks"] and algorithm in rule["algorithms"]
                    and (dataset is None or dataset in rule.get("datasets", [dataset]))
                    and matches(params, rule.get("when", {}))):
                return str(rule["reason"])
        return None

    @property
    def needs_fixtures(self) -> bool:
        """Training tasks share initial weights and batch order (agents: weights and random streams),
        written once before any side runs."""
        return self.protocol in ("train_classifier", "train_agent")

    @property
    def trains_classifiers(self) -> bool:
        return self.protocol == "train_classifier"

    @property
    def steps_environments(self) -> bool:
        """An env_steps or train_agent task: its datasets are rollouts sets, its jobs step an environment."""
        return self.protocol in ("env_steps", "train_agent")

    def binary(self, framework: str) -> str:
        return self.rust.get("binaries", {}).get(framework, self.rust["binary"])

    def frameworks(self, language: str) -> list[str]:
        return list(self.python["frameworks"] if language == "python" else self.rust["frameworks"])

    def kind_of(self, algorithm: str) -> str:
        return self.kinds.get(algorithm, self.kind)

    def primary_metric(self, algorithm: str) -> str:
        return KINDS[self.kind_of(algorithm)].primary

    def judging(self, algorithm: str) -> dict[str, Any]:
        """What the run's meta.json says about judging this algorithm (stats reads only that)."""
        kind = KINDS[self.kind_of(algorithm)]
        return {"kind": self.kind_of(algorithm), "primary_metric": kind.primary,
                "higher_is_better": kind.higher_is_better, "outputs": [*kind.outputs, *kind.optional],
                "agreement": kind.agreement} | ({"input_rule": self.input_rules[algorithm]}
                                                if algorithm in self.input_rules else {})

    def parameter_schema(self, algorithm: str) -> dict[str, Any]:
        """JSON Schema for one algorithm's fully expanded hyperparameters."""
        params = self.algorithms[algorithm]
        properties = {k: {kk: vv for kk, vv in v.items() if kk != "default"} for k, v in params.items()}
        return {"type": "object", "additionalProperties": False, "required": list(params),
                "properties": properties}


@dataclass(frozen=True)
class HardwareProfile:
    name: str
    device: str
    threads: int
    min_sample_s: float = 0.05
    slurm: dict[str, Any] = field(default_factory=dict)
    batch_sizes: dict[str, dict[str, list[int]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """One cell of the matrix. Field names are the job file's keys (configs/schema/job.schema.json)."""

    run: str
    task: str
    domain: str
    language: str
    framework: str
    algorithm: str
    dataset: str
    datasets_dir: str
    hyperparameters: dict[str, Any]
    hardware_profile: str
    device: str
    threads: int
    precision: str
    repetitions: int
    warmup: int
    seed: int
    timeout_s: float
    predictions_dir: str
    min_sample_s: float = 0.0
    processes: int = 1  # planned task processes; more can be added (resume, --target-ci) under the same id
    # Training tasks: where the shared initial weights and batch orders are (not part of the id: it
    # is derived from the id's fields), and the batch sizes inference is timed at.
    fixtures_dir: str = ""
    inference_batch_sizes: list[int] = field(default_factory=list)
    # `cv_folds: k` (0: none): each repetition cross-validates over the folds file the runner wrote
    # (mlbench.folds); the file's place is not part of the id, k is.
    cv_folds: int = 0
    folds_file: str = ""
    schema_version: int = 3
    job_id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.job_id:
            object.__setattr__(self, "job_id", self.compute_id())

    def compute_id(self) -> str:
        """Hash of everything that defines the work (not where results go), so resume can match it."""
        defining = {k: v for k, v in asdict(self).items()
                    if k not in ("job_id", "run", "datasets_dir", "predictions_dir", "timeout_s", "processes",
                                 "fixtures_dir", "folds_file")
                    and not (k in ("inference_batch_sizes", "cv_folds") and not v)}
        blob = json.dumps(defining, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def params_key(self) -> str:
        """The hyperparameters as the statistics group them (the protocol's k included)."""
        return params_key(self.hyperparameters, self.cv_folds)

    @property
    def n_records(self) -> int:
        return self.warmup + self.repetitions

    @property
    def label(self) -> str:
        params = ",".join(f"{k}={v}" for k, v in sorted(self.hyperparameters.items()))
        folds = f" {self.cv_folds}-fold CV" if self.cv_folds else ""
        return f"{self.task}/{self.algorithm}[{params}] {self.dataset}{folds} {self.language}"


def params_key(hyperparameters: dict[str, Any], cv_folds: int = 0) -> str:
    """One comparison's hyperparameters as a key (tidy, runner and stats): a cross-validated job is
    other work than the same hyperparameters fitted once, so `cv_folds` joins the key when set."""
    return json.dumps(hyperparameters | ({"cv_folds": cv_folds} if cv_folds else {}), sort_keys=True)


def load_task_spec(task: str, source: str | Path = "") -> TaskSpec:
    path = TASK_SPECS / f"{task}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in TASK_SPECS.glob("*.yaml")))
        raise UsageError(f"{source}: task: unknown task {task!r} (known: {known})")
    return read_task_spec(path)


@cache
def read_task_spec(path: Path) -> TaskSpec:
    """Read and validate a spec once per process: the runner and stats ask for it per job and record."""
    data = load_yaml(path)
    check(data, TASK_SPEC_SCHEMA, path)
    spec = TaskSpec(**data)
    check_unsupported_rules(spec, path)
    return spec


def check_unsupported_rules(spec: TaskSpec, path: Path) -> None:
    """A rule naming a framework, algorithm or parameter the spec lacks would never match: refused."""
    frameworks = spec.frameworks("python") + spec.frameworks("rust")
    for i, rule in enumerate(spec.unsupported):
        field_name = f"{path}: unsupported[{i}]"
        for name in rule["frameworks"]:
            if name not in frameworks:
                raise UsageError(f"{field_name}.frameworks: {name!r} is not a framework of task {spec.task}")
        for algorithm in rule["algorithms"]:
            if algorithm not in spec.algorithms:
                raise UsageError(f"{field_name}.algorithms: {algorithm!r} is not an algorithm of task {spec.task}")
            for key in rule.get("when", {}):
                if key not in spec.algorithms[algorithm]:
                    raise UsageError(f"{field_name}.when: {key!r} is not a parameter of {algorithm}")


def hardware_profiles() -> list[str]:
    return sorted(p.stem for p in HARDWARE.glob("*.yaml"))


def load_hardware(name: str) -> HardwareProfile:
    path = HARDWARE / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(hardware_profiles())
        raise UsageError(f"--hw: unknown hardware profile {name!r} (known: {known})")
    data = load_yaml(path)
    check(data, HARDWARE_SCHEMA, path)
    return HardwareProfile(**data)


def from_profile(matrix: dict[str, Any], hardware: HardwareProfile, path: str | Path) -> dict[str, Any]:
    """The matrix with every `profile` grid value (`batch_size: profile`) replaced by the hardware
    profile's values for its task and algorithm."""
    algorithms = {}
    for algorithm, grid in matrix["algorithms"].items():
        grid = dict(grid)
        for key, profile_key in PROFILE_KEYS.items():
            if grid.get(key) != FROM_PROFILE:
                continue
            values = getattr(hardware, profile_key).get(matrix["task"], {}).get(algorithm)
            if values is None:
                raise UsageError(f"{path}: algorithms.{algorithm}.{key}: {FROM_PROFILE!r}, but hardware profile "
                                 f"{hardware.name} (configs/hardware/{hardware.name}.yaml) has no "
                                 f"{profile_key}.{matrix['task']}.{algorithm}")
            grid[key] = list(values)
        algorithms[algorithm] = grid
    return matrix | {"algorithms": algorithms}


def load_matrix(path: str | Path, hardware: HardwareProfile | None = None) -> tuple[dict[str, Any], TaskSpec]:
    """Load and fully validate a matrix file against the schema and its task's spec, with its
    `profile` values taken from `hardware` (without one: checked under every profile, the first kept)."""
    matrix = load_yaml(path)
    if not isinstance(matrix, dict):
        raise UsageError(f"{path}: (top level): expected a mapping of matrix keys")
    check(matrix, "matrix", path)
    uses_profile = any(grid.get(key) == FROM_PROFILE for grid in matrix["algorithms"].values()
                       for key in PROFILE_KEYS)
    if not uses_profile:
        return check_matrix(matrix, path)
    if hardware is not None:
        return check_matrix(from_profile(matrix, hardware, path), path)
    checked = [check_matrix(from_profile(matrix, load_hardware(name), path), path) for name in hardware_profiles()]
    return checked[0]


def check_matrix(matrix: dict[str, Any], path: str | Path) -> tuple[dict[str, Any], TaskSpec]:
    """A loaded matrix checked against its task's spec."""
    spec = load_task_spec(matrix["task"], path)
    for name in matrix["datasets"] + matrix.get("optional_datasets", []):
        if name not in spec.datasets:
            raise UsageError(f"{path}: datasets: unknown dataset {name!r} for task {spec.task} "
                             f"(known: {', '.join(spec.datasets)})")
    for algorithm, grid in matrix["algorithms"].items():
        if algorithm not in spec.algorithms:
            raise UsageError(f"{path}: algorithms.{algorithm}: unknown algorithm for task {spec.task} "
                             f"(known: {', '.join(spec.algorithms)})")
        for name in grid.get(GRID_DATASETS, []):
            if name not in spec.datasets:
                raise UsageError(f"{path}: algorithms.{algorithm}.datasets: unknown dataset {name!r}")
        for combo in expand_grid(grid, spec.algorithms[algorithm]):
            check(combo, spec.parameter_schema(algorithm), f"{path}: algorithms.{algorithm}")
    for number, rule in enumerate(matrix.get("exclude", [])):
        known = {"algorithm"} | {p for params in spec.algorithms.values() for p in params}
        if unknown := sorted(set(rule) - known):
            raise UsageError(f"{path}: exclude.{number}: unknown key {unknown[0]!r} (a hyperparameter or algorithm)")
    return matrix, spec


def matrix_defaults() -> dict[str, Any]:
    """The matrix schema's defaults (processes, warmup, seed, timeout_s, margin)."""
    return {k: v["default"] for k, v in load_schema("matrix")["properties"].items() if "default" in v}


def matches(values: dict[str, Any], conditions: dict[str, Any]) -> bool:
    """Every key of `conditions` is in `values` with the value given (or one of the values listed)."""
    return all(key in values and values[key] in (v if isinstance(v, list) else [v]) for key, v in conditions.items())


def excluded(algorithm: str, params: dict[str, Any], rules: list[dict[str, Any]]) -> bool:
    """A combination is excluded when it matches every key of one rule (a value or a list of values)."""
    values = params | {"algorithm": algorithm}
    return any(matches(values, rule) for rule in rules)


def expand_grid(grid: dict[str, Any], params: dict[str, Any]) -> list[dict[str, Any]]:
    """Cartesian product of listed values, with each spec default filling a missing key."""
    grid = {k: v for k, v in grid.items() if k != GRID_DATASETS}
    full = {k: v.get("default") for k, v in params.items() if "default" in v} | grid
    axes = [(k, v if isinstance(v, list) else [v]) for k, v in sorted(full.items())]
    return [dict(zip([k for k, _ in axes], values, strict=True))
            for values in itertools.product(*[v for _, v in axes])]


# Deep-learning tasks' switches of libtorch's CUDA kernels (configs/tasks/cnn.yaml).
CUDA_SWITCHES = ("cudnn_benchmark", "tf32")


def expand_matrix(path: str | Path, hardware: HardwareProfile, languages: list[str], run: str,
                  out_dir: Path, datasets_dir: Path) -> tuple[list[Job], list[str]]:
    """All jobs of one matrix, and notes on what was skipped (optional datasets not prepared)."""
    matrix, spec = load_matrix(path, hardware)
    raw = load_yaml(path)
    matrix = matrix_defaults() | matrix
    notes: list[str] = []
    names = list(matrix["datasets"])
    for name in matrix.get("optional_datasets", []):
        if ds.is_prepared(name, datasets_dir):
            names.append(name)
        else:
            notes.append(f"{path}: skipping optional dataset {name!r}: not prepared "
                         f"(run `make datasets DOWNLOAD=1` where it can be fetched)")
    device = hardware.device if hardware.device in spec.devices else "cpu"
    for key, profile_key in PROFILE_KEYS.items():
        if taken := {a: v for a, v in getattr(hardware, profile_key).get(spec.task, {}).items()
                     if raw["algorithms"].get(a, {}).get(key) == FROM_PROFILE}:
            notes.append(f"{path}: {key} from hardware profile {hardware.name}: "
                         + "; ".join(f"{a} {v}" for a, v in taken.items()))
    rules = matrix.get("exclude", [])
    for dataset in sorted({d for grid in matrix["algorithms"].values() for d in grid.get(GRID_DATASETS, names)}):
        ds.verify(dataset, datasets_dir)  # once per dataset: hashing is the slow part
    jobs = []
    k = matrix.get("cv_folds", 0)
    for algorithm, grid in matrix["algorithms"].items():
        if k:
            check_cross_validation(path, spec, algorithm)
        switches = [name for name in CUDA_SWITCHES if grid.get(name) not in (None, False, [False])]
        if switches and device != "cuda":
            notes.append(f"{path}: algorithms.{algorithm}: {', '.join(switches)} are CUDA kernel switches; "
                         f"on device {device} they change nothing (the records still say they were on)")
        for dataset in grid.get(GRID_DATASETS, names):
            check_target(path, algorithm, dataset, spec, datasets_dir)
            if k:
                folds.check_matrix(f"{path}: algorithms.{algorithm}", dataset, k, datasets_dir)
            for params in expand_grid(grid, spec.algorithms[algorithm]):
                if excluded(algorithm, params, rules):
                    continue
                if spec.trains_classifiers:
                    check_training(path, algorithm, dataset, params, datasets_dir)
                if spec.protocol == "train_agent":
                    check_agent(f"{path}: algorithms.{algorithm}", dataset, params, datasets_dir)
                if spec.protocol == "env_steps":
                    check_rollouts(f"{path}: algorithms.{algorithm}", dataset, params, datasets_dir)
                if spec.protocol in ("generate", "encode"):
                    check_model_input(f"{path}: algorithms.{algorithm}", spec.protocol, dataset, params,
                                      datasets_dir)
                jobs += [Job(run=run, task=spec.task, domain=spec.domain, language=language, framework=framework,
                             algorithm=algorithm, dataset=dataset, datasets_dir=str(datasets_dir.resolve()),
                             hyperparameters=params, hardware_profile=hardware.name, device=device,
                             threads=hardware.threads, precision=spec.precision,
                             repetitions=matrix["repetitions"], warmup=matrix["warmup"], seed=matrix["seed"],
                             timeout_s=float(matrix["timeout_s"]),
                             predictions_dir=str((out_dir / "predictions").resolve()),
                             min_sample_s=hardware.min_sample_s, processes=matrix["processes"],
                             fixtures_dir=fixtures_dir(out_dir, spec, algorithm, dataset, params, matrix["seed"]),
                             inference_batch_sizes=list(matrix["inference_batch_sizes"]) if spec.trains_classifiers
                             else [], cv_folds=k,
                             folds_file=folds.path_for(out_dir, dataset, k, matrix["seed"]) if k else "")
                         for language in languages for framework in spec.frameworks(language)]
    return jobs, notes


def check_cross_validation(path: str | Path, spec: TaskSpec, algorithm: str) -> None:
    """`cv_folds` needs the fit/predict protocol: a supervised algorithm judged on its predictions."""
    if spec.needs_fixtures or spec.steps_environments or spec.kind_of(algorithm) == "clustering":
        what = "a clustering algorithm" if spec.kind_of(algorithm) == "clustering" else "not a fit/predict task"
        raise UsageError(f"{path}: cv_folds: {spec.task}/{algorithm} is {what}; cross-validation applies to "
                         "supervised fit/predict tasks (regression, svm)")


def fixtures_dir(out_dir: Path, spec: TaskSpec, algorithm: str, dataset: str, params: dict[str, Any],
                 seed: int) -> str:
    """One folder per (algorithm, dataset, hyperparameters, seed) shared by every side, or "" when the
    task needs none. Files inside are per repetition seed (init-SEED.safetensors, order-SEED.npy)."""
    if not spec.needs_fixtures:
        return ""
    blob = json.dumps([spec.task, algorithm, dataset, params, seed], sort_keys=True, separators=(",", ":"))
    return str((out_dir / "fixtures" / hashlib.sha256(blob.encode()).hexdigest()[:16]).resolve())


def check_training(path: str | Path, algorithm: str, dataset: str, params: dict[str, Any],
                   datasets_dir: Path) -> None:
    """What a training job's schema cannot see: the dataset's layout and size, the weights file."""
    meta = ds.read_meta(dataset, datasets_dir)
    where = f"{path}: algorithms.{algorithm}"
    if meta.get("layout") not in ds.TRAINING_LAYOUTS:
        raise UsageError(f"{where}: dataset {dataset!r} is not a dataset of a training task "
                         f"(layout {meta.get('layout', 'tabular')}, not {' or '.join(ds.TRAINING_LAYOUTS)})")
    n_train = int(meta["files"]["y_train.npy"]["shape"][0])
    if params["batch_size"] > n_train:
        raise UsageError(f"{where}: batch_size: {params['batch_size']} is above the training set of {dataset} "
                         f"({n_train} samples)")
    if params.get("pretrained") and params.get("weights_file") and not Path(params["weights_file"]).is_file():
        raise UsageError(f"{where}: weights_file: {params['weights_file']} does not exist")


def check_rollouts(where: str, dataset: str, params: dict[str, Any], datasets_dir: Path) -> None:
    """What an env_steps job's schema cannot see: the rollouts set has the copies and steps it asks."""
    meta = ds.read_meta(dataset, datasets_dir)
    if meta.get("layout") != "rollouts":
        raise UsageError(f"{where}: dataset {dataset!r} is not an environment's rollouts set "
                         f"(layout {meta.get('layout', 'tabular')})")
    for key, limit, what in (("num_envs", "n_envs", "copies"), ("steps", "steps", "steps")):
        if params[key] > meta[limit]:
            raise UsageError(f"{where}: {key}: {params[key]} is above the {meta[limit]} {what} of rollouts set "
                             f"{dataset}")


def check_model_input(where: str, protocol: str, dataset: str, params: dict[str, Any], datasets_dir: Path) -> None:
    """What a generation or encoding job's schema cannot see (mlbench.generation.check_params,
    mlbench.encoding.check_params), at matrix expansion."""
    from mlbench import encoding, generation

    checker = generation.check_params if protocol == "generate" else encoding.check_params
    try:
        checker(params, ds.read_meta(dataset, datasets_dir))
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None


def check_agent(where: str, dataset: str, params: dict[str, Any], datasets_dir: Path) -> None:
    """What an agent job's schema cannot see (mlbench.agents.check_params), at matrix expansion."""
    from mlbench import agents

    try:
        agents.check_params(params, dataset, ds.read_meta(dataset, datasets_dir))
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None


MODEL_LAYOUTS = {"generate": "prompts", "encode": "texts"}  # the layout each model protocol reads


def check_target(path: str | Path, algorithm: str, dataset: str, spec: TaskSpec, datasets_dir: Path) -> None:
    """The dataset's target suits the algorithm: class labels for classification and clustering, a
    rollouts set for stepping an environment."""
    meta = ds.read_meta(dataset, datasets_dir)
    layout = meta.get("layout", "tabular")
    needed = "rollouts" if spec.steps_environments else MODEL_LAYOUTS.get(spec.protocol)
    if (layout in ("rollouts", "prompts", "texts") or needed is not None) and layout != needed:
        need = {"rollouts": "an environment's rollouts set", "prompts": "a language model's prompts set",
                "texts": "an encoder's texts set"}.get(needed or "", "features and a target")
        raise UsageError(f"{path}: algorithms.{algorithm}: dataset {dataset!r} is not {need}")
    if needed is not None:
        return
    has_labels = ds.has_class_labels(meta)
    wants_labels = spec.kind_of(algorithm) != "regression"
    if has_labels != wants_labels:
        need = "class labels" if wants_labels else "a real-valued target"
        raise UsageError(f"{path}: algorithms.{algorithm}: dataset {dataset!r} does not have {need}")


def load_job(path: str | Path) -> Job:
    """Read a job file as a task does: schema first, then the task's own parameter schema."""
    data = load_yaml(path)
    check(data, "job", path)
    spec = load_task_spec(data["task"], path)
    if data["algorithm"] not in spec.algorithms:
        raise UsageError(f"{path}: algorithm: unknown algorithm {data['algorithm']!r} for task {spec.task}")
    if data["dataset"] not in spec.datasets:
        raise UsageError(f"{path}: dataset: {data['dataset']!r} is not a dataset of task {spec.task} "
                         f"(known: {', '.join(spec.datasets)})")
    check(data["hyperparameters"], spec.parameter_schema(data["algorithm"]), f"{path}: hyperparameters")
    return Job(**data)
