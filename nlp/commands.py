"""Chinese clauses → typed dialogue commands (rules over the trained NLU's output).

The NLU labels one utterance with one intent; borrowers write run-on messages with two
requests, ask questions that look like statements and answer yes/no in context. This layer
splits a message into clauses, classifies each with ``services.nlu.parse`` (one batch), and
turns labels + entities + a few lexical rules into ``agent.core.commands``. Misreads are
fixed here, over the NLU output, never by retraining. Rules that change collection (dispute,
claim of payment, cease, wrong party, vulnerable) demand a confident *statement*: a question
or a low-confidence reading becomes ``Clarify``/``confirm=True`` and the engine asks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from agent.core.commands import (
    Affirm,
    Answer,
    Cancel,
    Clarify,
    Command,
    CorrectSlot,
    Deny,
    Goodbye,
    HandOff,
    SetSlot,
    StartFlow,
)
from agent.core.labels import Intent, NluResult
from nlp.masking import find_sensitive

__all__ = ["Understanding", "split_clauses", "understand"]


class Parser(Protocol):
    def parse_batch(self, texts: list[str], ref: datetime | None = None) -> list[NluResult]: ...


@dataclass
class Understanding:
    """The commands of one message, plus the per-clause NLU results (for the transcript)."""

    commands: list[Command]
    clauses: list[tuple[str, NluResult]] = field(default_factory=list)
    whole: NluResult | None = None


_SPLIT = re.compile(r"[，,。!！；;\s~～…]+|(?<!\d)\.|\.(?!\d)|(?<=[？?])|(?<=[吧啊呀嘛])(?=[^吧啊呀嘛了的？?])")
_TAG_Q = re.compile(r"行不行|可不可以|能不能|好不好|成不成|中不中|行吗|可以吗")
_YUAN_JIAO = re.compile(r"(\d+)\s*块\s*(\d)(\d)?(?![\d.])")
_CONJ = re.compile(r"(然后|但是|(?<![顾说比忙打跑算赶想搞弄])不过(?![来去])|另外|还有就是|而且)")
_FILLERS = {"嗯", "呃", "啊", "额", "那个", "这个", "就是", "哦", "唉"}
# Cantonese words borrowers type or say, to the Mandarin the rules and the NLU read.
_DIALECT = tuple((re.compile(a), b) for a, b in (
    ("听日", "明天"), ("后日", "后天"), ("出粮", "发工资"), ("冇问题", "没问题"), ("冇", "没"),
    ("得唔得|好唔好|得不得", "行不行"), ("还晒|还埋", "还清"), ("几多", "多少"), ("点样", "怎么"),
    ("仲差", "还差"), ("同埋", "还有"), ("边位|边个", "哪位"), ("唔该", "谢谢"),
    ("^系[啊呀啦]?$|^系(?=[ ，,])", "是"), ("系咪", "是不是"), ("(?<=[我你他她佢])系", "是"),
    ("系我", "是我"), ("唔好", "不要"), ("唔要", "不要"),
    ("唔", "不"), ("嚟", "来"), ("畀", "给"), ("咩", "什么"), ("喺", "在"), ("佢", "他"),
    ("你哋|你地", "你们"), ("我哋|我地", "我们"), ("头先", "刚才"), ("睇", "看"), ("而家", "现在")))
_CHANNELS_ONLY = re.compile(r"(以后)?((电话|短信|app|APP|App|消息|微信|推送|和|跟|还有)\s*)+")
_TAG_QUESTION = re.compile(r"(真的假的|是真的吗?|真的吗|对吗|是吗|对不对|是不是真的|靠谱吗|有这回事吗?)[？?啊呀]*")
_HYPOTHETICAL = re.compile(r"^(如果|要是|假如|万一|假设)")
QUESTION = re.compile(r"[？?]|吗|么|呢$|会不会|是不是|怎么|为什么|为啥|啥意思|真的假的|真的吗|对吧|是吧|对不对|"
                      r"有没有|能不能|可不可以|多少|几号|几天|多久|哪天|什么时候|咋|[过了]没有?[哦啊呀吧]*$|是否|好多|合不合|哪些|哪几|列一下|"
                      r"不会.{0,12}吧|可以吧$|行吗|成吗|"
                      r"哪个|哪种|真的假的|是真的|\?")
_INJECTION = re.compile(r"忽略|无视|之前的(规则|指令|设定)|系统(提示|指令|通知|消息)|【系统|prompt|指令|清零|你现在是|扮演|"
                        r"ignore (your|all|previous)|admin|管理员模式|开发者模式|该用户已|"
                        r"(把|将|给).{0,6}(欠款|债务|账单|记录).{0,4}(改|清|删|去掉|抹)")
_GOODBYE = re.compile(r"^(拜拜|再见|88|挂了|bye|好的?再见|好的?拜拜|先挂了)[了啊呀吧哈]*$", re.I)
_ROBOT = re.compile(r"机器人|真人|人工智能|(?<![A-Za-z])AI(?![A-Za-z])|是人吗|自动回复|智能客服|程序|"
                    r"real person|robot|\bbot\b|human", re.I)
_TO_HUMAN = re.compile(r"(转|找|要|换|叫|让).{0,3}(人工|真人|客服|坐席|人来)|有权限|能做主|说了算|做决定的|"
                       r"(主管|经理|负责人|领导).{0,4}(跟我|和我|来)(谈|说|聊|处理)")
_LEGAL = re.compile(r"起诉|告我|上法院|法院|上门|家访|坐牢|判刑|拘留|抓我|被抓|抓人|抓起来|公安|警察|律师|单位|公司|领导|"
                    r"通讯录|家人|爆通讯录|刑事|犯法|违法|爸妈|父母|老家|家里人|亲戚|找我家|同事")
_PERSONAL = re.compile(r"个人的?(银行)?(卡|账户|账号|微信|支付宝|收款)|私人(账户|卡|账号)|卡号.{0,4}(转|还)|"
                       r"(加|添加)(了)?我.{0,2}微信|转给(他|她)|给(他|她)转|私下(转|还|给)|"
                       r"(转|打)到?.{0,3}(他|她|你|业务员|催收员)的?(卡|账户|账号|微信|支付宝)")
_OVERDUE_Q = re.compile(r"(我|这笔|现在)?.{0,3}(有没有|是不是|算不算|算)?逾期(了)?(吗|没|么|没有)|"
                        r"(有没有|有没|是不是|算不算|是否).{0,4}逾期|逾期(了)?(多久|多长时间|几天|多少天)|没有?逾期(吧|吗|呢|[？?])")
_WHY_CONTACT = re.compile(r"(一直|老是|天天|总是|凭什么|为什么|为啥).{0,6}(发|打|催)")
_PAID_WORDS = re.compile(r"还了|还过|转了|转过|付了|付过|扣了|扣过|已经还|还清了|交了|付款了|还款了|已还|已付|已转|"
                         r"打过去了|转账了|交过|扣款了|划走了|扣走了")
_PAID_Q = re.compile(r"不是.{0,8}(还了|还过|转了)|怎么还(显示|是|在)|为什么还|还显示|没收到吗|查一下")
_OTHER_PERSON = re.compile(r"朋友|同事|亲戚|别人|他人|我弟|我哥|我姐|我妹|他的|她的|^他|^她|邻居|兄弟|同学|室友|"
                           r"帮他|替他|帮她|替她|他还欠|他欠|她欠")
_WRONG_NUMBER = re.compile(r"号码现在是我|以前是谁|不知道(他|她)是谁|不知道是谁|没有叫|不认识|打错|找错人|找错了|认错人|没这个人|没有这个人|新号|刚换的号|号码是新|新办的|不是这个号|查无此人")
_THIRD_PARTY = re.compile(r"我(爷爷|奶奶|外公|外婆|爸|妈|老公|老婆|哥|姐|弟|妹|儿子|女儿)[^，。,]{0,4}(去|出去|不在|在忙|睡|上班|干活)|"
                          r"我(爷爷|奶奶|外公|外婆|爸爸?|妈妈?|老公|老婆|哥|姐|儿子|女儿)在(做饭|忙|洗澡|开车|上班|睡觉|干活|外面|厕所)|"
                          r"这是.{1,4}[哩的]?(手机|电话)|(给|跟|告诉|转告)(他|她)(说|讲|传)|传话|(叫|让)(他|她)(回|打)|"
                          r"我是(他|她|机主)的?|(他|她|老板|老公|老婆|机主|我爸|我妈|我儿子|我女儿)(不在|出去|出门|在忙|在上班|上班去|睡|没在)|"
                          r"我是.{0,4}(帮忙的|店员|员工|伙计|同事|邻居)|手机(落|忘|放)|(帮|替)(他|她)接|"
                          r"(他|她)的(手机|电话)|我不是(他|她)|不是本人|不是(他|她)本人|这是(他|她)的?(手机|电话|号)|"
                          r"(他|她)的?(老婆|老公|媳妇|爱人|妈妈|爸爸|儿子|女儿)(?!的钱)")
_ADMITS_DEBT = re.compile(r"不是不认|(?<!没)我借过的|(?<!不)是我借的|我认(这笔|账|的)|我没说不认|借是借了|想起来了|"
                          r"是那(回|次)|(孙子|儿子|女儿|孩子|家里人).{0,3}帮我(弄|办|申请|借)")
_SELF_CORRECTION = re.compile(r"(我|刚才|刚刚).{0,3}(算|说|打|写|搞)错|口误|不对不对|哦不对|打错了|说错了|写错了")
_DISPUTE = re.compile(r"不是(我|俺|本人|咱)借|没(借|贷)过|没有借|没借|冒用|冒名|盗用|被人|金额不对|数不对|不认|不承认|"
                      r"诈骗|搞错|算错|多扣|不是(我|俺)的|没申请|没见着|没收到钱|没到账的钱")
_VULNERABLE = re.compile(r"住院|重病|癌|化疗|手术|去世|过世|病危|ICU|icu|重症|抢救|轻生|不想活|自杀")
_RELATIVE_ILL = re.compile(r"(老伴|老婆|老公|爱人|媳妇|丈夫|妻子|爸|妈|父亲|母亲|孩子|儿子|女儿|家人|家里人|老人)"
                           r"[^，,。；我]{0,4}(住院|重病|癌|化疗|手术|病危|ICU|icu|重症|抢救)")


def _vulnerable(text: str) -> bool:
    """The borrower's own illness or a bereavement or despair puts collection on hold; a
    relative's illness is a hardship (money went on care), not the borrower's incapacity."""
    if not _VULNERABLE.search(text):
        return False
    stripped = _RELATIVE_ILL.sub("", text)
    return bool(_VULNERABLE.search(stripped))
_NEG = r"(别|不要|不用|甭|莫|勿要|勿|不许|停止|禁止|不准|不想再?|不希望)"
_CEASE_VOICE = re.compile(_NEG + r".{0,6}(打电话|来电|电话|打给我|打过来|打了|打来|打)|"
                          r"电话.{0,6}(别|不要|莫|甭)(再)?(打|来)")
_CEASE_SMS = re.compile(_NEG + r".{0,6}(短信|发信息)|短信.{0,10}(别|不要|莫|甭)(再)?发")
_CEASE_CHAT = re.compile(_NEG + r".{0,6}(发消息|消息|在这|聊天|推送|app|APP|这里)|"
                         r"(app|APP|App|消息|推送).{0,6}(别|不要|莫|甭)(再)?发")
_CEASE_ALL = re.compile(r"(所有|任何|一切)(方式|渠道|联系)|都(别|不要|莫)|一律|再也(别|不要)|" + _NEG +
                        r".{0,6}(联系|骚扰|打扰|催)")
_HALF = re.compile(r"一半|半数")
_REST = re.compile(r"剩下|剩余|其余|余下|剩的")
_ALL = re.compile(r"全部|全额|全还|都还|还清|欠的全|所有的?钱|一次性还|一起还")
_SETTLE = re.compile(r"结清|提前.{0,4}还|一次性结|提前结")
_PAYDAY = re.compile(r"发工资|工资到|发薪|开工资|工资下来")
_TODAY = re.compile(r"马上(就)?(还(?!要|得|有|在|是)|转|付|处理|打款)|现在就|立刻|立即|这就|今天|今儿|今晚|晚点就|一会儿?就")
_NEG_DATE = re.compile(r"不行|不了|不能|不可以|没办法|来不及|够呛|悬|不太行|没法|有事|没空|不在家|出差")
_CORRECTION = re.compile(r"改成|改到|换成|还是|不对|说错|算了")
_COUNT = re.compile(r"分\s*([0-9]{1,2}|[一二两三四五六七八九十]{1,3})\s*(?:期|次|个月|月|回)")
_BARE_NUMBER = re.compile(r"^[^\d号日点期天月]{0,3}?(\d{1,7}(?:\.\d{1,2})?)\s*(块|元|块钱)?[吧吗啊呀]?$")
_PARTS = (("morning", re.compile(r"上午|早上|早晨|明早")), ("noon", re.compile(r"中午")),
          ("afternoon", re.compile(r"下午")), ("evening", re.compile(r"晚上|今晚|明晚|傍晚|夜里")))
_CALLBACK = re.compile(r"再说|晚点|回头|等会|一会|开会|开车|在忙|忙着|不方便|在上班|上班呢|再打|打过来|打给我|再联系|"
                       r"稍后|改天|待会|送餐|骑车|开着车|没空|赶.{0,2}会|给我打|给我回电|联系我")
_LATER = re.compile(r"再说|再聊|再打|再联系|打过来|打给我|晚点打|回头打|给我打|给我回电")
_EXPLICIT = {"waiver": re.compile(r"免|减|少还|打折|只还本金|优惠|便宜"),
             "extension": re.compile(r"宽限|延|extend|extension|postpone|delay|缓|推迟|晚几天|多给|再等|延长|往后|下个月|过几天|"
                                     r"过两天|晚点还|晚些")}
_PAY_STRICT = re.compile(r"还(?!没|是|有|在|要|给我|显示|催)|转|付|打款|交钱|整上")
_NOT_YES = re.compile(r"拉倒|算了|不对|不是|不行")
_THANKS = re.compile(r"谢谢|感谢|多谢|放心了|明白了|知道了|好的好的")
_ABUSIVE = re.compile(r"滚|傻|他妈|你妈|操|草你|死全家|神经病|脑残|垃圾|狗|骗子|王八|混蛋|去死|sb|SB|mb|MB|"
                      r"尼玛|你大爷|nmsl|cnm|吸血鬼|有病|脑子进水|白痴|智障|不要脸|畜生|人渣|缺德")
_INSULT_AT_US = re.compile(r"(你们?|这帮|一帮|你们这).{0,8}(吸血鬼|有病|脑子|白痴|智障|不要脸|畜生|人渣|缺德|垃圾|骗子|"
                           r"神经病|脑残|混蛋|王八)")
_COUNT_OK = re.compile(r"^(\d{1,2}|[一二两三四五六七八九十]{1,3})\s*期(也行|就行|吧|可以|行|好|也可以)?")
_SELF = re.compile(r"是我|我就是|我是本人|本人|找我|俺就是|是俺|我是[\u4e00-\u9fff]{1,3}$")
_WHY_REMIND = re.compile(r"还(给我|在|是|显示|催|发|老)|咋还催|怎么还催")
_HUMAN_WORDS = re.compile(r"人工|真人|客服|坐席|转接|活人|经理|主管|负责人")
_PAY_VERB = re.compile(r"还(?!要|得|有|在|是|没|不)|转|付|打款|交|给你们|凑|整上|结")
_NEG_AMOUNT = re.compile(r"不好看|不够|凑不齐|拿不出|太多|太少|不行|不了")
_INSTALMENT_HINT = re.compile(r"期|分开|慢慢|每个?月|几次|分批")
_CANNOT_PAY = re.compile(r"(还|拿|凑|付)不(上|起|清|了|出)")
_ASIDE = re.compile(r"^(省得|免得|以免|省的)|^(不好意思|抱歉|对不起|sorry|哎呀|唉|怎么了|咋了|啥事|什么事)[了啊呀哈？?]*$", re.I)
_ACK = re.compile(r"^(哦|噢|喔)?\s*(知道了|晓得了|明白了|懂了|了解了|清楚了)")
_TAKES_OFFER = re.compile(r"也行|也可以|也成|就行|就可以|就按|那就这样|就这么(办|定)|(?P<took>\S{1,4})就(?P=took)")
_TAG_ONLY = re.compile(r"^(你看)?(这样|那样|这么着)?(行不行|可不可以|可以吗|行吗|好不好|成不成|中不中|行不|可以不|成不|"
                       r"中不|好不|ok吗|OK吗)[？?吧啊]*$")
_CREDIT_Q = re.compile(r"征信|信用(记录|报告)?|黑名单|上报")
_INSTALMENT_WORDS = re.compile(r"分期|分[0-9一二两三四五六七八九十几]+[期次个月回]|每个?月还|分开还|分批|分几次")
_FILLER_SWEAR = re.compile(r"^(妈的|卧槽|我靠|靠|艹|妈呀|我去|我擦|tmd|TMD)$")
_WEEKDAY = re.compile(r"周|礼拜|星期")
_HOUR = re.compile(r"([0-9]{1,2}|[一二两三四五六七八九十]{1,3})点")
_CN_NUM = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
           "九": 9, "十": 10}
_AFFIRM_WORDS = re.compile(r"^(对|对的|对啊|对头|是的|是|行|可以|好|好的|嗯+|没问题|就这样|确认|没错|ok|OK|可以的|"
                           r"行吧|好吧|那就这样|就这么定了|同意|嗯呐|没毛病|要得|中|好嘞|妥了?|成|行的|"
                           r"可以可以|对对对?|是是是?|好好好?|嗯嗯|就格能|对额|是额|好额|好伐|要得|得嘞|行嘞|中嘞|"
                           r"确认无误|无误|没有问题|正确|确认的|就这|中中)"
                           r"[吧啊呀的了哈呢额嘞]*$")
_ASR_FIXES = ((re.compile(r"(?<![延])言期|严期|盐期"), "延期"),
              (re.compile(r"预期|鱼期|于期|余期|雨期|(?<![a-z])yq(?![a-z])", re.I), "逾期"),
              (re.compile(r"起速"), "起诉"), (re.compile(r"短新|短讯"), "短信"),
              (re.compile(r"里拜|理拜"), "礼拜"), (re.compile(r"明个|明儿个"), "明天"),
              (re.compile(r"后个|后儿个"), "后天"), (re.compile(r"做牢"), "坐牢"),
              (re.compile(r"支付包|支付保"), "支付宝"), (re.compile(r"罚席"), "罚息"),
              (re.compile(r"换(?=[0-9一二两三四五六七八九十百千万钱款了上清完吧的])"), "还"),
              (re.compile(r"(?<=[天号周礼拜月底])换"), "还"))
_WHERE_PAY = re.compile(r"(哪里|哪儿|在哪|去哪|怎么|如何|咋)(个)?还(?!在|是|显示|催|没|有|要)(款|钱)?(啊|呢|来着)?|"
                        r"(什么|啥|哪种|哪个)(方式|渠道|途径)")
_DENY_WORDS = re.compile(r"^(不|不是|不对|不行|不要|不用|没有|没有了|没了|不需要|算了|不用了)[吧啊呀的了哈]*$")


def _small(raw: str) -> int | None:
    if raw.isdigit():
        return int(raw)
    if raw == "十":
        return 10
    if raw.startswith("十"):
        return 10 + _CN_NUM.get(raw[1:], 0)
    if raw.endswith("十"):
        return _CN_NUM.get(raw[0], 1) * 10
    if len(raw) == 3 and raw[1] == "十":
        return _CN_NUM.get(raw[0], 0) * 10 + _CN_NUM.get(raw[2], 0)
    return _CN_NUM.get(raw[0])


def split_clauses(text: str) -> list[str]:
    """Clauses of a run-on message; a hypothetical (如果…) stays with its question."""
    parts: list[str] = []
    for chunk in _SPLIT.split(text.strip()):
        for piece in _CONJ.split(chunk):
            piece = piece.strip()
            if piece and not _CONJ.fullmatch(piece):
                parts.append(piece)
    merged: list[str] = []
    for part in parts:
        if merged and _CHANNELS_ONLY.fullmatch(merged[-1]):
            merged[-1] += " " + part  # "以后电话 短信 app消息都别发了": one request
        elif merged and _TAG_QUESTION.fullmatch(part):
            merged[-1] += part  # "听说逾期要坐牢 真的假的": the tag makes the clause a question
        elif merged and _HYPOTHETICAL.search(merged[-1]) and not QUESTION.search(merged[-1]):
            merged[-1] += "，" + part
        else:
            merged.append(part)
    return merged or [text.strip()]


def part_of_day(text: str) -> str | None:
    for part, pattern in _PARTS:
        if pattern.search(text):
            return part
    return None


def callback_slot(text: str, nlu: NluResult, today: date) -> dict[str, Any]:
    when = nlu.first("date")
    part = part_of_day(text)
    hour = None
    match = _HOUR.search(text)
    if match:
        hour = _small(match.group(1))
        if hour is not None and part in ("afternoon", "evening") and hour < 12:
            hour += 12
    day = str(when.value) if when else None  # a bare part of day: the engine says which day
    if when is not None and day is not None and date.fromisoformat(day) < today and \
            _WEEKDAY.search(when.text):
        day = (date.fromisoformat(day) + timedelta(days=7)).isoformat()  # "礼拜一" said on Thursday
    if day is None and re.search(r"明天|明儿", text):
        day = (today + timedelta(days=1)).isoformat()
    weekday = re.search(r"(下)?(?:周|礼拜|星期)([一二三四五六日天])", text)
    if day is None and weekday:  # "下周一下午再打过来"
        target = "一二三四五六日".index(weekday.group(2).replace("天", "日"))
        ahead = (target - today.weekday()) % 7 or 7
        if weekday.group(1) and ahead < 7 - today.weekday():
            ahead += 7  # 下周X: next week's, even when this week's is still ahead
        day = (today + timedelta(days=ahead)).isoformat()
    phrase = "".join(m.group(0) for m in re.finditer(
        r"今天|明天|后天|周[一二三四五六日天末]|上午|下午|晚上|中午|早上|[0-9一二三四五六七八九十两]{1,3}点半?",
        text)) or (when.text if when else "稍后")
    return {"date": day, "part": part, "hour": hour, "phrase": phrase}


def _cease_channels(text: str, current: str) -> list[str]:
    channels: list[str] = []
    if _CEASE_VOICE.search(text):
        channels.append("voice")
    if _CEASE_SMS.search(text):
        channels.append("sms")
    if _CEASE_CHAT.search(re.sub(r"短信(消息|信息)?", "", text)):
        channels.append("chat")
    named = [ch for ch, noun in _CHANNEL_NOUNS if noun.search(text)]
    if channels and re.search(r"都(别|不要|莫|甭|勿要)", text):
        channels += [ch for ch in named if ch not in channels]  # "电话 短信 app消息都别发了"
    if not channels and _CEASE_ALL.search(text):
        return named or ["all"]  # "短信电话都别整了": the channels named
    if re.search(r"所有|任何|一切|一律", text) and channels:
        return ["all"]
    return channels


_CHANNEL_NOUNS = (("voice", re.compile(r"电话|来电")), ("sms", re.compile(r"短信")),
                  ("chat", re.compile(r"消息|app|APP|App|推送")))
_TIMED_CONTACT = re.compile(r"(白天|晚上|上午|下午|中午|早上|夜里|上班时间|上班的时候|工作时间|\d+点(以前|之前|以后|之后|前|后))"
                            r".{0,3}" + _NEG)
_THIRD_PARTY_NUMBER = re.compile(r"(单位|公司|家里|家人|父母|爸妈|老婆|老公|同事|领导|朋友).{0,4}(打|联系|发)")
_PROMISE_WORDS = re.compile(r"我承诺|保证|一定|肯定")
_UNSURE = re.compile(r"可能|也许|说不好|说不准|不一定|看情况|不确定|再看看|说得准")
_VAGUE_PROMISE = re.compile(r"尽快|过几天|过两天|宽裕了|有钱了|回头|早晚")
_UNDECIDED = re.compile(r"还没想好|再想想|考虑一下|我就问问|随便问问|问问而已|还没定")
_COMPLAINT_NOW = re.compile(r"我要投诉|投诉(他|她|你们|这个|那个)|我要举报|保留.{0,4}投诉")
_CONDITIONAL = re.compile(r"否则|不然|要不然|再这样|如果|要是|保留")


@dataclass
class _Ctx:
    expect: str | None
    channel: str
    verified: bool
    today: date
    in_negotiation: bool
    correcting: bool = False  # an earlier clause said "打错了 / 不对": a bare number corrects


def _offer_terms(clause: str, ctx: _Ctx, kw: dict[str, Any]) -> list[Command]:
    """The figure in an acceptance ("7天就7天", "6期也行", "半个月就半个月"), as a slot."""
    days = re.search(r"([0-9]{1,2}|[一二两三四五六七八九十]{1,3})\s*天", clause)
    count = re.search(r"([0-9]{1,2}|[一二两三四五六七八九十]{1,3})\s*期", clause)
    if ctx.expect == "offer.extension" and (days or "半个月" in clause):
        n = 15 if days is None else _small(days.group(1))
        if n:
            return [SetSlot("date", (ctx.today + timedelta(days=n)).isoformat(), **kw)]
    if ctx.expect == "offer.installment" and count and (n := _small(count.group(1))):
        return [SetSlot("count", n, **kw)]
    return []


_FILLER = re.compile(r"先|就|再|还|吧|啊|呀|嗯|那|全部|一半|号|的|前|之前|以前|元|块|钱|行|好|可以|对|呗|哈|给你们?|"
                     r"今天|明天|后天|月底|下?周.|下?礼拜.|星期.|[\s，,。.!！~～]")


def _terms_only(clause: str, nlu: NluResult) -> bool:
    """Nothing in the clause but a date, an amount and filler words."""
    rest = clause
    for entity in sorted(nlu.entities, key=lambda e: -e.start):
        if entity.type in ("date", "amount"):
            rest = rest[:entity.start] + rest[entity.end:]
    return not _FILLER.sub("", rest) and len(clause) <= 14


def _amount_slot(clause: str, nlu: NluResult, ctx: _Ctx) -> Any:
    if re.search(r"作废|不算|不算数|取消", clause):
        return None  # "之前说的2000那个作废"
    amount = nlu.first("amount")
    spoken = _YUAN_JIAO.search(clause)
    if spoken:  # "1157块48" is 1157.48
        return f"{spoken.group(1)}.{spoken.group(2)}{spoken.group(3) or '0'}"
    if amount is not None:
        plain = _TAG_Q.sub("", clause[amount.end:amount.end + 6])
        before = clause[max(0, amount.start - 3):amount.start]
        if _NEG_AMOUNT.search(plain) or _NEG_AMOUNT.search(before) or re.search(r"不是|不对", before):
            return None  # "2000凑不齐": the amount the borrower cannot do
        return str(amount.value)
    if _CANNOT_PAY.search(clause):
        return None  # "一次性还不上": what the borrower cannot do
    if _HALF.search(clause):
        return "half"
    if _REST.search(clause):
        return "rest"
    if _ALL.search(clause) and not _SETTLE.search(clause):
        return "all"
    if ctx.expect in ("promise.ask_amount", "promise.counter", "promise.readback") and \
            nlu.first("date") is None:
        bare = _BARE_NUMBER.match(clause)
        if bare:
            return bare.group(1)
    return None


def _date_slot(clause: str, nlu: NluResult, today: date | None = None) -> Any:
    when = nlu.first("date")
    if when is not None:
        value = date.fromisoformat(str(when.value))
        # "礼拜一" said on a Thursday means the coming Monday, not three days ago.
        if today is not None and value < today and _WEEKDAY.search(when.text) and \
                (today - value).days < 7:
            value += timedelta(days=7)
        return value.isoformat()
    if _PAYDAY.search(clause):
        return "payday"
    if _TODAY.search(clause):
        return "today"
    return None


def _clause_commands(clause: str, nlu: NluResult, ctx: _Ctx) -> list[Command]:
    intent, conf = nlu.intent, nlu.intent_confidence
    question = bool(QUESTION.search(clause))
    out: list[Command] = []
    kw = {"clause": clause, "confidence": round(conf, 3)}

    # 1. Guards first: instructions in the message never change records; bare numbers.
    if _AFFIRM_WORDS.match(clause) or re.fullmatch(r"(嗯呐|嗯)\s*(没毛病|没问题|可以|行|对)", clause):
        return [Affirm(**kw)]
    if _ASIDE.search(clause) or _TAG_ONLY.match(clause):
        return []  # "省得你们天天发消息", "你看这样行不行": an aside, not a request
    if ctx.expect and ctx.expect.startswith(("dispute.", "cease.", "disclose.")) and \
            _ACK.search(clause):
        return []  # "晓得了" to "do you contest it?" / "can you pay today?" is not a yes
    if ctx.expect == "dispute.confirm" and _ADMITS_DEBT.search(clause):
        return [Deny(**kw)]
    if ctx.expect and ctx.expect.startswith("offer.") and _TAKES_OFFER.search(clause) \
            and not question:
        return [*_offer_terms(clause, ctx, kw), Affirm(**kw)]  # "7天就7天吧": takes the offer
    if ctx.correcting and not re.match(r"不是|不对", clause) and (
            bare := _BARE_NUMBER.match(re.sub(r"^(是|应该是|改成|改为)", "", clause))):
        return [CorrectSlot("amount", bare.group(1), **{**kw, "confidence": 1.0})]
    if _SELF_CORRECTION.search(clause):
        ctx.correcting = True
    if _INJECTION.search(clause):
        return [Answer("cannot_change_records", **kw)]
    spans = find_sensitive(clause)
    if spans:
        rest = clause
        for _, start, end in reversed(spans):
            rest = rest[:start] + rest[end:]
        if not re.search(r"[\u4e00-\u9fff]{2,}", rest):
            return [Clarify("sensitive_numbers", **kw)]
    if _GOODBYE.match(clause):
        return [Goodbye(**kw)]
    # 2. Knowledge questions that the classifier mislabels.
    if _ROBOT.search(clause) and not _TO_HUMAN.search(clause):
        return [Answer("robot", **kw)]
    if _INSULT_AT_US.search(clause) and not question:
        return [StartFlow("abuse", **kw)]
    if _PERSONAL.search(clause) or re.search(r"卡号.{0,10}转|转.{0,6}卡号|给我的.{0,4}卡号", clause):
        return [Answer("personal_account", **kw)]
    if _OTHER_PERSON.search(clause) and (intent in (Intent.ASK_BALANCE, Intent.DISPUTE,
                                                   Intent.ASK_DUE_DATE) or question) \
            and not _THIRD_PARTY.search(clause):
        return [Answer("privacy", **kw)]
    if _LEGAL.search(clause) and (question or intent is Intent.ASK_CREDIT_IMPACT):
        return [Answer("legal", **kw)]
    if re.search(r"告诉我.{0,10}(总额|多少|金额|欠款)|应还总额|一共(要|得)?还多少", clause) and \
            nlu.first("amount") is None:
        return [Answer("balance", **kw)]  # "请先告诉我精确到分的应还总额": a question
    if _CREDIT_Q.search(clause) and question:
        return [Answer("credit_impact", **kw)]
    if question and re.search(r"手续费|违约金|服务费|罚息|利息|高利贷|利率", clause) and \
            nlu.first("amount") is None and not re.search(r"免|减|一共|总共|合计|多少钱|要还多少|还多少", clause):
        if re.search(r"提前|结清", clause):
            return [Answer("early_settlement", **kw)]
        return [Answer("fees", **kw)]
    if re.search(r"(给|发|告诉)我.{0,4}(卡号|账号|账户|收款)", clause):
        return [Answer("payment_method", **kw)]  # official channels only, never a card number
    if _OVERDUE_Q.search(clause) and not _PAID_WORDS.search(clause):
        return [Answer("overdue_status", **kw)]
    if re.search(r"(别|不要|不能)(告诉|联系|找|打给|通知)(我)?的?(爸妈|家人|父母|单位|公司|同事|领导|老婆|老公|"
                 r"家里)", clause):
        return [Answer("legal", **kw)]  # we never contact family or employers to collect
    if _WHY_CONTACT.search(clause) and not _PAID_WORDS.search(clause) and not (
            _cease_channels(clause, ctx.channel) and not re.search(r"为什么|为啥|凭什么", clause)) and (
            question or intent is not Intent.STOP_CONTACT):
        return [Answer("collection_practice", **kw)]
    if _WHERE_PAY.search(clause) and question and nlu.first("amount") is None:
        return [Answer("payment_method", **kw)]
    if question and nlu.first("channel") is not None and nlu.first("amount") is None and \
            not _PAID_WORDS.search(clause):
        channel = nlu.first("channel")
        return [Answer("payment_method", args={"channel": str(channel.value)} if channel else {},
                       **kw)]
    if (_PAID_WORDS.search(clause) and (question or _PAID_Q.search(clause))
            or re.search(r"(还|仍|仍然|怎么还)(显示|是|在)逾期|为什么.{0,4}逾期", clause)) \
            and intent in (Intent.CLAIM_PAID, Intent.ASK_PAYMENT_METHOD, Intent.DISPUTE,
                           Intent.ASK_BALANCE, Intent.OTHER, Intent.ASK_DUE_DATE):
        return [Answer("payment_history", **kw)]
    # 3. Cease: per channel, only with a negation; several channels in one request.
    channels = _cease_channels(clause, ctx.channel)
    if channels and _THIRD_PARTY_NUMBER.search(clause) and not re.search(r"给我|我的?(手机|电话)", clause):
        return [Answer("legal", **kw)]  # "别往我原来单位打电话": we never call employers
    if channels and not _TIMED_CONTACT.search(clause):
        return [StartFlow("cease", args={"channels": channels}, **kw)]
    if channels:
        return [Clarify("unclear", **kw)]  # "白天别打": a time preference, not a cease
    if intent is Intent.STOP_CONTACT:
        if conf < 0.7:
            return [Clarify("unclear", **kw)]
        return [StartFlow("cease", confirm=True, args={"channels": []}, **kw)]
    # 4. Who is on the line: only "I don't know him / new number" is a wrong number.
    if _WRONG_NUMBER.search(clause) and not (ctx.verified and ctx.channel == "chat"
                                             or _SELF_CORRECTION.search(clause)):
        return [StartFlow("wrong_number", **kw)]  # a logged-in chat is never a wrong number
    if _THIRD_PARTY.search(clause):
        return [StartFlow("third_party", **kw)]
    if intent is Intent.WRONG_PARTY:
        if not ctx.verified:
            return [Clarify("wrong_party", candidate="wrong_party", **kw)]
        return [Clarify("unclear", **kw)]
    # 5. Collection-changing statements need confidence and no question.
    if _COMPLAINT_NOW.search(clause):
        if _CONDITIONAL.search(clause):
            return [Clarify("unclear", **kw)]  # "否则我将投诉": a warning, not a complaint
        return [StartFlow("complaint", **kw)]
    if intent is Intent.DISPUTE and _EXPLICIT["waiver"].search(clause) and "罚息" in clause:
        intent = Intent.REQUEST_WAIVER  # "罚息不合理 我要求减免": a waiver request
    if intent is Intent.DISPUTE and (_ADMITS_DEBT.search(clause) or _SELF_CORRECTION.search(clause)):
        if nlu.first("date") is None and nlu.first("amount") is None:
            return []  # "我借过的", "我刚才算错了": the borrower owns the debt
        intent = Intent.PROMISE_TO_PAY  # "不对我说错了 是后天 两千没错": corrected terms
    if intent is Intent.DISPUTE:
        if question or conf < 0.75:
            return [Clarify("dispute_unsure", candidate="dispute", **kw)]
        return [StartFlow("dispute", confirm=not (_DISPUTE.search(clause) or conf >= 0.9),
                          **kw)]
    if _DISPUTE.search(clause) and not question and not _SELF_CORRECTION.search(clause) and intent in (Intent.OTHER, Intent.COMPLAINT,
                                                               Intent.REFUSE_TO_PAY):
        return [StartFlow("dispute", confirm=True, **kw)]
    when_now = _date_slot(clause, nlu, ctx.today)
    if intent is Intent.CLAIM_PAID and (re.search(r"把.{0,8}还了", clause) or (
            when_now not in (None, "payday", "today") and str(when_now) > ctx.today.isoformat())):
        intent = Intent.PROMISE_TO_PAY  # "礼拜六就还了": a plan, not a payment made
    if _HYPOTHETICAL.search(clause) and intent in (Intent.CLAIM_PAID, Intent.DISPUTE,
                                                   Intent.STOP_CONTACT, Intent.WRONG_PARTY):
        return [Answer("payment_history", **kw)] if intent is Intent.CLAIM_PAID else [
            Clarify("unclear", **kw)]  # "假如我昨天已经转过去了…": a what-if, not a claim
    if intent is Intent.CLAIM_PAID and not _PAID_WORDS.search(clause):
        intent = Intent.PROMISE_TO_PAY if nlu.first("amount") is not None else Intent.OTHER
    if intent is Intent.CLAIM_PAID:
        if question or conf < 0.7:
            return [Answer("payment_history", **kw)]
        return [StartFlow("claim_paid", **kw)]
    if intent is Intent.HARDSHIP and nlu.first("amount") is not None and _PAY_VERB.search(clause):
        intent = Intent.PROMISE_TO_PAY  # "手头能先凑600出来": a partial promise
    if intent is Intent.HARDSHIP and conf < 0.75 and nlu.first("hardship_reason") is None and \
            not _vulnerable(clause):
        intent = Intent.OTHER  # "说实话", "工资15号才发": not a hardship statement
    if intent is Intent.HARDSHIP:
        reason = nlu.first("hardship_reason")
        vulnerable = _vulnerable(clause) and not question and conf >= 0.6
        return [StartFlow("hardship", args={"reason": str(reason.value) if reason else "",
                                            "vulnerable": vulnerable}, **kw)]
    if intent is Intent.COMPLAINT:
        if conf < 0.6 or _CONDITIONAL.search(clause):
            return [Clarify("complaint_unsure", **kw)]
        return [StartFlow("complaint", **kw)]
    if intent is Intent.ABUSE and not _FILLER_SWEAR.match(clause) and conf >= 0.6 \
            and not question and _ABUSIVE.search(clause):
        return [StartFlow("abuse", **kw)]
    if _TO_HUMAN.search(clause) or (intent is Intent.REQUEST_HUMAN and _HUMAN_WORDS.search(clause)):
        return [HandOff(**kw)]
    # 6. Negotiation: slots from any clause; a date that is refused is a "no" to that date.
    if re.search(r"万一|要是.{0,6}不够|怕.{0,4}不够", clause) or _UNSURE.search(clause):
        return []  # "下周一万一钱不够", "可能明天 也可能下礼拜": a worry, not a date
    if _VAGUE_PROMISE.search(clause) and not question and (
            intent is Intent.PROMISE_TO_PAY or _PAY_VERB.search(clause) or ctx.in_negotiation):
        if ctx.expect and ctx.expect.startswith("offer."):
            return [Clarify("unclear", **kw)]  # evasive about an offer: neither yes nor a date
        return [StartFlow("promise", **kw)]  # "尽快还 过几天就还": willing, no date yet: ask it
    if _UNDECIDED.search(clause):
        return [Cancel(**kw)] if ctx.in_negotiation else [Clarify("unclear", **kw)]
    if question and _HYPOTHETICAL.search(clause) and re.search(r"拖|晚|不还|推迟|迟|逾期", clause):
        return [Answer("credit_impact", **kw)]  # "要是拖到15号再还 会怎么样": consequences
    amount = _amount_slot(clause, nlu, ctx)
    when = when_now
    slot_cls = CorrectSlot if _CORRECTION.search(clause) else SetSlot
    if when is not None and _NEG_DATE.search(_TAG_Q.sub("", clause)) and \
            not re.search(r"一定|肯定|保证", clause):
        return [Deny(slot="date", **kw)]
    timing = callback_slot(clause, nlu, ctx.today)
    has_time = bool(timing["date"] or timing["part"] or timing["hour"])
    if _LATER.search(clause) and not _PAY_VERB.search(clause) and amount is None:
        intent = Intent.CALLBACK_LATER  # "明天下午再说吧": talk later, not a promise
    if ctx.expect == "callback.ask_time" and has_time:
        return [SetSlot("callback_time", timing, **kw), StartFlow("callback", **kw)]
    if intent is Intent.CALLBACK_LATER and amount is None and (
            _CALLBACK.search(clause) or has_time) and not (
            ctx.in_negotiation and not _LATER.search(clause)):
        out = [SetSlot("callback_time", timing, **kw)] if has_time else []
        return [*out, StartFlow("callback", **kw)]
    count_ok = _COUNT_OK.match(clause)
    if count_ok and ctx.expect == "offer.installment":  # "6期也行"
        value = _small(count_ok.group(1))
        return [SetSlot("count", value, **kw), StartFlow("installment", **kw),
                *([Affirm(**kw)] if count_ok.group(2) else [])]
    count = _COUNT.search(clause)
    if count or _INSTALMENT_WORDS.search(clause) or (
            intent is Intent.REQUEST_INSTALLMENT and amount is None and when is None
            and _INSTALMENT_HINT.search(clause)):
        if count:
            out.append(SetSlot("count", _small(count.group(1)), **kw))
        return [*out, StartFlow("installment", **kw)]
    if intent is Intent.REQUEST_INSTALLMENT:
        intent = Intent.PROMISE_TO_PAY if (amount is not None or when is not None) else Intent.OTHER
    if intent is Intent.REQUEST_WAIVER and amount is not None and not _EXPLICIT["waiver"].search(clause):
        intent = Intent.PROMISE_TO_PAY  # "周五只能凑一千五": an amount, not a waiver
    if intent is Intent.REQUEST_WAIVER:
        return [StartFlow("waiver", **kw)]
    if intent is Intent.REQUEST_EXTENSION:
        if amount is None and when is None and not _EXPLICIT["extension"].search(clause):
            return [Clarify("unclear", **kw)]
        if amount is not None or re.search(r"先还|先转|先付", clause):
            intent = Intent.PROMISE_TO_PAY
        else:
            if when not in (None, "payday", "today"):
                out.append(SetSlot("date", when, **kw))
            return [*out, StartFlow("extension", **kw)]
    if intent is Intent.ASK_EARLY_SETTLEMENT and not question and (
            amount in ("all", "rest") or when is not None or (
                re.search(r"把.{0,6}还", clause) and not _SETTLE.search(clause))):
        intent = Intent.PROMISE_TO_PAY
    if intent is Intent.REFUSE_TO_PAY and not re.search(r"不是不(想)?还|没说不还", clause) and (
            conf >= 0.6 or re.search(r"不还|不想还|没钱|不会还|不给", clause)):
        return [StartFlow("refusal", **kw)]
    if intent is Intent.PROMISE_TO_PAY and amount is None and when is None and conf < 0.6 and \
            not _PAY_VERB.search(clause):
        intent = Intent.OTHER  # "这个钱我知道": not a promise
    negotiating = ctx.in_negotiation or bool(ctx.expect and ctx.expect.startswith(
        ("promise.", "offer.", "disclose.", "hardship.", "refusal.")))
    if intent is Intent.PROMISE_TO_PAY and amount is None and when is None and \
            ctx.expect and ctx.expect.startswith("offer."):
        return []  # "15天就15天": taking the offer, not a new promise
    slot_only = _terms_only(clause, nlu)  # "明天", "13号 先还2000": terms, nothing else
    correcting = bool(re.search(r"改到|改成|换到|推到|挪到|改为", clause))
    if intent is Intent.PROMISE_TO_PAY or (
            (amount is not None or when is not None) and not question
            and (negotiating or _PAY_VERB.search(clause) or slot_only or correcting)
            and intent not in (Intent.ASK_FEES, Intent.ASK_EARLY_SETTLEMENT,
                               Intent.ASK_PAYMENT_METHOD, Intent.ASK_CREDIT_IMPACT,
                               Intent.COMPLAINT)):
        strength = 1.0 if _PAY_STRICT.search(clause) or _PROMISE_WORDS.search(clause) else (
            0.8 if intent is Intent.PROMISE_TO_PAY or _PAY_VERB.search(clause) or correcting
            else 0.5)
        strong = {**kw, "confidence": strength}
        if amount is not None:
            out.append(slot_cls("amount", amount, **strong))
        if when is not None:
            out.append(slot_cls("date", when, **strong))
        if intent is Intent.PROMISE_TO_PAY or not ctx.in_negotiation:
            out.append(StartFlow("promise", **kw))
        if clause.startswith(("对", "行", "好", "可以", "是的", "嗯")) and not _NOT_YES.search(clause):
            out.insert(0, Affirm(**kw))
        return out
    # 7. Questions: the knowledge base.
    topics = {Intent.ASK_BALANCE: "balance", Intent.ASK_DUE_DATE: "due_date",
              Intent.ASK_PAYMENT_METHOD: "payment_method", Intent.ASK_FEES: "fees",
              Intent.ASK_EARLY_SETTLEMENT: "early_settlement",
              Intent.ASK_CREDIT_IMPACT: "credit_impact"}
    if intent in topics:
        if not question and (conf < 0.9 or re.search(r"紧|困难|不够|压力|吃力|拿不出|记录|截图|留存|录音", clause)):
            return [Clarify("unclear", **kw)]
        if intent is Intent.ASK_PAYMENT_METHOD and _WHY_REMIND.search(clause):
            return [Clarify("unclear", **kw)]  # "怎么还给我发提醒": not how to pay
        channel = nlu.first("channel")
        args = {"channel": str(channel.value)} if channel else {}
        return [Answer(topics[intent], args=args, **kw)]
    # 8. Yes / no / identity, read in context by the engine.
    if intent is Intent.CONFIRM_IDENTITY and ctx.verified and not _SELF.search(clause):
        if re.match(r"(是|对|嗯|好|行)", clause):
            return [Affirm(**kw)]  # "是的是的": yes to the question asked
        return [Clarify("unclear", **kw)]  # a stray "我" in garbled speech is not a yes
    if intent is Intent.CONFIRM_IDENTITY or (not ctx.verified and _SELF.search(clause)
                                             and not question):
        if question and not _SELF.search(clause):
            return [Clarify("unclear", **kw)]  # "是什么事": not "it's me"
        return [SetSlot("identity", "self", **kw), Affirm(**kw)]
    if _THANKS.search(clause) and ctx.expect in ("anything_else", None):
        return [Goodbye(**kw)] if ctx.expect == "anything_else" else [Clarify("thanks", **kw)]
    if _NOT_YES.search(clause) and intent is Intent.AFFIRM:
        return [Cancel(**kw)] if ctx.in_negotiation else [Clarify("unclear", **kw)]
    if _AFFIRM_WORDS.match(clause) or (intent is Intent.AFFIRM and conf >= 0.9
                                       and len(clause) <= 6):
        return [Affirm(**kw)]
    if intent is Intent.AFFIRM:
        return [Clarify("unclear", **kw)]
    if (intent is Intent.DENY and conf >= 0.7) or _DENY_WORDS.match(clause):
        if re.search(r"算了|不要了|不用了|取消", clause) and ctx.in_negotiation:
            return [Cancel(**kw)]
        return [Deny(**kw)]
    if intent is Intent.GREETING:
        return [Answer("greeting", **kw)]
    return [Clarify("unclear", **kw)]


def understand(text: str, nlu: Parser, ref: datetime, *, expect: str | None = None,
               channel: str = "chat", verified: bool = True,
               in_negotiation: bool = False) -> Understanding:
    """Commands for one message; ``expect`` is the act of the agent's last question."""
    tokens = text.split()
    if len(tokens) >= 3 and sum(len(t) == 1 for t in tokens) >= 0.6 * len(tokens):
        if sum(t in _FILLERS for t in tokens) >= 3:
            # "那个 我 嗯 妈 十 呃 号 吧": recognition noise, word by word; ask, never guess
            return Understanding(commands=[Clarify("unclear", clause=text, confidence=0.0)],
                                 whole=nlu.parse_batch([text], ref=ref)[0])
        # "是 我 你 说 吧 快 点": a recogniser that spaces every character; words, not clauses
        text = re.sub(r"(?<=[\u4e00-\u9fff\d])\s+(?=[\u4e00-\u9fff\d])", "", text)
    for pattern, fixed in (*_ASR_FIXES, *_DIALECT):  # homophones (预期→逾期), 粤语 (听日→明天)
        text = pattern.sub(fixed, text)
    clauses = split_clauses(text)
    if len(clauses) > 1 and clauses[0] in ("对了", "哦对了", "还有"):
        clauses = clauses[1:]  # "对了 …": by the way, not "yes"
    results = nlu.parse_batch([*clauses, text] if len(clauses) > 1 else clauses, ref=ref)
    whole = results[-1]
    ctx = _Ctx(expect=expect, channel=channel, verified=verified, today=ref.date(),
               in_negotiation=in_negotiation)
    commands: list[Command] = []
    for clause, result in zip(clauses, results, strict=False):
        for command in _clause_commands(clause, result, ctx):
            commands.append(command)
            if isinstance(command, StartFlow) and command.flow == "promise":
                ctx.in_negotiation = True
    if expect and expect.startswith("offer.") and any(isinstance(c, Affirm) for c in commands):
        offered = expect.removeprefix("offer.")  # the terms said with the yes amend the offer
        commands = [c for c in commands if not (isinstance(c, StartFlow) and c.flow in (
            offered, "promise"))]
    commands = _payday(commands, clauses, results)
    commands = _message_rules(commands, text)
    commands = _tidy(commands)
    return Understanding(commands=commands, clauses=list(zip(clauses, results, strict=False)),
                         whole=whole)


