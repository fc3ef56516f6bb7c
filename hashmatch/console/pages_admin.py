"""Tenants and keys: the application queue, tenants' states and limits, keys (a created
or rotated key's secret is shown once). Each handler is one call on the tenancy core,
which checks who may do it (`hashmatch admin`, AdminService: the same calls)."""

from __future__ import annotations

import asyncio

from starlette.responses import Response

from hashmatch.console.app import Console, Ctx
from hashmatch.core.admission import Open
from hashmatch.errors import BadParameter
from hashmatch.tenancy.model import Role, TenantAction, TenantState, parse_roles


def register(console: Console) -> None:
    tenancy = console.runtime.tenancy

    async def applications(ctx: Ctx) -> Response:
        found = await asyncio.to_thread(tenancy.list_tenants, ctx.who, TenantState.APPLIED)
        return ctx.render("applications.html", tenants=found)

    async def tenants(ctx: Ctx) -> Response:
        found = await asyncio.to_thread(tenancy.list_tenants, ctx.who, None)
        return ctx.render("tenants.html", tenants=found)

    async def tenant(ctx: Ctx) -> Response:
        tid = ctx.param("tenant")
        t = await asyncio.to_thread(tenancy.get_tenant, ctx.who, tid)
        keys = await asyncio.to_thread(tenancy.list_keys, ctx.who, tid)
        return ctx.render("tenant.html", tenant=t, keys=keys, roles=list(Role))

    async def decide(ctx: Ctx) -> Response:
        try:
            action = TenantAction(ctx.field("action"))
        except ValueError:
            raise BadParameter("action: approve, reject, suspend or reinstate") from None
        tid, reason = ctx.param("tenant"), ctx.field("reason")
        t = await asyncio.to_thread(tenancy.decide, ctx.who, tid, action, reason)
        back = "/applications" if ctx.field("from") == "applications" else f"/tenants/{tid}"
        return ctx.back(back, f"tenant {t.id} is now {t.state.value}")

    async def limits(ctx: Ctx) -> Response:
        tid = ctx.param("tenant")
        rate, monthly = ctx.number("rate_per_second", float), ctx.number("monthly_items")
        monthly_i = None if monthly is None else int(monthly)
        await asyncio.to_thread(tenancy.set_limits, ctx.who, tid, rate, monthly_i)
        return ctx.back(f"/tenants/{tid}", "limits saved")

    async def create_key(ctx: Ctx) -> Response:
        tid = ctx.param("tenant")
        # None chosen: the core refuses it, after checking who may make keys here.
        roles = parse_roles(ctx.fields("roles")) if ctx.fields("roles") else frozenset()
        name = ctx.field("name")
        key, secret = await asyncio.to_thread(tenancy.create_key, ctx.who, tid, roles, name)
        return ctx.render("secret.html", key=key, secret=secret, made="created")

    async def rotate_key(ctx: Ctx) -> Response:
        kid = ctx.param("key")
        key, secret = await asyncio.to_thread(tenancy.rotate_key, ctx.who, kid, None)
        ctx.console.sessions.close_key(kid)
        return ctx.render("secret.html", key=key, secret=secret, made="rotated", old=kid)

    async def revoke_key(ctx: Ctx) -> Response:
        kid = ctx.param("key")
        key = await asyncio.to_thread(tenancy.revoke_key, ctx.who, kid)
        ctx.console.sessions.close_key(kid)
        if kid == ctx.session.key_id:
            return ctx.console.to_signin("your key was revoked")
        return ctx.back(f"/tenants/{key.tenant_id}", f"key {kid} revoked")

    r = console.route
    r("/applications", "ListApplications", Role.OPERATOR, applications)
    r("/tenants", "ListTenants", Role.OPERATOR, tenants)
    r("/tenants/{tenant}", "GetTenant", Open.ANY_KEY, tenant)
    r("/tenants/{tenant}/decide", "SetTenantState", Role.OPERATOR, decide, "POST")
    r("/tenants/{tenant}/limits", "SetTenantLimits", Role.OPERATOR, limits, "POST")
    r("/tenants/{tenant}/keys", "CreateKey", Open.ANY_KEY, create_key, "POST")
    r("/keys/{key}/rotate", "RotateKey", Open.ANY_KEY, rotate_key, "POST")
    r("/keys/{key}/revoke", "RevokeKey", Open.ANY_KEY, revoke_key, "POST")
