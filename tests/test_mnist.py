"""Statically binarized MNIST and the VampPrior paper's preset (`experiment=vampprior_paper`).

The loader is specified on small `.amat` files written here; the real files are checked when
`../shared/data/binarized_mnist` (next to the repository) exists.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import hydra
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from conftest import PRIORS, ROOT, compose_config
from pytorch_lightning.callbacks import Callback

import vaelab
from vaelab.data import BinarizedMNISTDataModule, read_amat, resolve_data_root
from vaelab.errors import ConfigError, DataFormatError
from vaelab.training.early_stopping import WarmupEarlyStopping
from vaelab.training.latent_figures import LatentFigures

REAL_ROOT = ROOT.parent / "shared" / "data" / "binarized_mnist"


def write_amat(path, rows: np.ndarray, line_end: str = "\n") -> None:
    path.write_text("".join(" ".join(str(v) for v in row) + line_end for row in rows))


@pytest.fixture
def bits() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 2, size=(7, 784), dtype=np.uint8)


# --- the loader --------------------------------------------------------------------------------


def test_amat_file_reads_as_uint8_zeros_and_ones(tmp_path, bits):
    write_amat(tmp_path / "a.amat", bits)
    x = read_amat(tmp_path / "a.amat")
    assert x.shape == (7, 784) and x.dtype == np.uint8
    np.testing.assert_array_equal(x, bits)


@pytest.mark.parametrize("line_end", ["\r\n", " \n"], ids=["crlf", "trailing-space"])
def test_amat_variants_of_whitespace_read_the_same(tmp_path, bits, line_end):
    write_amat(tmp_path / "a.amat", bits, line_end)
    np.testing.assert_array_equal(read_amat(tmp_path / "a.amat"), bits)


def test_amat_without_final_newline_reads_the_same(tmp_path, bits):
    write_amat(tmp_path / "a.amat", bits)
    (tmp_path / "a.amat").write_bytes((tmp_path / "a.amat").read_bytes().rstrip(b"\n"))
    np.testing.assert_array_equal(read_amat(tmp_path / "a.amat"), bits)


def test_missing_file_names_the_file_and_expected_shape(tmp_path):
    with pytest.raises(DataFormatError, match=r"nowhere\.amat: file not found .*\(10000, 784\)"):
        read_amat(tmp_path / "nowhere.amat", num_rows=10000)


def test_short_line_says_which_line_and_how_many_values(tmp_path, bits):
    lines = [" ".join(map(str, row)) for row in bits]
    lines[3] = lines[3][:-2]  # line 4 loses its last value
    (tmp_path / "a.amat").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"a\.amat: expected shape \(N, 784\).*line 4 with 783 values"):
        read_amat(tmp_path / "a.amat")


def test_non_binary_value_says_which_value_and_line(tmp_path, bits):
    lines = [" ".join(map(str, row)) for row in bits]
    lines[1] = "2" + lines[1][1:]
    (tmp_path / "a.amat").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"a\.amat: .*value '2' on line 2"):
        read_amat(tmp_path / "a.amat")


def test_wrong_number_of_images_gives_expected_and_found_shape(tmp_path, bits):
    write_amat(tmp_path / "a.amat", bits)
    with pytest.raises(DataFormatError, match=r"expected shape \(10000, 784\), found 7 lines"):
        read_amat(tmp_path / "a.amat", num_rows=10000)


def test_empty_file_is_an_error(tmp_path):
    (tmp_path / "a.amat").write_text("")
    with pytest.raises(DataFormatError, match="empty file"):
        read_amat(tmp_path / "a.amat")


def test_datamodule_reads_three_splits_without_labels(tmp_path, bits):
    for index, suffix in enumerate(["train", "valid", "test"]):
        write_amat(tmp_path / f"binarized_mnist_{suffix}.amat", bits[: 3 + index])
    module = BinarizedMNISTDataModule(tmp_path, batch_size=2, check_sizes=False)
    module.setup("fit")
    assert {split: len(x) for split, (x, _) in module.splits.items()} == {"train": 3, "val": 4, "test": 5}
    limited = BinarizedMNISTDataModule(tmp_path, check_sizes=False, limit=4)
    limited.setup("fit")
    assert {split: len(x) for split, (x, _) in limited.splits.items()} == {"train": 3, "val": 4, "test": 4}
    x, y = module.splits["train"]
    assert x.dtype == torch.float32 and torch.equal(x, torch.from_numpy(bits[:3]).float())
    assert (y == -1).all()
    assert (module.splits["test"][1] == -1).all()  # not the 10000 canonical test images: no labels
    assert next(iter(module.train_dataloader()))[0].shape == (2, 784)


def test_datamodule_insists_on_the_canonical_sizes(tmp_path, bits):
    for suffix in ["train", "valid", "test"]:
        write_amat(tmp_path / f"binarized_mnist_{suffix}.amat", bits)
    with pytest.raises(DataFormatError, match=r"binarized_mnist_train\.amat: expected shape \(50000, 784\)"):
        BinarizedMNISTDataModule(tmp_path).setup("fit")


def test_missing_root_is_a_config_error_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match="dataset.root=.*no such folder"):
        BinarizedMNISTDataModule(tmp_path / "absent").setup("fit")


def test_relative_root_falls_back_to_the_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_data_root("conf") == ROOT / "conf"  # not in the cwd: found in the checkout
    (tmp_path / "conf").mkdir()
    assert resolve_data_root("conf") == Path("conf")  # in the cwd: that one
    assert resolve_data_root(tmp_path / "absent") == tmp_path / "absent"  # absolute: as given


@pytest.mark.skipif(not REAL_ROOT.is_dir(), reason=f"no binarized MNIST at {REAL_ROOT}")
def test_real_files_have_canonical_counts_and_mean_pixel():
    module = BinarizedMNISTDataModule(REAL_ROOT)
    module.setup("fit")
    sizes = {split: tuple(x.shape) for split, (x, _) in module.splits.items()}
    assert sizes == {"train": (50000, 784), "val": (10000, 784), "test": (10000, 784)}
    for split, (x, _) in module.splits.items():
        assert set(x.unique().tolist()) == {0.0, 1.0}
        assert x.mean().item() == pytest.approx(0.13, abs=0.005), split


@pytest.mark.skipif(not REAL_ROOT.is_dir(), reason=f"no binarized MNIST at {REAL_ROOT}")
def test_real_test_images_carry_their_digits_and_the_latent_figure_gets_all_ten():
    """The test file is MNIST's test set in class order; train and valid labels are unknown (-1)."""
    module = BinarizedMNISTDataModule(REAL_ROOT)
    module.setup("fit")
    counts = np.bincount(module.splits["test"][1].numpy(), minlength=10)
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert (module.splits["train"][1] == -1).all() and (module.splits["val"][1] == -1).all()
    trainer = SimpleNamespace(datamodule=module)
    x, y = LatentFigures(max_points=2000).test_data(trainer)  # spread over the split, not the first 2000
    assert len(x) == 2000 and np.bincount(y.numpy()).min() > 150 and set(y.tolist()) == set(range(10))
    limited = BinarizedMNISTDataModule(REAL_ROOT, limit=1500)
    limited.setup("test")
    assert limited.splits["test"][1].tolist() == [0] * 980 + [1] * 520  # the first N keep their labels


