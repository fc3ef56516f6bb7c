"""Value types of banks and entries. Values are packed bytes; hex only at the edges."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from hashmatch.errors import BadParameter

DEFAULT_PDQ_THRESHOLD = 31
MAX_ROW_ERRORS = 1000
MAX_TEXT = 256  # an entry's label, external id and source
MAX_PDQ_THRESHOLD = 128
# Never ending in ':' (a tenant's "acme:" would name no bank of its own after the prefix).
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.:-]{0,126}[A-Za-z0-9_.-])?")


class SignalType(StrEnum):
    PDQ = "pdq"
    MD5 = "md5"
    SHA256 = "sha256"

    @property
    def nbytes(self) -> int:
        return _NBYTES[self]

    def parse_hex(self, text: str) -> bytes:
        """The packed value of a hex string, or BadParameter saying what is wrong."""
        text = text.strip()
        want = 2 * self.nbytes
        if len(text) != want:
            raise BadParameter(f"a {self.value} value is {want} hex digits, got {len(text)}")
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise BadParameter(f"a {self.value} value must be hexadecimal") from None


_NBYTES = {SignalType.PDQ: 32, SignalType.MD5: 16, SignalType.SHA256: 32}


def guess_signal(text: str) -> tuple[SignalType, str]:
    """`pdq:HEX`, `md5:HEX`, `sha256:HEX`, or bare hex: 32 digits md5, 64 digits pdq."""
    text = text.strip()
    prefix, sep, rest = text.partition(":")
    if sep:
        try:
            return SignalType(prefix.lower()), rest
        except ValueError:
            raise BadParameter(f"unknown signal type {prefix!r}") from None
    if len(text) == 32:
        return SignalType.MD5, text
    return SignalType.PDQ, text


class Visibility(StrEnum):
    PRIVATE = "private"  # the owner only
    SHARED = "shared"  # the owner and the tenants named in shared_with
    PUBLIC = "public"  # everyone


class DistancePolicy(StrEnum):
    """What a match against a bank says of the PDQ distance to a caller that does not
    own the bank: one bit more or less per query would otherwise rebuild a stored hash
    from a near-duplicate in a few hundred queries."""

    EXACT = "exact"
    BUCKETED = "bucketed"  # rounded up to the next edge of DISTANCE_BUCKETS
    HIDDEN = "hidden"  # 0, as PhotoDNA (which returns no distance)

    def shown(self, distance: int) -> int:
        if self is DistancePolicy.EXACT:
            return distance
        if self is DistancePolicy.HIDDEN:
            return 0
        return next((edge for edge in DISTANCE_BUCKETS if distance <= edge), distance)

    def edge_below(self, threshold: int) -> int:
        """The loosest threshold at most `threshold` whose answers tell no more than the
        distances shown: match or not then changes only where the shown distance does."""
        if self is DistancePolicy.EXACT:
            return threshold
        if self is DistancePolicy.HIDDEN:
            return 0
        return max(edge for edge in DISTANCE_BUCKETS if edge <= threshold)


DISTANCE_BUCKETS = (0, 8, 16, 24, 31)


class BankKind(StrEnum):
    BLOCK = "block"  # a match is reported
    ALLOW = "allow"  # known false positives: a hit suppresses the query's matches


def check_bank_name(name: str) -> str:
    if not _NAME.fullmatch(name):  # fullmatch: "$" would let a trailing newline in
        shown = repr(name) if len(name) <= 140 else f"{name[:128]!r}... ({len(name)} characters)"
        raise BadParameter(
            f"bank name {shown}: 1-128 characters, letters, digits, '_', '.', ':', '-',"
            " not ending in ':'"
        )
    return name


@dataclass(frozen=True)
class Bank:
    id: int
    name: str
    owner: str = ""
    visibility: Visibility = Visibility.PRIVATE
    shared_with: frozenset[str] = frozenset()  # invited
    accepted_by: frozenset[str] = frozenset()  # of those invited, who accepted
    kind: BankKind = BankKind.BLOCK
    signal_types: frozenset[SignalType] = frozenset(SignalType)
    pdq_threshold: int = DEFAULT_PDQ_THRESHOLD
    min_quality: int = 0
    enabled: bool = True
    created_at: str = ""
    updated_at: str = ""
    distance_policy: DistancePolicy = DistancePolicy.BUCKETED

    def distance_for(self, tenant: str | None, distance: int) -> int:
        """The distance a match tells this caller: exact to the owner (and the local
        operator), by the bank's policy to everyone else."""
        return distance if self.shows_distances_to(tenant) else self.distance_policy.shown(distance)

    def shows_distances_to(self, tenant: str | None) -> bool:
        """Whether this caller sees what matches against the bank say of distance exactly:
        its owner (and the local operator) always, everyone else where the policy is exact."""
        return (
            tenant is None or tenant == self.owner or self.distance_policy is DistancePolicy.EXACT
        )

    def threshold_for(
        self, tenant: str | None, own: int, requested: int | None, stricter_only: bool
    ) -> int:
        """The PDQ threshold a request matches this bank at, `own` being the bank's: a
        request's max_distance, only ever tighter with stricter_only (the API's rule). For a
        caller that does not own the bank it is rounded down to an edge of the bank's
        distance policy: five calls of one hash at different max_distance would otherwise
        binary-search the exact distance that the bucket hides."""
        if requested is None or (stricter_only and requested >= own):
            return own
        if self.shows_distances_to(tenant):
            return requested
        return self.distance_policy.edge_below(requested)

    def visible_to(self, tenant: str | None) -> bool:
        """Whether the tenant may see the bank (its settings; an invitation to accept).
        tenant None is the local operator (CLI): every bank."""
        if tenant is None or self.visibility is Visibility.PUBLIC or tenant == self.owner:
            return True
        return self.visibility is Visibility.SHARED and tenant in self.shared_with

    def applies_to(self, tenant: str | None) -> bool:
        """Whether the bank takes part in the tenant's matching: its own, a public one
        (the operator's), or a share it accepted. An invitation alone changes nothing
        of what the invited tenant matches (or has suppressed)."""
        if tenant is None or self.visibility is Visibility.PUBLIC or tenant == self.owner:
            return True
        return self.visibility is Visibility.SHARED and tenant in self.accepted_by

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "visibility": self.visibility.value,
            "shared_with": sorted(self.shared_with),
            "accepted_by": sorted(self.accepted_by),
            "kind": self.kind.value,
            "signal_types": sorted(s.value for s in self.signal_types),
            "pdq_threshold": self.pdq_threshold,
            "min_quality": self.min_quality,
            "enabled": self.enabled,
            "distance_policy": self.distance_policy.value,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class BankSettings:
    """What a caller may set on a bank (create or update); None leaves a field as is."""

    owner: str | None = None
    visibility: Visibility | None = None
    shared_with: frozenset[str] | None = None
    kind: BankKind | None = None
    signal_types: frozenset[SignalType] | None = None
    pdq_threshold: int | None = None
    min_quality: int | None = None
    enabled: bool | None = None
    distance_policy: DistancePolicy | None = None

    def __post_init__(self) -> None:
        if self.pdq_threshold is not None and not 0 <= self.pdq_threshold <= MAX_PDQ_THRESHOLD:
            raise BadParameter(f"pdq threshold must be in [0, {MAX_PDQ_THRESHOLD}]")
        if self.min_quality is not None and not 0 <= self.min_quality <= 100:
            raise BadParameter("min quality must be in [0, 100]")
        if self.signal_types is not None and not self.signal_types:
            raise BadParameter("a bank needs at least one signal type")


