"""Content rules: the catalogue's phrase guide (§2a) plus paraphrases of our own.

Every "block" line must be blocked with the right rule id and every "allow" line
must pass: both missed violations and over-blocked polite facts are failures.
The GUIDE_* tables are the catalogue's lines verbatim (slash variants expanded);
the EXTRA_* tables are new paraphrases that show the matcher generalises.
"""

from __future__ import annotations

import pytest

from agent.policy.content import (
    VERIFIED_BORROWER,
    UtteranceContext,
    Verdict,
    check_utterance,
    safe_fallback,
)
from agent.policy.profile import load_profile

CN = load_profile("cn")
US = load_profile("us")

VB = VERIFIED_BORROWER  # verified borrower, mid-conversation
TP = UtteranceContext(identity_verified=False, addressee="third_party")
UNVERIFIED = UtteranceContext(identity_verified=False, addressee="borrower")
OPEN = UtteranceContext(identity_verified=False, addressee="unknown", is_opening=True)
OPEN_VB = UtteranceContext(identity_verified=True, addressee="borrower", is_opening=True)

CTX = {"VB": VB, "TP": TP, "OPEN": OPEN, "UNVERIFIED": UNVERIFIED}

# --------------------------------------------------------------------------- cn guide

GUIDE_BLOCK: list[tuple[str, str, str]] = [
    ("threat", "再不还，我们就派人去你家找你", "VB"),
    ("threat", "再不还，我们就派人去你单位找你", "VB"),
    ("threat", "你出门小心点", "VB"),
    ("threat", "我们知道你孩子在哪上学", "VB"),
    ("threat", "打到你还为止", "VB"),
    ("threat", "让你在老家抬不起头", "VB"),
    ("insult", "老赖", "VB"),
    ("insult", "不要脸", "VB"),
    ("insult", "骗子", "VB"),
    ("insult", "借钱不还，你家里怎么教的", "VB"),
    ("insult", "你他妈的赶紧还钱", "VB"),
    ("insult", "傻逼", "VB"),
    ("insult", "滚蛋", "VB"),
    ("insult", "卧槽，你还不还了", "VB"),
    ("false_legal_claim", "不还就要坐牢", "VB"),
    ("false_legal_claim", "已经立案，马上抓你", "VB"),
    ("false_legal_claim", "你这是恶意透支", "VB"),
    ("false_legal_claim", "你这是诈骗", "VB"),
    ("false_legal_claim", "法院明天冻结你所有银行卡", "VB"),
    ("false_legal_claim", "马上把你列入失信黑名单，坐不了高铁", "VB"),
    ("false_legal_claim", "你父母得替你还", "VB"),
    ("false_legal_claim", "你子女得替你还", "VB"),
    ("false_legal_claim", "影响孩子考公", "VB"),
    ("false_legal_claim", "征信一辈子都黑了", "VB"),
    ("impersonation", "我是XX法院的", "VB"),
    ("impersonation", "我是XX公安局经侦的", "VB"),
    ("impersonation", "我们是金融监管总局派来的", "VB"),
    ("impersonation", "律师已经起诉你了", "VB"),
    ("impersonation", "我是你朋友，找你有急事", "VB"),
    ("impersonation", "我是真人，不是机器人", "VB"),
    ("third_party_disclosure", "他在我们这借了3万没还", "TP"),
    ("third_party_disclosure", "他逾期了，请转告他赶紧还钱", "TP"),
    ("third_party_disclosure", "你是紧急联系人，有义务替他还", "TP"),
    ("exposure_threat", "不还就发到你家族群", "VB"),
    ("exposure_threat", "不还就发到你朋友圈", "VB"),
    ("exposure_threat", "给你通讯录里每个人打电话", "VB"),
    ("exposure_threat", "通知你单位领导", "VB"),
    ("exposure_threat", "做成通缉令发出去", "VB"),
    ("induce_illegal_funding", "去别的平台借点先还我们", "VB"),
    ("induce_illegal_funding", "信用卡套现还款", "VB"),
    ("induce_illegal_funding", "转到我个人微信", "VB"),
    ("induce_illegal_funding", "转到我个人支付宝", "VB"),
    ("induce_illegal_funding", "交500手续费就给你减免", "VB"),
]

