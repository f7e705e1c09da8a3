"""imprint bench: aggregation as in the paper, the embedding cache, the CLI end to end, errors.

The end-to-end tests use the real built-in backbone on real Fashion-MNIST images (10 train and
5 test images per class), so they skip when the Debian Fashion-MNIST files are not installed.
"""

import csv
import json

import numpy as np
import pytest

from imprint_core.bench import (
    PROBE,
    BenchConfig,
    aggregate,
    embed_cached,
    load_config,
    parse_grid,
    preset_methods,
    run_bench,
    subset_rows,
)
from imprint_core.bench import protocol as bench
from imprint_core.bench.datasets import FASHION_MNIST_DIR, load_dataset
from imprint_core.cli import main
from imprint_core.presets import PRESETS

TINY = dict(per_class=10, test_per_class=5, seeds=(0, 1), tasks=("short", "merged"))


class CountingBackbone:
    """The real backbone, counting the images it is asked to embed."""

    def __init__(self, backbone):
        self.inner, self.name, self.dim = backbone, backbone.name, backbone.dim
        self.calls, self.images = 0, 0

    def embed(self, images, batch_size=32, progress=None, cache=None):
        self.calls += 1
        self.images += len(images)
        return self.inner.embed(images, batch_size=batch_size, progress=progress, cache=cache)


@pytest.fixture(scope="module")
def backbone():
    from imprint_core.backbones import get_backbone

    return CountingBackbone(get_backbone())


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("embeddings")


def tiny_config(backbone, cache_dir, **over):
    methods = preset_methods(["qi", "ours", "oracle"]) + parse_grid("preset=ours k=2")
    kw = dict(TINY, backbone=backbone, methods=tuple(methods), cache_dir=cache_dir, progress=False)
    return BenchConfig(**{**kw, **over})


@pytest.fixture(scope="module")
def first_run(backbone, cache_dir):
    if not FASHION_MNIST_DIR.is_dir():
        pytest.skip(f"Fashion-MNIST is not installed in {FASHION_MNIST_DIR}")
    return run_bench(tiny_config(backbone, cache_dir)), backbone.images


# ------------------------------------------------------------------------ aggregation
def test_aggregation_is_median_over_seeds_then_mean_over_tasks():
    runs = []
    table = {  # method -> task -> accuracies over seeds 0, 1, 2
        "A": {"t1": [80, 90, 70], "t2": [60, 61, 100]},  # medians 80, 61 -> mean 70.5
        "B": {"t1": [85, 85, 10], "t2": [50, 70, 60]},  # medians 85, 60 -> mean 72.5
        "C": {"t1": [80, 80, 80], "t2": [10, 20, 30]},  # medians 80, 20 -> mean 50
    }
    for method, tasks in table.items():
        for task, accs in tasks.items():
            for seed, acc in enumerate(accs):
                runs.append(
                    dict(method=method, task=task, seed=seed, accuracy=acc, fit_seconds=seed)
                )
    runs += [  # a probe with one run per task, and a merged task outside the mean
        dict(method="P", kind="probe", task="t1", seed=0, accuracy=99, fit_seconds=5),
        dict(method="P", kind="probe", task="t2", seed=0, accuracy=98, fit_seconds=7),
    ]
    runs += [dict(method=m, task="merged", seed=0, accuracy=50, fit_seconds=0) for m in "ABC"]
    runs += [dict(method="P", kind="probe", task="merged", seed=0, accuracy=50)]
    summary = {s["method"]: s for s in aggregate(runs, main_tasks=["t1", "t2"])}
    assert [s for s in summary] == ["A", "B", "C", "P"]
    assert summary["A"]["tasks"] == {"t1": 80, "t2": 61, "merged": 50}
    assert summary["A"]["mean"] == pytest.approx(70.5)  # the mean of all runs would be 76.83
    assert summary["B"]["mean"] == pytest.approx(72.5)
    assert summary["C"]["mean"] == pytest.approx(50.0)
    # ranks among imprinting methods per task: t1 B=1, A=C=2.5 (tie); t2 A=1, B=2, C=3
    assert summary["A"]["rank"] == pytest.approx((2.5 + 1) / 2)
    assert summary["B"]["rank"] == pytest.approx((1 + 2) / 2)
    assert summary["C"]["rank"] == pytest.approx((2.5 + 3) / 2)
    assert summary["P"]["rank"] is None and summary["P"]["mean"] == pytest.approx(98.5)
    assert summary["A"]["fit_seconds"] == pytest.approx(1.0)  # median of 0, 1, 2 on each task
    assert summary["P"]["fit_seconds"] == pytest.approx(6.0)
    assert summary["A"]["seeds"] == {"t1": 3, "t2": 3, "merged": 1}
    everything = {s["method"]: s["mean"] for s in aggregate(runs)}
    assert everything["A"] == pytest.approx((80 + 61 + 50) / 3)


