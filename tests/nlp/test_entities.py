"""Entity extraction: exact values and offsets, ASR-style text and negatives (spec: Entities)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from nlp.entities import extract_entities

CST = timezone(timedelta(hours=8))
REF = datetime(2026, 11, 25, 10, 0, tzinfo=CST)  # a Wednesday


def ents(text: str, ref: datetime = REF, kind: str | None = None) -> list[tuple]:
    return [
        (e.type, e.text, e.start, e.end, e.value)
        for e in extract_entities(text, ref)
        if kind is None or e.type == kind
    ]


def amounts(text: str) -> list[tuple[str, float]]:
    return [(e[1], e[4]) for e in ents(text, kind="amount")]


def dates(text: str, ref: datetime = REF) -> list[tuple[str, str]]:
    return [(e[1], e[4]) for e in ents(text, ref, kind="date")]


# --- amounts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("三千五", [("三千五", 3500.0)]),
        ("1.5万", [("1.5万", 15000.0)]),
        ("两千块", [("两千块", 2000.0)]),
        ("先还3k", [("3k", 3000.0)]),
        ("这期3K我肯定还", [("3K", 3000.0)]),
        ("两k先", [("两k", 2000.0)]),
        ("1w5我分两次", [("1w5", 15000.0)]),
        ("一万二能一次性结清不", [("一万二", 12000.0)]),
        ("欠4千", [("4千", 4000.0)]),
        ("3千5行不行", [("3千5", 3500.0)]),
        ("800元", [("800元", 800.0)]),
        ("八百块钱", [("八百块", 800.0)]),
        ("¥500", [("¥500", 500.0)]),
        ("还2,000可以吗", [("2,000", 2000.0)]),
        ("一千五百", [("一千五百", 1500.0)]),
        ("花了十万", [("十万", 100000.0)]),
        ("一万零五百", [("一万零五百", 10500.0)]),
        ("二万四", [("二万四", 24000.0)]),
        ("壹万贰仟元", [("壹万贰仟元", 12000.0)]),
        ("三块五", [("三块五", 3.5)]),
        ("一点五万", [("一点五万", 15000.0)]),
        ("1万整", [("1万", 10000.0)]),
        ("先还3000", [("3000", 3000.0)]),
        ("还3000行吗", [("3000", 3000.0)]),
        ("扣了2600", [("2600", 2600.0)]),
        ("每个月500 行不行", [("500", 500.0)]),
        ("钱打到你们对公账户了 3500 一分不少", [("3500", 3500.0)]),
        ("药费两万", [("两万", 20000.0)]),
    ],
)
def test_amount_values_and_spans(text: str, expected: list) -> None:
    assert amounts(text) == expected


def test_amount_offsets_asr_style() -> None:
    assert ents("我明天先还三千五百块") == [
        ("date", "明天", 1, 3, "2026-11-26"),
        ("amount", "三千五百块", 5, 10, 3500.0),
    ]
    assert ents("月底前先还三千", kind="amount") == [("amount", "三千", 5, 7, 3000.0)]


def test_amount_tail_is_not_swallowed() -> None:
    assert amounts("两千五一次性还太多了，一个月还一千行吗") == [
        ("两千五", 2500.0),
        ("一千", 1000.0),
    ]
    assert amounts("我想把剩下的一万八分九个月还") == [("一万八", 18000.0)]
    assert amounts("一万一个月") == [("一万", 10000.0)]


def test_every_mention_is_reported() -> None:
    assert amounts("好 明天还五百 后天还五百") == [("五百", 500.0), ("五百", 500.0)]


@pytest.mark.parametrize(
    "text",
    [
        "分24期",
        "能不能分3期",
        "那个可不可以分成二十四期啊",
        "延期三个月",
        "再给我三天",
        "15号还",
        "12月",
        "3点打给我",
        "利息超过24%了",
        "百分之五",
        "打八折可以吗",
        "我手机号13812345678",
        "身份证110105199001011234",
        "身份证号后四位是0312",
        "卡号6222021234567890123",
        "我要去12378投诉",
        "400电话多少",
        "666",
        "我们一块儿去",
        "还一点行不行",
        "一分钱都不会给",
        "千万别打了",
        "万一还不上呢",
        "第三期",
        "周三还",
        "十分钟后再说",
        "催一万遍我也不还",
        "放一百个心",
        "3000多",
        "一千多还是能还上的",
        "两三千",
        "一次还四五百",
        "被骗了十几万",
        "兜里就剩几十块钱了",
        "大概四千左右吧",
        "罚了我快两百",
        "本金还剩两万出头吧",
        "五毛",
    ],
)
def test_not_amounts(text: str) -> None:
    assert amounts(text) == []


# --- dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("今天就还", [("今天", "2026-11-25")]),
        ("明天还", [("明天", "2026-11-26")]),
        ("后天转你们", [("后天", "2026-11-27")]),
        ("大后天一定还", [("大后天", "2026-11-28")]),
        ("昨天还了", [("昨天", "2026-11-24")]),
        ("前天转了", [("前天", "2026-11-23")]),
        ("大前天就还了", [("大前天", "2026-11-22")]),
        ("俺昨儿去信用社还了", [("昨儿", "2026-11-24")]),
        ("明早起来就还", [("明早", "2026-11-26")]),
        ("昨天晚上十点还的", [("昨天", "2026-11-24")]),  # time-of-day words stay outside
        ("明天下午转", [("明天", "2026-11-26")]),
        ("今晚就还", [("今晚", "2026-11-25")]),
        ("俺明儿个就去还", [("明儿个", "2026-11-26")]),
        (
            "今天星期三 我周五还",
            [("今天", "2026-11-25"), ("星期三", "2026-11-25"), ("周五", "2026-11-27")],
        ),
        ("这个月15号开始还", [("这个月15号", "2026-11-15")]),
        ("一周之后保证到账", [("一周之后", "2026-12-02")]),
        ("三天后还", [("三天后", "2026-11-28")]),
        ("3天后还", [("3天后", "2026-11-28")]),
        ("两天之后", [("两天之后", "2026-11-27")]),
        ("一周后还上", [("一周后", "2026-12-02")]),
        ("三天前就还了", [("三天前", "2026-11-22")]),
        ("下周三", [("下周三", "2026-12-02")]),
        ("下礼拜三", [("下礼拜三", "2026-12-02")]),
        ("下个礼拜三", [("下个礼拜三", "2026-12-02")]),
        ("下星期一肯定还", [("下星期一", "2026-11-30")]),
        ("周五还", [("周五", "2026-11-27")]),
        ("这周一还的", [("这周一", "2026-11-23")]),
        ("本周日之前", [("本周日", "2026-11-29")]),
        ("上周五已经还了", [("上周五", "2026-11-20")]),
        ("等我儿子礼拜六回来", [("礼拜六", "2026-11-28")]),
        ("我周末就还", [("周末", "2026-11-28")]),
        ("下周末", [("下周末", "2026-12-05")]),
        ("月底还", [("月底", "2026-11-30")]),
        ("这个月底之前", [("这个月底", "2026-11-30")]),
        ("下月底一次", [("下月底", "2026-12-31")]),
        ("15号还上", [("15号", "2026-12-15")]),
        ("二十五号", [("二十五号", "2026-11-25")]),
        ("十五号到期", [("十五号", "2026-12-15")]),
        ("下个月10号", [("下个月10号", "2026-12-10")]),
        ("下月8号", [("下月8号", "2026-12-08")]),
        ("下个月五号", [("下个月五号", "2026-12-05")]),
        ("这个月2号那天还的", [("这个月2号", "2026-11-02")]),
        ("12月5号还来得及吗", [("12月5号", "2026-12-05")]),
        ("12月5日", [("12月5日", "2026-12-05")]),
        ("十二月一号之前", [("十二月一号", "2026-12-01")]),
        ("11月18号还的", [("11月18号", "2026-11-18")]),
        ("1月5号还", [("1月5号", "2027-01-05")]),
        ("2026-12-01", [("2026-12-01", "2026-12-01")]),
        ("2026年12月1日", [("2026年12月1日", "2026-12-01")]),
        ("元旦之前还清", [("元旦", "2027-01-01")]),
    ],
)
def test_dates(text: str, expected: list) -> None:
    assert dates(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "下个月再还",
        "过两天",
        "下午再说",
        "过完年再说",
        "发工资后还",
        "有钱了就还",
        "月初",
        "年底",
        "每月8号自动扣",
        "下周一定还",
        "一周三次",
        "然后天天打",
        "以前天天加班",
        "三日内",
        "3号楼",
    ],
)
def test_not_dates(text: str) -> None:
    assert dates(text) == []


def test_date_rules_on_edges() -> None:
    last_day = datetime(2026, 11, 30, 9, tzinfo=CST)
    assert dates("月底", last_day) == [("月底", "2026-12-31")]
    assert dates("31号", REF) == [("31号", "2026-12-31")]  # November has no 31st
    assert dates("30号", datetime(2027, 2, 3, tzinfo=CST)) == [("30号", "2027-03-30")]
    saturday = datetime(2026, 11, 28, 20, tzinfo=CST)
    assert dates("周末", saturday) == [("周末", "2026-11-28")]
    sunday = datetime(2026, 11, 29, 20, tzinfo=CST)
    assert dates("下周三", sunday) == [("下周三", "2026-12-02")]
    # the reference's own calendar day counts, not UTC's
    late = datetime(2026, 11, 25, 23, 30, tzinfo=CST)
    assert dates("明天", late) == [("明天", "2026-11-26")]
    assert dates("今天", datetime(2026, 11, 25, 0, 30, tzinfo=CST)) == [("今天", "2026-11-25")]


# --- channels ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("能用支付宝吗", [("支付宝", "alipay")]),
        ("用zfb还还是vx还", [("zfb", "alipay"), ("vx", "wechat")]),
        ("wx还款可以吗", [("wx", "wechat")]),
        ("微信转账行吗", [("微信", "wechat")]),
        ("用威信还的", [("威信", "wechat")]),
        ("用银行卡怎么还", [("银行卡", "bank_card")]),
        ("工行卡绑不上", [("工行卡", "bank_card")]),
        ("后天从卡里扣", [("卡", "bank_card")]),
        ("没绑卡怎么还", [("卡", "bank_card")]),
        ("能用信用卡还吗", [("信用卡", "bank_card")]),
        ("可以对公转账吗", [("对公转账", "bank_transfer")]),
        ("转到你们对公账户了", [("对公账户", "bank_transfer")]),
        ("我用银行转账还的", [("银行转账", "bank_transfer")]),
        ("通过网银转了", [("网银", "bank_transfer")]),
        ("转账要手续费吗", [("转账", "bank_transfer")]),
        ("app里怎么还", [("app", "app")]),
        ("我在APP上还了", [("APP", "app")]),
        ("客户端一直闪退", [("客户端", "app")]),
    ],
)
def test_channels(text: str, expected: list) -> None:
    assert [(e[1], e[4]) for e in ents(text, kind="channel")] == expected


@pytest.mark.parametrize(
    "text",
    [
        "会影响我信用卡吗",
        "页面一直卡住了",
        "手机卡了",
        "我身份证号多少",
        "转账记录截图已发",
        "apple",
    ],
)
def test_not_channels(text: str) -> None:
    assert ents(text, kind="channel") == []


# --- hardship reasons ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我失业了", [("失业", "unemployment")]),
        ("刚被辞退", [("被辞退", "unemployment")]),
        ("嗯 那个 我 我下岗了 真没钱", [("下岗", "unemployment")]),
        ("公司倒闭了，我在找工作", [("公司倒闭了", "unemployment"), ("找工作", "unemployment")]),
        ("在住院呢", [("住院", "illness")]),
        ("我妈查出来癌症", [("癌症", "illness")]),
        ("我在做化疗", [("化疗", "illness")]),
        ("生意亏了", [("生意亏了", "business_loss")]),
        ("做生意赔了", [("做生意赔了", "business_loss")]),
        ("出车祸了", [("车祸", "accident")]),
        ("我出车祸了腿骨折了", [("车祸", "accident"), ("骨折", "accident")]),  # every mention
        ("家里出事了", [("家里出事了", "family")]),
        ("离婚了", [("离婚", "family")]),
        ("工资还没发", [("工资还没发", "salary_delay")]),
        ("厂里三个月没发工资", [("三个月没发工资", "salary_delay")]),
        ("老板跑路了", [("老板跑路了", "salary_delay")]),
        ("我被骗了", [("被骗", "other")]),
        ("我账户都被冻结了", [("账户都被冻结了", "other")]),
    ],
)
def test_hardship(text: str, expected: list) -> None:
    assert [(e[1], e[4]) for e in ents(text, kind="hardship_reason")] == expected


@pytest.mark.parametrize(
    "text",
    ["没钱", "还不了", "手头紧", "你有病吧", "神经病", "发了工资就还", "会上失信被执行人名单吗"],
)
def test_no_reason_without_cause(text: str) -> None:
    assert ents(text, kind="hardship_reason") == []


# --- mixed, ordering, speed ----------------------------------------------------------------


def test_mixed_sentence_sorted_with_exact_offsets() -> None:
    text = "我失业了，下周三用支付宝先还两千，电话13812345678"
    assert ents(text) == [
        ("hardship_reason", "失业", 1, 3, "unemployment"),
        ("date", "下周三", 5, 8, "2026-12-02"),
        ("channel", "支付宝", 9, 12, "alipay"),
        ("amount", "两千", 14, 16, 2000.0),
    ]
    for e in extract_entities(text, REF):
        assert text[e.start : e.end] == e.text


def test_fullwidth_digits_keep_original_offsets() -> None:
    assert ents("先还３０００元") == [("amount", "３０００元", 2, 7, 3000.0)]


def test_empty_and_plain_text() -> None:
    assert extract_entities("", REF) == []
    assert extract_entities("你好", REF) == []


def test_fast_enough() -> None:
    msgs = ["我明天先还三千五百块行不行啊", "我失业了能不能下周三再还两千", "好的"]
    for m in msgs:
        extract_entities(m, REF)
    n = 300
    t0 = time.perf_counter()
    for _ in range(n):
        for m in msgs:
            extract_entities(m, REF)
    per_ms = (time.perf_counter() - t0) / (n * len(msgs)) * 1000
    assert per_ms < 1.0  # budget is ~0.3 ms; loose bound for slow CI machines


# --- hardship synonyms and span convention (nlp/data/ANNOTATION.md) ------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我下岗了", [("下岗", "unemployment")]),
        ("我被辞退了", [("被辞退", "unemployment")]),
        ("被裁员了", [("被裁员", "unemployment")]),
        ("我失去工作了", [("失去工作", "unemployment")]),
        ("一直在待业", [("待业", "unemployment")]),
        ("我被解雇了", [("被解雇", "unemployment")]),
        ("公司破产了", [("公司破产了", "unemployment")]),
        ("厂里放长假了", [("厂里放长假", "unemployment")]),
        ("我生病住院了", [("生病住院", "illness")]),  # touching phrases of one reason: one mention
        ("上周做手术了", [("手术", "illness")]),
        ("查出来得了肝癌", [("肝癌", "illness")]),
        ("刚确诊", [("确诊", "illness")]),
        ("我爸脑溢血住院", [("脑溢血住院", "illness")]),
        ("腿骨折了", [("骨折", "accident")]),
        ("干活受伤了", [("受伤", "accident")]),
        ("工地出事故了", [("事故", "accident")]),
        ("出了意外", [("意外", "accident")]),
        ("我的店关了", [("店关了", "business_loss")]),
        ("做生意赔钱了", [("做生意赔钱", "business_loss")]),
        ("公司一直亏损", [("亏损", "business_loss")]),
        ("生意一直不行", [("生意一直不行", "business_loss")]),
        ("家里有人去世", [("家里有人去世", "family")]),
        ("我爸去世了", [("去世", "family")]),
        ("家里老人走了", [("老人走了", "family")]),
        ("老婆剖腹产", [("剖腹产", "family")]),
        ("在医院陪床", [("医院陪床", "family")]),
        ("老人生病了", [("生病了", "illness")]),
        ("工资拖欠三个月了", [("工资拖欠三个月", "salary_delay")]),
        ("老板欠薪", [("欠薪", "salary_delay")]),
        ("老板拖欠工资", [("拖欠工资", "salary_delay")]),
        ("公司发不出工资", [("发不出工资", "salary_delay")]),
        ("工资都没结清", [("工资都没结清", "salary_delay")]),
        ("疫情封了两个月", [("疫情", "other")]),
        ("被人骗了二十万", [("被人骗", "other")]),
        # every mention is its own entity, including repeats of the same reason
        ("我得了肾病每周透析", [("肾病", "illness"), ("透析", "illness")]),
        ("老婆生孩子住院了", [("生孩子", "family"), ("住院", "illness")]),
        ("疫情之后厂子停工", [("疫情", "other"), ("停工", "unemployment")]),
    ],
)
def test_hardship_synonyms_and_spans(text: str, expected: list) -> None:
    assert [(e[1], e[4]) for e in ents(text, kind="hardship_reason")] == expected


@pytest.mark.parametrize(
    "text",
    [
        "我跟他早离婚了",  # wrong party: not the speaker's hardship
        "他去世了",
        "会不会影响孩子上学",
        "这个贷款是被诈骗分子办的",
        "老板也不给工伤赔偿",
    ],
)
def test_no_reason_when_not_a_stated_cause(text: str) -> None:
    assert ents(text, kind="hardship_reason") == []


def test_amount_cues_fixed() -> None:
    assert amounts("我每月打一千过去") == [("一千", 1000.0)]
    assert amounts("每天ICU一万") == [("一万", 10000.0)]
    assert amounts("最后5千月底前再想办法") == [("5千", 5000.0)]
    assert amounts("打八折可以吗") == []


def test_channel_official_account_is_app() -> None:
    assert [(e[1], e[4]) for e in ents("公众号能还款吗", kind="channel")] == [("公众号", "app")]
