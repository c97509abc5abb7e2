"""Turn-taking rules with made-up timings (no clocks, no audio)."""

import pytest

from voice.turns import (
    BargeIn,
    EndOfTurn,
    HangUp,
    Reprompt,
    TurnConfig,
    TurnTaker,
    is_backchannel,
    looks_incomplete,
)


def listening(cfg=None):
    t = TurnTaker(cfg or TurnConfig(), now=0.0)
    t.on_playback_done(0.0)
    return t


def say(t, text, start, end, final_at=None, partial=None):
    """Caller speaks from start to end; the ASR final arrives at final_at."""
    out = t.on_speech_start(start)
    if partial:
        out += t.on_transcript(partial, False, 0.0, (start + end) / 2)
    out += t.on_speech_end(end)
    out += t.on_transcript(text, True, 0.9, final_at or end + 0.2, start, end)
    return out


@pytest.mark.parametrize("text", ["嗯", "嗯嗯", "对", "对对对", "好的。", "好的好的", "哦", "是",
                                  "啊", "嗯，对"])
def test_backchannels(text):
    assert is_backchannel(text)


@pytest.mark.parametrize("text", ["不对", "好的我明天还", "是我", "", "对不起", "我不想还"])
def test_not_backchannels(text):
    assert not is_backchannel(text)


def test_end_of_turn_after_min_silence():
    t = listening()
    say(t, "我明天还三千块。", 1.0, 2.5)
    assert t.tick(2.8) == []  # 0.3 s of silence: too early
    [eot] = t.tick(3.01)
    assert eot == EndOfTurn("我明天还三千块。", 0.9, 1.0, 2.5)
    assert t.agent == "busy" and t.tick(10.0) == []


def test_incomplete_sentence_waits_for_max_silence():
    assert looks_incomplete("我明天那个") and looks_incomplete("没钱的话，")
    t = listening()
    say(t, "我明天那个", 1.0, 2.0)
    assert t.tick(3.0) == []  # 1 s: still thinking
    say(t, "还三千。", 3.5, 4.5)
    [eot] = t.tick(5.0)
    assert eot.text == "我明天那个还三千。" and eot.started_at == 1.0


def test_incomplete_sentence_ends_at_max_silence():
    t = listening()
    say(t, "但是", 1.0, 1.5)
    assert t.tick(4.4) == []
    assert [a.text for a in t.tick(4.51)] == ["但是"]


def test_pending_partial_without_final_times_out_to_partial_text():
    t = listening()
    t.on_speech_start(1.0)
    t.on_transcript("我要投诉", False, 0.0, 1.5)
    t.on_speech_end(2.0)
    assert t.tick(3.0) == []
    [eot] = t.tick(5.01)
    assert eot.text == "我要投诉"


def speaking(uninterruptible=False):
    t = listening()
    t.on_agent_busy(0.0)
    t.on_playback_start(7, uninterruptible, 0.0)
    return t


def test_barge_in_on_words():
    t = speaking()
    assert t.on_speech_start(1.0) == []
    assert t.on_transcript("我不", False, 0.0, 1.3) == [BargeIn(7, "words")]
    assert t.agent == "listening"
    t.on_speech_end(2.0)
    t.on_transcript("我不需要", True, 0.8, 2.2, 1.0, 2.0)
    assert [a.text for a in t.tick(2.6)] == ["我不需要"]


def test_backchannel_does_not_barge_in_and_is_dropped():
    t = speaking()
    actions = say(t, "嗯嗯", 1.0, 1.4, partial="嗯")
    assert actions == [] and t.agent == "speaking"
    assert t.tick(3.0) == []
    t.on_playback_done(4.0)
    assert t.tick(5.0) == []  # the backchannel did not become a turn


def test_long_speech_barges_in_without_text_yet():
    t = speaking()
    t.on_speech_start(1.0)
    assert t.tick(2.0) == []
    assert t.tick(2.25) == [BargeIn(7, "long_speech")]


def test_uninterruptible_disclosure_ignores_barge_in_until_mark():
    t = speaking(uninterruptible=True)
    t.on_speech_start(1.0)
    assert t.on_transcript("你是谁啊", False, 0.0, 1.5) == []
    assert t.tick(4.0) == []  # long speech too
    t.on_speech_end(4.0)
    assert t.on_transcript("你是谁啊", True, 0.9, 4.2, 1.0, 4.0) == []
    assert t.tick(6.0) == []  # still speaking: the words wait
    t.on_playback_done(6.5)  # mark echoed
    assert [a.text for a in t.tick(6.6)] == ["你是谁啊"]


def test_no_input_reprompts_then_hangs_up():
    cfg = TurnConfig(no_input_timeout_s=5.0, max_reprompts=2)
    t = listening(cfg)
    assert t.tick(4.9) == []
    assert t.tick(5.0) == [Reprompt(1)]
    t.on_playback_done(7.0)  # reprompt played
    assert t.tick(11.9) == []
    assert t.tick(12.0) == [Reprompt(2)]
    t.on_playback_done(14.0)
    assert t.tick(19.0) == [HangUp("no_input")]


def test_answer_resets_reprompt_count():
    t = listening(TurnConfig(no_input_timeout_s=5.0, max_reprompts=1))
    assert t.tick(5.0) == [Reprompt(1)]
    t.on_playback_done(6.0)
    say(t, "喂", 7.0, 7.3)
    assert len(t.tick(8.0)) == 1
    t.on_playback_done(9.0)
    assert t.tick(14.0) == [Reprompt(1)]


def test_long_silence_hangs_up_even_with_reprompts_left():
    t = listening(TurnConfig(no_input_timeout_s=100.0, hangup_silence_s=20.0))
    assert t.tick(19.9) == []
    assert t.tick(20.0) == [HangUp("long_silence")]


def test_no_timers_while_agent_busy_or_speaking():
    t = speaking()
    assert t.tick(60.0) == []
    t.on_playback_done(60.0)
    t.on_agent_busy(60.0)
    assert t.tick(120.0) == []


def test_no_input_waits_while_recogniser_is_decoding():
    t = listening(TurnConfig(no_input_timeout_s=5.0))
    t.asr_busy = True
    assert t.tick(9.0) == []
    t.asr_busy = False
    assert t.tick(13.0) == []
    assert t.tick(14.0) == [Reprompt(1)]


def test_partial_of_the_next_turn_after_a_final_does_not_break_the_turn_taker():
    """Regression: a streaming engine's partial in turn two, before its final, raised
    IndexError (a stale final time from turn one) and silently killed the call's tick loop."""
    t = listening()
    say(t, "是我。", 1.0, 1.5)
    [first] = t.tick(2.2)
    assert first.text == "是我。"
    t.on_playback_done(3.0)
    t.on_speech_start(3.5)
    t.on_transcript("我明天", False, 0.0, 3.8)
    t.on_speech_end(4.0)
    assert t.tick(4.2) == []  # used to raise IndexError here
    say(t, "我明天还三千。", 3.5, 4.3, final_at=4.5)
    [second] = t.tick(5.0)
    assert second.text == "我明天还三千。"
