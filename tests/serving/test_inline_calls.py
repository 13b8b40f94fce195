"""Which HTTP policy calls the event loop runs itself (`inline_calls`)."""

from gymserve.serving.server.inline_calls import INLINE_MAX_BODY, INLINE_SECONDS, SLOW_SECONDS, InlineCalls

KEY = ("oip_infer", "cartpole")
FAST = INLINE_SECONDS / 10


def learned(calls: int = 3, seconds: float = FAST, enabled: bool = True) -> InlineCalls:
    inline = InlineCalls(enabled)
    for _ in range(calls):
        inline.record(KEY, seconds)
    return inline


def test_fast_calls_run_on_the_loop_once_learned():
    assert not learned(calls=2).inline(KEY, 100)
    assert learned().inline(KEY, 100)
    assert not learned().inline(("oip_infer", "other"), 100)


def test_slow_calls_large_bodies_and_batching_go_to_the_threads():
    assert not learned(seconds=2 * INLINE_SECONDS).inline(KEY, 100)
    assert not learned().inline(KEY, INLINE_MAX_BODY + 1)
    assert not learned(enabled=False).inline(KEY, 100)


def test_one_slow_call_on_the_loop_sends_every_later_call_to_the_threads():
    inline = learned()
    inline.record_inline(KEY, SLOW_SECONDS)
    for _ in range(1000):
        inline.record(KEY, FAST)
    assert not inline.inline(KEY, 100)


def test_the_average_follows_a_policy_that_turns_a_little_slower_on_the_loop():
    inline = learned()
    calls = 0
    while inline.inline(KEY, 100):
        inline.record_inline(KEY, 4 * INLINE_SECONDS)
        calls += 1
    assert 1 <= calls <= 10