def _payday(commands: list[Command], clauses: list[str],
            results: list[NluResult]) -> list[Command]:
    """"15号发工资 发工资那天还清": the payday is a date the borrower named; remember it."""
    named = next((str(r.first("date").value) for c, r in zip(clauses, results, strict=False)
                  if _PAYDAY.search(c) and r.first("date") is not None), None)
    if named is None:
        return commands
    out: list[Command] = []
    for command in commands:
        if isinstance(command, SetSlot | CorrectSlot) and command.slot == "date" and \
                command.value == "payday":
            command = type(command)("date", named, clause=command.clause,
                                    confidence=command.confidence)
        out.append(command)
    paying = any(isinstance(c, StartFlow) and c.flow == "promise" or
                 isinstance(c, SetSlot | CorrectSlot) and c.slot == "amount" for c in out)
    dated = any(isinstance(c, SetSlot | CorrectSlot) and c.slot == "date" for c in out)
    if paying and not dated:  # "15号才发工资 到时候先还1800": the payday is the date
        out.append(SetSlot("date", named, clause="", confidence=0.8))
    return [*out, SetSlot("payday", named, clause="", confidence=1.0)]


def _message_rules(commands: list[Command], text: str) -> list[Command]:
    """Rules over the whole message: an instruction to the system voids the message; a
    question about someone else's loan is answered for nobody; a promise in the message
    outweighs a hardship aside, a cancel, a vague cease, a condition phrased as a refusal."""
    injected = next((c for c in commands if isinstance(c, Answer)
                     and c.topic == "cannot_change_records"), None)
    if injected is not None:
        return [injected]
    if _ADMITS_DEBT.search(text):  # "哦不是不认账，我借过的": no clause of it is a dispute
        commands = [c for c in commands if not (
            isinstance(c, StartFlow) and c.flow == "dispute"
            or isinstance(c, Clarify) and c.candidate == "dispute")]
    if any(isinstance(c, StartFlow) and c.flow == "waiver" for c in commands):
        commands = [c for c in commands if not (  # "罚息不合理 我要求减免": a waiver request
            isinstance(c, StartFlow | Clarify) and getattr(c, "flow", getattr(c, "candidate", ""))
            == "dispute" and re.search(r"罚息|利息|费用|不合理|太高|过高|成本|收费", c.clause))]
    if any(isinstance(c, StartFlow) and c.flow == "complaint" for c in commands):
        commands = [c for c in commands if not (  # a complaint about us, not a contested debt
            isinstance(c, StartFlow) and c.flow == "dispute" and c.confirm
            or isinstance(c, Clarify) and c.candidate == "dispute")]
    if any(isinstance(c, Answer) and c.topic == "privacy" for c in commands):
        commands = [c for c in commands if not (
            isinstance(c, Answer) and c.topic in ("balance", "due_date", "overdue_status")
            or isinstance(c, Clarify) and c.candidate == "dispute"
            or isinstance(c, StartFlow) and c.flow == "dispute")]
    if any(isinstance(c, StartFlow) and c.flow == "claim_paid" for c in commands):
        commands = [c for c in commands if not (
            isinstance(c, StartFlow) and c.flow == "promise"
            or isinstance(c, SetSlot | CorrectSlot) and c.slot in ("amount", "date"))]
    if _vulnerable(text) and not QUESTION.search(text):
        commands = [StartFlow("hardship", args={**c.args, "vulnerable": True}, clause=c.clause,
                              confidence=c.confidence)
                    if isinstance(c, StartFlow) and c.flow == "hardship" else c
                    for c in commands]
    terms = any(isinstance(c, SetSlot | CorrectSlot) and c.slot in ("amount", "date")
                for c in commands)
    plans = any(isinstance(c, StartFlow) and c.flow in ("installment", "extension", "waiver",
                                                        "hardship") for c in commands)
    if plans and not terms:  # "钱我肯定会还 … 能不能分期": the plan is the request
        commands = [c for c in commands if not (isinstance(c, StartFlow) and c.flow == "promise")]
    promising = terms or any(isinstance(c, StartFlow) and c.flow == "promise" for c in commands)
    promised = any(isinstance(c, SetSlot | CorrectSlot) and c.slot in ("amount", "date")
                   and c.confidence >= 0.8 for c in commands)
    answered = any(isinstance(c, Answer) and c.topic != "greeting" for c in commands)
    safety = [c for c in commands if isinstance(c, StartFlow) and c.flow in (
        "complaint", "dispute", "claim_paid", "wrong_number", "third_party", "hardship") or
        isinstance(c, StartFlow) and c.flow == "cease" and not c.confirm]
    out: list[Command] = []
    for command in commands:
        if isinstance(command, StartFlow):
            if command.flow == "hardship" and promising and not command.args.get("vulnerable"):
                continue
            elif command.flow == "hardship" and any(
                    isinstance(c, StartFlow) and c.flow == "dispute" for c in commands):
                continue
            elif command.flow == "cease" and command.confirm and (safety or terms or plans):
                continue  # a vague "别…" beside a promise is not a cease request
            elif command.flow == "callback" and (promised or promising and not any(
                    isinstance(c, SetSlot) and c.slot == "callback_time" for c in commands)):
                continue  # "在开会 … 周五把钱全部还上", "月底再说 30号还": the promise is the point
            elif command.flow == "callback" and answered and not any(
                    isinstance(c, SetSlot) and c.slot == "callback_time" for c in commands):
                continue  # "开会间隙 长话短说 欠多少": they are talking now
            elif command.flow in ("waiver", "extension") and promising and not (
                    _EXPLICIT[command.flow].search(command.clause)):
                continue  # "2000凑不齐 下周一还1800": the promise is the request
            elif command.flow == "refusal" and any(
                    isinstance(c, StartFlow) and c.flow in ("waiver", "installment", "extension",
                                                           "promise") for c in commands):
                continue  # "不免我就不还了": a condition on the request, not a refusal
        if isinstance(command, Cancel) and (promising or any(isinstance(c, Affirm)
                                                             for c in commands)):
            continue
        out.append(command)
    return out


