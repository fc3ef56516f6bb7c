"""AdminService over gRPC: proto in, the tenancy core (and usage, from the core's
oversight), proto out."""

from __future__ import annotations

import asyncio

import grpc

from hashmatch.audit.usage import TenantUsage
from hashmatch.core.calls import Call, CallRecorder
from hashmatch.core.oversight import Oversight
from hashmatch.errors import BadParameter
from hashmatch.proto import admin_pb, admin_rpc
from hashmatch.server.status import unary
from hashmatch.tenancy.model import ApiKey, Tenant, TenantAction, TenantState, parse_roles
from hashmatch.tenancy.service import Tenancy

STATE_TO_PROTO = {
    TenantState.APPLIED: admin_pb.APPLIED,
    TenantState.APPROVED: admin_pb.APPROVED,
    TenantState.REJECTED: admin_pb.REJECTED,
    TenantState.SUSPENDED: admin_pb.SUSPENDED,
}
STATE_FROM_PROTO = {v: k for k, v in STATE_TO_PROTO.items()}
ACTION_FROM_PROTO = {
    admin_pb.APPROVE: TenantAction.APPROVE,
    admin_pb.REJECT: TenantAction.REJECT,
    admin_pb.SUSPEND: TenantAction.SUSPEND,
    admin_pb.REINSTATE: TenantAction.REINSTATE,
}


def tenant_to(t: Tenant) -> admin_pb.Tenant:
    return admin_pb.Tenant(
        id=t.id,
        organisation=t.organisation,
        contact=t.contact,
        intended_use=t.intended_use,
        state=STATE_TO_PROTO[t.state],
        reason=t.reason,
        applied_at=t.applied_at,
        updated_at=t.updated_at,
        rate_per_second=t.rate_per_second,
        monthly_items=t.monthly_items,
    )


def key_to(k: ApiKey) -> admin_pb.ApiKey:
    return admin_pb.ApiKey(
        id=k.id,
        tenant_id=k.tenant_id,
        name=k.name,
        roles=sorted(r.value for r in k.roles),
        created_at=k.created_at,
        expires_at=k.expires_at or "",
        revoked_at=k.revoked_at or "",
        last_used_at=k.last_used_at or "",
        replaced_by=k.replaced_by or "",
    )


def usage_to(u: TenantUsage) -> admin_pb.TenantUsage:
    return admin_pb.TenantUsage(
        tenant_id=u.tenant,
        calls=u.calls,
        images=u.images,
        hashes=u.hashes,
        matched_items=u.matched_items,
        matches_by_bank=dict(u.matches_by_bank),
        reports_filed=u.reports_filed,
        errors=u.errors,
    )


class AdminServicer(admin_rpc.AdminServiceServicer):
    def __init__(self, tenancy: Tenancy, calls: CallRecorder, oversight: Oversight) -> None:
        self.tenancy = tenancy
        self.calls = calls  # read by the status wrappers
        self.oversight = oversight

    @unary
    async def ApplyTenant(
        self, request: admin_pb.ApplyTenantRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> admin_pb.Tenant:
        t = await asyncio.to_thread(
            self.tenancy.apply,
            request.tenant_id,
            request.organisation,
            request.contact,
            request.intended_use,
        )
        return tenant_to(t)

    @unary
    async def GetTenant(
        self, request: admin_pb.GetTenantRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> admin_pb.Tenant:
        t = await asyncio.to_thread(self.tenancy.get_tenant, call.caller, request.tenant_id)
        return tenant_to(t)

    @unary
    async def ListTenants(
        self, request: admin_pb.ListTenantsRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> admin_pb.ListTenantsResponse:
        state = STATE_FROM_PROTO.get(request.state)
        found = await asyncio.to_thread(self.tenancy.list_tenants, call.caller, state)
        return admin_pb.ListTenantsResponse(tenants=[tenant_to(t) for t in found])

    @unary
    async def SetTenantState(
        self, request: admin_pb.SetTenantStateRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> admin_pb.Tenant:
        action = ACTION_FROM_PROTO.get(request.action)
        if action is None:
            raise BadParameter("action: APPROVE, REJECT, SUSPEND or REINSTATE")
        t = await asyncio.to_thread(
            self.tenancy.decide, call.caller, request.tenant_id, action, request.reason
        )
        return tenant_to(t)

    @unary
    async def CreateKey(
        self, request: admin_pb.CreateKeyRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> admin_pb.CreatedKey:
        roles = parse_roles(list(request.roles))
        key, whole = await asyncio.to_thread(
            self.tenancy.create_key, call.caller, request.tenant_id, roles, request.name
        )
        return admin_pb.CreatedKey(key=key_to(key), secret=whole)

    @unary
    async def ListKeys(
        self, request: admin_pb.ListKeysRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> admin_pb.ListKeysResponse:
        keys = await asyncio.to_thread(self.tenancy.list_keys, call.caller, request.tenant_id)
        return admin_pb.ListKeysResponse(keys=[key_to(k) for k in keys])

    @unary
    async def RotateKey(
        self, request: admin_pb.RotateKeyRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> admin_pb.CreatedKey:
        overlap = float(request.overlap_seconds) if request.HasField("overlap_seconds") else None
        key, whole = await asyncio.to_thread(
            self.tenancy.rotate_key, call.caller, request.key_id, overlap
        )
        return admin_pb.CreatedKey(key=key_to(key), secret=whole)

    @unary
    async def RevokeKey(
        self, request: admin_pb.RevokeKeyRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> admin_pb.ApiKey:
        return key_to(await asyncio.to_thread(self.tenancy.revoke_key, call.caller, request.key_id))

    @unary
    async def WhoAmI(
        self, request: admin_pb.WhoAmIRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> admin_pb.WhoAmIResponse:
        who = call.caller
        return admin_pb.WhoAmIResponse(
            tenant_id=who.tenant_id, key_id=who.key_id, roles=sorted(r.value for r in who.roles)
        )

    @unary
    async def GetUsage(
        self, request: admin_pb.GetUsageRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> admin_pb.GetUsageResponse:
        rows = await asyncio.to_thread(
            self.oversight.usage, call.caller, request.start, request.end, request.tenant_id
        )
        return admin_pb.GetUsageResponse(usage=[usage_to(u) for u in rows])