GUIDE_ALLOW: list[tuple[str, str, str]] = [
    ("threat", "如有困难，可以为您申请分期或延期", "VB"),
    ("threat", "逾期将按合同计收罚息", "VB"),
    ("threat", "请在今天24点前还款，避免继续逾期", "VB"),
    ("insult", "理解您的难处", "VB"),
    ("insult", "这笔借款目前已逾期15天", "VB"),
    ("false_legal_claim", "逾期信息会按规定报送征信系统，可能影响您今后的贷款和信用卡申请", "VB"),
    ("false_legal_claim", "不良记录自结清之日起保存5年", "VB"),
    ("false_legal_claim", "如长期未还，我司可能依法向法院起诉", "VB"),
    ("false_legal_claim", "逾期会产生合同约定的罚息", "VB"),
    ("impersonation", "我是XX消费金融的智能客服", "VB"),
    ("impersonation", "我们受XX银行委托联系您", "VB"),
    ("impersonation", "如需核实，请拨打我司官方客服热线", "VB"),
    ("third_party_disclosure", "有事需要张先生本人处理，方便请他回电吗？", "TP"),
    ("third_party_disclosure", "如果您不认识他，我们会删除这个号码，打扰了", "TP"),
    ("exposure_threat", "这笔借款我们只与您本人沟通", "VB"),
    ("induce_illegal_funding", "请通过App内官方还款入口或对公账户还款", "VB"),
    ("induce_illegal_funding", "分期费用以合同和App展示为准", "VB"),
]

# --------------------------------------------------------------------------- cn extra

EXTRA_BLOCK: list[tuple[str, str, str]] = [
    # threat
    ("threat", "今天不还钱，晚上就有人去你家门口等你", "VB"),
    ("threat", "你最好当心一点", "VB"),
    ("threat", "我们知道你住哪，别逼我们", "VB"),
    ("threat", "不接电话我们就天天给你打，打到你接为止", "VB"),
    ("threat", "你老婆孩子最好小心点", "VB"),
    ("threat", "再拖下去后果自负", "VB"),
    ("threat", "信不信我们找几个兄弟上门收拾你", "VB"),
    # insult
    ("insult", "你这种人真是没脸没皮", "VB"),
    ("insult", "你就是个废物", "VB"),
    ("insult", "欠钱不还还有理了，真不要脸", "VB"),
    ("insult", "你这个白痴", "VB"),
    ("insult", "像你这样的老赖我见多了", "VB"),
    ("insult", "你还是人吗", "VB"),
    ("insult", "你这个穷鬼", "VB"),
    # false_legal_claim
    ("false_legal_claim", "今天不还明天就起诉你", "VB"),
    ("false_legal_claim", "我们已经报案了，警察会来找你", "VB"),
    ("false_legal_claim", "再不还就告你，等着收传票吧", "VB"),
    ("false_legal_claim", "你的征信已经彻底毁了", "VB"),
    ("false_legal_claim", "你家人有义务帮你还这笔钱", "VB"),
    ("false_legal_claim", "三天内不还款就冻结你的微信和支付宝", "VB"),
    ("false_legal_claim", "你这属于违法犯罪，要负刑事责任", "VB"),
    ("false_legal_claim", "逾期记录会永久保留", "VB"),
    # impersonation
    ("impersonation", "这里是市公安局经济侦查支队", "VB"),
    ("impersonation", "我代表人民法院通知你", "VB"),
    ("impersonation", "我是你老同学，有点事想问你", "VB"),
    ("impersonation", "您好，我是顺丰快递，有您一个包裹", "VB"),
    ("impersonation", "我们是律师事务所的，受托处理你的案子", "VB"),
    ("impersonation", "我是人工客服小王", "VB"),
    ("impersonation", "这里是中国人民银行征信中心", "VB"),
    # third_party_disclosure
    ("third_party_disclosure", "张伟欠我们一笔钱", "TP"),
    ("third_party_disclosure", "他的贷款已经三个月没还了", "TP"),
    ("third_party_disclosure", "麻烦转告他尽快处理欠款", "TP"),
    ("third_party_disclosure", "他在我们平台有一笔借款需要处理", "TP"),
    ("third_party_disclosure", "请提醒他今天之前把5000元还上", "TP"),
    ("third_party_disclosure", "您是他的担保人吗？他的账单还没结清", "TP"),
    ("third_party_disclosure", "您好，请问是张伟吗？您的借款已逾期", "UNVERIFIED"),
    # exposure_threat
    ("exposure_threat", "我们会把你的欠款信息发到网上", "VB"),
    ("exposure_threat", "再不还就爆你通讯录", "VB"),
    ("exposure_threat", "你通讯录里的人我们会挨个打一遍", "VB"),
    ("exposure_threat", "我们会打电话给你的领导和同事", "VB"),
    ("exposure_threat", "让你的邻居都知道你欠钱不还", "VB"),
    ("exposure_threat", "把你的照片P图贴到小区门口", "VB"),
    ("exposure_threat", "让你全村人都知道", "VB"),
    # induce_illegal_funding
    ("induce_illegal_funding", "你可以先用花呗还上这笔", "VB"),
    ("induce_illegal_funding", "找别的网贷口子周转一下", "VB"),
    ("induce_illegal_funding", "钱直接打到我的银行卡上就行", "VB"),
    ("induce_illegal_funding", "交2000保证金就可以停催", "VB"),
    ("induce_illegal_funding", "我们可以帮你做征信修复，只要交一点服务费", "VB"),
    ("induce_illegal_funding", "以贷养贷也得先把我们这笔还了", "VB"),
    ("induce_illegal_funding", "扫这个收款码还款", "VB"),
    # illegal_debt
    ("illegal_debt", "你欠的赌债也得还", "VB"),
    ("illegal_debt", "按日息1%计算利息", "VB"),
    ("illegal_debt", "年化利率36%，这是你自己签的", "VB"),
    ("illegal_debt", "砍头息是行业惯例", "VB"),
    ("illegal_debt", "利滚利算下来你要还五万", "VB"),
    ("illegal_debt", "月息5%不算高", "VB"),
    # pii_masking
    ("pii_masking", "您的身份证号是110105199003071234", "VB"),
    ("pii_masking", "还款卡号6222021234567890123", "VB"),
    ("pii_masking", "您预留的手机号13812345678", "VB"),
    ("pii_masking", "卡号6222 0212 3456 7890", "VB"),
    ("pii_masking", "手机号一三八一二三四五六七八", "VB"),
    ("pii_masking", "身份证号11010519491231002X", "VB"),
    # missing_ai_disclosure
    ("missing_ai_disclosure", "我是真人，不是机器人", "VB"),
    ("missing_ai_disclosure", "我不是机器人，我是真人客服", "VB"),
    ("missing_ai_disclosure", "放心，我是活人", "VB"),
    ("missing_ai_disclosure", "这边是人工坐席为您服务", "VB"),
    ("missing_ai_disclosure", "我可不是什么录音", "VB"),
    ("missing_ai_disclosure", "您好，我是XX消费金融的客服小王，请问是张伟先生吗？", "OPEN"),
    ("missing_ai_disclosure", "您好，这里是XX银行信用卡中心", "OPEN"),
    # missing_identification
    ("missing_identification", "您好，我是智能语音助手，请问是张伟先生吗？", "OPEN"),
    ("missing_identification", "喂，您好，请问是张先生本人吗？我是AI助手", "OPEN"),
    ("missing_identification", "您好，我是小王，智能客服", "OPEN"),
    ("missing_identification", "您好，这是一通智能语音来电", "OPEN"),
    ("missing_identification", "你好，找一下张伟，我是机器人助手", "OPEN"),
    # unrelated_party (asking someone else to pay)
    ("unrelated_party", "你是紧急联系人，有义务替他还", "TP"),
    ("unrelated_party", "你先帮他垫付一下吧", "TP"),
    ("unrelated_party", "您可以替张伟还款", "TP"),
    ("unrelated_party", "作为他的朋友，你应该替他还", "TP"),
    ("unrelated_party", "麻烦您代他偿还", "TP"),
]