def checked_value(signal_type: SignalType, value: bytes) -> bytes:
    """The value, if it is one of this signal type (its length); else BadParameter."""
    if len(value) != signal_type.nbytes:
        raise BadParameter(f"a {signal_type.value} value is {signal_type.nbytes} bytes")
    return value


@dataclass(frozen=True, slots=True)
class NewEntry:
    signal_type: SignalType
    value: bytes
    label: str | None = None
    external_id: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        checked_value(self.signal_type, self.value)
        for name in ("label", "external_id", "source"):
            text = getattr(self, name)
            if text is not None and len(text) > MAX_TEXT:
                # Every match carries an entry's label and source: a 4 MB label matched
                # by 200 queries of one call would answer 800 MB.
                raise BadParameter(f"{name}: at most {MAX_TEXT} characters")


@dataclass(frozen=True)
class EntryBatch:
    """Entries of one signal type as columns, in input order: what a fast reader hands a
    store instead of one NewEntry per row. `values` uint8[n, nbytes]; `labels` and
    `external_ids` pyarrow string arrays of n (null where absent; each at most MAX_TEXT
    characters); `rows` int64[n], each entry's input row (for row errors)."""

    signal_type: SignalType
    values: np.ndarray
    labels: Any
    external_ids: Any
    rows: np.ndarray
    source: str | None = None

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True, slots=True)
class Tombstone:
    """An import's removal: the bank's entries with this external id go (NCMEC's
    deletedImage). In a stream of entries, the later of an entry and a tombstone of its
    external id wins: a tombstone followed by entries of its id leaves exactly those."""

    external_id: str


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    bank_id: int
    signal_type: SignalType
    value: bytes
    label: str | None
    external_id: str | None
    source: str | None
    added_at: str
    removed_at: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "signal_type": self.signal_type.value,
            "value": self.value.hex(),
            "label": self.label,
            "external_id": self.external_id,
            "source": self.source,
            "added_at": self.added_at,
        }


