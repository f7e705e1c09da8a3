"""`imprint predict --engine ray`: Ray Data actors on a local cluster write the rows of the single
process (sorted by path; floats within tolerance), resume after the rows a CSV holds, and read
URIs through Ray Data's own file systems."""

from __future__ import annotations

import numpy as np
import pytest
from pile_data import fit_head, make_pile, read_csv

from imprint_core.cli import main

ray = pytest.importorskip("ray", reason="pip install 'imprint_core[distributed]' (Ray Data)")
pytestmark = [pytest.mark.fashion_mnist, pytest.mark.slow]  # a Ray start and actor pools

FLOATS = {"probability", "probability_2", "probability_3", "unknown_score"}


@pytest.fixture(scope="module")
def cluster():
    """One local Ray for the module (its start-up is most of the cost); the CLI uses it."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray")
    fit_head(root / "head.safetensors")
    pile = make_pile(root)
    local = root / "local.csv"
    assert main(["predict", str(root / "head.safetensors"), *pile.inputs, "-o", str(local)]) == 0
    return root / "head.safetensors", pile, read_csv(local), local


def assert_same_rows(got: dict, want: dict, rename=lambda name: name) -> None:
    assert sorted(got) == sorted(rename(n) for n in want)
    for name, row in want.items():
        other = got[rename(name)]
        for key, value in row.items():
            if key == "path":
                continue
            if key in FLOATS and value:
                assert float(other[key]) == pytest.approx(float(value), abs=1e-4), (name, key)
            elif key == "error":
                assert other[key] == value.replace(repr(name), repr(rename(name))), name
            else:
                assert other[key] == value, (name, key)


def test_ray_engine_writes_the_single_process_rows(cluster, setup, tmp_path, capsys):
    head, pile, local, _ = setup
    out = tmp_path / "ray.csv"
    args = ["predict", str(head), *pile.inputs, "-o", str(out), "--engine", "ray"]
    assert main(args + ["--workers", "2", "--batch-size", "3"]) == 0
    assert "; 3 errors" in capsys.readouterr().out
    assert_same_rows(read_csv(out), local)
    assert ray.is_initialized()  # a Ray it did not start is left running


def test_ray_engine_resumes_after_the_rows_a_csv_holds(cluster, setup, tmp_path, capsys):
    head, pile, local, local_path = setup
    out = tmp_path / "resumed.csv"
    lines = local_path.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:-7]))  # a run stopped 7 rows before the end
    args = ["predict", str(head), *pile.inputs, "-o", str(out), "--engine", "ray", "--resume"]
    assert main(args + ["--workers", "1", "--batch-size", "4"]) == 0
    assert "(7 new, " in capsys.readouterr().out
    assert out.read_text().startswith("".join(lines[:-7]))
    assert_same_rows(read_csv(out), local)


def test_ray_engine_reads_uris_with_ray_data(cluster, setup, tmp_path):
    """A URI (here file://, as s3:// or gs:// on a cluster) is read by Ray Data, not listed by us."""
    head, pile, local, _ = setup
    out = tmp_path / "uri.csv"
    uri = pile.folder.resolve().as_uri()
    args = ["predict", str(head), uri, "-o", str(out), "--engine", "ray", "--workers", "1"]
    assert main(args) == 0
    in_folder = {n: r for n, r in local.items() if n.startswith(str(pile.folder))}
    assert_same_rows(read_csv(out), in_folder, rename=lambda n: "file://" + n)
    rows = read_csv(out)
    assert (
        np.mean([r["label"] == pile.truth[n[7:]] for n, r in rows.items() if not r["error"]])
        >= 0.85
    )