EXTRA_ALLOW: list[tuple[str, str, str]] = [
    # threat
    ("threat", "我们不会上门，也不会联系您的单位", "VB"),
    ("threat", "请您注意保管好账户信息，谨防诈骗", "VB"),
    ("threat", "天气转凉，出门注意保暖", "VB"),
    ("threat", "我们会在您方便的时间再联系您", "VB"),
    ("threat", "您可以选择在App内申请延期还款", "VB"),
    ("threat", "如需上门办理，请通过官方渠道预约", "VB"),
    # insult
    ("insult", "请谨防冒充我司的骗子", "VB"),
    ("insult", "感谢您的耐心", "VB"),
    ("insult", "非常抱歉给您带来不便", "VB"),
    ("insult", "请问您妈妈的手机号还在使用吗", "VB"),
    ("insult", "不好意思，我不是人工客服，我是智能语音助手", "VB"),
    ("insult", "您可以滚动页面查看账单", "VB"),
    # false_legal_claim
    ("false_legal_claim", "逾期属于民事纠纷，不会因此坐牢", "VB"),
    ("false_legal_claim", "您的借款已逾期30天，如仍未还款，我司可能依法提起诉讼", "VB"),
    ("false_legal_claim", "根据《征信业管理条例》，报送负面信息前我们会提前告知您", "VB"),
    ("false_legal_claim", "个人征信记录不会影响子女考公", "VB"),
    ("false_legal_claim", "您的家人没有义务替您还款", "VB"),
    ("false_legal_claim", "结清后，不良记录将在5年后删除", "VB"),
    ("false_legal_claim", "如果进入诉讼程序，最终以法院判决为准", "VB"),
    ("false_legal_claim", "请抓紧时间处理，避免逾期天数继续增加", "VB"),
    ("false_legal_claim", "市面上并不存在所谓的征信黑名单", "VB"),
    ("false_legal_claim", "我们不会马上起诉您，希望和您协商解决", "VB"),
    # impersonation
    ("impersonation", "我们是持牌消费金融公司，受国家金融监督管理总局监管", "VB"),
    ("impersonation", "如对本次服务有异议，您可以向金融监管部门投诉", "VB"),
    ("impersonation", "我是智能语音助手，不是真人客服", "VB"),
    ("impersonation", "您可以咨询专业律师了解自己的权利", "VB"),
    ("impersonation", "您可以通过12378银行保险消费者投诉热线反映问题", "VB"),
    ("impersonation", "我是XX银行信用卡中心的智能客服小慧", "VB"),
    # third_party_disclosure
    ("third_party_disclosure", "请问您认识张伟先生吗？", "TP"),
    ("third_party_disclosure", "麻烦您转告他，方便时回拨我们的官方客服热线", "TP"),
    ("third_party_disclosure", "好的，不好意思打扰您了，祝您生活愉快", "TP"),
    ("third_party_disclosure", "我们有一件个人事务需要与张先生本人确认", "TP"),
    ("third_party_disclosure", "请问张先生什么时间方便接听电话？", "TP"),
    (
        "third_party_disclosure",
        "您好，我是XX消费金融的智能语音助手，本次通话将被录音。请问您是张伟先生本人吗？",
        "OPEN",
    ),
    ("third_party_disclosure", "您的借款已逾期15天，应还金额3600元", "VB"),
    # exposure_threat
    ("exposure_threat", "我们不会联系您的家人或单位", "VB"),
    ("exposure_threat", "您的信息我们会严格保密", "VB"),
    ("exposure_threat", "如需变更紧急联系人，请在App内操作", "VB"),
    ("exposure_threat", "还款后可在App内查看电子凭证", "VB"),
    ("exposure_threat", "我们只会通过您本人的手机号与您联系", "VB"),
    ("exposure_threat", "紧急联系人信息有误的话，可以联系我们更新", "VB"),
    # induce_illegal_funding
    ("induce_illegal_funding", "请勿向任何个人账户转账，谨防诈骗", "VB"),
    ("induce_illegal_funding", "还款请认准App内的官方渠道", "VB"),
    ("induce_illegal_funding", "如有困难，可以申请延期或分期还款", "VB"),
    ("induce_illegal_funding", "我们不会收取合同以外的任何费用", "VB"),
    ("induce_illegal_funding", "结清后可以在App内申请开具结清证明", "VB"),
    ("induce_illegal_funding", "市面上所谓的征信修复都是骗局", "VB"),
    # illegal_debt
    ("illegal_debt", "年化利率18%，以合同为准", "VB"),
    ("illegal_debt", "逾期罚息按每日0.05%计收", "VB"),
    ("illegal_debt", "我们没有收取任何砍头息", "VB"),
    ("illegal_debt", "您的贷款年利率为15.4%", "VB"),
    ("illegal_debt", "提前还款不收取违约金", "VB"),
    # pii_masking
    ("pii_masking", "您尾号5678的银行卡", "VB"),
    ("pii_masking", "手机号138****5678", "VB"),
    ("pii_masking", "应还金额1200.50元", "VB"),
    ("pii_masking", "客服热线400-123-4567", "VB"),
    ("pii_masking", "还款日为2026年6月10日", "VB"),
    ("pii_masking", "请拨打95588", "VB"),
    # missing_ai_disclosure
    ("missing_ai_disclosure", "您好，我是XX消费金融的智能语音助手", "OPEN"),
    ("missing_ai_disclosure", "我是AI智能客服，有需要可以为您转人工", "VB"),
    ("missing_ai_disclosure", "我是智能客服，不是真人，如需人工服务可以为您转接", "VB"),
    ("missing_ai_disclosure", "您可以随时要求转接人工客服", "VB"),
    ("missing_ai_disclosure", "您好，我是XX银行的AI客服，本次通话将被录音", "OPEN"),
    ("missing_ai_disclosure", "您好，我是XX消费金融的虚拟助手", "OPEN"),
    # missing_identification
    ("missing_identification", "您好，我是XX消费金融的智能客服", "OPEN"),
    ("missing_identification", "您好，这里是XX银行信用卡中心，我是智能语音助手小慧", "OPEN"),
    ("missing_identification", "您好，我们受XX银行委托联系您，我是智能语音助手", "OPEN"),
    ("missing_identification", "好的，我帮您查一下", "VB"),
    ("missing_identification", "您好，我是XX小贷公司的AI助手", "OPEN"),
    # unrelated_party
    ("unrelated_party", "麻烦您转告他给我们回个电话", "TP"),
    ("unrelated_party", "打扰了，这个号码我们会停止拨打", "TP"),
    ("unrelated_party", "请问您是张伟先生的家人吗？", "TP"),
    ("unrelated_party", "谢谢您，我们会直接联系他本人", "TP"),
    ("unrelated_party", "如果方便，请他本人拨打官方客服热线", "TP"),
]


