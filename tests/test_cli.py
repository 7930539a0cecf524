"""The `valle` command: sub-commands reach the library, errors are one line and exit 2."""

import subprocess
import sys

import pytest

from valle.cli import main


def test_help_lists_the_command_groups(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for group in ("text", "data"):
        assert group in out


def test_synth_corpus_reports_where_it_wrote(tmp_path, capsys):
    out = tmp_path / "corpus"
    assert main(["data", "synth-corpus", str(out), "--hours", "0.005", "--seed", "1", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote the synthetic corpus to {out}" in printed
    assert str(out / "test.jsonl") in printed and (out / "test.jsonl").is_file()


def test_bad_value_is_one_line_error_without_traceback(tmp_path, capsys):
    assert main(["data", "synth-corpus", str(tmp_path / "x"), "--hours", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --hours must be in (0, 1000]") and "Traceback" not in err and err.count("\n") == 1


def test_console_script_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "valle.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("valle ")
