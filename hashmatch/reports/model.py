"""What a report is: reporter, incident, reportee, files with their match details."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum

from hashmatch.errors import BadParameter

INCIDENT_TYPES = (
    "Child Pornography (possession, manufacture, and distribution)",
    "Child Sex Trafficking",
    "Child Sex Tourism",
    "Child Sexual Molestation",
    "Misleading Domain Name",
    "Misleading Words or Digital Images on the Internet",
    "Online Enticement of Children for Sexual Acts",
    "Unsolicited Obscene Material Sent to a Child",
)
CLASSIFICATIONS = ("", "A1", "A2", "B1", "B2")


class ReportStatus(StrEnum):
    QUEUED = "queued"  # committed locally, nothing sent yet
    SUBMITTED = "submitted"  # the endpoint opened a report (we hold its id)
    UPLOADED = "uploaded"  # every file uploaded and described
    FINISHED = "finished"  # filed: irreversible
    RETRACTED = "retracted"
    FAILED = "failed"  # with a reason; never filed


# Free text a report carries (names, addresses, notes): bounded, it is stored and sent.
MAX_FIELD = 4096


@dataclass(frozen=True)
class ReportFile:
    name: str
    content: bytes = field(repr=False)  # in memory only; never written to disk
    classification: str = ""  # NCMEC industry classification A1/A2/B1/B2
    viewed_by_esp: bool = False
    publicly_available: bool = False
    upload_ip: str = ""
    upload_time: str = ""
    match_details: str = ""  # e.g. "bank ncmec entry 42 distance 3"


@dataclass(frozen=True)
class Report:
    incident_type: str
    incident_time: str  # ISO 8601
    reporter_email: str
    reporter_first_name: str = ""
    reporter_last_name: str = ""
    org_name: str = ""
    reportee_name: str = ""
    reportee_ip: str = ""
    platform: str = ""
    additional_info: str = ""
    files: tuple[ReportFile, ...] = ()
    test: bool = False

    def validate(self) -> None:
        for name, text in asdict(self).items():
            if isinstance(text, str) and len(text) > MAX_FIELD:
                raise BadParameter(f"{name}: at most {MAX_FIELD} characters")
        for f in self.files:
            for name in ("name", "classification", "upload_ip", "upload_time", "match_details"):
                if len(getattr(f, name)) > MAX_FIELD:
                    raise BadParameter(f"file {name}: at most {MAX_FIELD} characters")
        if self.incident_type not in INCIDENT_TYPES:
            raise BadParameter(f"incident_type must be one of NCMEC's: {', '.join(INCIDENT_TYPES)}")
        if not self.incident_time:
            raise BadParameter("incident_time is required (ISO 8601)")
        if "@" not in self.reporter_email:
            raise BadParameter("reporter_email is required")
        if not self.files:
            raise BadParameter("a report carries at least one file")
        for f in self.files:
            if f.classification not in CLASSIFICATIONS:
                raise BadParameter(f"classification {f.classification!r}: one of A1, A2, B1, B2")
            if not f.content:
                raise BadParameter(f"file {f.name!r} is empty")
