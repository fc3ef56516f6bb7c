"""Typed configuration, built once at start-up and passed down."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, get_type_hints

from hashmatch.errors import ConfigError


def usable_cores() -> int:
    """The cores this process may use (its affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class HashMode(StrEnum):
    """Which PDQ the engine computes.

    exact: pdqhash on Pillow-decoded RGB at full resolution (python-threatexchange, HMA),
           bit for bit on every format; JPEG luma made from the stored YCbCr planes as
           libjpeg-turbo would make RGB of them (kernels/ycc.py).
    luma:  exact, except that a colour JPEG's luma is its Y plane (no chroma decoded):
           faster, and 0-18 bits from exact (README, Modes).
    cpp:   Meta's C++ pdq-photo-hasher: images over 512 px shrunk to 512x512 by nearest
           neighbour, then hashed; bit-exact with that tool.
    fast:  JPEG decoded at a reduced scale in the DCT domain; NOT reference-compatible,
           see bench/RESULTS.md for its measured distance.
    """

    EXACT = "exact"
    LUMA = "luma"
    CPP = "cpp"
    FAST = "fast"


class BackendChoice(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    GPU = "gpu"


class DecoderChoice(StrEnum):
    # Beside the GPU backend: DALI where it is installed, else nvImageCodec, else the CPU.
    AUTO = "auto"
    CPU = "cpu"  # simplejpeg / Pillow
    DALI = "dali"  # required (on the CPU when the backend is the CPU)
    NVIMAGECODEC = "nvimagecodec"  # required (likewise); images only


class IndexChoice(StrEnum):
    MIH = "mih"  # multi-index hashing on the CPU (exact)
    GPU = "gpu"  # an exact scan on a CUDA device (hashmatch.index.gpu_flat)


class PoolKind(StrEnum):
    THREAD = "thread"
    PROCESS = "process"


@dataclass(frozen=True)
class EngineConfig:
    mode: HashMode = HashMode.EXACT
    dihedral: bool = False
    workers: int = 1
    pool: PoolKind = PoolKind.THREAD
    backend: BackendChoice = BackendChoice.AUTO
    # Exact mode only; other modes decode on the CPU path.
    decoder: DecoderChoice = DecoderChoice.AUTO
    # Decompression-bomb guard: checked from the header, before any pixel is decoded.
    max_pixels: int = 100_000_000
    max_bytes: int = 64 * 1024 * 1024
    # Memory one image may take to decode, at its peak, checked from the header: Pillow's
    # decoded pixels plus their RGB conversion (11 bytes a pixel for RGB: ~97 MP), a
    # colour JPEG's planes or RGB and its float luma (7), a grey JPEG's plane (2).
    max_decoded_bytes: int = 1024 * 1024 * 1024
    # The decoded bytes one batch may hold at once where the backend keeps them until
    # the batch is hashed (the GPU's); a larger batch is hashed in parts.
    max_batch_decoded_bytes: int = 2 * 1024 * 1024 * 1024
    # Scans a JPEG may have, bounded by its FF DA byte pairs (libjpeg's progressive
    # script writes 10): each is a pass over every block, so thousands of tiny scans are
    # a decode-time bomb.
    max_jpeg_scans: int = 100
    # Past 12 scans (more than libjpeg's standard scripts write), scans x pixels at most
    # this: each scan is a pass over the image (95 of them at 100 Mpx took 4 s), so no file
    # costs more than a 12-scan one of max_pixels, and 100 scans pass up to 4 Mpx.
    max_jpeg_scan_pixels: int = 400_000_000
    # The reference hashes nothing under 5 px on a side (it returns a zero hash).
    min_dimension: int = 5
    # fast mode: smallest side kept by the DCT-domain downscale.
    fast_min_side: int = 256
    # exact mode: read JPEGs as YCbCr planes through libturbojpeg where it is installed
    # (false: decode them to RGB, the same hashes, slower).
    jpeg_planes: bool = True

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if self.max_pixels < 1 or self.max_bytes < 1 or self.max_decoded_bytes < 1:
            raise ConfigError("max_pixels, max_bytes and max_decoded_bytes must be positive")
        if self.max_jpeg_scans < 1:
            raise ConfigError(f"max_jpeg_scans must be >= 1, got {self.max_jpeg_scans}")
        if self.max_jpeg_scan_pixels < 1:
            raise ConfigError("max_jpeg_scan_pixels must be positive")
        if self.max_batch_decoded_bytes < self.max_decoded_bytes:
            raise ConfigError("max_batch_decoded_bytes must be >= max_decoded_bytes")
        if self.min_dimension < 1:
            raise ConfigError(f"min_dimension must be >= 1, got {self.min_dimension}")
        if self.fast_min_side < 64:
            raise ConfigError(f"fast_min_side must be >= 64, got {self.fast_min_side}")


@dataclass(frozen=True)
class BatchConfig:
    """The server's batcher: items from all callers gathered into engine batches."""

    max_batch: int = 32
    # 0: adaptive (a batch is what queued while the workers were busy: no waiting); > 0:
    # also wait up to this long for a fuller batch when a worker is free.
    max_wait_ms: float = 0.0
    # Bounded queue: past either limit, unary calls get RESOURCE_EXHAUSTED and streams wait.
    max_queue_items: int = 4096
    max_queue_bytes: int = 512 * 1024 * 1024
    # Batches hashed at once (each on its own thread or process).
    workers: int = 0  # 0: one per core
    pool: PoolKind = PoolKind.THREAD
    # A lone image up to this size (header pixels) arriving at an idle server is hashed
    # and matched on the event loop itself, saving the hops to a worker and back; 0: never.
    inline_max_pixels: int = 400_000

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_wait_ms < 0 or self.max_queue_items < 1:
            raise ConfigError("max_batch >= 1, max_wait_ms >= 0 and max_queue_items >= 1")
        if self.inline_max_pixels < 0:
            raise ConfigError(f"inline_max_pixels must be >= 0, got {self.inline_max_pixels}")
        if self.workers < 0:
            raise ConfigError(f"batch workers must be >= 0, got {self.workers}")

    @property
    def worker_count(self) -> int:
        return self.workers or usable_cores()


@dataclass(frozen=True)
class ServerConfig:
    listen: str = "127.0.0.1:50051"
    # Prometheus metrics over HTTP; empty disables.
    metrics_listen: str = "127.0.0.1:9464"
    # The PhotoDNA-compatible REST face; empty (the default) disables it.
    rest_listen: str = ""
    max_message_bytes: int = 80 * 1024 * 1024
    max_items_per_request: int = 1000
    # In-flight items one stream may have before its reads pause (back-pressure).
    stream_window: int = 256
    grace_seconds: float = 10.0
    # The banks' PDQ index: "mih" (CPU) or "gpu" (device memory; needs CUDA).
    pdq_index: IndexChoice = IndexChoice.MIH
    # The index snapshot (data dir) is rewritten after this many applied changes, and at
    # shutdown, so a restart loads it instead of rebuilding from the database; 0: never.
    snapshot_every: int = 100_000
    # Replicas: an fsspec URL where every replica publishes its snapshot and a new one
    # starts from (s3://..., gs://..., file:///mnt/shared/...); empty: none.
    shared_snapshot: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""  # set: clients must present a certificate signed by it

    def __post_init__(self) -> None:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("tls_cert and tls_key go together")
        if self.max_items_per_request < 1 or self.stream_window < 1:
            raise ConfigError("max_items_per_request and stream_window must be >= 1")
        if self.snapshot_every < 0:
            raise ConfigError("snapshot_every must be >= 0 (0: no snapshots)")


@dataclass(frozen=True)
class VideoConfig:
    """Video hashing (vPDQ) and matching defaults; matching ones can be set per request."""

    # One frame hashed per this many seconds (vPDQ's default 1); 0: every frame.
    seconds_per_hash: float = 1.0
    # Frames hashed together through the engine's backend.
    batch_frames: int = 32
    # Decoders at once (H.264 segments), else FFmpeg decode threads; 0: one per core.
    decode_threads: int = 0
    # True: luma from swscale's RGB24 like the reference; False: the Y plane (same hash
    # within rounding, no colour conversion). See hashmatch/video/decode.py.
    rgb: bool = False
    # H.264: do not decode pictures no sampled frame needs: unsampled non-reference ones,
    # and those after a segment's last sampled frame (same frames and numbers, checked;
    # falls back to decoding everything). See hashmatch/video/decode.py.
    skip_non_reference: bool = True
    # H.264: decode the IDR-to-IDR segments on decode_threads decoders at once, one thread
    # each, instead of one decoder (same frames, checked; falls back to one decoder).
    idr_segments: bool = True
    # Packets of segments held at once; a single segment larger than this (a very long
    # GOP) sends the video to the one-decoder path, which streams.
    segment_max_bytes: int = 256 * 1024**2
    # Decoder: "auto" = DALI (NVDEC, every frame decoded) where nvidia-dali is installed and a
    # CUDA device is usable, else PyAV; "dali" = always DALI (its CPU backend without a GPU);
    # "cpu" = PyAV only. DALI falls back to PyAV on anything it cannot do. See
    # hashmatch/video/dali_video.py.
    decoder: DecoderChoice = DecoderChoice.AUTO
    # DALI decodes from memory: larger videos go to PyAV (its buffer sizes are 32-bit).
    dali_max_bytes: int = 1024**3
    max_pixels: int = 8192 * 8192
    # Largest upload MatchVideo/HashVideo spool to disk.
    max_bytes: int = 4 * 1024**3
    # Most frames a client's vPDQ (MatchVideoHashes) may carry: a day at one a second.
    max_frames: int = 86_400
    # Frame comparisons one match may cost: each candidate stored video is compared frame
    # against frame (~7 ns a pair on one core), which the per-frame charge does not pay for.
    max_frame_pairs: int = 1_000_000_000
    # Where uploads are spooled (private temp files, removed on every exit path); "": $TMPDIR.
    spool_dir: str = ""
    # vPDQ matching defaults (a frame pair matches within max_distance bits; frames under
    # min_quality are ignored; a video matches when both shares reach their percents).
    max_distance: int = 31
    min_quality: int = 50
    query_match_percent: float = 80.0
    target_match_percent: float = 80.0

    def __post_init__(self) -> None:
        if self.seconds_per_hash < 0 or self.batch_frames < 1 or self.decode_threads < 0:
            raise ConfigError("seconds_per_hash >= 0, batch_frames >= 1, decode_threads >= 0")
        if self.max_pixels < 1 or self.max_bytes < 1 or self.max_frame_pairs < 1:
            raise ConfigError("video max_pixels, max_bytes and max_frame_pairs must be positive")
        if self.segment_max_bytes < 1:
            raise ConfigError("video segment_max_bytes must be positive")
        if not 0 < self.dali_max_bytes < 2**31:
            raise ConfigError("video dali_max_bytes in 1..2**31-1")
        if self.decoder is DecoderChoice.NVIMAGECODEC:
            raise ConfigError("video decoder: auto, dali or cpu (nvImageCodec decodes images)")
        if not 0 <= self.max_distance <= 256 or not 0 <= self.min_quality <= 100:
            raise ConfigError("video max_distance in 0..256, min_quality in 0..100")
        if not 0 <= self.query_match_percent <= 100 or not 0 <= self.target_match_percent <= 100:
            raise ConfigError("video match percents in 0..100")

    @property
    def decoders(self) -> int:
        """How many decoders (or decode threads) run at once."""
        return self.decode_threads or usable_cores()

    @property
    def frame_mod_may_skip(self) -> bool:
        """Sampling leaves frames out (not every frame hashed)."""
        return self.seconds_per_hash > 0


@dataclass(frozen=True)
class AuthConfig:
    """API keys, tenants' limits. Auth is on as soon as the first API key exists (in
    tenants.sqlite3 in the data dir) or when `required` is set; before that, a fresh
    install answers every caller as the operator (the two-command quick start), and the
    server says so loudly at start-up."""

    required: bool = False
    # Per-tenant token bucket (requests per second, and the burst it may save up), and
    # items (images or hashes) per calendar month (UTC); a tenant's own values win.
    rate_per_second: float = 20.0
    burst: float = 40.0
    monthly_items: int = 10_000_000
    # A rotated key keeps working this long beside its replacement.
    rotation_overlap_s: float = 86_400.0
    # last-used times are written at most this often per key.
    last_used_interval_s: float = 60.0

    def __post_init__(self) -> None:
        if self.rate_per_second <= 0 or self.burst < 1 or self.monthly_items < 1:
            raise ConfigError("rate_per_second > 0, burst >= 1 and monthly_items >= 1")
        if self.rotation_overlap_s < 0 or self.last_used_interval_s < 0:
            raise ConfigError("rotation_overlap_s and last_used_interval_s must be >= 0")


class DistanceChoice(StrEnum):
    """A new bank's distance policy (hashmatch.banks.model.DistancePolicy)."""

    EXACT = "exact"
    BUCKETED = "bucketed"
    HIDDEN = "hidden"


@dataclass(frozen=True)
class BanksConfig:
    """Rules every bank follows, whoever made it."""

    # No bank matches looser than this many bits, whatever its own threshold says: a
    # tenant's bank at 128 bits would match (or, as an allow bank, suppress) anything.
    max_pdq_threshold: int = 31
    # What matches tell callers that do not own the bank of the PDQ distance, for banks
    # created without saying (their owner may change it per bank).
    distance_policy: DistanceChoice = DistanceChoice.BUCKETED
    # Matches one query answers: the closest, in the order shown; the rest are counted
    # (matches_left_out). A tenant's own bank of 100,000 near-identical entries otherwise
    # made one quota item a 3 MB answer, a 10 MB webhook event and a second of CPU.
    max_matches: int = 100

    def __post_init__(self) -> None:
        if not 0 <= self.max_pdq_threshold <= 128:
            raise ConfigError("max_pdq_threshold must be in 0..128")
        if self.max_matches < 1:
            raise ConfigError("max_matches must be >= 1")


@dataclass(frozen=True)
class StorageConfig:
    """Where the stores live. Empty: SQLite files in the data dir (the embedded default).
    A PostgreSQL URL (postgresql://user@host/db; the password from PGPASSWORD or
    ~/.pgpass, not the URL, where you can): the banks there (shared by every replica),
    the data dir keeping local caches (the index snapshot) and the stores not yet moved."""

    database_url: str = ""
    # The audit chain's key file; empty: audit.key in the data dir, made on first start.
    # With a PostgreSQL URL every replica appends to one chain: give each the same key.
    audit_key_file: str = ""

    def __post_init__(self) -> None:
        if self.database_url and not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError(
                "database_url: a postgresql:// URL, or empty for SQLite in the data dir"
            )


@dataclass(frozen=True)
class SandboxConfig:
    """The integration sandbox: a public "Test" bank of benign synthetic images."""

    enabled: bool = True


@dataclass(frozen=True)
class ReportsConfig:
    """Where reports go. Passwords are read from the environment variables named here,
    never from the file."""

    endpoint: str = ""  # e.g. https://report.cybertip.org/ispws ; empty: reporting off
    username: str = ""
    password_env: str = "HASHMATCH_NCMEC_PASSWORD"
    test_endpoint: str = ""  # e.g. https://exttest.cybertip.org/ispws
    test_username: str = ""
    test_password_env: str = "HASHMATCH_NCMEC_TEST_PASSWORD"
    attempts: int = 5
    backoff_s: float = 1.0
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.backoff_s < 0 or self.timeout_s <= 0:
            raise ConfigError("reports: attempts >= 1, backoff_s >= 0, timeout_s > 0")


@dataclass(frozen=True)
class WebhooksConfig:
    """Signed POSTs per matched item, per tenant: `urls = { acme = "https://..." }`; each
    tenant's HMAC secret is read from the environment variable secret_env_prefix + TENANT
    (upper case, '-' as '_'), never from this file."""

    urls: dict[str, str] = field(default_factory=dict)
    secret_env_prefix: str = "HASHMATCH_WEBHOOK_SECRET_"
    attempts: int = 5
    backoff_s: float = 1.0
    timeout_s: float = 10.0
    queue_max: int = 10_000

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.backoff_s < 0 or self.queue_max < 1:
            raise ConfigError("webhooks: attempts >= 1, backoff_s >= 0, queue_max >= 1")


@dataclass(frozen=True)
class FloodSettings:
    """Flood quarantine (hashmatch.core.flood): an entry matching more than max_distinct
    different contents within window_s is flagged (and, with suspend, its matches are
    reported as suppressed until released)."""

    enabled: bool = True
    window_s: float = 3600.0
    max_distinct: int = 1000
    suspend: bool = False
    # Tenants it takes: each one's distinct contents count for at most a min_tenants-th
    # of max_distinct, so no single tenant can quarantine an entry for everybody (set 1
    # on a single-tenant installation).
    min_tenants: int = 2

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.max_distinct < 1 or self.min_tenants < 1:
            raise ConfigError("flood: window_s > 0, max_distinct >= 1 and min_tenants >= 1")


@dataclass(frozen=True)
class ProbeConfig:
    """Probe detection (hashmatch.core.probing): a tenant whose client hashes are, more
    than max_near times within window_s, within radius bits of one of its own last
    `history` hashes (not equal) is flagged and refused hash queries for cooldown_s."""

    enabled: bool = True
    radius: int = 8
    history: int = 512
    window_s: float = 600.0
    max_near: int = 200
    cooldown_s: float = 600.0

    def __post_init__(self) -> None:
        if not 1 <= self.radius <= 128 or self.history < 1 or self.max_near < 1:
            raise ConfigError("probe: radius in 1..128, history >= 1, max_near >= 1")
        if self.window_s <= 0 or self.cooldown_s < 0:
            raise ConfigError("probe: window_s > 0, cooldown_s >= 0")


@dataclass(frozen=True)
class ExchangesConfig:
    """Hash exchanges (`hashmatch exchange ...`). A running server syncs every unpaused
    exchange every interval_s seconds (0: only `hashmatch exchange sync` does); replicas on
    one PostgreSQL take turns (one sync of an exchange at a time). Credentials: each
    exchange names the variables holding them (`--credentials-env`), looked up in the
    environment, then in secrets_file (TOML, NAME = "value", readable by its owner only)."""

    interval_s: float = 300.0
    secrets_file: str = ""
    timeout_s: float = 60.0
    attempts: int = 6
    backoff_s: float = 1.0
    backoff_max_s: float = 120.0
    min_interval_s: float = 0.0  # between two calls to one exchange (its rate limit)
    max_run_s: float = 6 * 3600.0  # one sync, at most (a first sync of 10M records: ~1 h)
    feedback_attempts: int = 10  # then a verdict stays queued, marked failed, not resent
    # NCMEC's negative feedback needs a reason (`GET /v2/feedback/<type>/reasons`): its
    # guid or name; empty: the only one listed, else the one named "false positive".
    ncmec_negative_reason: str = ""

    def __post_init__(self) -> None:
        if self.interval_s < 0 or self.timeout_s <= 0 or self.attempts < 1:
            raise ConfigError("exchanges: interval_s >= 0, timeout_s > 0, attempts >= 1")
        if min(self.backoff_s, self.backoff_max_s, self.min_interval_s, self.max_run_s) < 0:
            raise ConfigError("exchanges: backoff_s, backoff_max_s, min_interval_s >= 0")


@dataclass(frozen=True)
class ConsoleConfig:
    """The operator console (`/console` on the REST face): sessions live in the server's
    memory and end after idle_s without a request, max_session_s after sign-in however
    busy, and at once on sign-out, a revoked or rotated key or a suspended tenant.
    secure_cookies marks the session cookie Secure even on plain HTTP (behind a
    TLS-terminating proxy); over HTTPS it always is. max_upload_bytes bounds a form (an
    image to debug, a hash list to import), held in memory only."""

    enabled: bool = True
    idle_s: float = 1800.0
    max_session_s: float = 8 * 3600.0
    secure_cookies: bool = False
    max_upload_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if min(self.idle_s, self.max_session_s, self.max_upload_bytes) <= 0:
            raise ConfigError("console: idle_s, max_session_s and max_upload_bytes > 0")


@dataclass(frozen=True)
class Config:
    """Everything a hashmatch process needs, built once from a TOML file and flags."""

    data_dir: Path = Path("hashmatch-data")
    engine: EngineConfig = field(default_factory=EngineConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    banks: BanksConfig = field(default_factory=BanksConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    reports: ReportsConfig = field(default_factory=ReportsConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    flood: FloodSettings = field(default_factory=FloodSettings)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    exchanges: ExchangesConfig = field(default_factory=ExchangesConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)


_SECTIONS = {
    "engine": EngineConfig,
    "batch": BatchConfig,
    "server": ServerConfig,
    "video": VideoConfig,
    "auth": AuthConfig,
    "sandbox": SandboxConfig,
    "banks": BanksConfig,
    "storage": StorageConfig,
    "reports": ReportsConfig,
    "webhooks": WebhooksConfig,
    "flood": FloodSettings,
    "probe": ProbeConfig,
    "exchanges": ExchangesConfig,
    "console": ConsoleConfig,
}


ENV_PREFIX = "HASHMATCH_"
DATABASE_URL_ENV = "HASHMATCH_DATABASE_URL"
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _typed(kind: Any, value: Any, where: str) -> Any:
    """A TOML value of the setting's own type, or ConfigError naming the setting: a
    string is no number, a number no address, "no" no boolean."""

    def wrong(want: str) -> ConfigError:
        return ConfigError(f"{where}: expected {want}, got {value!r} ({type(value).__name__})")

    if kind is bool:
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("an integer")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong("a number")
        return float(value)
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        choices = ", ".join(m.value for m in kind)
        if not isinstance(value, str) or value not in {m.value for m in kind}:
            raise ConfigError(f"{where}: {value!r} is not one of {choices}")
        return kind(value)
    if kind is str or kind is Path:
        if not isinstance(value, str):
            raise wrong("a string")
        return kind(value)
    if kind == dict[str, str]:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise wrong("a table of strings")
        return dict(value)
    raise ConfigError(f"{where}: settings of type {kind} are not supported")  # a bug of ours


def _from_env(kind: Any, text: str, where: str) -> Any:
    """An environment variable's text as the setting's type (then checked like TOML)."""
    value: Any = text
    try:
        if kind is bool:
            low = text.strip().lower()
            if low not in _TRUE | _FALSE:
                raise ValueError(text)
            value = low in _TRUE
        elif kind is int:
            value = int(text)
        elif kind is float:
            value = float(text)
        elif kind == dict[str, str]:
            value = json.loads(text)
    except ValueError:
        pass  # _typed says what was expected
    return _typed(kind, value, where)


def _build(
    cls: type[Any],
    values: dict[str, Any],
    section: str,
    environ: Mapping[str, str],
    flags: dict[str, Any],
) -> Any:
    """File values, then environment variables, then flags: each checked by its type."""
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = (set(values) | set(flags)) - known
    if unknown:
        raise ConfigError(f"unknown setting(s) in [{section}]: {', '.join(sorted(unknown))}")
    converted = {name: _typed(hints[name], v, f"[{section}] {name}") for name, v in values.items()}
    for name in known:
        env = f"{ENV_PREFIX}{section}_{name}".upper()
        if env in environ:
            converted[name] = _from_env(hints[name], environ[env], env)
    for name, v in flags.items():
        converted[name] = _typed(hints[name], v, f"--{name.replace('_', '-')}")
    try:
        return cls(**converted)
    except ConfigError as exc:
        raise ConfigError(f"[{section}] {exc.message}") from None


def load_config(
    path: Path | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """A Config from an optional TOML file, then the environment (`HASHMATCH_<SECTION>_<KEY>`,
    e.g. HASHMATCH_BATCH_MAX_BATCH=64, and HASHMATCH_DATA_DIR, HASHMATCH_DATABASE_URL), then
    flag overrides
    ({"server": {"listen": ...}}). Every value is checked against the setting's type, and
    an error names the setting. See hashmatch.example.toml.
    """
    environ = {} if environ is None else environ
    if DATABASE_URL_ENV in environ:  # the usual name, as HASHMATCH_STORAGE_DATABASE_URL
        environ = {f"{ENV_PREFIX}STORAGE_DATABASE_URL": environ[DATABASE_URL_ENV], **environ}
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"config {path}: {exc}") from None
    flags = overrides or {}
    parts: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        table = raw.pop(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}]: expected a table, got {table!r}")
        parts[section] = _build(cls, table, section, environ, flags.get(section, {}))
    data_dir = _typed(Path, raw.pop("data_dir", str(Config.data_dir)), "data_dir")
    if f"{ENV_PREFIX}DATA_DIR" in environ:
        data_dir = Path(environ[f"{ENV_PREFIX}DATA_DIR"])
    if "data_dir" in flags.get("", {}):
        data_dir = Path(flags[""]["data_dir"])
    if raw:
        raise ConfigError(f"unknown top-level setting(s): {', '.join(sorted(raw))}")
    return Config(data_dir=data_dir, **parts)