# Realistic agent lines from dialogue scripts: polite, true, conditional facts that
# a keyword matcher would over-block, and hostile lines written without guide words.
SCRIPT_ALLOW_VB = [
    "为了保护您的信息安全，请提供身份证后四位进行核实。",
    "您本期应还1180元，已逾期47天，目前待还总额2401.30元。",
    "您可以通过App首页的“立即还款”按钮还款。",
    "如果您已经还款，请提供还款凭证，我们会在1个工作日内核实。",
    "根据规定，我们需要告知您：逾期信息将报送至人民银行征信系统。",
    "我们会在明天上午10点再与您联系。",
    "请您在明天之前还款，否则可能影响您的信用记录。",
    "逾期超过90天，我司有权依法采取催收措施，包括委托律师或提起诉讼。",
    "逾期记录会在结清后按规定保留，5年后自动删除。",
    "我们是正规持牌机构，不会以任何形式威胁或骚扰您。",
    "您可以放心，我们不会联系您的通讯录好友。",
    "您的紧急联系人不承担还款责任。",
    "若逾期时间较长，我司将依照合同和法律规定处理。",
    "请您马上登录App查看还款计划。",
    "您已经申请了延期，审核结果会以短信通知您。",
]
SCRIPT_BLOCK_VB = [
    ("false_legal_claim", "已经帮你申请了强制执行"),
    ("false_legal_claim", "这事已经移交给公安了"),
    ("false_legal_claim", "你这辈子都别想再贷款了"),
    ("false_legal_claim", "我们已经把材料交给法院了"),
    ("threat", "你全家都会跟着倒霉"),
    ("threat", "你今天必须还清，不然后果很严重"),
    ("threat", "再不还款，就上门拜访你的父母"),
    ("threat", "你是不是想让我们去你老家找你爸妈"),
    ("exposure_threat", "你不还，我们就联系你所有的微信好友"),
    ("exposure_threat", "我们会把你的事情告诉你的家人"),
]


