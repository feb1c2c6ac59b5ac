"""Recipients (who gets which report) and Comments (notes shown in the reports)."""

from __future__ import annotations

import re

from kpireport.core.model import Comment, Kpi, Person, Recipient
from kpireport.read.cells import EMAIL, address_hint, did_you_mean, is_blank
from kpireport.read.validate.base import TOKENS, Checks


class RecipientChecks(Checks):
    """Recipients (report, scope, addresses) and Comments."""

    def _recipients(self, people: dict[str, Person]) -> tuple[Recipient, ...] | None:
        table = self.tables.get("Recipients")
        if table is None:
            return None
        read = self._reader(table)
        found: list[Recipient] = []
        for r in table.rows:
            report = read.choice(table.value(r, "report"), table.cell(r, "report"),
                                 ("employee", "department", "company"))
            scope = read.text(table.value(r, "scope"), table.cell(r, "scope"), single_line=True)
            for column in ("report", "scope", "to"):
                if is_blank(table.value(r, column)):
                    self._required(table, r, column)
            if scope is not None and scope != "*":
                resolved = self._owner(table, scope, table.cell(r, "scope"), people, read)
                scope = resolved
            lists = {}
            for column in ("to", "cc", "bcc"):
                text = read.text(table.value(r, column), table.cell(r, column),
                                 single_line=True) or ""
                lists[column] = text
                for entry in split_addresses(text):
                    if entry.lower() not in TOKENS and not _email_ok(entry):
                        cell = table.cell(r, column)
                        hint = address_hint(entry) or did_you_mean(entry, TOKENS)
                        self.log.add("bad-email", table.name, cell, form="recipient",
                                     value=entry, hint=hint)
            if report and scope and lists["to"]:
                found.append(Recipient(report, scope, lists["to"], lists["cc"], lists["bcc"]))
        return tuple(found) or None  # no data rows (as the template writes it): the defaults

    def _comments(self, people: dict[str, Person], kpis: dict[str, Kpi]) -> list[Comment]:
        table = self.tables.get("Comments")
        if table is None:
            return []
        read = self._reader(table)
        found: list[Comment] = []
        for r in table.rows:
            for column in ("owner", "period", "comment"):
                if is_blank(table.value(r, column)):
                    self._required(table, r, column)
            owner = self._owner(table, table.value(r, "owner"), table.cell(r, "owner"),
                                people, read)
            period = read.month(table.value(r, "period"), table.cell(r, "period"))
            kpi = self._kpi_ref(table, table.value(r, "kpi_id"), table.cell(r, "kpi_id"),
                                kpis, read) if not is_blank(table.value(r, "kpi_id")) else None
            text = read.text(table.value(r, "comment"), table.cell(r, "comment"))
            author = read.text(table.value(r, "author"), table.cell(r, "author"),
                               single_line=True)
            if owner and period is not None and text:
                found.append(Comment(owner, period, kpi.kpi_id if kpi else None, author, text))
        return found


def split_addresses(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[;,]", text or "") if part.strip()]


def _email_ok(text: str) -> bool:

    return bool(EMAIL.match(text))
