"""Matrix expansion: cartesian products, defaults, stable job ids."""

from pathlib import Path

from conftest import write_yaml
from mlbench.config import HardwareProfile, Job, expand_grid, expand_matrix, load_task_spec

CPU = HardwareProfile(name="cpu", device="cpu", threads=1)


def test_lists_expand_as_a_cartesian_product_with_defaults_filled() -> None:
    spec = load_task_spec("regression")
    combos = expand_grid({"alpha": [0.1, 1.0], "l1_ratio": [0.1, 0.5, 0.9]}, spec.algorithms["elastic_net"])
    assert len(combos) == 6
    assert all(c["max_iter"] == 1000 and c["tol"] == 1e-4 for c in combos)
    assert {(c["alpha"], c["l1_ratio"]) for c in combos} == {(a, r) for a in (0.1, 1.0) for r in (0.1, 0.5, 0.9)}


def test_expansion_covers_every_cell_and_ids_are_stable(tmp_path: Path, datasets_dir: Path) -> None:
    matrix = write_yaml(tmp_path / "m.yaml", {
        "task": "regression", "repetitions": 2, "datasets": ["diabetes", "synthetic_linear"],
        "algorithms": {"linear": {}, "ridge": {"alpha": [1.0, 10.0]}}})
    jobs, notes = expand_matrix(matrix, CPU, ["python", "rust"], "r", tmp_path / "out", datasets_dir)
    assert len(jobs) == 2 * 3 * 2 and notes == []
    assert len({j.job_id for j in jobs}) == len(jobs)
    again, _ = expand_matrix(matrix, CPU, ["python", "rust"], "other-run", tmp_path / "x", datasets_dir)
    assert [j.job_id for j in jobs] == [j.job_id for j in again]  # the run name does not define the work
    assert all(j.warmup == 2 and j.seed == 42 and j.processes == 5 for j in jobs)  # schema defaults


def test_optional_dataset_not_prepared_is_skipped_with_a_note(tmp_path: Path, datasets_dir: Path) -> None:
    matrix = write_yaml(tmp_path / "m.yaml", {
        "task": "regression", "repetitions": 1, "datasets": ["diabetes"],
        "optional_datasets": ["california_housing"], "algorithms": {"linear": {}}})
    jobs, notes = expand_matrix(matrix, CPU, ["python"], "r", tmp_path / "out", datasets_dir)
    assert [j.dataset for j in jobs] == ["diabetes"]
    assert len(notes) == 1 and "california_housing" in notes[0]


def test_shipped_matrices_are_valid(datasets_dir: Path, tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1] / "configs"
    for name in ("smoke/regression.yaml", "classical/regression.yaml", "smoke/svm.yaml", "smoke/clustering.yaml",
                 "smoke/cv_regression.yaml", "smoke/cv_svm.yaml"):
        jobs, _ = expand_matrix(root / name, CPU, ["python", "rust"], "r", tmp_path, datasets_dir)
        assert jobs
    from mlbench.config import load_matrix

    matrices = [p for p in root.glob("*/*.yaml") if p.parent.name not in ("tasks", "hardware", "schema")]
    assert any(p.parent.name == "gpu-check" for p in matrices)
    for path in matrices:  # schema and task spec, datasets not needed
        load_matrix(path)


def test_cross_validation_is_part_of_the_job_id_and_the_comparison_key(tmp_path: Path, datasets_dir: Path) -> None:
    plain = {"task": "regression", "repetitions": 1, "datasets": ["diabetes"], "algorithms": {"ridge": {}}}
    (once,), _ = expand_matrix(write_yaml(tmp_path / "a.yaml", plain), CPU, ["python"], "r", tmp_path, datasets_dir)
    (folded,), _ = expand_matrix(write_yaml(tmp_path / "b.yaml", plain | {"cv_folds": 5}), CPU, ["python"], "r",
                                 tmp_path, datasets_dir)
    assert once.cv_folds == 0 and not once.folds_file
    assert folded.cv_folds == 5 and folded.folds_file.endswith("folds/diabetes-k5-seed42.npy")
    assert once.job_id != folded.job_id and once.params_key != folded.params_key
    moved = Job(**(folded.to_dict() | {"folds_file": "/elsewhere/f.npy", "job_id": ""}))
    assert moved.job_id == folded.job_id  # where the run keeps the file is not the work


