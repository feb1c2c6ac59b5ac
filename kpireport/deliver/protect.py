"""Protected PDFs: per-person passwords, their store, and AES-256 encryption.

A person's PDF password is the People ``pdf_password`` when it is filled, otherwise one
generated here and kept in ``OUT_DIR/.kpireport-passwords.json`` (mode 0600), so that it stays
the same month after month. Each recipient's copy of a protected report is encrypted with that
recipient's own password (PDF 2.0 security handler, revision 6: AES-256), with a random owner
password and printing and accessibility allowed.

A password never leaves this module except into an encrypted PDF and the ``passwords`` hand-out:
error messages name the person or the cell, never the value.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from kpireport.core.errors import PasswordsNotHandedOut, PasswordStoreError
from kpireport.core.files import safe_text, write_atomically
from kpireport.core.i18n import N_, translations
from kpireport.core.model import Book, Settings
from kpireport.read.validate.people import MIN_LENGTH, password_problem  # noqa: F401

STORE = ".kpireport-passwords.json"
STORE_SCHEMA = "kpireport/pdf-passwords@1"
GENERATED_LENGTH = 14
# No 0/O, 1/l/I: a password read off paper or a phone screen is typed right the first time.
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"


_UNBIASED = 256 - 256 % len(ALPHABET)  # bytes below this map evenly onto the alphabet


def generate_password() -> str:
    """A random password from ``secrets``: 14 characters of 57 (~81 bits).

    Each character is one random byte below 228 (4 × 57) taken modulo 57, so every character
    is equally likely; bytes from 228 up are dropped. One ``token_bytes`` call gives a
    password almost always (14 of 32 bytes needed, each kept with p = 0.89), where a
    ``secrets.choice`` per character cost ~20 ms for the first 1,000 people of a store."""
    chars: list[str] = []
    while len(chars) < GENERATED_LENGTH:
        chars += [ALPHABET[b % len(ALPHABET)] for b in secrets.token_bytes(32)
                  if b < _UNBIASED]
    return "".join(chars[:GENERATED_LENGTH])


def applies(settings: Settings, kind: str) -> bool:
    """Whether the ``kind`` report (employee / department / company) is encrypted."""
    return settings.pdf_protection == "all" or (settings.pdf_protection == "employee"
                                                and kind == "employee")


def store_path(out_dir: Path) -> Path:
    return Path(out_dir) / STORE


# ---------------------------------------------------------------------------- the store
class PasswordStore:
    """The generated passwords of one output folder, by employee id."""

    def __init__(self, path: Path, entries: dict[str, dict]) -> None:
        self.path = path
        self.entries = entries

    @classmethod
    def open(cls, out_dir: Path) -> PasswordStore:
        """Read the store of ``out_dir`` (an empty one if there is none yet)."""
        path = store_path(out_dir)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            return cls(path, {})
        except OSError as exc:
            raise PasswordStoreError(f"cannot read the PDF password store {path}: "
                                     f"{exc.strerror or exc}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise PasswordStoreError(
                f"the PDF password store {path} can be read by other users (mode "
                f"{stat.S_IMODE(mode):04o}); run `chmod 600 {path}` and check who has seen it")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PasswordStoreError(f"the PDF password store {path} is damaged ("
                                     f"{type(exc).__name__}); restore it from a backup") from None
        if not isinstance(data, dict) or data.get("schema") != STORE_SCHEMA \
                or not isinstance(data.get("people"), dict):
            raise PasswordStoreError(f"the PDF password store {path} is not a kpireport "
                                     f"password store ({STORE_SCHEMA}); restore it from a backup")
        for person, entry in data["people"].items():
            if not isinstance(entry, dict) or not isinstance(entry.get("password"), str) \
                    or password_problem(entry["password"]) is not None:
                raise PasswordStoreError(f"the PDF password store {path} is damaged (the entry "
                                         f"of {person}); restore it from a backup")
        return cls(path, data["people"])

    def password(self, employee_id: str) -> str | None:
        entry = self.entries.get(employee_id)
        return entry["password"] if entry else None

    def ensure(self, book: Book) -> list[str]:
        """Generate a password for each person with an e-mail address and no pdf_password
        in the workbook who has none yet; save if any was added. Returns their ids."""
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        added, changed = [], False
        for person in book.people:
            if not person.email or person.pdf_password:
                continue
            entry = self.entries.get(person.employee_id)
            if entry is None:
                entry = self.entries[person.employee_id] = {
                    "password": generate_password(), "created": now, "handed_out": None}
                added.append(person.employee_id)
            if (entry.get("name"), entry.get("email")) != (person.name, person.email):
                entry["name"], entry["email"] = person.name, person.email  # for the hand-out
                changed = True
        if added or changed:
            self.save()
        return added

    def mark_handed_out(self, employee_ids: list[str]) -> None:
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        for employee_id in employee_ids:
            self.entries[employee_id]["handed_out"] = now
        if employee_ids:
            self.save()

    def save(self) -> None:
        """Write atomically, readable by the owner only (the temporary file is 0600 too)."""
        data = json.dumps({"schema": STORE_SCHEMA, "people": dict(sorted(self.entries.items()))},
                          ensure_ascii=False, indent=1).encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, data, mode=0o600, sync=True)
        except OSError as exc:
            raise PasswordStoreError(f"cannot write the PDF password store {self.path}: "
                                     f"{exc.strerror or exc}") from None


class Passwords:
    """Recipient address → that person's PDF password (workbook first, then the store).

    An address shared by several people with different passwords has none: nobody can know
    which of them will open the message.
    """

    def __init__(self, book: Book, store: PasswordStore) -> None:
        found: dict[str, set[str]] = {}
        for person in book.people:
            if not person.email:
                continue
            password = person.pdf_password or store.password(person.employee_id)
            found.setdefault(person.email.lower(), set()).add(password or "")
        self._by_address = {address: next(iter(values)) for address, values in found.items()
                            if len(values) == 1 and "" not in values}

    def get(self, address: str) -> str | None:
        return self._by_address.get(address.lower())


@dataclass(frozen=True)
class HandOut:
    employee_id: str
    name: str
    email: str
    password: str = field(repr=False)
    handed_out_before: str | None = None  # when it was listed before (with --all)


def hand_out(out_dir: Path, *, everyone: bool = False) -> list[HandOut]:
    """The generated passwords not handed out yet (``everyone``: all of them), which are
    then recorded as handed out."""
    store = PasswordStore.open(out_dir)
    if not store.path.exists():
        raise PasswordStoreError(f"{out_dir} has no PDF password store yet; `kpireport build` "
                                 "writes it when Settings pdf_protection is employee or all")
    rows = [HandOut(employee_id, str(entry.get("name") or ""), str(entry.get("email") or ""),
                    entry["password"], entry.get("handed_out"))
            for employee_id, entry in sorted(store.entries.items())
            if everyone or not entry.get("handed_out")]
    store.mark_handed_out([r.employee_id for r in rows if not r.handed_out_before])
    return rows


def hand_out_csv(rows: list[HandOut]) -> str:
    """The hand-out as CSV (``passwords --format csv``): employee_id,name,email,password; text
    cells that a spreadsheet would run as a formula are defused."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["employee_id", "name", "email", "password"])
    for row in rows:
        writer.writerow([safe_text(row.employee_id), safe_text(row.name), safe_text(row.email),
                         row.password])
    return buffer.getvalue()


