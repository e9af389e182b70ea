"""mrod's configuration: TOML, typed, checked entirely at load, with MROD_* overrides.

schema.py  one dataclass per section (the place to add a key), Config, SECTIONS
checks.py  the value validators (names and ports judged by mrod.infra.names)
loader.py  discovery, reading, environment overrides, every check; describe()
"""

from mrod.infra.config.loader import (
    CHECKOUT,
    LOCAL_CONFIG,
    SYSTEM_CONFIG,
    describe,
    describe_source,
    find_config_path,
    from_dict,
    load,
)
from mrod.infra.config.schema import (
    SECTIONS,
    AdminConfig,
    BindConfig,
    ChecksConfig,
    Config,
    DatabaseConfig,
    HealthConfig,
    LookupdConfig,
    MetricsConfig,
    MtaStsConfig,
    PolicyConfig,
    PostfixConfig,
    QueueConfig,
)

__all__ = [
    "CHECKOUT", "LOCAL_CONFIG", "SYSTEM_CONFIG", "describe", "describe_source", "find_config_path", "from_dict", "load",
    "SECTIONS",
    "AdminConfig", "BindConfig", "ChecksConfig", "Config", "DatabaseConfig", "HealthConfig",
    "LookupdConfig", "MetricsConfig", "MtaStsConfig", "PolicyConfig", "PostfixConfig", "QueueConfig",
]
