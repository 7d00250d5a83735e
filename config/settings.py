"""The one configuration source: every ECOMRISK_* variable is a field here."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
API_SCOPES = ("read", "review")  # review implies read
SLACK_PREFIX = "slack:"


@dataclass(frozen=True, slots=True)
class ApiToken:
    """One bearer token of the API: its name is recorded as the reviewer."""

    name: str
    token: str
    scope: str

    def allows(self, scope: str) -> bool:
        """True when this token may call an endpoint that needs scope."""
        return self.scope == "review" or scope == self.scope


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """A webhook receiver; slack endpoints get a Slack-compatible body."""

    url: str
    slack: bool = False


def parse_api_tokens(value: str | None) -> tuple[ApiToken, ...]:
    """name:token:scope entries, comma-separated; a malformed entry is an error naming it."""
    tokens: list[ApiToken] = []
    for number, entry in enumerate((value or "").split(","), start=1):
        entry = entry.strip()
        if not entry:
            continue
        name, _, rest = entry.partition(":")
        token, _, scope = rest.rpartition(":")
        if not name or not token or scope not in API_SCOPES:
            # The entry itself is not shown: it may hold a token.
            raise ValueError(f"api_tokens entry {number} is not name:token:read|review")
        if any(t.name == name for t in tokens):
            raise ValueError(f"api_tokens has the name {name!r} twice")
        tokens.append(ApiToken(name, token, scope))
    return tuple(tokens)


def parse_webhook_urls(value: str | None) -> tuple[WebhookEndpoint, ...]:
    """Comma-separated http(s) URLs, each optionally prefixed slack:."""
    endpoints: list[WebhookEndpoint] = []
    for entry in (value or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        slack = entry.startswith(SLACK_PREFIX)
        url = entry.removeprefix(SLACK_PREFIX)
        if urlsplit(url).scheme not in {"http", "https"} or not urlsplit(url).hostname:
            raise ValueError(f"webhook_urls entry {hide_password(url)!r} is not an http(s) URL")
        endpoints.append(WebhookEndpoint(url, slack))
    return tuple(endpoints)


class Settings(BaseSettings):
    """Runtime settings, read from ECOMRISK_* variables and an optional .env file."""

    # populate_by_name: Settings(marker_burst_weight=…) works beside the aliased environment names.
    model_config = SettingsConfigDict(
        env_prefix="ECOMRISK_", env_file=".env", extra="ignore", frozen=True, populate_by_name=True
    )

    # --- services ---------------------------------------------------------
    redis_url: str | None = Field(
        default=None,
        description="Broker URL (redis:// or rediss://). Unset: `ecomrisk up` starts a private Redis.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Unset: sqlite:///<data_dir>/ecomrisk.db.",
    )
    data_dir: Path = Field(default=Path("data"), description="Raw logs, labels, private Redis.")
    queue_name: str = Field(default="ecomrisk", description="Celery queue for ingest batches.")

    # --- producer -----------------------------------------------------------
    batch_size: int = Field(default=10_000, ge=1, le=100_000, description="Events per batch.")
    producer_rate: float = Field(default=200.0, gt=0, description="Events/s in continuous mode.")
    publish_retry_max_s: float = Field(
        default=30.0,
        gt=0,
        description="Longest backoff between publish retries while Redis is down.",
    )

    # --- input limits and quarantine ------------------------------------------
    max_batch_bytes: int = Field(default=16_000_000, ge=1024, description="Larger batches are refused.")
    max_line_bytes: int = Field(default=16_384, ge=256, description="Longer lines are quarantined.")
    max_field_chars: int = Field(
        default=256,
        ge=8,
        le=256,
        description="Longest accepted string field (at most the column width, 256).",
    )
    max_amount: float = Field(default=1_000_000.0, gt=0, description="Largest accepted amount.")
    quarantine_detail_chars: int = Field(default=500, ge=50, description="Detail text is cut here.")

    # --- event-time skew, relative to the worker's clock ---------------------------
    max_past_skew_days: float = Field(
        default=3650.0, gt=0, description="Older events are quarantined (days)."
    )
    max_future_skew_s: float = Field(
        default=86_400.0, gt=0, description="Events further in the future are quarantined (s)."
    )

    # --- behavioural rules ----------------------------------------------------
    rapid_gap_s: float = Field(default=2.0, gt=0, description="Gap strictly under this is rapid (s).")
    session_gap_s: float = Field(
        default=1800.0, gt=0, description="A gap of at least this starts a new session (s)."
    )
    night_start_hour: int = Field(
        default=0, ge=0, le=23, description="Unsociable hours start (the event's local time)."
    )
    night_end_hour: int = Field(
        default=6, ge=1, le=24, description="Unsociable hours end (the event's local time)."
    )
    velocity_window_s: float = Field(
        default=3600.0, gt=0, description="Rolling window for purchase velocity and spend (s)."
    )
    steady_gap_tolerance: float = Field(
        default=0.05, ge=0, lt=1, description="A gap within this fraction of the previous one is steady."
    )
    machine_gap_s: float = Field(
        default=0.5, gt=0, description="A within-session gap under this is faster than a person acts (s)."
    )
    rest_gap_s: float = Field(
        default=14_400.0, gt=0, description="A gap of at least this is a rest; it ends an awake run (s)."
    )
    chase_stake_multiple: float = Field(
        default=2.0,
        ge=1,
        description="A later bet at this multiple of its session's opening stake or more is a raised bet.",
    )

    # --- current risk: a trailing window of event time ------------------------------
    risk_window_s: float = Field(
        default=259_200.0,
        gt=0,
        description="Current risk reads this much event time up to the user's latest bucket (s).",
    )
    risk_bucket_s: float = Field(
        default=21_600.0,
        ge=60,
        description="Event time is summed per user in buckets this long; the window moves by one (s).",
    )

    # --- risk markers: thresholds and weights (points out of 100) -------------------
    share_confidence_z: float = Field(
        default=1.645, ge=0, description="Share markers compare the share's Wilson lower bound at this z."
    )
    marker_automation_agent_threshold: float = Field(
        default=0.5, gt=0, le=1, description="Share of events from automation user agents."
    )
    marker_automation_agent_weight: int = Field(
        default=80, ge=0, le=100, description="Points of automation_agent."
    )
    marker_login_flood_threshold: float = Field(
        default=0.5, gt=0, le=1, description="Share of events that are logins."
    )
    marker_login_flood_weight: int = Field(default=70, ge=0, le=100, description="Points of login_flood.")
    marker_regular_bets_threshold: float = Field(
        default=0.5, gt=0, le=1, description="Share of gaps between bets nearly equal to the one before."
    )
    marker_regular_bets_weight: int = Field(default=70, ge=0, le=100, description="Points of regular_bets.")
    marker_machine_speed_threshold: float = Field(
        default=0.3, gt=0, le=1, description="Share of within-session gaps faster than a person acts."
    )
    marker_machine_speed_weight: int = Field(default=60, ge=0, le=100, description="Points of machine_speed.")
    marker_regular_timing_threshold: float = Field(
        default=0.15,
        validation_alias=AliasChoices(
            "ecomrisk_marker_regular_timing_threshold", "ecomrisk_regular_timing_cv"
        ),
        gt=0,
        description="Gap CV under this is machine-like.",
    )
    marker_regular_timing_weight: int = Field(
        default=70,
        validation_alias=AliasChoices(
            "ecomrisk_marker_regular_timing_weight", "ecomrisk_regular_timing_weight"
        ),
        ge=0,
        le=100,
        description="Points of regular_timing.",
    )
    marker_steady_rhythm_threshold: float = Field(
        default=0.5,
        validation_alias=AliasChoices(
            "ecomrisk_marker_steady_rhythm_threshold", "ecomrisk_steady_share_threshold"
        ),
        gt=0,
        le=1,
        description="Share of steady gaps.",
    )
    marker_steady_rhythm_weight: int = Field(
        default=70,
        validation_alias=AliasChoices(
            "ecomrisk_marker_steady_rhythm_weight", "ecomrisk_steady_rhythm_weight"
        ),
        ge=0,
        le=100,
        description="Points of steady_rhythm.",
    )
    marker_inhuman_volume_threshold: float = Field(
        default=1.0,
        validation_alias=AliasChoices(
            "ecomrisk_marker_inhuman_volume_threshold", "ecomrisk_inhuman_mean_gap_s"
        ),
        gt=0,
        description="Mean gap under this is inhuman (s).",
    )
    marker_inhuman_volume_weight: int = Field(
        default=30,
        validation_alias=AliasChoices(
            "ecomrisk_marker_inhuman_volume_weight", "ecomrisk_inhuman_volume_weight"
        ),
        ge=0,
        le=100,
        description="Points of inhuman_volume.",
    )
    marker_no_rest_threshold: float = Field(
        default=20.0, gt=0, description="Hours of activity without a rest."
    )
    marker_no_rest_weight: int = Field(default=60, ge=0, le=100, description="Points of no_rest.")
    marker_crawling_threshold: float = Field(
        default=150.0, gt=0, description="Views and searches per session."
    )
    marker_crawling_weight: int = Field(default=60, ge=0, le=100, description="Points of crawling.")
    marker_rapid_buying_threshold: float = Field(
        default=0.3, gt=0, le=1, description="Share of cart and purchase actions that are rapid."
    )
    marker_rapid_buying_weight: int = Field(default=35, ge=0, le=100, description="Points of rapid_buying.")
    marker_rapid_share_threshold: float = Field(
        default=0.3,
        validation_alias=AliasChoices(
            "ecomrisk_marker_rapid_share_threshold", "ecomrisk_rapid_share_threshold"
        ),
        gt=0,
        le=1,
        description="Share of rapid actions.",
    )
    marker_rapid_share_weight: int = Field(
        default=15,
        validation_alias=AliasChoices("ecomrisk_marker_rapid_share_weight", "ecomrisk_rapid_share_weight"),
        ge=0,
        le=100,
        description="Points of rapid_share.",
    )
    marker_burst_threshold: int = Field(
        default=8,
        validation_alias=AliasChoices("ecomrisk_marker_burst_threshold", "ecomrisk_burst_threshold"),
        ge=1,
        description="Consecutive rapid actions.",
    )
    marker_burst_weight: int = Field(
        default=10,
        validation_alias=AliasChoices("ecomrisk_marker_burst_weight", "ecomrisk_burst_weight"),
        ge=0,
        le=100,
        description="Points of burst.",
    )
    marker_purchase_velocity_threshold: int = Field(
        default=30,
        validation_alias=AliasChoices(
            "ecomrisk_marker_purchase_velocity_threshold", "ecomrisk_purchase_velocity_threshold"
        ),
        ge=1,
        description="Purchases or bets per velocity window.",
    )
    marker_purchase_velocity_weight: int = Field(
        default=30,
        validation_alias=AliasChoices(
            "ecomrisk_marker_purchase_velocity_weight", "ecomrisk_purchase_velocity_weight"
        ),
        ge=0,
        le=100,
        description="Points of purchase_velocity.",
    )
    marker_spend_escalation_threshold: float = Field(
        default=500.0,
        validation_alias=AliasChoices(
            "ecomrisk_marker_spend_escalation_threshold", "ecomrisk_spend_velocity_threshold"
        ),
        gt=0,
        description="Spend per velocity window.",
    )
    marker_spend_escalation_weight: int = Field(
        default=10,
        validation_alias=AliasChoices(
            "ecomrisk_marker_spend_escalation_weight", "ecomrisk_spend_velocity_weight"
        ),
        ge=0,
        le=100,
        description="Points of spend_escalation.",
    )
    marker_stake_chasing_threshold: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="Share of later bets raised to the chase multiple of the opening.",
    )
    marker_stake_chasing_weight: int = Field(default=35, ge=0, le=100, description="Points of stake_chasing.")
    marker_unsociable_hours_threshold: float = Field(
        default=0.5,
        validation_alias=AliasChoices(
            "ecomrisk_marker_unsociable_hours_threshold", "ecomrisk_night_share_threshold"
        ),
        gt=0,
        le=1,
        description="Share of activity in local night hours.",
    )
    marker_unsociable_hours_weight: int = Field(
        default=10,
        validation_alias=AliasChoices(
            "ecomrisk_marker_unsociable_hours_weight", "ecomrisk_night_share_weight"
        ),
        ge=0,
        le=100,
        description="Points of unsociable_hours.",
    )
    marker_night_sessions_threshold: int = Field(
        default=3, ge=1, description="Sessions started at local night within the window."
    )
    marker_night_sessions_weight: int = Field(
        default=10, ge=0, le=100, description="Points of night_sessions."
    )
    marker_long_session_threshold: float = Field(default=1.0, gt=0, description="Hours of one session.")
    marker_long_session_weight: int = Field(default=15, ge=0, le=100, description="Points of long_session.")
    band_elevated: int = Field(default=40, ge=1, le=100, description="Score from which a user is elevated.")
    band_high: int = Field(default=70, ge=1, le=100, description="Score from which a user is high.")

    # --- workers --------------------------------------------------------------------
    worker_concurrency: int = Field(default=2, ge=1, description="Pool processes per worker.")
    worker_prefetch: int = Field(default=1, ge=1, description="Tasks reserved per pool process.")
    visibility_timeout_s: int = Field(
        default=600, ge=5, description="Unacked tasks are redelivered after this (s)."
    )
    task_max_attempts: int = Field(default=5, ge=1, description="Deliveries before dead-letter.")
    worker_stall_s: float = Field(
        default=60.0,
        ge=0,
        description="A worker idle this long while tasks wait exits 75, to be restarted (s; 0: off).",
    )
    sqlite_busy_timeout_ms: int = Field(
        default=30_000, ge=0, description="SQLite waits this long for a lock."
    )

    # --- dashboard and flower -----------------------------------------------------------
    dashboard_host: str = Field(default="127.0.0.1", description="Dashboard bind address.")
    dashboard_port: int = Field(default=8050, description="Dashboard port.")
    dashboard_refresh_ms: int = Field(default=2000, ge=250, description="Dashboard refresh interval (ms).")
    dashboard_debug: bool = Field(default=False, description="Dash debug mode; never in production.")
    dashboard_auth: str | None = Field(default=None, description="user:password for basic auth.")
    flower_host: str = Field(default="127.0.0.1", description="Flower bind address.")
    flower_port: int = Field(default=5555, description="Flower port.")
    flower_basic_auth: str | None = Field(default=None, description="user:password for Flower.")

    # --- score and review API ----------------------------------------------------------------
    api_host: str = Field(default="127.0.0.1", description="API bind address.")
    api_port: int = Field(default=8000, description="API port.")
    api_tokens: str | None = Field(
        default=None,
        description="Bearer tokens, comma-separated name:token:scope entries (scope read or review).",
    )
    api_url: str | None = Field(
        default=None, description="Where the dashboard reaches the API. Unset: http://<api_host>:<api_port>."
    )
    dashboard_api_token: str | None = Field(
        default=None, description="The review-scope token the dashboard sends to the API."
    )
    allow_list_days: float = Field(
        default=30.0, gt=0, description="Default lifetime of an allow-list entry (days)."
    )

    # --- webhooks -----------------------------------------------------------------------------
    webhook_urls: str | None = Field(
        default=None,
        description="Endpoints that receive each alert, comma-separated; prefix slack: for a Slack body.",
    )
    webhook_secret: str | None = Field(default=None, description="HMAC-SHA256 key of X-Ecomrisk-Signature.")
    webhook_queue: str = Field(
        default="ecomrisk-webhooks", description="Celery queue for webhook deliveries."
    )
    webhook_concurrency: int = Field(default=2, ge=1, description="Pool processes of the webhook worker.")
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, description="Timeout of each webhook POST phase (s)."
    )
    webhook_max_attempts: int = Field(
        default=12, ge=1, description="Attempts before a delivery is dead-lettered."
    )
    webhook_backoff_s: float = Field(
        default=1.0, gt=0, description="First retry delay; doubled per attempt, at most 300 s (s)."
    )
    webhook_sweep_s: float = Field(
        default=15.0,
        ge=1,
        description="The outbox sweep runs this often and re-sends what is this overdue (s).",
    )
    webhook_outbox_hours: float = Field(
        default=72.0, gt=0, description="The sweep looks at alerts this recent (h)."
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        if self.band_high < self.band_elevated:
            raise ValueError("band_high must be at least band_elevated")
        if self.night_end_hour <= self.night_start_hour:
            raise ValueError("night_end_hour must be after night_start_hour")
        buckets = self.risk_window_s / self.risk_bucket_s
        if buckets < 1 or abs(buckets - round(buckets)) > 1e-9:
            raise ValueError("risk_window_s must be a whole number of risk_bucket_s")
        if self.dashboard_host not in LOCAL_HOSTS and not self.dashboard_auth:
            raise ValueError("dashboard_host is not local: set ECOMRISK_DASHBOARD_AUTH=user:password first")
        if self.flower_host not in LOCAL_HOSTS and not self.flower_basic_auth:
            raise ValueError("flower_host is not local: set ECOMRISK_FLOWER_BASIC_AUTH=user:password first")
        tokens = parse_api_tokens(self.api_tokens)
        if self.api_host not in LOCAL_HOSTS and not tokens:
            raise ValueError("api_host is not local: set ECOMRISK_API_TOKENS=name:token:scope first")
        if parse_webhook_urls(self.webhook_urls) and not self.webhook_secret:
            raise ValueError(
                "webhook_urls is set: set ECOMRISK_WEBHOOK_SECRET too, webhooks are always signed"
            )
        return self

    @property
    def tokens(self) -> tuple[ApiToken, ...]:
        """The API's bearer tokens."""
        return parse_api_tokens(self.api_tokens)

    @property
    def webhook_endpoints(self) -> tuple[WebhookEndpoint, ...]:
        """The configured webhook endpoints, in order."""
        return parse_webhook_urls(self.webhook_urls)

    @property
    def resolved_api_url(self) -> str:
        """The API's base URL for local clients (the dashboard, the CLI)."""
        if self.api_url:
            return self.api_url.rstrip("/")
        host = "127.0.0.1" if self.api_host in {"0.0.0.0", "::", ""} else self.api_host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.api_port}"

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file under data_dir."""
        return self.database_url or f"sqlite:///{self.data_dir / 'ecomrisk.db'}"

    @property
    def raw_dir(self) -> Path:
        """Where the producer writes every batch before enqueueing it."""
        return self.data_dir / "raw"

    @property
    def labels_path(self) -> Path:
        """Ground-truth persona of every generated user (never inside the events)."""
        return self.data_dir / "labels.csv"

    @property
    def rapid_gap_ms(self) -> int:
        return round(self.rapid_gap_s * 1000)

    @property
    def session_gap_ms(self) -> int:
        return round(self.session_gap_s * 1000)

    @property
    def steady_tolerance_bp(self) -> int:
        """The steady-gap tolerance in basis points, for exact integer comparison."""
        return round(self.steady_gap_tolerance * 10_000)

    @property
    def velocity_window_ms(self) -> int:
        return round(self.velocity_window_s * 1000)


def hide_password(url: str) -> str:
    """The URL with any password replaced by ***, for printing."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built once; tests pass their own Settings instead."""
    return Settings()