@dataclass(frozen=True)
class HandOutState:
    """Where the PDF passwords of a workbook's people stand (never a password itself).

    ``pending``: names of people whose generated password was not handed out yet (their
    protected copies cannot be opened); ``handed_out``: generated and handed out; ``chosen``:
    typed into People ``pdf_password``."""

    protection: str
    pending: tuple[str, ...] = ()
    handed_out: int = 0
    chosen: int = 0

    @property
    def ready(self) -> bool:
        return self.protection == "none" or not self.pending


def hand_out_state(book: Book, out_dir: Path) -> HandOutState:
    """Who can open their protected copies of the reports built into ``out_dir``."""
    protection = book.settings.pdf_protection
    if protection == "none":
        return HandOutState(protection)
    store = PasswordStore.open(out_dir)
    pending, handed, chosen = [], 0, 0
    for person in book.people:
        if not person.email:
            continue
        if person.pdf_password:
            chosen += 1
            continue
        entry = store.entries.get(person.employee_id)
        if entry and entry.get("handed_out"):
            handed += 1
        else:
            pending.append(person.name or person.employee_id)
    return HandOutState(protection, tuple(pending), handed, chosen)


def require_handed_out(book: Book, out_dir: Path) -> None:
    """Refuse (PasswordsNotHandedOut) while someone would get a copy they cannot open."""
    state = hand_out_state(book, out_dir)
    if not state.ready:
        shown = ", ".join(state.pending[:3]) + (" …" if len(state.pending) > 3 else "")
        raise PasswordsNotHandedOut(
            f"{len(state.pending)} person(s) would get a protected PDF without having their "
            f"password ({shown}); hand the passwords out first (kpireport passwords "
            f"{out_dir}), then send", state.pending)


