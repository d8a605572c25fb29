"""An example deployer module: `MINDHARBOR_HOOK_MODULES=clinic_rules` (on PYTHONPATH)."""

from __future__ import annotations

from mindharbor.errors import ValidationFailed
from mindharbor.hooks import FunctionRequest, Hooks, SaveRequest


def register(hooks: Hooks) -> None:
    @hooks.on_before_save("Appointment")
    async def reason_required(request: SaveRequest) -> None:
        if request.is_new and not request.value("reason"):
            raise ValidationFailed("Say why the visit is booked.")  # -> 142, nothing written

    @hooks.function("hello")
    async def hello(request: FunctionRequest) -> dict[str, str]:
        return {"hello": request.auth.user_id or "anonymous"}  # POST /parse/functions/hello