@pytest.mark.parametrize("text", SCRIPT_ALLOW_VB)
def test_script_allow(text: str) -> None:
    _assert_allowed(check_utterance(text, CN, VB), text)


@pytest.mark.parametrize(("rule", "text"), SCRIPT_BLOCK_VB)
def test_script_block(rule: str, text: str) -> None:
    _assert_blocked(check_utterance(text, CN, VB), rule, text)


def _ids(cases: list[tuple[str, str, str]]) -> list[str]:
    return [f"{r}:{t[:12]}" for r, t, _ in cases]


def _assert_blocked(v: Verdict, rule: str, text: str) -> None:
    assert not v.allowed, f"not blocked: {text!r}"
    assert rule in v.rules, f"{text!r} blocked as {v.rules}, expected {rule}"


def _assert_allowed(v: Verdict, text: str) -> None:
    assert v.allowed, f"over-blocked: {text!r} -> {[x.to_dict() for x in v.violations]}"


@pytest.mark.parametrize(("rule", "text", "ctx"), GUIDE_BLOCK, ids=_ids(GUIDE_BLOCK))
def test_guide_block(rule: str, text: str, ctx: str) -> None:
    _assert_blocked(check_utterance(text, CN, CTX[ctx]), rule, text)


@pytest.mark.parametrize(("rule", "text", "ctx"), GUIDE_ALLOW, ids=_ids(GUIDE_ALLOW))
def test_guide_allow(rule: str, text: str, ctx: str) -> None:
    _assert_allowed(check_utterance(text, CN, CTX[ctx]), text)


@pytest.mark.parametrize(("rule", "text", "ctx"), EXTRA_BLOCK, ids=_ids(EXTRA_BLOCK))
def test_extra_block(rule: str, text: str, ctx: str) -> None:
    _assert_blocked(check_utterance(text, CN, CTX[ctx]), rule, text)


@pytest.mark.parametrize(("rule", "text", "ctx"), EXTRA_ALLOW, ids=_ids(EXTRA_ALLOW))
def test_extra_allow(rule: str, text: str, ctx: str) -> None:
    _assert_allowed(check_utterance(text, CN, CTX[ctx]), text)


def test_every_cn_content_rule_has_enough_paraphrases() -> None:
    """The brief asks for >= 5 new block and 5 new allow lines per content rule."""
    for rule in CN.content_rule_ids:
        blocks = sum(1 for r, _, _ in EXTRA_BLOCK if r == rule)
        allows = sum(1 for r, _, _ in EXTRA_ALLOW if r == rule)
        assert blocks >= 5 and allows >= 5, (rule, blocks, allows)


# --------------------------------------------------------------------------- context


def test_debt_facts_allowed_to_verified_borrower_but_not_to_others() -> None:
    text = "您的借款已逾期15天，应还金额3600元，请尽快还款"
    assert check_utterance(text, CN, VB).allowed
    for ctx in (TP, UNVERIFIED, UtteranceContext(identity_verified=True, addressee="third_party")):
        _assert_blocked(check_utterance(text, CN, ctx), "third_party_disclosure", text)


def test_opening_needs_identity_and_ai_disclosure() -> None:
    good = "您好，我是XX消费金融的智能语音助手，本次通话将被录音。请问您是张伟先生本人吗？"
    assert check_utterance(good, CN, OPEN).allowed
    # the same words mid-conversation need no disclosure check
    assert check_utterance("请问您是张伟先生本人吗？", CN, TP).allowed
    v = check_utterance("请问您是张伟先生本人吗？", CN, OPEN)
    assert set(v.rules) == {"missing_identification", "missing_ai_disclosure"}


