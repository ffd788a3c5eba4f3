"""config.toml → frozen, typed ``Settings``; one option table drives parsing, validation and docs.

- ``parse``: value parsers the roster shares (times, days, hours, slots, emails, zones);
- ``convert``: converters from raw TOML values, and ``Option``, the description of one key;
- ``backend_sections``: the ``[backend.<kind>]`` dataclasses, whose fields declare their keys;
- ``values``: the other frozen settings dataclasses and ``Settings``;
- ``schema``: ``SECTIONS`` and ``OPTIONS``, every key once;
- ``load``: finding and reading the file, every problem at once, building ``Settings``;
- ``reference``: docs/config-reference.md (``python -m rmdaemon.config --reference``).

Extending it: a new ``[schedule]`` key becomes a job interval by itself; a backend kind gets a
dataclass in ``backend_sections`` whose ``config_key`` fields are its keys, a section in
``SECTIONS``, an entry in ``BY_KIND`` and a field on ``BackendSettings``. Its required
keys are only demanded when ``kind`` names it.
"""

from rmdaemon.config.backend_sections import (
    ExchangeBackendSettings,
    GoogleBackendSettings,
    GraphBackendSettings,
    LocalBackendSettings,
    SmtpBackendSettings,
)
from rmdaemon.config.load import CONFIG_ENV, DEFAULT_CONFIG, find_config, load_settings
from rmdaemon.config.values import (
    BackendSettings,
    DigestSettings,
    NudgeSettings,
    PrivacySettings,
    ProgramSettings,
    ScheduleSettings,
    SecuritySettings,
    Settings,
)

__all__ = [
    "CONFIG_ENV", "DEFAULT_CONFIG", "BackendSettings", "DigestSettings", "ExchangeBackendSettings",
    "GoogleBackendSettings", "GraphBackendSettings", "LocalBackendSettings", "NudgeSettings", "PrivacySettings", "ProgramSettings",
    "ScheduleSettings", "SecuritySettings", "Settings", "SmtpBackendSettings", "find_config", "load_settings",
]
