"""`autoprotect plan`: what the app would do for every server in scope, without changing anything.

It runs the same rules as the functions over the same ARM reads (server list, extension-routing list, role
assignments), and stops where the functions would start writing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

from shared.backup import BackupApi, already_protected_in
from shared.bodies import dig
from shared.config import Settings
from shared.ids import InvalidResourceId, ServerId, vault_of
from shared.permissions import Permissions
from shared.protection_state import RESUME_ACTION, Verdict, verdict
from shared.rules import RuleContext, ServerFacts, Skip, decide


@dataclass(frozen=True)
class PlanItem:
    server_id: str
    action: str  # protect | skip | wait | already-protected | resume | attention | protected-elsewhere | invalid
    detail: str
    rule: str = ""
    vault: str = ""
    policy: str = ""
    instance_name: str = ""
    grants: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class Planner:
    def __init__(self, settings: Settings, api: BackupApi) -> None:
        self.settings = settings
        self.api = api
        self._rules = RuleContext(settings, api.vault_location)
        self._permissions = Permissions(api.arm)

    def plan(self, subscriptions: Iterable[str] = ()) -> Iterator[PlanItem]:
        for subscription in list(subscriptions) or self.api.subscriptions():
            for body in self.api.list_servers(subscription):
                yield self.plan_one(body)

    def plan_one(self, body: dict[str, object]) -> PlanItem:
        try:
            server = ServerId.parse(body.get("id"))
        except InvalidResourceId as exc:
            return PlanItem(str(body.get("id"))[:300], "invalid", str(exc))
        out_of_scope = self.settings.scope_error(server.subscription_id)
        if out_of_scope:
            return PlanItem(server.id, "skip", out_of_scope, rule="subscription-scope")
        facts = ServerFacts.from_arm(server, body)
        decision = decide(facts, self._rules)
        if isinstance(decision, Skip):
            return PlanItem(server.id, "skip", decision.reason, rule=decision.rule)
        target = decision.target
        instances = self.api.instances_protecting(server)
        ours = [i for i in instances if (vault_of(str(i.get("id") or "")) or "").lower() == target.vault.key]
        if ours:
            name = str(ours[0].get("name") or "")
            state = dig(ours[0], "properties", "currentProtectionState")
            seen = verdict(state)
            if seen in RESUME_ACTION:  # what the job would do with it (shared/protect.py `_resume`)
                action = "resume" if self.settings.resume_protection else "attention"
                detail = f"instance {name} is {state}; " + (
                    f"would {RESUME_ACTION[seen]}" if action == "resume" else "AUTOPROTECT_RESUME_PROTECTION=false"
                )
            elif seen is Verdict.PROTECTED or seen is Verdict.CONFIGURING:
                action, detail = "already-protected", f"instance {name}"
            else:
                action, detail = "attention", f"instance {name} is {state}"
            return PlanItem(server.id, action, detail, decision.rule, target.vault.vault, target.policy.policy or "",
                            name)  # fmt: skip
        if instances:
            vaults = ", ".join(already_protected_in(instances))
            return PlanItem(server.id, "protected-elsewhere", f"protected in {vaults}", decision.rule)
        grants = ""
        if self.settings.auto_grant:
            principal = self.api.vault_principal(target.vault)
            grants = "; ".join(g.describe() for g in self._permissions.missing(server, principal))
        if facts.ready:
            action, detail = "protect", decision.reason
        else:
            action, detail = "wait", f"{'stopped: ' if facts.stopped else ''}server is {facts.state}"
        return PlanItem(server.id, action, detail, decision.rule, target.vault.vault, target.policy.policy or "",
                        server.backup_instance_name(), grants)  # fmt: skip
