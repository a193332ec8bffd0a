"""The benchmark's call counter, on a handful of mixed requests: capture makes exactly one AWS
call per accepted request (the hot path's one conditional put). A behaviour check, no timing."""

import os
import sys
from collections.abc import Iterator

import pytest

from bench import workload
from bench.counting import CallCounter
from bench.pipeline import MotoPipeline


@pytest.fixture(autouse=True)
def _restore_process_state() -> Iterator[None]:
    # The bench sets the handlers' environment and silences their stdout for its own run;
    # other tests must not inherit either.
    saved_env, saved_stdout = dict(os.environ), sys.stdout
    yield
    os.environ.clear()
    os.environ.update(saved_env)
    sys.stdout = saved_stdout


def test_capture_makes_exactly_one_aws_call_per_accepted_request() -> None:
    # Given the pipeline over moto with the counter hooked into boto3
    counter = CallCounter()
    pipeline = MotoPipeline(counter).start(with_workers=False)
    try:
        # When a handful of mixed requests (banner, GPC, webform, links) go through capture
        accepted = []
        for request in workload.requests(12, seed=3):
            with counter.stage("capture") as tally:
                answer = pipeline.post(workload.http_event(request))
            if answer["statusCode"] == 202:
                accepted.append(tally)
        # Then every accepted request made one call, and it was the conditional PutItem
        assert len(accepted) == 12
        assert [t.total() for t in accepted] == [1] * 12
        assert all(t.calls["dynamodb:PutItem"] == 1 for t in accepted)
        # And the stream carries one resolvable event per request
        assert len(pipeline.resolve_new()) == 12
    finally:
        pipeline.stop()