DEFAULT_HINT = N_("Your personal PDF password was given to you separately by HR; it is never "
                  "sent by e-mail.")


TEST_HINT = N_("This is a test copy: it opens with the test password shown to the person who "
               "sent the test, not with the employee's own password.")


class Protection:
    """What one send run needs to protect its messages: the passwords, one owner password
    for the run, and the hint the e-mails give."""

    def __init__(self, settings: Settings, passwords: Passwords | None,
                 test_password: str | None = None) -> None:

        self.settings = settings
        self.passwords = passwords
        self.test_password = test_password
        self.owner = owner_password()
        gettext = translations(settings.locale).gettext
        self.hint = gettext(TEST_HINT) if test_password else \
            settings.pdf_password_hint or gettext(DEFAULT_HINT)

    @classmethod
    def start(cls, book: Book, out_dir: Path, *, test_password: str | None = None
              ) -> Protection:
        """Read the store of ``out_dir`` and fill in missing passwords (when protection is
        on); a damaged or exposed store raises PasswordStoreError before anything is sent.
        ``test_password`` (a test send): every protected copy opens with it instead, so the
        person who asked for the test can open them."""
        if book.settings.pdf_protection == "none":
            return cls(book.settings, None)
        store = PasswordStore.open(out_dir)
        store.ensure(book)
        return cls(book.settings, Passwords(book, store), test_password)

    def encrypt(self, pdf: bytes, address: str) -> bytes | None:
        """The PDF encrypted for ``address`` (None: that recipient has no password)."""
        password = self.passwords.get(address) if self.passwords else None
        if self.test_password and password is not None:
            password = self.test_password
        return None if password is None else encrypt_pdf(pdf, password, self.owner)


# ---------------------------------------------------------------------------- encryption
def owner_password() -> str:
    """A random owner (permissions) password; it is never stored or shown."""
    return secrets.token_urlsafe(32)


def encrypt_pdf(pdf: bytes, user_password: str, owner: str) -> bytes:
    """The PDF encrypted with AES-256 (R6): it opens with ``user_password``; printing and
    accessibility (screen readers) are allowed, editing and copying are not."""
    # lazy: pikepdf is loaded only where it is used (start-up stays light)
    import pikepdf

    allow = pikepdf.Permissions(accessibility=True, extract=False, modify_annotation=False,
                                modify_assembly=False, modify_form=False, modify_other=False,
                                print_lowres=True, print_highres=True)
    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(pdf)) as document:
        document.save(out, encryption=pikepdf.Encryption(owner=owner, user=user_password, R=6,
                                                         allow=allow, aes=True,
                                                         metadata=True))
    return out.getvalue()
