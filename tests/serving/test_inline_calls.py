"""Which HTTP policy calls the event loop runs itself (`inline_calls`)."""

from gymserve.serving.server.inline_calls import INLINE_MAX_BODY, INLINE_SECONDS, WINDOW, InlineCalls

KEY = ("oip_infer", "cartpole")
FAST, SLOW = INLINE_SECONDS / 10, INLINE_SECONDS * 10


def learned(calls: int = WINDOW, seconds: float = FAST, enabled: bool = True) -> InlineCalls:
    inline = InlineCalls(enabled)
    for _ in range(calls):
        inline.record(KEY, seconds)
    return inline


def test_fast_calls_run_on_the_loop_once_learned():
    assert not learned(calls=WINDOW - 1).inline(KEY, 100)
    assert learned().inline(KEY, 100)
    assert not learned().inline(("oip_infer", "other"), 100)


def test_slow_calls_large_bodies_and_batching_go_to_the_threads():
    assert not learned(seconds=SLOW).inline(KEY, 100)
    assert not learned().inline(KEY, INLINE_MAX_BODY + 1)
    assert not learned(enabled=False).inline(KEY, 100)


def test_calls_slowed_by_load_now_and_then_stay_on_the_loop():
    inline = learned()
    for _ in range(10 * WINDOW):
        inline.record(KEY, SLOW)
        inline.record(KEY, FAST)
        assert inline.inline(KEY, 100)


def test_a_policy_that_turns_slow_leaves_the_loop_after_a_window_of_calls():
    inline = learned()
    stalls = 0
    while inline.inline(KEY, 100):
        inline.record(KEY, SLOW)
        stalls += 1
    assert stalls == WINDOW
