"""Read and validate ``pipeline.toml`` in one place.

The result is a tree of frozen dataclasses; nothing else in the package reads
the file. Every problem is reported as a :class:`ConfigError` naming the file
and the dotted key path, before any build starts.

``model`` holds the records, ``images`` the image graph, ``reader`` the file and
the order its sections are read in, ``variables`` the ``PIPELINES_*`` variables
that override some keys; each section's rules live in a module named after it.
"""

from .images import DEBIAN_KEYRING, IMAGE_KINDS, ROLES, Image
from .model import (
    CACHE_BACKENDS,
    DAY,
    DB_SOURCES,
    HTTP_METHODS,
    MAX_PARALLEL,
    OS_UPDATE_MODES,
    PROFILES,
    PROGRESS_MODES,
    SCAN_LEVELS,
    SCANNERS,
    BenchSettings,
    BuildSettings,
    ComposeSettings,
    Config,
    DeployBench,
    DeploySettings,
    Environment,
    JsonScalar,
    LintSettings,
    LoadSettings,
    Probe,
    Project,
    Readiness,
    Registry,
    ScanSettings,
    Setting,
    SigningSettings,
    SmokeSettings,
    VerifyRun,
    VerifySettings,
    default_state,
)
from .reader import DEFAULT_FILE, find_config, load, parse
from .scan import OFFLINE_PROVENANCE_KEYS
from .variables import VARIABLES, Variable

__all__ = [
    "CACHE_BACKENDS",
    "DAY",
    "DB_SOURCES",
    "DEBIAN_KEYRING",
    "DEFAULT_FILE",
    "HTTP_METHODS",
    "IMAGE_KINDS",
    "MAX_PARALLEL",
    "OFFLINE_PROVENANCE_KEYS",
    "OS_UPDATE_MODES",
    "PROFILES",
    "PROGRESS_MODES",
    "ROLES",
    "SCANNERS",
    "SCAN_LEVELS",
    "VARIABLES",
    "BenchSettings",
    "BuildSettings",
    "ComposeSettings",
    "Config",
    "DeployBench",
    "DeploySettings",
    "Environment",
    "Image",
    "JsonScalar",
    "LintSettings",
    "LoadSettings",
    "Probe",
    "Project",
    "Readiness",
    "Registry",
    "ScanSettings",
    "Setting",
    "SigningSettings",
    "SmokeSettings",
    "Variable",
    "VerifyRun",
    "VerifySettings",
    "default_state",
    "find_config",
    "load",
    "parse",
]