def test_aggregation_needs_every_main_task():
    runs = [dict(method="A", task="t1", seed=0, accuracy=1.0)]
    with pytest.raises(ValueError, match="no runs of method 'A' on task 't2'"):
        aggregate(runs, main_tasks=["t1", "t2"])


# ------------------------------------------------------------------------ methods
def test_grid_is_a_product_with_k_free_generators_deduplicated():
    methods = parse_grid("gen=kmeans,mean k=1,5,20 norm_post=l2")
    names = [m.name for m in methods]
    assert names == [
        "gen=kmeans k=1 norm_post=l2",
        "gen=kmeans k=5 norm_post=l2",
        "gen=kmeans k=20 norm_post=l2",
        "gen=mean norm_post=l2",
    ]
    assert methods[1].params == {"gen": "kmeans", "k": 5, "norm_post": "l2"}
    based = parse_grid("preset=ours,qi k=3 lambda_reg=none")
    assert [m.name for m in based] == ["ours k=3 lambda_reg=None", "qi lambda_reg=None"]
    assert based[0].params == {**PRESETS["ours"], "k": 3, "lambda_reg": None}


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ("gen kmeans", "bad token 'gen'; write option=value"),
        ("gen=kmeans,", "bad token 'gen=kmeans,'"),
        ("gen=kmeans gen=mean", "option 'gen' is given twice"),
        ("colour=red", "unknown option 'colour'; options are: preset, norm_pre"),
        ("seed=1", "unknown option 'seed'"),
        ("gen=kmean", "unknown gen 'kmean'; valid values are: mean"),
        ("k=five", "k='five' is not a valid int"),
        ("k=0", "k must be an integer >= 1"),
        ("preset=best", "unknown preset 'best'; choose one of: qi, hosoda"),
        ("", "empty grid"),
    ],
)
def test_bad_grids_say_what_is_wrong(grid, message):
    with pytest.raises(ValueError, match=message):
        parse_grid(grid)


def test_config_files(tmp_path):
    toml = tmp_path / "methods.toml"
    toml.write_text(
        'presets = ["qi"]\ngrid = "gen=kmeans k=2,4"\n[methods.mine]\npreset = "ours"\nk = 7\n'
    )
    methods = load_config(toml)
    assert [m.name for m in methods] == ["qi", "gen=kmeans k=2", "gen=kmeans k=4", "mine"]
    assert methods[-1].params == {**PRESETS["ours"], "k": 7}
    js = tmp_path / "methods.json"
    js.write_text(json.dumps({"grid": ["gen=mean"], "methods": {"x": {"gen": "ls"}}}))
    assert [m.name for m in load_config(js)] == ["gen=mean", "x"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"method": {}}))
    with pytest.raises(ValueError, match="unknown key 'method'; use presets, grid, methods"):
        load_config(bad)
    bad.write_text(json.dumps({"methods": {"x": {"gen": "best"}}}))
    with pytest.raises(ValueError, match="method 'x': unknown gen 'best'"):
        load_config(bad)
    yaml = tmp_path / "m.yaml"
    yaml.write_text("presets: [qi]\n")
    with pytest.raises(ValueError, match="use a .json or .toml file"):
        load_config(yaml)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_subset_is_stratified_seeded_and_sorted():
    labels = np.repeat(np.arange(3), [5, 8, 2])
    rows = subset_rows(labels, 4, seed=0)
    assert np.bincount(labels[rows]).tolist() == [4, 4, 2]  # a small class keeps all it has
    assert (np.diff(rows) > 0).all()
    assert rows.tolist() == subset_rows(labels, 4, seed=0).tolist()
    assert rows.tolist() != subset_rows(labels, 4, seed=1).tolist()
    assert subset_rows(labels, None).tolist() == list(range(15))
    with pytest.raises(ValueError, match="per-class counts must be >= 1"):
        subset_rows(labels, 0)


