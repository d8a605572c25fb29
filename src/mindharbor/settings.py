"""Configuration, read from ``MINDHARBOR_*`` environment variables (or a ``.env`` file) once.

Nothing reads the environment at import time: ``load_settings()`` is called by the CLI and the
result is passed down to ``create_app`` and the store, so tests can build several servers with
different settings in one process.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob a deployer can turn; defaults give the embedded, zero-service demo."""

    model_config = SettingsConfigDict(
        env_prefix="MINDHARBOR_", env_file=".env", extra="ignore", frozen=True
    )

    data_dir: Path = Path("./data")
    app_id: str = "mindharbor"
    # Required in production; the embedded demo generates one under data_dir (see resolve()).
    master_key: str | None = Field(default=None, repr=False)
    # Optional Parse client keys: when any is set, a request must present one of them.
    rest_api_key: str | None = Field(default=None, repr=False)
    javascript_key: str | None = Field(default=None, repr=False)
    client_key: str | None = Field(default=None, repr=False)
    database_url: str | None = Field(default=None, repr=False)
    redis_url: str | None = Field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = 1337
    mount_path: str = "/parse"
    production: bool = False

    allow_client_class_creation: bool = False
    default_limit: int = 100
    max_limit: int = 1000
    max_skip: int = 10_000_000
    max_body_bytes: int = 10 * 1024 * 1024
    max_batch_requests: int = 50
    max_query_depth: int = 8
    max_in_list: int = 1000
    max_regex_length: int = 1000
    graphql_max_depth: int = 12  # nested selections in one GraphQL operation
    graphql_max_complexity: int = 500  # fields selected in one GraphQL operation
    statement_timeout_ms: int = 15_000
    idempotency_ttl_seconds: int = 300
    schema_cache_seconds: float = 5.0
    emergency_access_minutes: int = 60
    # Built-in schedule, run by every worker (the jobs lock or are idempotent); "" disables it.
    job_schedule: str = (
        "sealAuditLog=60,purgeExpiredMessages=3600,purgeIdempotencyKeys=3600,purgeOrphanFiles=3600"
    )
    audit_reads: bool = True  # one audit entry per request that reads PHI (HIPAA access log)
    audit_seal_lag_seconds: int = 120  # entries older than this are sealed into blocks
    audit_key: str | None = Field(default=None, repr=False)  # HMAC key for seals

    # Identity (issue 3): sign-up, sessions, lockout, MFA, SSO, mail.
    allow_patient_signup: bool = True
    password_min_length: int = 10
    password_max_length: int = 128
    session_absolute_minutes: int = 12 * 60
    session_idle_minutes_patient: int = 30
    session_idle_minutes_staff: int = 15
    lockout_threshold: int = 5
    lockout_minutes: int = 15
    login_rate_per_ip: int = 30  # login attempts per IP per minute
    mfa_required_roles: str = "provider,admin,compliance"
    mfa_issuer: str = "MindHarbor"
    invitation_hours: int = 72
    password_reset_minutes: int = 30
    public_url: str | None = None  # links in mails; defaults to http://host:port
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = Field(default=None, repr=False)
    smtp_starttls: bool = True
    mail_from: str = "MindHarbor <no-reply@mindharbor.local>"
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_link_verified_email: bool = False
    # Comma-separated module names: `providers(settings)` for SSO, `register(hooks)` for hooks.
    auth_provider_modules: str = ""
    hook_modules: str = ""

    # LiveQuery (issue 5): WebSocket path (default: mount_path), per-connection queue of unsent
    # events, how often a subscriber's session and roles are re-read, stalled-send timeout.
    live_query_path: str | None = None
    live_query_queue_size: int = 1000
    # Revocations and role changes reach live queries as change events at once; these two only
    # bound how late a session's *expiry* is noticed. Short values re-read every subscriber's
    # session often, which stalled event delivery at 1,000 clients.
    live_query_auth_seconds: float = 30.0
    live_query_sweep_seconds: float = 30.0
    live_query_send_timeout_seconds: float = 10.0

    # Files (issue 6): encrypted attachments behind signed, expiring URLs.
    files_key: str | None = Field(default=None, repr=False)  # KEK: 32 bytes, base64 or hex
    files_backend: str = "local"  # "local" (data_dir/files) or "s3"
    max_file_bytes: int = 25 * 1024 * 1024
    file_url_ttl_seconds: int = 300
    allowed_file_types: str = "application/pdf,image/png,image/jpeg,text/plain"
    file_gc_grace_seconds: int = 24 * 3600  # unreferenced uploads are kept this long
    s3_endpoint_url: str | None = None  # e.g. https://s3.eu-west-1.amazonaws.com or MinIO
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = Field(default=None, repr=False)
    s3_secret_access_key: str | None = Field(default=None, repr=False)
    s3_prefix: str = "files/"

    @property
    def sqlalchemy_url(self) -> str:
        """The async SQLAlchemy URL for ``database_url`` (plain ``postgresql://`` is accepted)."""
        url = self.database_url or f"sqlite:///{(self.data_dir / 'mindharbor.db').resolve()}"
        if url.startswith(("postgres://", "postgresql://")):
            return "postgresql+asyncpg://" + url.split("://", 1)[1]
        if url.startswith("sqlite://"):
            return "sqlite+aiosqlite://" + url.split("://", 1)[1]
        return url

    @property
    def dialect(self) -> str:
        return "postgresql" if self.sqlalchemy_url.startswith("postgresql") else "sqlite"

    def resolve(self) -> Settings:
        """Fill in the generated demo secrets; refuse to run production without a master key."""
        if self.master_key:
            return self
        if self.production:
            raise SystemExit("MINDHARBOR_MASTER_KEY is required when MINDHARBOR_PRODUCTION=true")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key_file = self.data_dir / "master.key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(32))
            key_file.chmod(0o600)
        return self.model_copy(update={"master_key": key_file.read_text().strip()})


def load_settings(**overrides: object) -> Settings:
    """Read the environment (plus explicit overrides) and resolve generated secrets."""
    return Settings(**overrides).resolve()  # type: ignore[arg-type]