def test_exclude_rules_drop_matching_combinations(tmp_path: Path, datasets_dir: Path) -> None:
    matrix = write_yaml(tmp_path / "m.yaml", {
        "task": "svm", "repetitions": 1, "datasets": ["iris"],
        "algorithms": {"svc": {"kernel": ["rbf", "poly"], "degree": [2, 3]}},
        "exclude": [{"kernel": "rbf", "degree": 2}]})
    jobs, _ = expand_matrix(matrix, CPU, ["python"], "r", tmp_path / "out", datasets_dir)
    combos = sorted((j.hyperparameters["kernel"], j.hyperparameters["degree"]) for j in jobs)
    assert combos == [("poly", 2), ("poly", 3), ("rbf", 3)]


def test_every_rust_framework_gets_its_own_job(tmp_path: Path, datasets_dir: Path) -> None:
    matrix = write_yaml(tmp_path / "m.yaml", {"task": "svm", "repetitions": 1, "datasets": ["iris"],
                                             "algorithms": {"svc": {}}})
    jobs, _ = expand_matrix(matrix, CPU, ["python", "rust"], "r", tmp_path / "out", datasets_dir)
    assert sorted(j.framework for j in jobs) == ["libsvm-rs", "linfa", "scikit-learn"]


def test_frameworks_option_keeps_the_named_frameworks_and_refuses_unknown_ones(tmp_path: Path,
                                                                               datasets_dir: Path) -> None:
    import pytest

    from mlbench.errors import UsageError
    from mlbench.runner import only_frameworks

    matrix = write_yaml(tmp_path / "m.yaml", {"task": "svm", "repetitions": 1, "datasets": ["iris"],
                                             "algorithms": {"svc": {}}})
    jobs, _ = expand_matrix(matrix, CPU, ["python", "rust"], "r", tmp_path / "out", datasets_dir)
    assert sorted(j.framework for j in only_frameworks(jobs, ["linfa", "scikit-learn"])) == ["linfa", "scikit-learn"]
    with pytest.raises(UsageError, match="--frameworks: 'tch' is not a framework of these matrices"):
        only_frameworks(jobs, ["tch"])


def test_the_tch_binary_gets_this_pythons_libtorch_and_other_binaries_do_not(tmp_path: Path,
                                                                            datasets_dir: Path) -> None:
    from dataclasses import replace

    from mlbench.runner import cuda_lib, library_path, links_libtorch, torch_lib

    cnn = dict(task="cnn", domain="deep_learning", language="rust")
    svm = expand_matrix(write_yaml(tmp_path / "m.yaml", {"task": "svm", "repetitions": 1, "datasets": ["iris"],
                                                         "algorithms": {"svc": {}}}),
                        CPU, ["rust"], "r", tmp_path / "out", datasets_dir)[0][0]
    assert not links_libtorch(svm)
    assert links_libtorch(replace(svm, **cnn, framework="tch"))
    assert links_libtorch(replace(svm, **cnn, framework="candle"))  # the same binary as tch
    assert not links_libtorch(replace(svm, **cnn, framework="burn"))  # its own binary, no libtorch
    assert not links_libtorch(replace(svm, **cnn | {"language": "python"}, framework="pytorch"))
    lib = torch_lib()
    assert lib is None or (Path(lib) / "libtorch_cpu.so").exists()
    # A Rust job on cuda also gets torch's CUDA libraries (a candle cuda build links cuBLAS by soname).
    cuda = cuda_lib()
    assert cuda is None or (Path(cuda) / "libcublas.so.13").exists()
    text = dict(task="text_generation", domain="llm", language="rust", framework="candle")
    assert library_path(replace(svm, **text)) == []
    assert library_path(replace(svm, **text, device="cuda")) == ([cuda] if cuda else [])
    assert library_path(replace(svm, **cnn, framework="tch", device="cuda")) == [p for p in (lib, cuda) if p]
    assert library_path(replace(svm, **cnn | {"language": "python"}, framework="pytorch", device="cuda")) == []


def test_per_algorithm_datasets_and_target_check(tmp_path: Path, datasets_dir: Path) -> None:
    import pytest

    from mlbench.errors import UsageError

    good = write_yaml(tmp_path / "good.yaml", {"task": "svm", "repetitions": 1, "datasets": ["iris"],
                                               "algorithms": {"svc": {}, "svr": {"datasets": ["diabetes"]}}})
    jobs, _ = expand_matrix(good, CPU, ["python"], "r", tmp_path / "out", datasets_dir)
    assert sorted((j.algorithm, j.dataset) for j in jobs) == [("svc", "iris"), ("svr", "diabetes")]
    bad = write_yaml(tmp_path / "bad.yaml", {"task": "svm", "repetitions": 1, "datasets": ["iris"],
                                             "algorithms": {"svr": {}}})
    with pytest.raises(UsageError, match="'iris' does not have a real-valued target"):
        expand_matrix(bad, CPU, ["python"], "r", tmp_path / "out", datasets_dir)