# ------------------------------------------------------------------------ real runs
@pytest.mark.fashion_mnist
def test_run_has_every_method_task_and_the_probe(first_run):
    result, _ = first_run
    names = [s["method"] for s in result.summary]
    assert names == ["qi", "ours", "oracle", "ours k=2", PROBE]
    assert result.main_tasks() == ["short"] and result.extra_tasks() == ["merged"]
    assert [t["train_images"] for t in result.tasks] == [30, 100]
    assert [t["test_images"] for t in result.tasks] == [15, 50]
    probe = result.summary[-1]
    assert probe["kind"] == "probe" and probe["rank"] is None
    assert probe["seeds"] == {"short": 1, "merged": 1}
    for s in result.summary[:-1]:
        assert s["seeds"] == {"short": 2, "merged": 2}
        assert 1 <= s["rank"] <= 4
        assert s["mean"] == s["tasks"]["short"]  # the merged task stays out of the mean
    # Real embeddings of Fashion-MNIST: far above chance (33 %) even with 10 per class.
    assert all(s["tasks"]["short"] > 60 and s["tasks"]["merged"] > 60 for s in result.summary)
    runs = [r for r in result.runs if r["method"] == "qi" and r["task"] == "merged"]
    assert len(runs) == 2 and runs[0]["accuracy"] == runs[1]["accuracy"]  # the mean: no seed
    assert result.table().splitlines()[0].split()[-3:] == ["merged", "fit", "s"]


@pytest.mark.fashion_mnist
def test_rerun_hits_the_cache_and_only_reimprints(first_run, backbone, cache_dir):
    result, images_before = first_run
    assert images_before >= 150 and not result.embeddings["train"]["cached"]
    files = sorted(cache_dir.rglob("*.npz"))
    assert [f.name.split("-")[0] for f in files] == ["test", "train"]
    mtimes = [f.stat().st_mtime_ns for f in files]
    calls = backbone.calls
    again = run_bench(tiny_config(backbone, cache_dir))
    assert backbone.calls == calls  # nothing embedded
    assert again.embeddings["train"]["cached"] and again.embeddings["test"]["cached"]
    assert [f.stat().st_mtime_ns for f in sorted(cache_dir.rglob("*.npz"))] == mtimes
    same = [(r["method"], r["task"], r["seed"], r["accuracy"]) for r in result.runs]
    assert same == [(r["method"], r["task"], r["seed"], r["accuracy"]) for r in again.runs]
    # A different subset is a different cache entry (the key holds the subset's hash).
    ds = load_dataset("fashion-mnist", "test")
    rows = subset_rows(ds.labels, 1, seed=1)
    Z, info = embed_cached(ds, rows, backbone, cache_dir, progress=False)
    assert not info["cached"] and backbone.calls == calls + 1 and Z.shape == (10, backbone.dim)
    assert len(list(cache_dir.rglob("*.npz"))) == 3


@pytest.mark.fashion_mnist
def test_interrupted_embedding_resumes_from_saved_chunks(backbone, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "CHUNK", 8)
    ds = load_dataset("fashion-mnist", "test")
    rows = np.arange(20)

    class Interrupted(CountingBackbone):
        def embed(self, images, **kw):
            if self.calls == 1:
                raise KeyboardInterrupt
            return super().embed(images, **kw)

    broken = Interrupted(backbone.inner)
    with pytest.raises(KeyboardInterrupt):
        embed_cached(ds, rows, broken, tmp_path, progress=False)
    assert len(list(tmp_path.rglob("*.part0.npz"))) == 1  # the first 8 images are saved
    resumed = CountingBackbone(backbone.inner)
    Z, info = embed_cached(ds, rows, resumed, tmp_path, progress=False)
    assert resumed.images == 12 and not info["cached"]
    assert not list(tmp_path.rglob("*.part*"))
    direct = backbone.inner.embed(ds.images(rows), cache=False)
    np.testing.assert_allclose(Z, direct, rtol=1e-4, atol=1e-4)


