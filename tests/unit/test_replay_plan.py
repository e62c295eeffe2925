"""A replay's plan: the pass that cannot be split first, then segments enough for every worker
to finish close to the others; the log's events are counted once."""

from __future__ import annotations

from services.engagement.projections import PROJECTIONS
from shared.rebuild import SEGMENTS_PER_WORKER, _counts_the_log, plan_passes


def test_the_spanning_pass_comes_first_and_segments_are_shared_out_finely() -> None:
    passes = plan_passes(PROJECTIONS, streams=10_000, workers=2)
    first, *segments = passes
    assert first.segment is None
    assert all(not p.partitioned for p in first.projections)
    assert len(passes) == SEGMENTS_PER_WORKER * 2  # the whole-log pass takes a segment's place
    assert sorted(s.segment.index for s in segments if s.segment) == list(range(len(segments)))
    assert [_counts_the_log(p, passes) for p in passes] == [False] + [True] * len(segments)


def test_a_single_worker_folds_the_partitioned_projections_in_one_pass() -> None:
    passes = plan_passes(PROJECTIONS, streams=10_000, workers=1)
    assert [p.segment for p in passes] == [None, None]


def test_a_log_too_large_for_memory_gets_more_segments() -> None:
    partitioned = [p for p in PROJECTIONS if p.partitioned]
    passes = plan_passes(partitioned, streams=1_000_000, workers=2)
    assert len(passes) == 50  # 20,000 streams' documents per pass at most
    assert all(_counts_the_log(p, passes) for p in passes)
