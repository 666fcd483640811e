"""The data: the digits' splits and batches, and the batch order that data-parallel processes share
and that a resumed run continues."""

from __future__ import annotations

import torch

from vaelab.data import BatchIndices, DigitsDataModule


def test_digits_split_and_whole_batch_loading():
    datamodule = DigitsDataModule(batch_size=64)
    datamodule.setup()
    sizes = {name: len(x) for name, (x, y) in datamodule.splits.items()}
    assert sizes == {"train": 1000, "val": 350, "test": 447}
    x, y = next(iter(datamodule.train_dataloader()))
    assert x.shape == (64, 64) and y.shape == (64,) and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 16 and torch.equal(x, x.round())
    batches = list(datamodule.test_dataloader())
    assert sum(len(b[0]) for b in batches) == 447
    assert torch.equal(torch.cat([b[0] for b in batches]), datamodule.splits["test"][0])


def test_batch_slices_of_all_processes_are_the_single_process_batches():
    single = list(BatchIndices(1000, 64, shuffle=True, seed=7))
    for world_size in (2, 3):
        ranks = [BatchIndices(1000, 64, shuffle=True, seed=7, rank=r, world_size=world_size) for r in range(world_size)]
        slices = [list(rank) for rank in ranks]
        assert all(len(s) == len(single) == len(rank) for s, rank in zip(slices, ranks))
        assert [sum((s[i] for s in slices), []) for i in range(len(single))] == single
    epochs = BatchIndices(100, 10, shuffle=True, seed=7)
    first = list(epochs)
    epochs.set_epoch(1)
    assert list(epochs) != first and sorted(sum(list(epochs), [])) == list(range(100))
    tiny_last = BatchIndices(65, 64, rank=1, world_size=2)  # a last batch of 1 cannot be split in 2
    assert len(tiny_last) == len(list(tiny_last)) == 1


def test_a_datamodule_without_a_running_trainer_serves_whole_splits():
    datamodule = DigitsDataModule()
    datamodule.setup()
    assert datamodule.shard() == (0, 1) and datamodule.shuffle_seed == torch.initial_seed()


def test_batch_indices_resume_with_the_next_batch_of_the_same_epoch():
    whole = BatchIndices(100, 10, shuffle=True, seed=3)
    whole.set_epoch(4)
    batches = list(whole)
    stopped = BatchIndices(100, 10, shuffle=True, seed=3)
    stopped.set_epoch(4)
    iterator = iter(stopped)
    for _ in range(3):  # the loop ran 3 steps
        next(iterator)
    state = stopped.state_dict()
    assert state == {"epoch": 4, "consumed": 3}

    resumed = BatchIndices(100, 10, shuffle=True, seed=3)
    resumed.load_state_dict(state)
    resumed.set_epoch(4)
    assert list(resumed) == batches[3:]
    resumed.set_epoch(5)  # the skip applies to the interrupted epoch only
    assert len(list(resumed)) == 10
