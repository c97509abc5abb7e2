"""Every story in tests/stories/*.yaml, run through the real engine (README.md: format)."""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.stories.runner import RESULTS, Result, World, run_story, summary_lines

pytestmark = [pytest.mark.db, pytest.mark.nlu]

HERE = Path(__file__).resolve().parent


def _stories() -> list[tuple[str, dict[str, Any]]]:
    """The stories in CI; ``HUIKUAN_STORIES=pending/*.yaml`` runs others (e.g. new writers')."""
    out = []
    for path in sorted(HERE.glob(os.environ.get("HUIKUAN_STORIES", "*.yaml"))):
        for story in yaml.safe_load(path.read_text("utf-8")) or []:
            out.append((f"{path.stem}:{story.get('id', '?')}", story))
    return out


STORIES = _stories()


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory, nlu_pipeline: Any,
          pytestconfig: pytest.Config) -> Iterator[World]:
    """One seeded database template and one loaded NLU shared by every story; prints the
    pass rate by category when the stories are done."""
    yield World(tmp_path_factory.mktemp("stories"), nlu_pipeline)
    reporter = pytestconfig.pluginmanager.getplugin("terminalreporter")
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    if reporter is not None and RESULTS:
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.write_line("")
            reporter.write_sep("-", "story pass rate by category")
            for line in summary_lines():
                reporter.write_line(line)


def test_story_ids_are_unique() -> None:
    ids = Counter(sid for sid, _ in STORIES)
    assert [sid for sid, n in ids.items() if n > 1] == []


@pytest.mark.parametrize("story", [s for _, s in STORIES], ids=[sid for sid, _ in STORIES])
def test_story(world: World, story: dict[str, Any]) -> None:
    result: Result = run_story(world, story)
    RESULTS[str(story.get("id"))] = (str(story.get("category", "?")), not result.failures)
    if result.failures:
        pytest.fail("\n".join(result.failures) + "\n--- transcript ---\n" +
                    "\n".join(result.transcript), pytrace=False)
