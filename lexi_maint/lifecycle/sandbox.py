"""What the job unit is given from the configuration: its paths, and its secrets as
systemd credentials (the hardening itself is `systemd.properties.sandbox_properties`).

The daemon runs as root and reads root's 0600 files; the job unit runs as the job's user,
which may not. So each secret file the job needs is handed over by systemd
(`LoadCredential=NAME:PATH`) and read by the job from `$CREDENTIALS_DIRECTORY/NAME`: it
never travels in the unit's environment, command line or properties.
"""

from __future__ import annotations

from pathlib import Path

from lexi_maint.config import Config, JobConfig
from lexi_maint.graph.credentials import CREDENTIAL_NAME as PASSWORD_CREDENTIAL
from lexi_maint.llm.keys import CREDENTIAL_NAME as KEY_CREDENTIAL
from lexi_maint.systemd.properties import Sandbox


def job_sandbox(config: Config, job: JobConfig) -> Sandbox:
    """The job unit writes state_dir and the metrics directory (its run's .prom file), reads
    the job's input and gets its credentials."""
    metrics = config.metrics.textfile_dir
    return Sandbox(
        state_dir=config.state_dir.absolute(),
        inputs=(job.input.absolute(),),
        credentials=job_credentials(config),
        optional_dirs=() if metrics is None else (metrics.absolute(),),
    )


def handed_api_key_file(config: Config) -> Path | None:
    """The API key file the job unit gets as credential deepseek-api-key: `[daemon]
    api_key_file`, else `[llm] api_key_file` when the LLM stages are used."""
    if config.daemon.api_key_file is not None:
        return config.daemon.api_key_file
    return config.llm.api_key_file if config.llm.enabled else None


def handed_password_file(config: Config) -> Path | None:
    """The Memgraph password file the job unit gets as credential memgraph-password."""
    if config.graph.backend != "memgraph":
        return None
    return config.graph.memgraph.password_file


def job_credentials(config: Config) -> tuple[tuple[str, Path], ...]:
    """(credential name, file) pairs for the job unit's LoadCredential=."""
    handed = (
        (KEY_CREDENTIAL, handed_api_key_file(config)),
        (PASSWORD_CREDENTIAL, handed_password_file(config)),
    )
    return tuple((name, path) for name, path in handed if path is not None)