def test_opening_with_debt_before_verification_is_disclosure() -> None:
    v = check_utterance("您好，我是XX消费金融的智能语音助手，您的借款已逾期", CN, OPEN)
    assert v.rules == ["third_party_disclosure"]


def test_lender_name_override_identifies_institution() -> None:
    text = "您好，我是安心借的智能助手"
    assert "missing_identification" in check_utterance(text, CN, OPEN).rules
    prof = load_profile("cn", {"missing_identification": {"lender_name": "安心借"}})
    assert check_utterance(text, prof, OPEN).allowed
    # names are matched after the same normalisation (full-width, spaces)
    prof2 = load_profile("cn", {"missing_identification": {"lender_name": ["安心 借"]}})
    assert check_utterance("您好，我是安心借的智能助手", prof2, OPEN).allowed


def test_require_purpose_applies_only_to_verified_borrower() -> None:
    prof = load_profile("cn", {"missing_identification": {"require_purpose": True}})
    text = "您好，我是XX消费金融的智能客服"
    assert check_utterance(text, prof, OPEN).allowed  # no debt talk before verification
    assert "missing_identification" in check_utterance(text, prof, OPEN_VB).rules
    assert check_utterance(text + "，来电是关于您的借款", prof, OPEN_VB).allowed


def test_disabled_rule_is_not_checked() -> None:
    prof = load_profile("cn", {"pii_masking": {"enabled": False}})
    assert check_utterance("您的手机号13812345678", prof, VB).allowed


def test_allowed_numbers_parameter() -> None:
    prof = load_profile("cn", {"pii_masking": {"allowed_numbers": ["138-1234-5678"]}})
    assert check_utterance("请拨打13812345678", prof, VB).allowed
    assert not check_utterance("请拨打13812345679", prof, VB).allowed


def test_rate_cap_parameter() -> None:
    text = "年化利率20%"
    assert check_utterance(text, CN, VB).allowed
    prof = load_profile("cn", {"illegal_debt": {"max_annual_rate_pct": 14.8}})
    assert check_utterance(text, prof, VB).rules == ["illegal_debt"]


def test_full_width_and_spaces_are_normalised() -> None:
    assert "false_legal_claim" in check_utterance("不还就要 坐 牢！", CN, VB).rules
    assert "pii_masking" in check_utterance("手机号１３８１２３４５６７８", CN, VB).rules


def test_violation_message_masks_numbers() -> None:
    v = check_utterance("您的手机号13812345678", CN, VB)
    assert "13812345678" not in v.violations[0].message
    assert v.violations[0].message.endswith("5678")


def test_multiple_rules_reported_once_each() -> None:
    v = check_utterance("老赖，不还就要坐牢，老赖！", CN, VB)
    assert v.rules.count("insult") == 1
    assert {"insult", "false_legal_claim"} <= set(v.rules)
    d = v.to_dict()
    assert d["allowed"] is False and all({"rule", "message"} <= set(x) for x in d["violations"])


def test_default_profile_and_context() -> None:
    assert check_utterance("逾期会产生合同约定的罚息").allowed
    assert not check_utterance("不还就要坐牢").allowed


def test_borrower_speech_is_not_the_checkers_job() -> None:
    """The checker judges agent text; it has no 'speaker' and never sees borrower turns."""
    assert check_utterance("如有疑问，请拨打官方客服热线", CN, VB).allowed


# --------------------------------------------------------------------------- fallback

ALL_CTX = [VB, TP, UNVERIFIED, OPEN, OPEN_VB]


@pytest.mark.parametrize("rule", CN.content_rule_ids + ["unknown_rule"])
@pytest.mark.parametrize("ctx", ALL_CTX, ids=["VB", "TP", "UNVERIFIED", "OPEN", "OPEN_VB"])
def test_safe_fallback_passes_checker_cn(rule: str, ctx: UtteranceContext) -> None:
    text = safe_fallback(rule, CN, ctx)
    assert text and "{" not in text
    _assert_allowed(check_utterance(text, CN, ctx), text)


@pytest.mark.parametrize("rule", US.content_rule_ids)
@pytest.mark.parametrize("ctx", ALL_CTX, ids=["VB", "TP", "UNVERIFIED", "OPEN", "OPEN_VB"])
def test_safe_fallback_passes_checker_us(rule: str, ctx: UtteranceContext) -> None:
    text = safe_fallback(rule, US, ctx)
    _assert_allowed(check_utterance(text, US, ctx), text)


def test_safe_fallback_default_text_and_lender_name() -> None:
    assert safe_fallback("threat") == (
        "抱歉，刚才的表述不够准确。如有疑问，请通过App内官方客服渠道咨询，我们会为您核实处理。"
    )
    prof = load_profile("cn", {"missing_identification": {"lender_name": "安心借"}})
    opening = safe_fallback("threat", prof, OPEN)
    assert "安心借" in opening
    assert check_utterance(opening, prof, OPEN).allowed