def test_a_job_id_that_reads_as_a_number_is_written_quoted(tmp_path: Path) -> None:
    """A hex job id of decimal digits and one `e` is a float to YAML 1.2 (serde_yaml, and our Loader):
    written plain, as PyYAML's safe_dump writes it, every program refused the job (about 1 id in 1,300)."""
    from mlbench.yamlio import dump_yaml, load_yaml

    path = tmp_path / "job.yaml"
    path.write_text(dump_yaml({"job_id": "51354728963299e1", "learning_rate": 1e-4, "name": "1e5"}))
    assert "'51354728963299e1'" in path.read_text()
    assert load_yaml(path) == {"job_id": "51354728963299e1", "learning_rate": 1e-4, "name": "1e5"}


def grid_sizes(path: Path, profile: str) -> dict[str, list[int]]:
    """Each algorithm's batch sizes in a matrix under a hardware profile, and its combination count."""
    from mlbench.config import excluded, load_hardware, load_matrix

    matrix, spec = load_matrix(path, load_hardware(profile))
    sizes = {}
    for algorithm, grid in matrix["algorithms"].items():
        combos = [c for c in expand_grid(grid, spec.algorithms[algorithm])
                  if not excluded(algorithm, c, matrix.get("exclude", []))]
        sizes[algorithm] = [*sorted({c["batch_size"] for c in combos}), len(combos)]
    return sizes


def test_deep_learning_grids_take_their_batch_sizes_from_the_hardware_profile() -> None:
    root = Path(__file__).resolve().parents[1] / "configs"
    cnn, rnn = root / "deep_learning/cnn.yaml", root / "deep_learning/rnn.yaml"
    # the CPU profile keeps the grid README counts (32 configurations per framework with Fashion-MNIST)
    cpu = grid_sizes(cnn, "cpu")
    assert cpu["lenet"] == [16, 32, 64, 128, 4] and cpu["resnet18"] == [128, 2]
    # SGD: 2 sizes x batch norm on/off, and dropout at 128 with it; AdamW: 2 decays x dropout at 128
    assert cpu["simple_cnn"] == [32, 128, 9]
    gpu = grid_sizes(cnn, "gpu")
    assert gpu["lenet"] == [128, 512, 1024, 3] and gpu["vgg16"] == [128, 512, 2]
    assert gpu["simple_cnn"] == [128, 512, 9]  # AdamW and dropout stay at the shared size, 128
    assert grid_sizes(rnn, "cpu")["lstm"][:2] == [32, 128] and grid_sizes(rnn, "gpu")["gru"][:2] == [128, 512]


def test_a_profile_value_the_profile_lacks_is_refused_naming_file_and_field(tmp_path: Path) -> None:
    import pytest

    from mlbench.config import load_matrix
    from mlbench.errors import UsageError

    matrix = write_yaml(tmp_path / "m.yaml", {
        "task": "cnn", "repetitions": 1, "datasets": ["synthetic_images_micro"],
        "algorithms": {"lenet": {"epochs": 1, "batch_size": "profile"}}})
    bare = HardwareProfile(name="bare", device="cpu", threads=1)
    with pytest.raises(UsageError, match=r"m.yaml: algorithms.lenet.batch_size: 'profile', but hardware profile "
                                         r"bare \(configs/hardware/bare.yaml\) has no batch_sizes.cnn.lenet"):
        load_matrix(matrix, bare)
    odd = HardwareProfile(name="odd", device="cpu", threads=1, batch_sizes={"cnn": {"lenet": [8, 24]}})
    loaded, _ = load_matrix(matrix, odd)
    assert loaded["algorithms"]["lenet"]["batch_size"] == [8, 24]
    load_matrix(matrix)  # no profile named: checked under every shipped one


def test_profile_batch_sizes_reach_the_jobs_and_the_plan_says_so(tmp_path: Path) -> None:
    from mlbench import datasets as ds

    folder = tmp_path / "datasets"
    ds.prepare(["synthetic_images_micro"], folder, log=lambda _: None)
    matrix = write_yaml(tmp_path / "m.yaml", {
        "task": "cnn", "repetitions": 1, "datasets": ["synthetic_images_micro"],
        "algorithms": {"lenet": {"epochs": 1, "batch_size": "profile"}, "simple_cnn": {"epochs": 1}}})
    profile = HardwareProfile(name="small", device="cpu", threads=1, batch_sizes={"cnn": {"lenet": [8, 16]}})
    jobs, notes = expand_matrix(matrix, profile, ["python"], "r", tmp_path / "out", folder)
    assert sorted(j.hyperparameters["batch_size"] for j in jobs if j.algorithm == "lenet") == [8, 16]
    assert notes == [f"{matrix}: batch_size from hardware profile small: lenet [8, 16]"]