@pytest.mark.fashion_mnist
def test_cli_end_to_end_writes_json_and_csv(first_run, cache_dir, tmp_path, capsys):
    out = tmp_path / "res" / "fm"
    argv = [
        "bench", "--per-class", "10", "--test-per-class", "5", "--seeds", "0,1",
        "--tasks", "short", "--merged", "--methods", "qi,ours,oracle",
        "--grid", "preset=ours k=2", "--cache-dir", str(cache_dir), "--out", str(out),
        "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    assert "100 train / 50 test images" in lines[0]
    assert lines[1].split() == ["method", "mean", "rank", "short", "merged", "fit", "s"]
    assert [line.split()[0] for line in lines[3:8]] == ["qi", "ours", "oracle", "ours", "linear"]
    assert "cached: train True, test True" in printed.out and "fm.json" in printed.err
    data = json.loads(out.with_suffix(".json").read_text())
    expected = {s["method"]: s for s in first_run[0].summary}
    assert (
        data["settings"]["per_class"] == 10 and data["settings"]["backbone"] == "efficientnet_lite0"
    )
    assert len(data["runs"]) == 2 * (4 * 2 + 1)  # tasks x (4 methods x 2 seeds + one probe run)
    for s in data["summary"]:
        assert s["mean"] == pytest.approx(expected[s["method"]]["mean"])
    with open(f"{out}.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["method"] for r in rows] == list(expected)
    assert float(rows[0]["mean"]) == pytest.approx(expected["qi"]["mean"], abs=1e-4)
    assert rows[-1]["rank"] == "" and rows[0]["merged"]
    with open(f"{out}-runs.csv") as fh:
        assert len(list(csv.DictReader(fh))) == len(data["runs"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "imagenet"], "unknown dataset 'imagenet'; choose one of: fashion-mnist"),
        (["--methods", "qi,best"], "unknown preset 'best'; choose one of: qi, hosoda"),
        (["--grid", "gen kmeans"], "bad token 'gen'; write option=value"),
        (["--grid", "k=1,x"], "k='x' is not a valid int"),
        (["--seeds", "0,a"], "--seeds must be comma-separated integers"),
        (["--tasks", "all,evens"], "unknown task 'evens'"),
        (["--config", "/nonexistent/m.toml"], "config file '/nonexistent/m.toml' does not exist"),
        (["--dataset", "mnist"], "dataset 'mnist' needs --data-root DIR"),
        (["--engine", "spark"], "--engine must be one of local, ray, got 'spark'"),
    ],
)
def test_cli_bad_options_give_clear_errors(argv, message, tmp_path, capsys):
    code = main(["bench", "--no-progress", "--cache-dir", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("imprint bench: error: ") and message in err


def test_cli_engine_ray_embeds_through_a_ray_backbone():
    """``imprint bench --engine ray`` hands the bench a Ray stand-in (tested against the local
    backbone in test_ray_embed.py); ``local`` keeps the name. Building it starts no Ray."""
    from imprint_core.cli import build_parser
    from imprint_core.cli.bench import embedding_backbone
    from imprint_core.distributed import RayBackbone

    args = build_parser().parse_args(
        ["bench", "--engine", "ray", "--ray-address", "auto", "--ray-cpus", "2"]
    )
    bb = embedding_backbone(args)
    assert isinstance(bb, RayBackbone) and bb.name == "efficientnet_lite0" and bb.dim == 1280
    assert bb.ray_options == {"ray_address": "auto", "local_cpus": 2}
    local = build_parser().parse_args(["bench"])
    assert embedding_backbone(local) == "efficientnet_lite0"
