"""In-memory datasets and their batches: `InMemoryDataModule` and the resumable batch order.

Datasets are small enough to sit in memory as tensors. Batches are sliced from those tensors
directly (`BatchIndices` hands the dataset a list of indices), so there is no per-item
`__getitem__` and no collation. Under data parallelism (DDP) each process takes its slice of
every batch, so `batch_size` is the total batch whatever the number of processes; the trainer
configs for DDP set `use_distributed_sampler: false`.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerStatus
from torch.utils.data import DataLoader, Dataset, TensorDataset

__all__ = ["Batch", "BatchIndices", "BatchLoader", "InMemoryDataModule", "batch_loader"]


class Batch(list):
    """The indices of one batch for this process, and where the batch sits: `epoch`, `number` (its
    place in the epoch's order), `size` (the whole batch's, over all processes) and `offset` (where
    this process's slice starts in it). A dataset that draws something per batch (a dynamic
    binarization) seeds its draw from these, so the draw does not depend on the process count and
    is the same again after a resume."""

    def __init__(self, indices: list[int], epoch: int, number: int, size: int, offset: int):
        super().__init__(indices)
        self.epoch, self.number, self.size, self.offset = epoch, number, size, offset


class BatchIndices:
    """Index lists for one pass over `num_examples` examples in batches of `batch_size`: in order,
    or shuffled by a generator seeded with `seed + epoch` (Lightning calls `set_epoch`), so every
    process of a data-parallel run draws the same order. Each of `world_size` processes takes its
    own contiguous slice of every batch: together they see exactly the batches of one process, and
    DDP's averaged gradient is the single-process one. With world_size > 1, a last batch smaller
    than world_size is dropped (every process must take the same number of steps).

    Resumable: `state_dict()` says how many batches of which epoch the training loop has consumed,
    and after `load_state_dict()` the pass over that epoch starts with the next batch, so a run
    stopped mid-epoch continues with exactly the batches it would have seen."""

    def __init__(
        self,
        num_examples: int,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.num_examples, self.batch_size, self.shuffle, self.seed = num_examples, batch_size, shuffle, seed
        self.rank, self.world_size, self.epoch = rank, world_size, 0
        self.fetched = 0  # batches handed out in this pass
        self._resume_at: tuple[int, int] | None = None  # (epoch, batches to skip) after load_state_dict

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.fetched = epoch, 0

    def __iter__(self):
        if self.shuffle:
            generator = torch.Generator().manual_seed((self.seed + self.epoch) % 2**63)
            order = torch.randperm(self.num_examples, generator=generator)
        else:
            order = torch.arange(self.num_examples)
        skip = self._resume_at[1] if self._resume_at and self._resume_at[0] == self.epoch else 0
        self._resume_at, self.fetched = None, skip
        for number, batch in enumerate(order.split(self.batch_size)[skip:], start=skip):
            if len(batch) >= self.world_size:
                self.fetched += 1
                slices = batch.tensor_split(self.world_size)
                offset = sum(len(part) for part in slices[: self.rank])
                yield Batch(slices[self.rank].tolist(), self.epoch, number, len(batch), offset)

    def __len__(self) -> int:
        full, rest = divmod(self.num_examples, self.batch_size)
        return full + int(rest > 0 and rest >= self.world_size)

    def state_dict(self) -> dict[str, int]:
        # Every batch handed out has been consumed: Lightning fetches ahead only from loaders
        # without a length, and this one has one.
        return {"epoch": self.epoch, "consumed": self.fetched}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_at = (int(state["epoch"]), int(state["consumed"]))


class BatchLoader(DataLoader):
    """A DataLoader whose position is saved in checkpoints (Lightning saves and restores the state
    of training loaders that have `state_dict`). It has a generator of its own, so making its
    iterator draws nothing from torch's global random stream: the draws z ~ q(z|x) of a resumed
    run are then those of the uninterrupted run."""

    def state_dict(self) -> dict[str, int]:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.load_state_dict(state)


def batch_loader(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    dataset: Dataset | None = None,
) -> DataLoader:
    """A DataLoader that yields (x[idx], y[idx]) for whole batches of indices at a time, or
    `dataset[batch]` for a dataset of x and y that takes a `Batch`."""
    indices = BatchIndices(len(x), batch_size, shuffle, seed, rank, world_size)
    dataset = TensorDataset(x, y) if dataset is None else dataset
    return BatchLoader(dataset, sampler=indices, batch_size=None, generator=torch.Generator())


class InMemoryDataModule(pl.LightningDataModule):
    """Subclasses implement `load()` → {"train"|"val"|"test": (x, y)} with x float in data units."""

    def __init__(self, batch_size: int = 64, eval_batch_size: int = 1024):
        super().__init__()
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.shuffle_seed: int | None = None  # seeds the training order; the run's seed, taken at setup

    def load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            self.splits = self.load()
        if self.shuffle_seed is None:  # after `pl.seed_everything(seed)`: the same in every DDP process
            self.shuffle_seed = torch.initial_seed()

    def shard(self) -> tuple[int, int]:
        """(rank, world size) while a data-parallel trainer runs its loops, else (0, 1): evaluation
        after training, or a loader made by hand, sees the whole split."""
        trainer = self.trainer
        if trainer is None or trainer.world_size == 1 or trainer.state.status != TrainerStatus.RUNNING:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def train_dataset(self, seed: int) -> Dataset | None:
        """What training batches are read from; None: the training split's tensors as they are."""
        return None

    def train_dataloader(self) -> DataLoader:
        seed = torch.initial_seed() if self.shuffle_seed is None else self.shuffle_seed
        dataset = self.train_dataset(seed)
        return batch_loader(*self.splits["train"], self.batch_size, True, seed, *self.shard(), dataset=dataset)

    def val_dataloader(self) -> DataLoader:
        return batch_loader(*self.splits["val"], self.eval_batch_size, False, 0, *self.shard())

    def test_dataloader(self) -> DataLoader:
        return batch_loader(*self.splits["test"], self.eval_batch_size, False, 0, *self.shard())
