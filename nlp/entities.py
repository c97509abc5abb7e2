"""Rule-based entity extraction: amounts, dates, payment channels and hardship reasons.

The contract is `spec/nlu-labels.md` (Entities, Annotation conventions). Rules are general
(numeral grammar, calendar arithmetic, keyword families) rather than lookups of examples,
because acceptance data uses phrasings never seen here. Choices for ambiguous cases:

amount
    * every exact yuan figure, each mention: 三千五 → 3500, 1.5万, 两千块, 3k, 两k, 1w5 → 15000,
      ¥500, 2,000, 三块五 → 3.5. The span keeps the unit word (块/元/圆/人民币) and a leading ¥,
      not 钱/整/左右 (八百块钱 → "八百块").
    * approximate figures are *not* amounts (as in the annotated corpus): 3000多, 两三千,
      五六百, 十几万, 几百块, 四千左右, 快两百, 两万出头 — they name no single figure.
    * a bare number needs a money cue: a magnitude (百/千/万/k/w), a currency word or sign, a
      money verb or noun shortly before it (还/转/付/欠/扣/借/利息/本金…), 行吗/够吗 after it, or,
      for a 3–6 digit figure, any money word in the utterance (钱打到对公账户了 3500).
    * never amounts: counted things (24期, 三个月, 三天, 15号, 3点, 24%, 打八折), digits of
      phone/ID/card numbers, 7+ digit strings, leading-zero digits (后四位0312), hotlines
      (12378, 95588), time/date shapes, 第N, 周三, idioms (千万, 万一, 一块儿).
date
    * only expressions naming exactly one calendar day; vague spans (下个月, 过两天, 月初,
      年底, 发工资后) get none. Recurring days (每月8号) are not one day, so get none.
    * 周三/这周三 = that weekday of the current Monday-started week (may be in the past);
      下周三 = next week's; 周末 = the coming Saturday (today when today is Saturday).
    * bare 15号 = next 15th on or after the reference day; a day the month lacks (31号 in a
      30-day month) rolls to the next month that has it. 下个月31号 clamps to that month's end.
    * 月底 = last day of the reference month, or of next month when today is already the last.
    * a month-day without year (12月5号) takes the nearer of last/this/next year, where a past
      day counts double, so recent past days stay past and far ones move to next year.
    * time-of-day words stay outside the span (明天下午 → 明天, 昨天晚上 → 昨天); fused
      words are whole (今晚, 昨晚, 明早, 明儿个).
      N天后/N天前/一周后 are offsets; 过N天 is vague. 元旦/圣诞节/国庆节 are fixed days.
channel
    * named channels and chat/ASR shorthand (zfb, vx, wx, 威信, 爱普); the span is the name
      without a locative (app里 → "app", 卡里 → "卡"). 信用卡 counts only when paid with
      (用信用卡还) — otherwise it is another debt. A bare 卡 noun is bank_card; 卡了/卡住 and
      other cards (会员卡, 公交卡, 身份证) are not. 转账 alone is bank_transfer unless another
      channel is named.
hardship_reason
    * a stated cause only; bare 没钱/还不了 has none. Illness of a relative is `illness`
      (the cause is medical); deaths, divorce, births and school fees are `family`.
    * every mention is reported (我出车祸了腿骨折了 → 车祸, 骨折); phrases of one reason that
      touch form one mention (生病住院). Spans follow nlp/data/ANNOTATION.md: shortest phrase
      naming the cause, no light verb (车祸 not 出车祸, 手术 not 做手术), passive 被 kept
      (被裁员), person subjects dropped (老板欠薪 → 欠薪). Employer closure (公司倒闭了) is
      `unemployment`; the speaker's own business (生意, 店) is `business_loss`.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta
from functools import lru_cache

import cn2an

from agent.core.labels import Entity, EntityType
from nlp.masking import find_sensitive

__all__ = ["extract_entities"]

# ---------------------------------------------------------------------------------------------
# Shared numeral tables
# ---------------------------------------------------------------------------------------------

_FULLWIDTH = str.maketrans(
    "０１２３４５６７８９ＫＷｋｗ．，：％",
    "0123456789KWkw.,:%",
)
_CN_DIGIT: dict[str, int] = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "壹": 1,
    "二": 2,
    "贰": 2,
    "两": 2,
    "俩": 2,
    "三": 3,
    "叁": 3,
    "四": 4,
    "肆": 4,
    "五": 5,
    "伍": 5,
    "六": 6,
    "陆": 6,
    "七": 7,
    "柒": 7,
    "八": 8,
    "捌": 8,
    "九": 9,
    "玖": 9,
}
_CN_UNIT: dict[str, int] = {
    "十": 10,
    "拾": 10,
    "百": 100,
    "佰": 100,
    "千": 1000,
    "仟": 1000,
    "万": 10000,
    "萬": 10000,
    "亿": 100000000,
}
_ASCII_UNIT: dict[str, int] = {"k": 1000, "K": 1000, "w": 10000, "W": 10000}
_CN_NUM_CHARS = "".join(_CN_DIGIT) + "".join(_CN_UNIT)
_NUM_START = re.compile(r"[0-9一二两俩三四五六七八九十壹贰叁肆伍陆柒捌玖]")
_ARABIC = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")


def _small_int(tok: str) -> int | None:
    """Day/month/count numbers (1–99) written in digits or Chinese numerals."""
    if tok.isdigit():
        return int(tok)
    if tok == "半":
        return None
    total, cur = 0, 0
    for ch in tok:
        if ch in _CN_DIGIT:
            cur = _CN_DIGIT[ch]
        elif ch in ("十", "拾"):
            total += (cur or 1) * 10
            cur = 0
        else:
            return None
    return total + cur


@lru_cache(maxsize=4096)
def _cn2an_value(s: str) -> float | None:
    """cn2an for pure Chinese numerals (handles 三千五 / 一万二 / 一千零五); None if it refuses."""
    try:
        return float(cn2an.cn2an(s, "smart"))
    except (ValueError, KeyError, IndexError, TypeError):
        return None


# ---------------------------------------------------------------------------------------------
# Amounts
# ---------------------------------------------------------------------------------------------

# Atom kinds: ("n", value, pos, text_len, is_cn), ("u", multiplier, pos), ("z", 0, pos) for 零.
_Atom = tuple


def _scan_number(s: str, i: int) -> tuple[int, list[_Atom], bool] | None:
    """Consume one numeral expression at `i` (digits, Chinese numerals, units, k/w, 点 decimals).

    Returns (end, atoms, approximate). `approximate` marks 几/多/来 inside the figure (十几万).
    """
    atoms: list[_Atom] = []
    j, n, approx = i, len(s), False
    while j < n:
        c = s[j]
        if "0" <= c <= "9":
            if atoms and atoms[-1][0] == "n":
                break
            m = _ARABIC.match(s, j)
            assert m is not None
            txt = m.group()
            if txt.endswith(".") or ("," in txt and m.end() < n and "0" <= s[m.end()] <= "9"):
                break
            atoms.append(("n", float(txt.replace(",", "")), j, len(txt), False))
            j = m.end()
        elif c in _CN_DIGIT:
            if (
                len(atoms) >= 2
                and atoms[-1][0] == "n"
                and atoms[-2][0] == "u"
                and not (j + 1 < n and s[j + 1] in _CN_UNIT)
            ):
                break  # 两千五一次性: the elliptical tail is complete, a new word starts
            if c in "零〇" and atoms and atoms[-1][0] == "u":
                atoms.append(("z", 0, j))
            else:
                atoms.append(("n", float(_CN_DIGIT[c]), j, 1, True))
            j += 1
        elif c in _CN_UNIT:
            if not atoms and c not in "十拾":
                break
            atoms.append(("u", _CN_UNIT[c], j))
            j += 1
        elif c in _ASCII_UNIT and atoms and atoms[-1][0] == "n":
            nxt = s[j + 1] if j + 1 < n else ""
            if nxt.isascii() and nxt.isalpha():
                break
            atoms.append(("u", _ASCII_UNIT[c], j))
            j += 1
        elif c == "几" and atoms:
            approx = True
            atoms.append(("n", 0.0, j, 1, True))
            j += 1
        elif c in "多来余" and atoms and j + 1 < n and s[j + 1] in "万千百亿":
            approx = True
            j += 1
        elif c == "点" and atoms and atoms[-1][0] == "n" and j + 1 < n:
            # decimal 点 only when a magnitude or currency follows the fraction (三点五万, 1点5k)
            k = j + 1
            frac = ""
            while k < n and (s[k].isdigit() or s[k] in _CN_DIGIT):
                frac += s[k] if s[k].isdigit() else str(_CN_DIGIT[s[k]])
                k += 1
            if not frac or k >= n or s[k] not in "万亿kKwW块元":
                break
            whole = _atoms_value(atoms)
            if whole is None:
                break
            atoms = [("n", whole + float("0." + frac), i, k - i, False)]
            j = k
        else:
            break
    if not atoms:
        return None
    # trim a trailing 零 marker
    while atoms and atoms[-1][0] == "z":
        atoms.pop()
    if not atoms:
        return None
    last = atoms[-1]
    end = last[2] + (last[3] if last[0] == "n" else 1)
    return end, atoms, approx


def _atoms_value(atoms: list[_Atom]) -> float | None:
    """Positional value of numeral atoms; a lone digit after a unit is elliptical (三千五)."""
    result = 0.0
    section = 0.0
    number: float | None = None
    last_unit: int | None = None
    zero_seen = False
    prev_kind = ""
    tail_single = False
    for a in atoms:
        kind = a[0]
        if kind == "n":
            if prev_kind == "n":
                if not (a[4] and atoms[0][4]):
                    return None
                number = (number or 0.0) * 10 + a[1]  # digit string: 二零二六
                tail_single = False
            else:
                number = a[1]
                tail_single = a[3] == 1
        elif kind == "z":
            zero_seen = True
        else:
            u = a[1]
            if u >= 10000:
                section += number if number is not None else 0.0
                if section == 0:
                    section = 1.0
                result = (result + section) * u if result and u > 10000 else result + section * u
                section = 0.0
            else:
                section += (number if number is not None else 1.0) * u
            number = None
            last_unit = u
            zero_seen = False
        prev_kind = kind
    if number is not None:
        if last_unit is not None and not zero_seen and tail_single and last_unit >= 10:
            number *= last_unit / 10
        section += number
    return result + section


_CURRENCY_SUFFIX = re.compile(r"\s?(?:块|元|圆|人民币|RMB|rmb|CNY)")
_CURRENCY_PREFIX = re.compile(r"(?:[¥￥]|RMB|rmb|CNY)\s?$")
_APPROX_SUFFIX = re.compile(r"(?:多|来|余|几)(?!少)")
_ROUGHLY_BEFORE = re.compile(r"(?:快|近|约|大约|大概|差不多|将近)$")
_ROUGHLY_AFTER = re.compile(r"\s?(?:块|元)?(?:钱)?(?:左右|上下|出头)")
# Things a number can count that are not money (checked right after the figure).
_NOT_MONEY_AFTER = re.compile(
    r"(?:个(?:月|星期|礼拜|小时|工作日|人|钟头|季度)?|期|天|日|号|月(?![底末])|年|周|星期|礼拜|次|回|遍|趟|"
    r"点|分钟|分之|秒|小时|钟|岁|人|位|家|张|条|笔|倍|成|折|楼|层|栋|公里|米|斤|克|吨|辆|台|部|件|只|本|页|"
    r"%|度|户|套|平|亩|代|届|名|班|路|胎|遍|集|章|份|样|种|口|头|颗|粒|瓶|包|箱|杯|碗|声|G|g|M|"
    r"kg|KG|km|:|：|/|-\d|\.\d|号码|电话|多(?:个|次|天|期|年|月|人|岁|分|号|点|遍|小时))"
)
_NOT_MONEY_BEFORE = re.compile(
    r"(?:第|周|星期|礼拜|初|尾号|号码|手机|电话|热线|卡号|账号|帐号|编号|工号|单号|订单|验证码|身份证|"
    r"后四位|前六位|后几位|学号|房间|分之|利率|年化|月息|日息|万分|千分|百分|每|-|:|：|/|#|No\.?)"
    r"\s?$"
)
_MONEY_BEFORE = re.compile(
    r"(还|转|付|交|缴|凑|借|欠|剩|差|补|充|存|赔|扣|收|减|免|少|退|要|给|拿|花|贷|罚|挣|赚|出|认|"
    r"只有|就有|才|就|有|是|了|到|成|抹|值|够|最多|最少|至少|一共|总共|合计|共|按|"
    r"钱|款|额|本金|利息|罚息|罚金|违约金|手续费|服务费|滞纳金|费用|费|工资|月薪|薪水|收入|余额|存款|"
    r"欠款|账单|尾款|首付|月供|本息|数|每月|每个月|一个月|每期|每周|一次)"
    r"[^\d\s，。,.!?！？；;、0-9一二两三四五六七八九十百千万]{0,4}$"
)
_MONEY_AFTER = re.compile(
    r"\s?(?:(?:行|可以|够|成|好|能|中|对)(?:吗|么|嘛|不|吧|没|伐|呀|啊)|的(?:欠款|账|罚息|利息|本金|"
    r"服务费|手续费|违约金|费)|(?:转|打|还)(?:过去|给)|到账|还清|结清|还上|还是)"
)
_HOTLINE = re.compile(r"(?:123[0-9]{2}|9[56][0-9]{3,4})$")  # 12315, 12378, 95588
_JIAO = re.compile(r"([0-9一二三四五六七八九])(?:毛|角)?(?![0-9一二三四五六七八九十百千万])")
# Anywhere in the utterance: makes a bare 3–6 digit figure money (钱打到你们对公账户了 3500).
_MONEY_CONTEXT = re.compile(
    r"还|转|付|扣|钱|款|欠|借|交|存|账|利息|罚息|本金|费|额|工资|块|元|打到|打过去|结清|收到"
)
_WINDOW_STOP = re.compile(r"[日号期天月年时]|几|第")


def _extract_amounts(text: str, s: str, taken: list[tuple[int, int]]) -> list[Entity]:
    """Find yuan figures in `s` (width-normalised `text`) outside the `taken` spans."""
    out: list[Entity] = []
    pos = 0
    n = len(s)
    while True:
        m = _NUM_START.search(s, pos)
        if m is None:
            break
        i = m.start()
        if i > 0 and (s[i - 1] in _CN_NUM_CHARS or "0" <= s[i - 1] <= "9" or s[i - 1] == "."):
            pos = i + 1
            continue
        scanned = _scan_number(s, i)
        if scanned is None:
            pos = i + 1
            continue
        end, atoms, approx = scanned
        pos = end
        ent = _judge_amount(text, s, i, end, atoms, approx, taken)
        if (
            ent is None
            and len(atoms) >= 3
            and atoms[-1][0] == "n"
            and atoms[-2][0] == "u"
            and atoms[-2][1] >= 100
            and s[end : end + 1] in ("个", "次", "天", "年")
        ):
            # 一万一个月: the trailing 一 belongs to the next word; retry without it
            ent = _judge_amount(text, s, i, atoms[-1][2], atoms[:-1], approx, taken)
            if ent is not None:
                pos = atoms[-1][2]
        if ent is not None:
            out.append(ent)
            pos = max(pos, ent.end)
        if pos >= n:
            break
    return out


def _judge_amount(
    text: str,
    s: str,
    start: int,
    end: int,
    atoms: list[_Atom],
    approx: bool,
    taken: list[tuple[int, int]],
) -> Entity | None:
    """Decide whether one numeral expression is a yuan figure, and build its span."""
    if approx or any(a < end and start < b for a, b in taken):
        return None
    if (start > 0 and s[start - 1] in "几多好数") or _ROUGHLY_BEFORE.search(
        s[max(0, start - 3) : start]
    ):
        return None  # 几十块 / 好几千 / 快两百 / 大概三千: approximate
    nums = [a for a in atoms if a[0] == "n"]
    units = [a[1] for a in atoms if a[0] == "u"]
    for x, y in zip(atoms, atoms[1:], strict=False):
        if x[0] == "n" and y[0] == "n":
            return None  # 两三千 / 五六百 (a range) or 一三八… (a digit string)
    arabic = [a for a in nums if not a[4]]
    digits = s[start:end]
    if arabic and not units:
        if sum(a[3] for a in arabic) >= 7:
            return None  # account, phone or ID digits, not a figure anyone says
        if digits[0] == "0" and not digits.startswith("0."):
            return None  # 0312: tail digits of an ID or card
    before = s[max(0, start - 8) : start]
    if _NOT_MONEY_BEFORE.search(before):
        return None
    if arabic and start > 0 and s[start - 1].isascii() and s[start - 1].isalpha():
        return None  # V1, ABC123
    nxt = s[end : end + 1]
    if nxt.isascii() and nxt.isalpha() and not _CURRENCY_SUFFIX.match(s, end):
        return None  # 3kg, 5G
    value = _pure_cn_value(digits, atoms)
    if value is None or value <= 0:
        return None
    approx_m = _APPROX_SUFFIX.match(s, end)
    if approx_m and (approx_m.group() != "来" or re.match(r"[块元万千]", s[approx_m.end() :])):
        return None  # 3000多 / 一万余 / 三千来块: approximate
    if _ROUGHLY_AFTER.match(s, end):
        return None  # 四千左右
    span_end = end
    cur = _CURRENCY_SUFFIX.match(s, end)
    if cur:
        span_end = cur.end()
        if cur.group().strip() in ("块", "元") and value < 100:
            # elliptical sub-yuan: 三块五 / 十块五毛
            m2 = _JIAO.match(s, span_end)
            if m2:
                d = m2.group(1)
                value += (int(d) if d.isdigit() else _CN_DIGIT[d]) / 10
                span_end = m2.end()
        if digits == "一" and cur.group() == "块" and s[span_end : span_end + 1] != "钱":
            return None  # 一块 = together (一块儿去 / 一块还)
    elif _NOT_MONEY_AFTER.match(s, end):
        return None
    lead = s[max(0, start - 4) : start]
    prefix = _CURRENCY_PREFIX.search(lead)
    span_start = start - (len(lead) - prefix.start()) if prefix else start
    if not (cur or prefix or any(u >= 100 for u in units)):
        if value < 10:
            return None
        local = (
            _MONEY_BEFORE.search(before) and not _WINDOW_STOP.search(_cue_window(before))
        ) or _MONEY_AFTER.match(s, end)
        wide = arabic and value >= 100 and float(value).is_integer() and _MONEY_CONTEXT.search(s)
        if not (local or wide) or _HOTLINE.match(digits):
            return None
    return Entity(
        EntityType.AMOUNT.value,
        text[span_start:span_end],
        span_start,
        span_end,
        round(float(value), 2),
    )


def _cue_window(before: str) -> str:
    """Text between the nearest money cue and the figure (checked for date/count words)."""
    m = _MONEY_BEFORE.search(before)
    if not m:
        return ""
    return before[m.end(1) :]


def _pure_cn_value(sub: str, atoms: list[_Atom]) -> float | None:
    """Value of the figure; pure Chinese numerals go through cn2an, the rest our own grammar."""
    if all(a[0] != "n" or a[4] for a in atoms) and all(c in _CN_NUM_CHARS for c in sub):
        v = _cn2an_value(sub)
        if v is not None:
            return v
    return _atoms_value(atoms)


# ---------------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------------

_NUM_TOK = r"(?:\d{1,2}|[一二两三四五六七八九十]{1,3})"
_DAY_SUFFIX = r"(?:号|日)"
_WEEKDAY = {
    "一": 0,
    "二": 1,
    "三": 2,
    "四": 3,
    "五": 4,
    "六": 5,
    "日": 6,
    "天": 6,
    "末": 5,
    "1": 0,
    "2": 1,
    "3": 2,
    "4": 3,
    "5": 4,
    "6": 5,
    "7": 6,
}
_REL_DAY = {
    "大前天": -3,
    "大前儿": -3,
    "前天": -2,
    "前儿个": -2,
    "前儿": -2,
    "昨天": -1,
    "昨日": -1,
    "昨儿": -1,
    "昨晚": -1,
    "今天": 0,
    "今日": 0,
    "今儿": 0,
    "今晚": 0,
    "今早": 0,
    "明天": 1,
    "明日": 1,
    "明儿个": 1,
    "明儿": 1,
    "明晚": 1,
    "明早": 1,
    "后天": 2,
    "后儿": 2,
    "大后天": 3,
    "大后儿": 3,
}
_HOLIDAY = {
    "元旦": (1, 1),
    "圣诞节": (12, 25),
    "圣诞": (12, 25),
    "平安夜": (12, 24),
    "国庆节": (10, 1),
    "劳动节": (5, 1),
    "情人节": (2, 14),
    "儿童节": (6, 1),
}

_DATE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "ymd",
        re.compile(r"(?<!\d)(\d{4})\s*([-/.年])\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})(?:日|号)?(?!\d)"),
    ),
    (
        "md",
        re.compile(
            r"(?:(今年|明年|去年)的?)?(?<![\d一二三四五六七八九十])("
            + _NUM_TOK
            + r")月(?:份)?的?("
            + _NUM_TOK
            + r")(号|日)?(?![\d一二两三四五六七八九十百千万块元期天个])"
        ),
    ),
    (
        "month_end",
        re.compile(
            r"(?:(今年|明年)的?)?(?<![\d一二三四五六七八九十])(" + _NUM_TOK + r")月(?:底|末)"
        ),
    ),
    (
        "rel_month_day",
        re.compile(
            r"(下下个?月|下个?月|这个?月|本月|当月|上个?月)(?:的)?(" + _NUM_TOK + r")" + _DAY_SUFFIX
        ),
    ),
    ("rel_month_end", re.compile(r"(?:(下下个?|下个?|这个?|本|上个?)月|(?<!年)月)(底|末)")),
    (
        "weekday",
        re.compile(
            r"(下下个?|下个?|这个?|本|上个?)?(周|星期|礼拜)([一二三四五六日天末1-7])(?![次\d]|(?<=一)(?:定|直|起|样|般|下|些|点|会儿|共|次|遍))"
        ),
    ),
    ("rel_day", re.compile("|".join(sorted(_REL_DAY, key=len, reverse=True)))),
    (
        "offset",
        re.compile(r"(" + _NUM_TOK + r"|一|两)(?:个)?(天|日|周|星期|礼拜)(?:之|以)?(后|前)(?!天)"),
    ),
    ("bare_day", re.compile(r"(?<![\d一二三四五六七八九十月第周号几])(" + _NUM_TOK + r")(号|日)")),
    ("holiday", re.compile("|".join(sorted(_HOLIDAY, key=len, reverse=True)))),
]
_BARE_DAY_BLOCK_AFTER = re.compile(
    r"(?:楼|线|床|房|门|口|位|窗|车|机|码|院|桌|球|坑|字|店|馆|选手|文件)"
)
_BARE_DAY_BLOCK_BEFORE = re.compile(r"(?:每个?月[^，。,\s]{0,3}|每|尾|账|帐|单|编|型|代|番|几)\s?$")
_REL_DAY_BLOCK_BEFORE = re.compile(r"[以之提从往眼面跟目当然最背随落先午日今这那年]$")
_NUM_BEFORE = re.compile(r"[\d一二两三四五六七八九十]$")
_MONTH_ABBR = {"下下": 2, "下": 1, "这": 0, "本": 0, "当": 0, "上": -1}


def _month_shift(d: date, months: int) -> tuple[int, int]:
    y, m = divmod(d.year * 12 + (d.month - 1) + months, 12)
    return y, m + 1


def _last_day(y: int, m: int) -> date:
    return date(y, m, calendar.monthrange(y, m)[1])


def _nearest_year(today: date, month: int, day: int) -> date | None:
    """Month-day without a year: the nearer occurrence, a past day weighing double."""
    best: tuple[int, date] | None = None
    for y in (today.year - 1, today.year, today.year + 1):
        try:
            d = date(y, month, day)
        except ValueError:
            continue
        delta = (d - today).days
        score = delta if delta >= 0 else -2 * delta
        if best is None or score < best[0]:
            best = (score, d)
    return best[1] if best else None


def _next_dom(today: date, day: int) -> date | None:
    """The next day-of-month `day` on or after today, skipping months too short for it."""
    if not 1 <= day <= 31:
        return None
    y, m = today.year, today.month
    for _ in range(13):
        if day <= calendar.monthrange(y, m)[1]:
            d = date(y, m, day)
            if d >= today:
                return d
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return None


def _resolve_date(kind: str, m: re.Match[str], s: str, today: date) -> tuple[date, int, int] | None:
    """Resolve one date match to (day, span_start, span_end); None when not a single day."""
    st, en = m.start(), m.end()
    if kind == "ymd":
        try:
            return date(int(m.group(1)), int(m.group(3)), int(m.group(4))), st, en
        except ValueError:
            return None
    if kind in ("md", "month_end"):
        mon = _small_int(m.group(2))
        if mon is None or not 1 <= mon <= 12:
            return None
        year_word = m.group(1)
        if kind == "md":
            day = _small_int(m.group(3))
            if day is None or not 1 <= day <= 31:
                return None
            if m.group(4) is None and not m.group(3).isdigit():
                return None  # 三月五 without 号 is too loose
        else:
            day = calendar.monthrange(today.year, mon)[1]
        if year_word:
            y = today.year + {"今年": 0, "明年": 1, "去年": -1}[year_word]
            if kind == "month_end":
                return _last_day(y, mon), st, en
            try:
                return date(y, mon, day), st, en
            except ValueError:
                return None
        if kind == "month_end":
            cand = [_last_day(y, mon) for y in (today.year - 1, today.year, today.year + 1)]
            best = min(cand, key=lambda d: (d - today).days if d >= today else 2 * (today - d).days)
            return best, st, en
        d = _nearest_year(today, mon, day)
        return (d, st, en) if d else None
    if kind == "rel_month_day":
        shift = _MONTH_ABBR[m.group(1)[0] if not m.group(1).startswith("下下") else "下下"]
        y, mo = _month_shift(today, shift)
        day = _small_int(m.group(2))
        if day is None or not 1 <= day <= 31:
            return None
        day = min(day, calendar.monthrange(y, mo)[1])
        return date(y, mo, day), st, en
    if kind == "rel_month_end":
        prefix = m.group(1)
        if prefix is None:
            # bare 月底 needs the 月: "底" alone is not a date
            if not m.group(0).startswith("月"):
                return None
            y, mo = today.year, today.month
            if today == _last_day(y, mo):
                y, mo = _month_shift(today, 1)
            return _last_day(y, mo), st, en
        shift = _MONTH_ABBR["下下" if prefix.startswith("下下") else prefix[0]]
        y, mo = _month_shift(today, shift)
        return _last_day(y, mo), st, en
    if kind == "weekday":
        prefix, wd_ch = m.group(1) or "", m.group(3)
        before = s[max(0, st - 2) : st]
        if not prefix and re.search(r"(?:每|一|两|几|个|\d|[二三四五六七八九十])$", before):
            return None
        monday = today - timedelta(days=today.weekday())
        shift = 0
        if prefix.startswith("下下"):
            shift = 2
        elif prefix.startswith("下"):
            shift = 1
        elif prefix.startswith("上"):
            shift = -1
        wd = _WEEKDAY[wd_ch]
        if wd_ch == "末" and not prefix:
            return today + timedelta(days=(5 - today.weekday()) % 7), st, en
        if wd_ch == "末" and prefix[:1] in ("这", "本"):
            return today + timedelta(days=(5 - today.weekday()) % 7), st, en
        return monday + timedelta(days=7 * shift + wd), st, en
    if kind == "rel_day":
        word = m.group(0)
        if word in ("前天", "后天", "前儿", "后儿") and _REL_DAY_BLOCK_BEFORE.search(s[:st]):
            return None
        if word in ("前天", "后天") and s[en : en + 1] == "天":
            return None  # 然后天天 / 以前天天
        return today + timedelta(days=_REL_DAY[word]), st, en
    if kind == "offset":
        num = m.group(1)
        k = _small_int(num)
        if k is None or k <= 0 or k > 400:
            return None
        if s[max(0, st - 1) : st] in ("过", "几") or _NUM_BEFORE.search(s[:st]):
            return None
        unit = m.group(2)
        days = k * (7 if unit in ("周", "星期", "礼拜") else 1)
        sign = 1 if m.group(3) == "后" else -1
        return today + timedelta(days=sign * days), st, en
    if kind == "bare_day":
        day = _small_int(m.group(1))
        if day is None or not 1 <= day <= 31:
            return None
        if _BARE_DAY_BLOCK_AFTER.match(s, en) or _BARE_DAY_BLOCK_BEFORE.search(s[:st]):
            return None
        if m.group(2) == "日" and (
            not m.group(1).isdigit() or re.match(r"[内后前之以子常期本元]", s[en : en + 1])
        ):
            return None
        d = _next_dom(today, day)
        return (d, st, en) if d else None
    if kind == "holiday":
        mon, day = _HOLIDAY[m.group(0)]
        d = date(today.year, mon, day)
        if d < today:
            d = date(today.year + 1, mon, day)
        return d, st, en
    return None


def _extract_dates(text: str, s: str, today: date, taken: list[tuple[int, int]]) -> list[Entity]:
    out: list[Entity] = []
    for kind, pat in _DATE_PATTERNS:
        for m in pat.finditer(s):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            res = _resolve_date(kind, m, s, today)
            if res is None:
                continue
            d, st, en = res
            taken.append((st, en))
            out.append(Entity(EntityType.DATE.value, text[st:en], st, en, d.isoformat()))
    return out


# ---------------------------------------------------------------------------------------------
# Channels and hardship reasons (keyword families)
# ---------------------------------------------------------------------------------------------

_A = r"(?<![A-Za-z])"
_Z = r"(?![A-Za-z])"
_CHANNELS: list[tuple[str, str]] = [
    (
        "bank_transfer",
        r"对公转账|对公(?:账户|账号|帐户|帐号)|"
        r"银行转账|网银转账|网上银行|手机银行|网银|银行汇款|电汇|对公",
    ),
    (
        "alipay",
        r"支付宝|之付宝|支付包|"
        + _A
        + r"(?:zfb|ZFB|Zfb|alipay|Alipay)"
        + _Z
        + r"|阿里(?!巴巴|云|妈妈)",
    ),
    (
        "wechat",
        r"微信支付|微信|威信|维信|薇信|危信|"
        + _A
        + r"(?:vx|VX|Vx|wx|WX|Wx|weixin|WeChat|wechat)"
        + _Z
        + r"|[vV]信",
    ),
    (
        "bank_card",
        r"(?:[工建农中招交邮]行|(?:工商|建设|农业|中国|招商|交通|邮政|邮储|浦发|民生|"
        r"兴业|光大|"
        r"中信|平安|华夏|广发)银行)(?:的)?(?:卡|储蓄卡|借记卡)|银行卡|储蓄卡|借记卡|工资卡|还款卡|"
        r"扣款卡|银行咔|(?<=[用拿刷])信用卡|信用卡(?=还|付|支付|转|刷|都行|也行|可以|行不行|能还)|"
        r"(?<![信用会员公交电话手机饭购物加油社保医保流量打磁门房车身份证SIM])卡"
        r"(?![号了住死顿通车片拉包被])",
    ),
    ("app", _A + r"(?:APP|App|app|aPP|APp)" + _Z + r"|爱普|艾普|客户端|软件|小程序|公众号"),
]
_CHANNEL_RE = re.compile("|".join(f"(?P<{k}>{p})" for k, p in _CHANNELS))
_CHANNEL_OTHER_TRANSFER = re.compile(r"转账(?!记录|截图|凭证|单|成功了?吗)")

_N = r"[一二两三四五六七八九十几\d半]+"
_HARDSHIP: list[tuple[str, str]] = [
    (
        "salary_delay",
        r"(?:产假|年终|老板)?工资[^\s，。,？?！!]{0,5}?(?:(?:没|没有|未)(?:发|到|结|给|拿到)(?:下来|清)?|不发|才发)|"
        r"欠薪|不发工资|发不(?:出|下来)工资|(?:工资|薪水|工钱)(?:被)?拖欠(?:了)?(?:"
        + _N
        + r"个?(?:月|天|星期))?|工资(?:又)?(?:晚发|迟发|延迟发(?:放)?|推迟发(?:放)?)(?:了)?(?:"
        + _N
        + r"(?:天|个月|周))?|(?:"
        + _N
        + r"个?月)?没发工资|工资(?:都|也|还)?没结清|拖欠(?:我|我们)?(?:的)?工资|"
        r"欠(?:我|我们)(?:的)?工资|工资(?:都|也)?被扣(?:完|光)了?|发工资(?:推迟|延迟|晚)了?|"
        r"工资(?:都|也)?发不出来|工资只发(?:了)?一半|工资被(?:老板|公司|单位)?拖(?:欠)?了?(?:"
        + _N
        + r"个?(?:月|天|星期)|半年)?|(?:工资|工钱)(?:一分)?(?:都|也|还)?没拿到|"
        r"老板(?:还|也)?(?:没|不)(?:给|发|结)(?:钱|工资)?(?![\u4e00-\u9fff])|(?:老板|包工头)跑(?:路|了)了?|"
        r"(?:工地|包工头|工程款)(?:还|也)?没结(?:账|钱)?|"
        r"压(?:着)?(?:我|我们)?(?:的)?工资|薪水(?:还)?没(?:发|到)",
    ),
    (
        "family",
        r"(?:家里面?|屋里头?|家中)(?:出(?:了)?(?:点|些|大)?事(?:情|了)?|有事|死了人|有人去世)|(?<!影响)(?<!影响我)孩子(?:上学|读书)|(?<=家里)老人(?:走了|去世了?|过世了?)|"
        r"(?:老人|家人|亲人|父亲|母亲|我爸|我妈|爸爸|妈妈|老爸|老妈|奶奶|爷爷|外婆|姥姥|外公|姥爷|公公|婆婆)"
        r"(?:刚)?(?:走了|没了|不在了|刚走)|(?<![他她])(?<!他已)(?<!她已)(?:去世|过世)|办丧事|丧事|奔丧|葬礼|"
        r"(?<!跟[他她])(?<!和[他她])(?<!跟[他她]早)(?<!和[他她]早)(?:闹?离婚|离了婚)|老公跑了|老婆跑了|媳妇跑了|(?:医院)?(?:陪护|陪床)|病逝|交学费|学费|生二胎|生孩子|剖腹产|坐月子|怀孕|"
        r"家庭变故|家里困难|家庭困难",
    ),
    (
        "accident",
        r"车祸|(?:交通)?事故|撞车|(?<=出)意外|(?<=出了)意外|(?<=发生)意外|(?<=发生了)意外|工伤(?!赔偿|保险|认定)|[手腿脚胳膊腰]?(?:摔断了?|撞断了?)|"
        r"摔伤了?(?:腰|腿|手|脚|胳膊)?|摔了一跤(?:骨折)?|(?:货车|车|三轮车|摩托车?)翻了|撞伤了?|被车撞了?|骨折|烧伤|受伤|(?:店铺|房子|家里|仓库|店里)?着火了?|火灾",
    ),
    (
        "illness",
        r"生病住院|生病了|生(?:了)?(?:一)?场?(?:大|重)?病|生病|(?<![有神经毛吓])病了|病倒了?|病死|病成这样了?|"
        r"住院|手术(?!室|费)|开刀|(?:心脏)?搭桥|确诊|住了[^\s，。,]{1,4}院|(?:脑梗|脑溢血|脑出血|中风|心梗|癌症)住院|化疗|放疗|透析|(?:[肝肺胃肠骨]|乳腺|宫颈|食道)?癌症?|肿瘤|白血病|脑梗|中风|抑郁症|瘫痪|"
        r"(?:肾|胃|肝|肺|心脏|糖尿|尿毒|精神|慢性|重|大|急)病|尿毒症|脑溢血|脑出血|心梗|"
        r"身体(?:不好|垮了|出了?问题)|腰椎间盘突出|看病|治病|药费|医药费|医疗费|ICU|(?<!还)在医院(?!排队|陪|住院)|(?<=得了)[^\s，。,？?！!了]{1,4}?病",
    ),
    (
        "unemployment",
        r"失业|失叶|下岗|待业|(?:被)?解雇|(?<=被)优化|(?<=被公司)优化|被裁员?|裁员|被辞退|辞退|被开除|开除|被炒(?:鱿鱼)?|丢了?工作|工作(?:丢了|没了|黄了)|"
        r"没(?:有)?(?:了)?工作|找不到工作|(?<=在)找工作|(?:厂里|厂子|公司|单位)?放长假|没(?:有)?活(?:儿)?干|停工(?:"
        + _N
        + r"个?月)?|"
        r"(?:公司|单位|工厂|厂里|厂子)(?:倒闭|关门|关|黄|没|倒)了|(?:公司|单位|工厂|厂子)(?:倒闭|破产)了?|"
        r"失去(?:了)?工作",
    ),
    (
        "business_loss",
        r"生意(?:是|也|都)?(?:做)?(?:亏|赔|黄|垮|砸|失败)(?:得底掉|惨了?|本了|钱了|了)?|生意(?:一直|都|也)?(?:不好|不行|难做|不景气|失败)|(?:店|店铺|门店|饭店)亏了|"
        r"做生意(?:亏|赔)了?(?:本|钱)?|(?<![吃幸])亏(?:惨了?|本了?|损了?|钱了?|大了|得(?:厉害|一塌糊涂|底掉|很惨))|赔本|(?<!不)赔(?:了)?钱(?:了)?|(?<![吃幸多])亏了|"
        r"(?:店|店铺|门店|铺子|饭店|餐馆|餐厅)(?:都)?(?:倒闭|关门|关|黄|开不下去|没开门)了?|"
        r"店铺租约到期被收回|投资(?:失败|亏了?|赔了?)|炒股(?:亏|赔)了?|股票(?:亏|赔|套)了?|资金链断了?|"
        r"(?:货款|项目款|回款)(?:收不回来|没收回来|被[^\s，。,]{1,4}拖着|没到)|生意(?:做|干)不下去了?|血本无归|破产|猪瘟",
    ),
    (
        "other",
        r"被(?:人)?骗(?:光了)?(?![着子])|(?:网络|电信)诈骗|被诈骗(?!分子|犯)|疫情|(?:房子|店铺|店|厂子)?被(?:法院)?查封了?|(?:工资卡|账户|卡|银行卡|钱)(?:都|也)?被?冻结了|被冻结了?|被?封控(?:在家)?|"
        r"(?<!失信)被执行(?!人)|戒毒所|遭了?灾|被水淹了?|洪水|地震|赌博|赌输了?|担保连带|"
        r"拆东墙补西墙|以贷养贷|网贷太多|借给(?:别人|朋友|亲戚)|(?:别人|朋友|亲戚)欠(?:我)?(?:的)?钱(?:不还)?",
    ),
]
_HARDSHIP_RE = re.compile("|".join(f"(?P<{k}>{p})" for k, p in _HARDSHIP))


def _extract_keywords(text: str, s: str, taken: list[tuple[int, int]]) -> list[Entity]:
    out: list[Entity] = []
    for m in _HARDSHIP_RE.finditer(s):
        if any(a < m.end() and m.start() < b for a, b in taken):
            continue
        st, en = m.start(), m.end()
        out.append(Entity(EntityType.HARDSHIP_REASON.value, text[st:en], st, en, m.lastgroup or ""))
        taken.append((st, en))
    named_channel = False
    for m in _CHANNEL_RE.finditer(s):
        if any(a < m.end() and m.start() < b for a, b in taken):
            continue
        kind = m.lastgroup or ""
        st, en = m.start(), m.end()
        out.append(Entity(EntityType.CHANNEL.value, text[st:en], st, en, kind))
        named_channel = True
        taken.append((st, en))
    if not named_channel:
        for m in _CHANNEL_OTHER_TRANSFER.finditer(s):
            st, en = m.start(), m.end()
            if not any(a < en and st < b for a, b in taken):
                out.append(Entity(EntityType.CHANNEL.value, text[st:en], st, en, "bank_transfer"))
                taken.append((st, en))
    return out


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def extract_entities(text: str, ref: datetime) -> list[Entity]:
    """All amount, date, channel and hardship entities of one utterance, sorted by start.

    `ref` is the request's reference time; relative dates resolve against its own calendar day
    (its own offset, not the server's). Offsets index the original `text`.
    """
    if not text:
        return []
    s = text.translate(_FULLWIDTH)
    today = ref.date()
    taken: list[tuple[int, int]] = [(a, b) for _, a, b in find_sensitive(text)]
    dates = _extract_dates(text, s, today, taken)
    keywords = _extract_keywords(text, s, taken)
    amounts = _extract_amounts(text, s, taken)
    return _merge_adjacent_reasons(
        sorted(dates + keywords + amounts, key=lambda e: (e.start, e.end)), text
    )


def _merge_adjacent_reasons(ents: list[Entity], text: str) -> list[Entity]:
    """Every mention is its own entity; cause phrases of the same reason that touch form one
    mention (生病住院, 脑溢血住院), while separated ones stay apart (我出车祸了腿骨折了 → 车祸, 骨折)."""
    out: list[Entity] = []
    for e in ents:
        prev = out[-1] if out else None
        if (
            prev is not None
            and e.type == prev.type == EntityType.HARDSHIP_REASON.value
            and e.value == prev.value
            and e.start == prev.end
        ):
            out[-1] = Entity(prev.type, text[prev.start : e.end], prev.start, e.end, prev.value)
            continue
        out.append(e)
    return out
