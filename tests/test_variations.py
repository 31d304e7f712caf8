"""The batch loop every application ends in (apps/variations.py): outputs in seed order, handed
over as they are done; on a GPU a fast batch is handed over once the next one is queued."""

from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch

from vgpnn.apps import variations


@dataclass(frozen=True)
class _Video:
    device: torch.device
    shape: tuple = (3, 4, 8, 8)


@dataclass(frozen=True)
class _Source:
    video: _Video


@dataclass(frozen=True)
class _Plan:  # the fields make_variations reads
    seeds: tuple
    sources: tuple
    source_shape: tuple = (3, 4, 8, 8)
    target: _Video = _Video(torch.device("cpu"))  # only its shape is read
    config: object = None


@dataclass
class _Result:
    videos: list
    levels: list


def _fake_engine(monkeypatch, events, fail_on_seed=None, seconds=0.0):
    clock = [0.0]

    def synthesize(plan, progress=None):
        clock[0] += seconds
        if fail_on_seed in plan.seeds:
            raise KeyboardInterrupt
        events.append(("queued", plan.seeds))
        return _Result([torch.full((3, 2, 4, 4), seed / 10) for seed in plan.seeds], [])

    monkeypatch.setattr(variations, "synthesize", synthesize)
    monkeypatch.setattr(variations, "check_memory", lambda *args: None)
    monkeypatch.setattr(variations, "time", SimpleNamespace(perf_counter=lambda: clock[0]))


def _run(device_type, events, seeds=(0, 1, 2, 3), batch_size=1):
    plan = _Plan(tuple(seeds), (_Source(_Video(torch.device(device_type))),))
    return variations.make_variations(plan, batch_size, lambda i, clip, levels: events.append(("out", i)))


def test_on_a_gpu_a_fast_batch_is_handed_over_once_the_next_is_queued(monkeypatch):
    events = []
    _fake_engine(monkeypatch, events)
    clips = _run("cuda", events)
    assert events == [("queued", (0,)), ("queued", (1,)), ("out", 0), ("queued", (2,)), ("out", 1),
                      ("queued", (3,)), ("out", 2), ("out", 3)]
    assert [int(clip[0, 0, 0, 0]) for clip in clips] == [0, 26, 51, 76]  # seed order, rounded to uint8


@pytest.mark.parametrize("device_type, seconds", [("cpu", 0.0), ("cuda", variations.HANDOVER_LAG)])
def test_on_a_cpu_or_after_a_slow_batch_each_output_is_handed_over_at_once(monkeypatch, device_type, seconds):
    events = []
    _fake_engine(monkeypatch, events, seconds=seconds)
    _run(device_type, events, seeds=(0, 1, 2))
    assert events == [("queued", (0,)), ("out", 0), ("queued", (1,)), ("out", 1), ("queued", (2,)), ("out", 2)]


def test_an_interrupt_in_the_next_batch_still_hands_the_finished_one_over(monkeypatch):
    events = []
    _fake_engine(monkeypatch, events, fail_on_seed=2)
    with pytest.raises(KeyboardInterrupt):
        _run("cuda", events, seeds=(0, 1, 2, 3))
    assert events == [("queued", (0,)), ("queued", (1,)), ("out", 0), ("out", 1)]
