"""Build the hook registry: the product's own rules first, then the deployer's modules."""

from __future__ import annotations

import importlib

from mindharbor.auth import accounts
from mindharbor.domain import (
    appointments,
    assessments,
    audit,
    careteam,
    crisis,
    disclosures,
    emergency,
    housekeeping,
    identity,
    installations,
    messaging,
    staffing,
)
from mindharbor.hooks import Hooks
from mindharbor.settings import Settings


def build_hooks(settings: Settings) -> Hooks:
    hooks = Hooks()
    for module in (
        audit,
        identity,
        careteam,
        accounts,
        emergency,
        assessments,
        crisis,
        housekeeping,
        installations,
        messaging,
        appointments,
        staffing,
        disclosures,
    ):
        module.register(hooks)
    for name in (n.strip() for n in settings.hook_modules.split(",")):
        if name:
            importlib.import_module(name).register(hooks)
    return hooks