# --------------------------------------------------------------------------- us

US_BLOCK: list[tuple[str, str, str]] = [
    # catalogue lines
    ("false_legal_claim", "You'll be arrested if you don't pay.", "VB"),
    ("false_legal_claim", "You will go to jail.", "VB"),
    ("false_legal_claim", "We're filing suit tomorrow.", "VB"),
    ("impersonation", "This is Officer Johnson.", "VB"),
    ("impersonation", "This is the county court calling.", "VB"),
    ("third_party_disclosure", "Tell your husband he owes us $500.", "TP"),
    ("insult", "Pay the fucking bill.", "VB"),
    # threat
    ("threat", "We know where you live.", "VB"),
    ("threat", "You'll regret not paying this.", "VB"),
    ("threat", "We'll show up at your house tonight.", "VB"),
    ("threat", "Pay up or something bad might happen to you.", "VB"),
    ("threat", "We will call you every day until you pay.", "VB"),
    ("threat", "We'll tell your boss about this.", "VB"),
    # insult
    ("insult", "You're a deadbeat.", "VB"),
    ("insult", "Stop wasting my time, you idiot.", "VB"),
    ("insult", "This is bullshit.", "VB"),
    ("insult", "Pay the damn bill.", "VB"),
    ("insult", "What kind of loser doesn't pay their debts?", "VB"),
    # false_legal_claim
    ("false_legal_claim", "We will garnish your wages next week.", "VB"),
    ("false_legal_claim", "A warrant has been issued for your arrest.", "VB"),
    ("false_legal_claim", "Your credit will be ruined forever.", "VB"),
    ("false_legal_claim", "Your wife has to pay this if you don't.", "VB"),
    ("false_legal_claim", "We're suing you today.", "VB"),
    ("false_legal_claim", "If you don't pay you will be arrested", "VB"),
    ("false_legal_claim", "If you don't pay by Friday, we will take you to court.", "VB"),
    ("threat", "Your employer will be notified of this debt.", "VB"),
    # impersonation
    ("impersonation", "I'm calling from the sheriff's office.", "VB"),
    ("impersonation", "I'm an attorney and I'm handling your case.", "VB"),
    ("impersonation", "I'm calling from Equifax about your report.", "VB"),
    ("impersonation", "I'm a real person, not a robot.", "VB"),
    ("impersonation", "We're with the police department.", "VB"),
    # third_party_disclosure
    ("third_party_disclosure", "Your son is past due on his loan.", "TP"),
    ("third_party_disclosure", "We're trying to collect a debt from John.", "TP"),
    ("third_party_disclosure", "He has an outstanding balance with us.", "TP"),
    ("third_party_disclosure", "John hasn't made a payment in three months.", "TP"),
    ("third_party_disclosure", "She defaulted on her car loan.", "TP"),
    (
        "third_party_disclosure",
        "This is an attempt to collect a debt and any information obtained will be used for "
        "that purpose.",
        "UNVERIFIED",
    ),
    # missing_ai_disclosure
    ("missing_ai_disclosure", "I'm a real person.", "VB"),
    ("missing_ai_disclosure", "No, I am not a robot.", "VB"),
    ("missing_ai_disclosure", "This is not an automated call.", "VB"),
    ("missing_ai_disclosure", "I'm human, I promise.", "VB"),
    ("missing_ai_disclosure", "I'm a live agent.", "VB"),
    # missing_identification
    ("missing_identification", "Hello, is John there?", "OPEN"),
    ("missing_identification", "Hi, may I speak with John Smith?", "OPEN"),
    ("missing_identification", "Hello, I'm an automated assistant.", "OPEN"),
    ("missing_identification", "Hi John, please call us back.", "OPEN"),
    ("missing_identification", "Good morning, can I speak to Jane?", "OPEN"),
    # pii_masking
    ("pii_masking", "Your card number is 4111 1111 1111 1111.", "VB"),
    ("pii_masking", "Your SSN is 123-45-6789.", "VB"),
    ("pii_masking", "The account number is 123456789012.", "VB"),
    ("pii_masking", "Card 4111-1111-1111-1111 was charged.", "VB"),
    ("pii_masking", "Social security number 123456789 on file.", "VB"),
]

