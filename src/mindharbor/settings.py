"""Configuration, read from ``MINDHARBOR_*`` environment variables (or a ``.env`` file) once.

Nothing reads the environment at import time: ``load_settings()`` is called by the CLI and the
result is passed down to ``create_app`` and the store, so tests can build several servers with
different settings in one process.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Parse Server's defaults for the deliberate deviations (issue 15). MINDHARBOR_PARSE_COMPAT=true
# applies each of them to every setting below that is not given explicitly; a setting given
# explicitly (environment, ``.env`` or a keyword) always wins. docs/parse-compatibility.md.
PARSE_COMPAT_DEFAULTS: dict[str, object] = {
    "password_min_length": 1,  # Parse has no minimum (an empty password is still refused)
    "password_reject_common": False,  # Parse has no common-password list
    "password_reject_username": False,  # passwordPolicy.doNotAllowUsername: false
    "user_custom_fields": True,  # a user may add and write custom fields of its own _User
    "auth_linking": True,  # linkWith / unlink of configured authData providers
    "anonymous_users": True,  # enableAnonymousUsers: true
}


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
    # Workers bring the database schema up to date as they start (the embedded default). A
    # deployment with several workers or hosts sets this false and runs `mindharbor migrate`
    # once per upgrade; a worker then refuses to start on a schema that is behind.
    migrate_on_start: bool = True

    allow_client_class_creation: bool = False
    default_limit: int = 100
    max_limit: int = 1000
    max_skip: int = 10_000_000
    max_body_bytes: int = 10 * 1024 * 1024
    # Slow or oversized requests (mindharbor/httpguard.py, under `serve`): 408 when a request's
    # head or body is not in by its deadline, 431 for a head over either limit.
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 60.0
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    # GET /metrics (Prometheus) answers the master key, or `Authorization: Bearer <token>`.
    metrics_token: str | None = Field(default=None, repr=False)
    # Where `serve` keeps the workers' metric files (prometheus-client multiprocess mode);
    # default: a fresh directory under the system's temporary directory.
    metrics_dir: Path | None = None
    max_batch_requests: int = 50
    max_query_depth: int = 8
    max_in_list: int = 1000
    # Constraints in one where (each key, operator and $or/$and/$nor branch, sub-queries'
    # included; $in/$nin/$all lists count once): counted before anything is compiled.
    max_query_terms: int = 256
    max_regex_length: int = 1000
    # Rows one /aggregate answer (groups, distinct values or objects) may hold; beyond, 102.
    aggregate_max_rows: int = 10_000
    graphql_max_depth: int = 20  # nested fields (a Relay connection hop is edges.node: 3)
    graphql_max_complexity: int = 500  # fields + fragment spreads, fragments expanded
    graphql_max_document_bytes: int = 100_000  # the query text of one GraphQL request
    graphql_max_tokens: int = 5_000  # lexical tokens of one document; the parser stops here
    # Introspection (__schema, __type) for every caller, not only the master key. Off by
    # default, as in Parse Server 9: the schema names every class, field and cloud function.
    graphql_public_introspection: bool = False
    # A GraphQL SDL file extending the generated schema (@resolve / @mock, as Parse's
    # graphQLCustomTypeDefs).
    graphql_schema: Path | None = None
    statement_timeout_ms: int = 15_000
    idempotency_ttl_seconds: int = 300
    schema_cache_seconds: float = 5.0
    emergency_access_minutes: float = 60  # fractions allowed (tests, drills)
    # Built-in schedule, run by every worker (the jobs lock or are idempotent); "" disables it.
    job_schedule: str = (
        "sealAuditLog=60,purgeExpiredMessages=3600,purgeIdempotencyKeys=3600,purgeOrphanFiles=3600"
    )
    audit_reads: bool = True  # one audit entry per request that reads PHI (HIPAA access log)
    audit_seal_lag_seconds: int = 120  # entries older than this are sealed into blocks
    audit_key: str | None = Field(default=None, repr=False)  # HMAC key for seals

    # Identity (issue 3): sign-up, sessions, lockout, MFA, SSO, mail.
    allow_patient_signup: bool = True
    # One switch for Parse Server's defaults where MindHarbor is stricter (PARSE_COMPAT_DEFAULTS).
    parse_compat: bool = False
    password_min_length: int = 10
    password_max_length: int = 128
    password_reject_common: bool = True  # refuse the bundled list of common passwords
    password_reject_username: bool = True  # refuse a password containing the username
    # More common passwords to refuse (one a line, plain or .gz), beside the bundled list.
    password_common_list: Path | None = None
    # A signed-in user may add custom fields to its own _User and write them (protected and
    # server fields stay server-only); off: only the master key adds _User fields.
    user_custom_fields: bool = False
    # A signed-in user may link (and unlink) a configured authData provider to its account.
    auth_linking: bool = False
    # authData.anonymous log-ins (Parse's anonymous users) and their upgrade to a real account.
    anonymous_users: bool = False
    session_absolute_minutes: int = 12 * 60
    session_idle_minutes_patient: int = 30
    session_idle_minutes_staff: int = 15
    lockout_threshold: int = 5
    lockout_minutes: int = 15
    login_rate_per_ip: int = 30  # login attempts per IP per minute
    # Self sign-ups per IP per minute: "username taken" (202/203) is Parse's answer, so the
    # rate is what bounds enumerating accounts through it (issue 19).
    signup_rate_per_ip: int = 20
    mfa_required_roles: str = "provider,admin,compliance"
    mfa_attempts_per_minute: int = 5  # second-factor checks per account per minute
    # argon2id parameters for new password hashes: "owasp" (19 MiB, t=2, p=1) or "rfc9106"
    # (64 MiB, t=3, p=4); hashes made otherwise are upgraded at the next login.
    password_hash_profile: Literal["owasp", "rfc9106"] = "owasp"  # noqa: S105 - a profile name
    # Keep resolved sessions in each worker until a change event drops them (off: read every
    # request's session from the database).
    identity_cache: bool = True
    # Reuse each find's compiled SQL for later finds of the same shape (PostgreSQL).
    shape_cache: bool = True
    # Connections each worker keeps to PostgreSQL (and how many more it may open at a peak);
    # connections opened beyond the pool are closed again, so a pool smaller than the worker's
    # concurrency churns connections.
    db_pool_size: int = 24
    db_max_overflow: int = 16
    # Every Redis call of the live-query fan-out (publish, subscribe, ping) is bounded by this.
    live_query_redis_timeout_seconds: float = 1.0
    mfa_issuer: str = "MindHarbor"
    # Shown by the web views (/app/, /clinic/): the clinic's name, and its emergency instructions
    # beside the 988 Lifeline whenever a patient's screen is positive.
    clinic_name: str = "MindHarbor Clinic"
    clinic_emergency_instructions: str = (
        "If you are in immediate danger, call 911 or go to the nearest emergency department. "
        "During office hours you can also call the clinic and ask for the on-call clinician."
    )
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
    # The IdP's authorization endpoint: with an issuer, the patient portal offers a single
    # sign-on button (OIDC implicit id_token flow; the client id is the audience).
    oidc_authorize_url: str | None = None
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
    # A file URL minted for a session downloads only with that session's token (issue 19).
    file_urls_bound_to_session: bool = True
    allowed_file_types: str = "application/pdf,image/png,image/jpeg,text/plain"
    # Uploads without a session (Parse's fileUpload.enableForPublic, off in Parse too);
    # downloads stay signed either way.
    file_upload_public: bool = False
    file_gc_grace_seconds: int = 24 * 3600  # unreferenced uploads are kept this long
    s3_endpoint_url: str | None = None  # e.g. https://s3.eu-west-1.amazonaws.com or MinIO
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = Field(default=None, repr=False)
    s3_secret_access_key: str | None = Field(default=None, repr=False)
    s3_prefix: str = "files/"

    @model_validator(mode="after")
    def _apply_parse_compat(self) -> Self:
        """``parse_compat`` fills every deviation setting not given explicitly with Parse's
        default (``model_fields_set`` holds the names given by keyword or environment)."""
        if self.parse_compat:
            for name, value in PARSE_COMPAT_DEFAULTS.items():
                if name not in self.model_fields_set:
                    object.__setattr__(self, name, value)
        return self

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, url: str | None) -> str | None:
        """PostgreSQL or SQLite only: anything else (``mysql://``) is refused, not taken for
        a file name."""
        if url is None or url == "":
            return None
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if scheme not in _DATABASE_SCHEMES:
            shown = f"{scheme}://" if scheme else "a URL without a scheme"
            raise ValueError(
                f"must be postgresql://... or sqlite:///... (got {shown}; MindHarbor supports "
                "PostgreSQL and SQLite only)"
            )
        return url

    def production_problems(self) -> list[str]:
        """Every missing or weak setting that production refuses, all at once."""
        problems = []
        if not self.master_key:
            problems.append("MINDHARBOR_MASTER_KEY is required (32 or more random characters)")
        elif len(self.master_key) < MIN_SECRET_LENGTH:
            problems.append(
                f"MINDHARBOR_MASTER_KEY is too short ({len(self.master_key)} characters; "
                f"{MIN_SECRET_LENGTH} or more)"
            )
        if not self.files_key:
            problems.append("MINDHARBOR_FILES_KEY is required (32 random bytes, base64 or hex)")
        if not self.audit_key:
            problems.append("MINDHARBOR_AUDIT_KEY is required (32 or more random characters)")
        elif len(self.audit_key) < MIN_SECRET_LENGTH:
            problems.append(f"MINDHARBOR_AUDIT_KEY is too short ({MIN_SECRET_LENGTH} or more)")
        if self.metrics_token and len(self.metrics_token) < MIN_SECRET_LENGTH:
            problems.append(f"MINDHARBOR_METRICS_TOKEN is too short ({MIN_SECRET_LENGTH} or more)")
        if not self.public_url:
            problems.append("MINDHARBOR_PUBLIC_URL is required (the https:// address clients use)")
        if self.files_backend == "s3" and not self.s3_bucket:
            problems.append("MINDHARBOR_S3_BUCKET is required with MINDHARBOR_FILES_BACKEND=s3")
        return problems

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
        """Fill in the generated demo secrets; refuse production with any missing or weak
        setting, naming every one."""
        if self.production:
            problems = self.production_problems()
            if problems:
                raise SystemExit(
                    "error: MINDHARBOR_PRODUCTION=true refuses these settings:\n"
                    + "\n".join(f"  - {problem}" for problem in problems)
                )
        if self.master_key:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key_file = self.data_dir / "master.key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(32))
            key_file.chmod(0o600)
        return self.model_copy(update={"master_key": key_file.read_text().strip()})


MIN_SECRET_LENGTH = 32
_DATABASE_SCHEMES = {"postgres", "postgresql", "postgresql+asyncpg", "sqlite", "sqlite+aiosqlite"}


def load_settings(**overrides: object) -> Settings:
    """Read the environment (plus explicit overrides) and resolve generated secrets."""
    return Settings(**overrides).resolve()  # type: ignore[arg-type]