class ChangeKind(StrEnum):
    # An entry became live, or a live entry's label or source changed (the follower
    # tells the two apart by whether it holds the entry already).
    ADD = "add"
    REMOVE = "remove"
    BANK = "bank"  # a bank's settings changed (or it was created or deleted)


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    kind: ChangeKind
    bank_id: int
    entry_id: int | None
    signal_type: SignalType | None = None
    value: bytes | None = None
    label: str | None = None  # the entry's, now (what a match reports)
    source: str | None = None


@dataclass(frozen=True)
class LiveState:
    """Everything live at one change-log sequence number, read in one transaction: the
    values by signal type (ids int64[n] increasing, values uint8[n, nbytes]) and what a
    match reports of each entry (bank, label, source), for every live entry by id."""

    sequence: int
    signals: dict[SignalType, tuple[np.ndarray, np.ndarray]]
    ids: np.ndarray  # int64[m]
    bank_ids: np.ndarray  # int32[m]
    labels: list[str | None]
    sources: list[str | None]


class RowErrorCode(StrEnum):
    BAD_VALUE = "BAD_VALUE"
    DUPLICATE = "DUPLICATE"
    LINE_TOO_LONG = "LINE_TOO_LONG"
    BAD_ENCODING = "BAD_ENCODING"
    BAD_RECORD = "BAD_RECORD"
    UNSUPPORTED_SIGNAL = "UNSUPPORTED_SIGNAL"
    SIGNAL_NOT_ENABLED = "SIGNAL_NOT_ENABLED"
    NEGATIVE_CLASS = "NEGATIVE_CLASS"  # python-threatexchange: a known false positive


@dataclass(frozen=True, slots=True)
class RowError:
    """One bad input row: where (1-based line or record), the error code and why."""

    row: int
    code: str
    message: str

    def to_json(self) -> dict[str, object]:
        return {"row": self.row, "code": self.code, "message": self.message}


@dataclass
class WriteReport:
    """What a bulk write did. Idempotent writes report unchanged rows, not errors."""

    added: int = 0
    revived: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    duplicates: int = 0  # rows repeating an earlier row's value: the first one counts
    errors: list[RowError] = field(default_factory=list)  # the first MAX_ROW_ERRORS
    error_count: int = 0  # all of them

    def to_json(self) -> dict[str, object]:
        return {
            "added": self.added,
            "revived": self.revived,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "duplicates": self.duplicates,
            "errors": max(self.error_count, len(self.errors)),
        }

    def add_error(self, error: RowError) -> None:
        """Counted always, kept up to MAX_ROW_ERRORS (a file of bad rows stays small)."""
        self.error_count += 1
        if len(self.errors) < MAX_ROW_ERRORS:
            self.errors.append(error)


@dataclass
class ExportReport:
    """What an export wrote, and what its format could not carry."""

    written: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # signal type -> entries left out
    labels_dropped: int = 0  # entries written without their label and source

    @property
    def lossless(self) -> bool:
        return not self.dropped and not self.labels_dropped

    def describe(self) -> str:
        parts = [f"{n:,} {what} entries (python-threatexchange has no photo checksum type;"
                 " --te-checksums video writes them as video_md5/video_sha256)"
                 for what, n in sorted(self.dropped.items())]  # fmt: skip
        if self.labels_dropped:
            parts.append(
                f"the labels and sources of {self.labels_dropped:,} entries (its file format"
                " carries only '<signal type> <value>'; jsonl keeps them)"
            )
        return "; ".join(parts)
