"""Settings come from the command line, then ``SGB_*`` variables, then the TOML file, then
defaults; a wrong value is one sentence naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.exceptions import SettingsError
from broker.settings import Settings, load_settings


def test_precedence_is_options_then_environment_then_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "sgb.toml"
    config.write_text('topic_prefix = "file."\nkafka_port = 19000\nlog_level = "WARNING"\n', encoding="utf-8")
    monkeypatch.setenv("SGB_CONFIG", str(config))
    monkeypatch.setenv("SGB_KAFKA_PORT", "19500")
    monkeypatch.setenv("sgb_provenance", "on")  # names are not case-sensitive, as shells differ
    settings = load_settings(topic_prefix="cli.", kafka_heap=None)
    assert (settings.topic_prefix, settings.kafka_port, settings.log_level) == ("cli.", 19500, "WARNING")
    assert settings.provenance is True and settings.kafka_heap == "512m"
    direct = Settings(state_dir=tmp_path)  # made directly (tests, embedding code): the same sources
    assert (direct.kafka_port, direct.topic_prefix, direct.state_dir) == (19500, "file.", tmp_path)


@pytest.mark.parametrize(
    ("text", "env", "sentence"),
    [
        ("kafak_port = 1\n", {}, "Unknown setting 'kafak_port' in the config file."),
        ("kafka_port = [\n", {}, "Config file could not be read"),
        ("", {"SGB_KAFKA_PORT": "80"}, "Setting SGB_KAFKA_PORT is invalid"),
        ("", {"SGB_BOOTSTRAP_SERVERS": "nohost"}, "Setting SGB_BOOTSTRAP_SERVERS is invalid"),
    ],
)
def test_a_wrong_setting_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, env: dict[str, str], sentence: str
) -> None:
    config = tmp_path / "sgb.toml"
    config.write_text(text, encoding="utf-8")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(config)
    assert str(caught.value).startswith(sentence)
    assert "\n" not in str(caught.value)


def test_unrelated_sgb_variables_are_not_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SGB_AGREE_EVENTS", "10000")  # a test knob, not a setting
    assert load_settings().topic_prefix == ""
