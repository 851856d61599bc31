"""The project stands alone: a clone with nothing beside it builds, runs and tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# Spelled in pieces so that this file does not find itself.
OUTSIDE_REFERENCES = ("..", "/shared", '.parent / "', 'shared"')


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [REPO_ROOT / name for name in listed if (REPO_ROOT / name).is_file()]


def test_no_file_refers_to_a_folder_beside_the_repository() -> None:
    needles = ["".join(OUTSIDE_REFERENCES[:2]), "".join(OUTSIDE_REFERENCES[2:])]
    offenders = []
    for path in tracked_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        offenders += [f"{path.relative_to(REPO_ROOT)}: {n}" for n in needles if n in text]
    assert offenders == []


def test_the_known_answer_vectors_live_in_the_repository() -> None:
    assert (REPO_ROOT / "tests" / "vectors" / "standard-webhooks.json").is_file()
