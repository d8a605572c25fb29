"""The human-readable summary of a patient's record (right of access), as a PDF (fpdf2).

Rendered from the same FHIR resources as the Bundle beside it, so the two can never disagree.
A Unicode TrueType font is used when the system has one (DejaVu Sans on Debian; set
``MINDHARBOR_PDF_FONT`` to another .ttf); without one, characters outside Latin-1 are replaced,
which the summary then says.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fpdf import FPDF

if TYPE_CHECKING:
    from mindharbor.fhir.everything import Record

_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
)


def _font_path() -> Path | None:
    configured = os.environ.get("MINDHARBOR_PDF_FONT")
    for candidate in ([configured] if configured else []) + list(_FONT_CANDIDATES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


class _Summary(FPDF):
    def __init__(self, generated: str) -> None:
        super().__init__(format="A4")
        self.generated = generated
        self.unicode = False
        font = _font_path()
        if font is not None:
            self.add_font("Body", "", str(font))
            self.add_font(
                "Body",
                "B",
                str(font.with_name(font.stem + "-Bold.ttf"))
                if font.with_name(font.stem + "-Bold.ttf").is_file()
                else str(font),
            )
            self.family_name = "Body"
            self.unicode = True
        else:
            self.family_name = "Helvetica"
        self.set_auto_page_break(auto=True, margin=15)
        self.set_title("Health record summary")
        self.set_creator("MindHarbor")

    def clean(self, text: Any) -> str:
        value = "" if text is None else str(text)
        return value if self.unicode else value.encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.family_name, "", 8)
        self.cell(
            0, 8, self.clean(f"Generated {self.generated} - page {self.page_no()}"), align="C"
        )

    def heading(self, text: str) -> None:
        self.ln(3)
        self.set_font(self.family_name, "B", 13)
        self.cell(0, 8, self.clean(text), new_x="LMARGIN", new_y="NEXT")
        self.set_font(self.family_name, "", 10)

    def line_text(self, text: str) -> None:
        self.multi_cell(0, 5.5, self.clean(text), new_x="LMARGIN", new_y="NEXT")

    def grid(self, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            self.line_text("None on record.")
            return
        with super().table(
            col_widths=tuple(3 if h in ("Details", "Message", "Reason") else 1.4 for h in header),
            text_align="LEFT",
            line_height=5.5,
        ) as table:
            head = table.row()
            for cell in header:
                head.cell(self.clean(cell))
            for row in rows:
                out = table.row()
                for cell in row:
                    out.cell(self.clean(cell))


def _of(record: Record, kind: str) -> list[dict[str, Any]]:
    return [r for r in record.resources if r["resourceType"] == kind]


def _day(value: Any) -> str:
    return str(value)[:16].replace("T", " ") if value else ""


def _ref_name(ref: Any, names: dict[str, str]) -> str:
    if not isinstance(ref, dict):
        return ""
    return names.get(ref.get("reference", ""), ref.get("display", "")) or "(another user)"


def render_summary(record: Record, generated: str) -> bytes:
    patient = record.patient
    names = {f"Patient/{patient['id']}": "the patient"}
    for practitioner in record.practitioners:
        names[f"Practitioner/{practitioner['id']}"] = (practitioner.get("name") or [{}])[0].get(
            "text", "a clinician"
        )
    pdf = _Summary(generated)
    pdf.add_page()
    pdf.set_font(pdf.family_name, "B", 16)
    pdf.cell(0, 10, pdf.clean("Health record summary"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(pdf.family_name, "", 10)
    name = (patient.get("name") or [{}])[0].get("text", "")
    mrn = next((i["value"] for i in patient.get("identifier", []) if i.get("type")), "")
    pdf.line_text(f"Patient: {name}")
    pdf.line_text(f"Medical record number: {mrn}")
    if patient.get("birthDate"):
        pdf.line_text(f"Date of birth: {patient['birthDate']}")
    pdf.line_text(
        "This is your copy of your record, made at your request. The file record.json beside "
        "it holds the same record in the FHIR R4 format other health systems read."
    )
    if not pdf.unicode:
        pdf.line_text("(Characters this document's font cannot show are printed as '?'.)")

    pdf.heading("Assessments")
    rows = []
    totals = {
        r["id"].rsplit("-", 1)[0]: r
        for r in _of(record, "Observation")
        if r["id"].endswith("-total")
    }
    risks = {
        r["id"].rsplit("-", 1)[0]: r
        for r in _of(record, "Observation")
        if r["id"].endswith("-risk")
    }
    for qr in _of(record, "QuestionnaireResponse"):
        instrument = str(qr.get("questionnaire", "")).rsplit("/", 1)[-1]
        label = {"44249-1": "PHQ-9", "69737-5": "GAD-7", "cssrs-screener": "C-SSRS"}.get(
            instrument, instrument
        )
        total = totals.get(qr["id"])
        score = str(total["valueQuantity"]["value"]) if total else ""
        result = total or risks.get(qr["id"]) or {}
        severity = (result.get("interpretation") or [result.get("valueCodeableConcept") or {}])[0]
        rows.append(
            (
                _day(qr.get("authored")),
                label,
                score,
                severity.get("text", "") if isinstance(severity, dict) else "",
                qr.get("status", ""),
            )
        )
    pdf.grid(("Date", "Instrument", "Score", "Result", "Status"), rows)

    amendments = _of(record, "Provenance")
    if amendments:
        pdf.heading("Amendments")
        pdf.grid(
            ("Date", "Record", "Reason"),
            [
                (
                    _day(p.get("recorded")),
                    p["target"][0]["reference"].split("/_history")[0],
                    (p.get("reason") or [{}])[0].get("text", ""),
                )
                for p in amendments
            ],
        )

    pdf.heading("Safety flags (crisis interventions)")
    pdf.grid(
        ("Since", "Flag", "Status"),
        [
            (_day((f.get("period") or {}).get("start")), f["code"].get("text", ""), f["status"])
            for f in _of(record, "Flag")
        ],
    )

    pdf.heading("Appointments")
    pdf.grid(
        ("Start", "End", "Status", "Reason"),
        [
            (_day(a.get("start")), _day(a.get("end")), a["status"], a.get("description", ""))
            for a in _of(record, "Appointment")
        ],
    )

    pdf.heading("Messages")
    pdf.grid(
        ("Sent", "From", "To", "Message"),
        [
            (
                _day(c.get("sent")),
                _ref_name(c.get("sender"), names),
                ", ".join(_ref_name(r, names) for r in c.get("recipient", [])),
                " ".join(
                    p.get("contentString") or f"[attachment: {p['contentAttachment'].get('title')}]"
                    for p in c.get("payload", [])
                ),
            )
            for c in _of(record, "Communication")
        ],
    )
    if record.practitioners:
        pdf.heading("Your care team")
        for practitioner in record.practitioners:
            pdf.line_text(names[f"Practitioner/{practitioner['id']}"])
    return bytes(pdf.output())