# --- the preset --------------------------------------------------------------------------------


def test_preset_sets_the_papers_model():
    cfg = compose_config("experiment=vampprior_paper")
    assert (cfg.latent_dim, cfg.batch_size, cfg.kl_warmup_epochs, cfg.early_stopping.patience) == (40, 100, 100, 50)
    assert cfg.optimizer._target_ == "torch.optim.Adam" and cfg.optimizer.lr == 5e-4
    for net in (cfg.encoder, cfg.decoder):
        assert (net.hidden, net.num_layers, net.activation) == (300, 2, "gated")
    assert (cfg.encoder.logvar_min, cfg.encoder.logvar_max) == (-6, 2)
    assert cfg.decoder.likelihood == "bernoulli" and cfg.dataset.input_dim == 784
    assert cfg.prior._target_.endswith("VampPrior")
    assert (cfg.prior.num_components, cfg.prior.init_mean, cfg.prior.init_std) == (500, 0.05, 0.01)
    assert cfg.prior.learnable_weights is False and cfg.eval.num_samples == 5000
    assert compose_config("experiment=vampprior_paper", "prior=mog").prior.num_components == 500


def test_best_preset_is_the_papers_model_with_a_maf_prior_of_the_vampprior_size():
    best = compose_config("experiment=mnist_best")
    assert best == compose_config("experiment=vampprior_paper", "prior=maf")
    assert best.prior._target_.endswith("MAFPrior") and (best.prior.num_layers, best.prior.hidden) == (3, 300)
    assert (best.latent_dim, best.batch_size, best.kl_warmup_epochs, best.eval.num_samples) == (40, 100, 100, 5000)


@pytest.mark.parametrize("prior", ["maf", "nsf", "lars", "vamp_data"])
def test_preset_sizes_the_new_priors_like_the_vampprior(prior):
    """500 pseudo-inputs of 784 pixels are 392k numbers; the flows and lars's acceptance network
    get about as many parameters at latent_dim 40, vamp_data 500 fixed training images."""
    cfg = compose_config("experiment=vampprior_paper", f"prior={prior}")
    module = hydra.utils.instantiate(cfg.prior)
    if prior == "vamp_data":
        assert module.u.shape == (500, 784) and "u" not in dict(module.named_parameters())
        assert cfg.prior.init == "data" and cfg.prior.learnable_weights is False
    else:
        assert sum(p.numel() for p in module.parameters()) == pytest.approx(500 * 784, rel=0.05)


@pytest.mark.skipif(not REAL_ROOT.is_dir(), reason=f"no binarized MNIST at {REAL_ROOT}")
@pytest.mark.parametrize("prior", PRIORS)
def test_preset_trains_a_few_steps_with_every_prior(make_cfg, prior):
    cfg = make_cfg(
        "experiment=vampprior_paper",
        f"prior={prior}",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "figures.enabled=false",
        "eval.num_samples=2",
        "eval.num_latent_samples=100",
        "dataset.datamodule.limit=600",
    )
    metrics = vaelab.run(cfg)
    assert metrics["epochs"] == 1 and np.isfinite(metrics["test/loss"]) and np.isfinite(metrics["test/nll"])


# --- early stopping that waits for the end of the KL warm-up -------------------------------------


class ConstantLoss(pl.LightningModule):
    """A model whose validation loss never improves."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return (self.weight * batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", 1.0)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


class EpochsSeen(Callback):
    def __init__(self):
        self.epochs = 0

    def on_train_epoch_end(self, trainer, pl_module):
        self.epochs += 1


@pytest.mark.parametrize("warmup, epochs", [(0, 3), (5, 8)])
def test_early_stopping_counts_patience_only_after_the_warmup(warmup, epochs):
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(2, 1)), batch_size=2)
    seen = EpochsSeen()
    stop = WarmupEarlyStopping(monitor="val/loss", patience=2, warmup_epochs=warmup)
    trainer = pl.Trainer(
        max_epochs=50,
        callbacks=[stop, seen],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(ConstantLoss(), train_dataloaders=data, val_dataloaders=data)
    # The first counted epoch sets the best score; `patience` epochs without improvement stop it.
    assert seen.epochs == epochs