def _tidy(commands: list[Command]) -> list[Command]:
    """Drop noise a run-on message produces: greetings or clarifications beside real requests,
    duplicate answers and flows."""
    real = [c for c in commands if not isinstance(c, Clarify | Answer) or
            (isinstance(c, Answer) and c.topic != "greeting")]
    if real:
        commands = [c for c in commands
                    if not (isinstance(c, Clarify) and c.candidate is None)
                    and not (isinstance(c, Answer) and c.topic == "greeting")]
    ceases = [c for c in commands if isinstance(c, StartFlow) and c.flow == "cease"]
    if len(ceases) > 1:  # "莫再打了 短信也莫发了": one request over several channels
        channels: list[str] = []
        for cease in ceases:
            channels += [ch for ch in cease.args.get("channels", []) if ch not in channels]
        merged = StartFlow("cease", confirm=all(c.confirm for c in ceases),
                           args={"channels": ["all"] if "all" in channels else channels},
                           clause=ceases[0].clause, confidence=ceases[0].confidence)
        commands = [merged if c is ceases[0] else c for c in commands if c not in ceases[1:]]
    seen: set[tuple[str, str]] = set()
    out: list[Command] = []
    for command in commands:
        key = (command.name, getattr(command, "topic", "") or getattr(command, "flow", ""))
        if isinstance(command, Answer | StartFlow | Affirm | Deny | Goodbye) and key in seen:
            continue
        seen.add(key)
        out.append(command)
    return out