US_ALLOW: list[tuple[str, str, str]] = [
    # catalogue lines
    (
        "false_legal_claim",
        "This is an attempt to collect a debt and any information obtained will be used for "
        "that purpose.",
        "VB",
    ),
    ("false_legal_claim", "This communication is from a debt collector.", "VB"),
    (
        "false_legal_claim",
        "If the balance remains unpaid, the creditor may consider its options.",
        "VB",
    ),
    ("false_legal_claim", "This may be reported to credit bureaus.", "VB"),
    # threat
    ("threat", "We can set up a payment plan that works for you.", "VB"),
    ("threat", "Please call us back at your convenience.", "VB"),
    ("threat", "If you have questions, we're here to help.", "VB"),
    ("threat", "Thank you for taking my call.", "VB"),
    ("threat", "It won't hurt to ask about hardship options.", "VB"),
    ("threat", "I'll note your request and we won't call you at work.", "VB"),
    (
        "false_legal_claim",
        "The creditor may decide to pursue legal remedies if it remains unpaid.",
        "VB",
    ),
    ("false_legal_claim", "I will call you back tomorrow at 10 am as you requested.", "VB"),
    ("false_legal_claim", "If you believe you don't owe this debt, you can dispute it.", "VB"),
    # insult
    ("insult", "I understand this is a stressful situation.", "VB"),
    ("insult", "I apologize for the inconvenience.", "VB"),
    ("insult", "Thank you for your patience.", "VB"),
    ("insult", "No problem, take your time.", "VB"),
    ("insult", "Let me assess the options available to you.", "VB"),
    # false_legal_claim
    ("false_legal_claim", "You will not be arrested for this debt.", "VB"),
    ("false_legal_claim", "If you dispute the debt, let us know within 30 days.", "VB"),
    ("false_legal_claim", "You have the right to consult an attorney.", "VB"),
    ("false_legal_claim", "We are not going to sue you.", "VB"),
    ("false_legal_claim", "Please beware of scams from people impersonating collectors.", "VB"),
    # impersonation
    ("impersonation", "This is Alex calling from Acme Recovery on behalf of Big Bank.", "VB"),
    (
        "impersonation",
        "You may contact the Consumer Financial Protection Bureau with complaints.",
        "VB",
    ),
    ("impersonation", "You have the right to speak with an attorney.", "VB"),
    ("impersonation", "I'm an automated assistant for Acme Recovery.", "VB"),
    ("impersonation", "Please verify your identity before we continue.", "VB"),
    # third_party_disclosure
    ("third_party_disclosure", "I'm trying to confirm location information for John Smith.", "TP"),
    ("third_party_disclosure", "Could you ask him to call Alex at 555-0100?", "TP"),
    ("third_party_disclosure", "Is this the best number to reach John?", "TP"),
    ("third_party_disclosure", "Sorry to bother you, have a good day.", "TP"),
    ("third_party_disclosure", "We'll update our records, thank you.", "TP"),
    ("third_party_disclosure", "Your current balance is $500.", "VB"),
    # missing_ai_disclosure
    ("missing_ai_disclosure", "I'm an automated assistant.", "VB"),
    ("missing_ai_disclosure", "Yes, you're speaking with an AI assistant.", "VB"),
    ("missing_ai_disclosure", "I'm not a human, I'm an automated assistant.", "VB"),
    ("missing_ai_disclosure", "I can transfer you to a live agent.", "VB"),
    ("missing_ai_disclosure", "Would you like to speak with a human representative?", "VB"),
    # missing_identification
    ("missing_identification", "Hi, this is Alex calling from Acme Recovery.", "OPEN"),
    (
        "missing_identification",
        "This is an automated call from Acme Recovery on behalf of Big Bank.",
        "OPEN",
    ),
    ("missing_identification", "My name is Sam with Acme Recovery.", "OPEN"),
    ("missing_identification", "Hello, I'm the virtual assistant of Big Bank.", "OPEN"),
    (
        "missing_identification",
        "Hi, you've reached the automated assistant at Acme Recovery.",
        "OPEN",
    ),
    # pii_masking
    ("pii_masking", "The card ending in 1111 was charged.", "VB"),
    ("pii_masking", "Your balance is $1,250.00.", "VB"),
    ("pii_masking", "Call us at 1-800-555-0199.", "VB"),
    ("pii_masking", "Your payment of $300 is due on 2026-06-10.", "VB"),
    ("pii_masking", "Account ending 9012.", "VB"),
]


@pytest.mark.parametrize(("rule", "text", "ctx"), US_BLOCK, ids=_ids(US_BLOCK))
def test_us_block(rule: str, text: str, ctx: str) -> None:
    _assert_blocked(check_utterance(text, US, CTX[ctx]), rule, text)


@pytest.mark.parametrize(("rule", "text", "ctx"), US_ALLOW, ids=_ids(US_ALLOW))
def test_us_allow(rule: str, text: str, ctx: str) -> None:
    _assert_allowed(check_utterance(text, US, CTX[ctx]), text)


def test_us_opening_does_not_require_ai_disclosure_by_default() -> None:
    text = "Hi, this is Alex calling from Acme Recovery."
    assert check_utterance(text, US, OPEN).allowed
    prof = load_profile("us", {"missing_ai_disclosure": {"require_on_opening": True}})
    assert check_utterance(text, prof, OPEN).rules == ["missing_ai_disclosure"]
    assert check_utterance(
        "Hi, this is an automated assistant calling from Acme Recovery.", prof, OPEN
    ).allowed
