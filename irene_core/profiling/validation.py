"""The up-front validation layer: every command that does long work checks all it can before it starts.

A command owns a :class:`Validation`, an ordered list of named rules; a rule takes the command's
context and returns an error (one line) or ``None``. :meth:`Validation.run` runs them in order and
raises the first error as :class:`ValidationError`, so a bad input fails in seconds, before anything
is measured or written. Commands find their validation by name (``validation("run")``), so a later
command (``sweep``) or phase can reuse a command's rules or add its own::

    rules = validation("sweep")
    rules.extend(validation("run"))                 # everything `irene run` checks
    @rules.rule("budget")
    def _budget(context: SweepContext) -> str | None:
        return None if context.hours <= 24 else f"--hours {context.hours}: at most 24"

A rule may also acquire what the command then uses (an opened meter, a lock): it keeps it on the
context, which releases it when the command ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from irene_core.errors import IreneError

Check = Callable[[Any], "str | None"]


class ValidationError(IreneError):
    """An input or resource that would make the command fail later; raised before any work starts."""

    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class Rule:
    """One named check: ``check(context)`` returns an error message or ``None``."""

    name: str
    check: Check


class Validation:
    """The ordered rules of one command."""

    def __init__(self, command: str):
        self.command = command
        self.rules: list[Rule] = []

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rules]

    def add(self, name: str, check: Check, *, before: str | None = None) -> None:
        """Register ``check`` as rule ``name`` at the end, or right before the rule ``before``."""
        if name in self.names:
            raise IreneError(f"validation '{self.command}': a rule '{name}' is already registered")
        if before is not None and before not in self.names:
            raise IreneError(f"validation '{self.command}': no rule '{before}' to insert '{name}' before")
        at = self.names.index(before) if before is not None else len(self.rules)
        self.rules.insert(at, Rule(name, check))

    def rule(self, name: str, *, before: str | None = None) -> Callable[[Check], Check]:
        """Decorator form of :meth:`add`."""

        def register(check: Check) -> Check:
            self.add(name, check, before=before)
            return check

        return register

    def extend(self, other: Validation) -> None:
        """Append every rule of ``other`` (a command that does what another does and more)."""
        for r in other.rules:
            self.add(r.name, r.check)

    def run(self, context: Any) -> None:
        """Run every rule in order; raise :class:`ValidationError` with the first error."""
        for r in self.rules:
            error = r.check(context)
            if error is not None:
                raise ValidationError(r.name, error)


_VALIDATIONS: dict[str, Validation] = {}


def validation(command: str) -> Validation:
    """The validation of ``command`` (created empty on first use)."""
    return _VALIDATIONS.setdefault(command, Validation(command))
