"""Frey Faces: the checked pickle read without running code, a stated seeded split of the paper's
sizes, grey levels and no labels; a short run models them with the discretized logistic."""

from __future__ import annotations

import math
import os
import pickle

import pytest
import torch
from helpers import SHORT_RUN, compose_config

import vaelab
from vaelab.data import FreyFacesDataModule, read_frey_faces, resolve_data_root
from vaelab.errors import ConfigError, DataFormatError


@pytest.fixture(scope="module")
def root():
    return resolve_data_root(compose_config("dataset=frey_faces", "run_dir=unused").dataset.root)


def test_the_split_has_the_papers_sizes_covers_every_image_once_and_follows_its_seed(root):
    splits = FreyFacesDataModule(root).load()
    assert {split: x.shape for split, (x, _) in splits.items()} == {
        "train": (1565, 560),
        "val": (200, 560),
        "test": (200, 560),
    }
    everything = torch.cat([x for x, _ in splits.values()])
    assert everything.min() == 8 and everything.max() == 238  # grey levels, as the README says
    assert (everything == everything.round()).all()
    assert len(torch.unique(everything, dim=0)) == len(
        torch.unique(torch.from_numpy(read_frey_faces(root / "freyfaces.pkl")).float(), dim=0)
    )
    assert all((y == -1).all() for _, y in splits.values())  # no labels
    again, other = FreyFacesDataModule(root).load(), FreyFacesDataModule(root, split_seed=1).load()
    assert torch.equal(again["test"][0], splits["test"][0])
    assert not torch.equal(other["test"][0], splits["test"][0])


class RunsACommand:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


def test_a_pickle_that_would_run_code_is_refused_in_one_line(tmp_path):
    path, witness = tmp_path / "freyfaces.pkl", tmp_path / "ran"
    path.write_bytes(pickle.dumps([RunsACommand(witness)], protocol=0))
    with pytest.raises(DataFormatError, match=rf"^{path}: not the Frey Faces pickle \(UnpicklingError: .*system"):
        read_frey_faces(path, md5=None)
    assert not witness.exists()


def test_a_changed_file_is_one_line_before_any_work(tmp_path, root):
    folder = tmp_path / "frey_faces"
    folder.mkdir()
    (folder / "freyfaces.pkl").write_bytes((root / "freyfaces.pkl").read_bytes()[:-10])
    with pytest.raises(ConfigError, match=rf"^{folder / 'freyfaces.pkl'}: md5 .* is not the published"):
        vaelab.run(compose_config("dataset=frey_faces", f"dataset.root={folder}", f"run_dir={tmp_path / 'run'}"))
    assert not (tmp_path / "run").exists()


def test_a_short_run_on_frey_faces_reports_nats_and_bits_per_dimension(tmp_path):
    metrics = vaelab.run(compose_config("dataset=frey_faces", *SHORT_RUN, f"run_dir={tmp_path / 'run'}"))
    assert metrics["eval"]["num_inputs"] == 200
    assert math.isfinite(metrics["test/nll"]) and metrics["test/nll"] <= -metrics["test/elbo"] + 1e-3
    assert metrics["test/bpd"] == pytest.approx(metrics["test/nll"] / (560 * math.log(2)))
