"""``huikuan qa FILE…``: a recorded human-collector call with a threat is found and scored,
beside a JSON transcript and a file it cannot read (reported, not fatal to the batch)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from voice.asr import whisper as W

CALL = Path(__file__).parents[1] / "voice" / "clips" / "qa_threat_call.wav"


@pytest.fixture
def data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    shared = tmp_path_factory.getbasetemp() / "qa-data"
    W.assemble_whisper_base(shared / "models" / "whisper-base")
    monkeypatch.setenv("HUIKUAN_DATA_DIR", str(shared))
    return shared


def test_a_batch_of_calls_is_scored_worst_first(tmp_path: Path, data_dir: Path) -> None:
    polite = tmp_path / "polite.json"
    polite.write_text(json.dumps({"turns": [
        {"speaker": "agent", "text": "您好，我是安心借的客服，本次通话将被录音。"},
        {"speaker": "borrower", "text": "嗯"},
        {"speaker": "agent", "text": "您的借款已逾期，如有困难可以申请分期，还款请走App官方渠道。"}]}),
        encoding="utf-8")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    report = tmp_path / "qa.csv"
    result = CliRunner().invoke(app, ["qa", str(CALL), str(polite), str(broken),
                                      "--out", str(report)])
    assert result.exit_code == 1  # one file could not be read; the others were scored
    rows = list(csv.DictReader(report.open(encoding="utf-8")))
    by_file = {Path(r["file"]).name: r for r in rows}
    call, ok, bad = by_file[CALL.name], by_file["polite.json"], by_file["broken.json"]
    assert "threat" in call["rules"].split() and int(call["score"]) <= 75
    assert ok["rules"] == "" and int(ok["score"]) == 100
    assert "broken.json" in bad["error"] and bad["score"] == ""
    assert [Path(r["file"]).name for r in rows][-1] == "polite.json"  # worst first


def test_json_report_names_the_turn_and_masks_the_lines(tmp_path: Path, data_dir: Path) -> None:
    leaky = tmp_path / "leaky.json"
    leaky.write_text(json.dumps([
        {"speaker": "agent", "text": "你不还，我们就把你欠钱的事发到你家族群，你身份证110101199003074514我们都有"}]),
        encoding="utf-8")
    out = tmp_path / "qa.json"
    result = CliRunner().invoke(app, ["qa", str(leaky), "--out", str(out), "--channel", "chat"])
    assert result.exit_code == 0, result.output
    [report] = json.loads(out.read_text(encoding="utf-8"))
    assert "exposure_threat" in report["violations_by_rule"]
    assert report["violations"][0]["turn"] == 0 and report["violations"][0]["citation"]
    assert "110101199003074514" not in out.read_text(encoding="utf-8")


def test_bad_options_are_named() -> None:
    result = CliRunner().invoke(app, ["qa", str(CALL), "--out", "report.xlsx"])
    assert result.exit_code == 2 and "xlsx" in result.output
