"""A seeded synthetic corpus of business documents: the reference models' training data.

Class names appear only here. Documents share vocabulary across classes on purpose (invoices,
receipts and purchase orders all carry amounts, vendors and dates; contracts and resumes both name
people and companies), a share of them carries only paraphrased cues, and OCR-like noise garbles
characters, so that no model is perfect.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

#: Per class: strong cues (common phrasing) and paraphrases (rarer wording of the same thing).
_CLASS_CUES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "invoice": (
        (
            "invoice number",
            "amount due",
            "bill to",
            "payment terms net 30",
            "invoice date",
            "remit payment to",
            "balance due",
            "tax invoice",
        ),
        (
            "please settle this statement of charges",
            "sum owed for services rendered",
            "kindly pay the outstanding charges",
            "charges billed to your account",
            "request for payment",
            "fee note",
        ),
    ),
    "receipt": (
        (
            "receipt",
            "thank you for your purchase",
            "paid by card",
            "change given",
            "cashier",
            "transaction approved",
            "store number",
            "total paid",
        ),
        (
            "your payment was received",
            "proof of purchase",
            "we appreciate your visit",
            "card ending approved",
            "keep this slip for returns",
            "sale completed",
        ),
    ),
    "purchase_order": (
        (
            "purchase order",
            "po number",
            "ship to",
            "requested delivery date",
            "order quantity",
            "authorized buyer",
            "unit price",
            "vendor acknowledgement required",
        ),
        (
            "we wish to procure the following items",
            "please supply the goods listed",
            "requisition approved by procurement",
            "order placed with supplier",
            "buyer reference",
            "kindly deliver the items below",
        ),
    ),
    "bank_statement": (
        (
            "account statement",
            "opening balance",
            "closing balance",
            "direct debit",
            "available balance",
            "statement period",
            "deposits and credits",
            "withdrawals",
        ),
        (
            "summary of your account activity",
            "funds transferred in",
            "money moved out",
            "running balance",
            "overdraft facility",
            "interest credited to your account",
        ),
    ),
    "contract": (
        (
            "this agreement",
            "the parties agree",
            "governing law",
            "term and termination",
            "confidentiality",
            "indemnification",
            "in witness whereof",
            "effective date",
        ),
        (
            "both sides hereby consent",
            "binding arrangement between",
            "obligations of each party",
            "dispute resolution",
            "shall be bound by",
            "signed by the undersigned",
        ),
    ),
    "resume": (
        (
            "work experience",
            "education",
            "skills",
            "references available upon request",
            "curriculum vitae",
            "professional summary",
            "bachelor of science",
            "certifications",
        ),
        (
            "career history",
            "previous roles held",
            "qualifications and training",
            "achievements include",
            "seeking a position as",
            "languages spoken",
        ),
    ),
    "medical_record": (
        (
            "patient name",
            "diagnosis",
            "prescribed medication",
            "blood pressure",
            "attending physician",
            "date of admission",
            "allergies",
            "follow-up appointment",
        ),
        (
            "clinical notes",
            "symptoms reported by the individual",
            "treatment plan",
            "dosage twice daily",
            "discharged from ward",
            "lab results within normal range",
        ),
    ),
    "shipping_manifest": (
        (
            "bill of lading",
            "consignee",
            "shipper",
            "container number",
            "port of loading",
            "gross weight",
            "number of packages",
            "vessel name",
        ),
        (
            "cargo list",
            "freight forwarded via",
            "goods loaded onto",
            "pallets dispatched",
            "carrier tracking reference",
            "destination harbour",
        ),
    ),
    "tax_form": (
        (
            "taxable income",
            "tax year",
            "filing status",
            "withholding",
            "taxpayer identification",
            "deductions claimed",
            "refund due",
            "adjusted gross income",
        ),
        (
            "amount owed to the revenue service",
            "return for the fiscal period",
            "allowances and credits",
            "declared earnings",
            "assessment notice",
            "contributions withheld at source",
        ),
    ),
}

#: The first eight classes; the ninth arrives with model v3.
BASE_CLASSES: tuple[str, ...] = tuple(list(_CLASS_CUES)[:8])
ALL_CLASSES: tuple[str, ...] = tuple(_CLASS_CUES)

_COMPANIES = (
    "Northwind Traders",
    "Acme Corp",
    "Globex Ltd",
    "Initech",
    "Umbrella Supply",
    "Contoso",
    "Fabrikam",
    "Wayne Logistics",
    "Stark Industries",
    "Hooli",
)
_PEOPLE = (
    "Maria Lopez",
    "John Smith",
    "Aiko Tanaka",
    "Pierre Dubois",
    "Fatima Khan",
    "Liam O'Brien",
    "Chen Wei",
    "Olga Petrova",
    "Kwame Mensah",
    "Sara Cohen",
)
# Vocabulary every class can contain: it carries no class signal by itself.
_SHARED = (
    "total",
    "amount",
    "date",
    "reference",
    "account",
    "payment",
    "order",
    "signature",
    "address",
    "phone",
    "email",
    "page 1 of 2",
    "department",
    "approved",
    "schedule",
    "description",
    "quantity",
    "invoice",
    "receipt",
    "contract",
    "statement",
    "service",
)
_BOILERPLATE = (
    "CONFIDENTIAL",
    "Scanned copy",
    "Generated by DocuFlow",
    "Please retain",
    "Customer service line open 9-5",
    "Printed on recycled paper",
)


@dataclass(frozen=True)
class Document:
    """A generated document with its true class."""

    doc_id: str
    text: str
    label: str


def _noise(text: str, rng: random.Random, rate: float) -> str:
    """OCR-like character noise: drops, swaps and substitutions at ``rate`` per character."""
    out: list[str] = []
    confusions = {"o": "0", "l": "1", "e": "c", "a": "o", "s": "5", "i": "l", "m": "rn"}
    for ch in text:
        r = rng.random()
        if r < rate / 3:
            continue
        if r < 2 * rate / 3 and ch in confusions:
            out.append(confusions[ch])
        elif r < rate and out:
            out[-1], ch = ch, out[-1]
            out.append(ch)
        else:
            out.append(ch)
    return "".join(out)


def _render(label: str, rng: random.Random, classes: tuple[str, ...]) -> str:
    strong, para = _CLASS_CUES[label]
    # A third of documents carry only paraphrased cues; the rest mostly common phrasing.
    paraphrased = rng.random() < 0.35
    pool = para if paraphrased else strong + para[:2]
    cues = rng.sample(pool, k=min(len(pool), rng.randint(2, 4)))
    # Overlap: a cue borrowed from a neighbouring class, as real documents quote each other.
    if rng.random() < 0.4:
        other = rng.choice([c for c in classes if c != label])
        cues.append(rng.choice(_CLASS_CUES[other][0]))
    parts = [
        rng.choice(_BOILERPLATE),
        rng.choice(_COMPANIES),
        *cues,
        *rng.sample(_SHARED, k=rng.randint(3, 7)),
        rng.choice(_PEOPLE),
        f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/20{rng.randint(18, 26)}",
        f"${rng.randint(5, 99999)}.{rng.randint(0, 99):02d}",
    ]
    rng.shuffle(parts)
    if rng.random() < 0.15:  # truncated scan
        parts = parts[: max(3, len(parts) // 2)]
    return _noise(" ".join(parts), rng, rate=rng.choice((0.0, 0.02, 0.06)))


def generate_corpus(n: int, seed: int, classes: tuple[str, ...] = BASE_CLASSES) -> list[Document]:
    """``n`` documents, classes balanced round-robin, deterministic for a given seed."""
    unknown = set(classes) - set(_CLASS_CUES)
    if unknown:
        raise ValueError(f"unknown classes {sorted(unknown)}")
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        label = classes[i % len(classes)]
        text = _render(label, rng, classes)
        digest = hashlib.sha256(f"{seed}:{i}:{text}".encode()).hexdigest()[:16]
        docs.append(Document(doc_id=f"gen-{digest}", text=text, label=label))
    return docs


def split_corpus(
    docs: list[Document], test_fraction: float = 0.25
) -> tuple[list[Document], list[Document]]:
    """A fixed split: a document's side depends only on its id, never on order or a fresh RNG."""
    train: list[Document] = []
    test: list[Document] = []
    for d in docs:
        bucket = int(hashlib.sha256(d.doc_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (test if bucket < test_fraction else train).append(d)
    return train, test


def generate_documents(
    n: int, seed: int, classes: tuple[str, ...] = BASE_CLASSES
) -> list[Document]:
    """Fresh documents for submitting to the pipeline, disjoint from the training seeds."""
    return generate_corpus(n, seed=10_000 + seed, classes=classes)
