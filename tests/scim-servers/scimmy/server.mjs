// Throwaway in-memory SCIM 2.0 server on SCIMMY (scimmy 1.3.5 + scimmy-routers 1.3.2 + express 4).
// SCIMMY does the protocol work: parsing/validating resources, filter parsing+matching, PatchOp, ListResponse,
// errors, /Schemas /ResourceTypes /ServiceProviderConfig. This file adds only storage and a few fixes (marked FIX).
//
// Usage: node server.mjs [--port N] [--host H] [--base /scim/v2] [--token T] [--enterprise] [--raw]
// Env equivalents: SCIM_PORT, SCIM_HOST, SCIM_BASE, SCIM_TOKEN, SCIM_ENTERPRISE=1, SCIM_RAW=1.
//   --port 0 (default): random free port.   --token: require "Authorization: Bearer T" (401 otherwise).
//   --enterprise: declare the EnterpriseUser extension (default: core User only, no extension anywhere).
//   --raw: disable the FIX workarounds below, to see SCIMMY's own behaviour.
// When ready, prints exactly one line to stdout:  LISTENING http://127.0.0.1:<port><base>
import express from "express";
import {randomUUID} from "node:crypto";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";

const argv = process.argv.slice(2);
const arg = (name, env, dflt) => {
    const i = argv.indexOf(`--${name}`);
    if (i >= 0) return (argv[i + 1] === undefined || argv[i + 1].startsWith("--")) ? "1" : argv[i + 1];
    return process.env[env] ?? dflt;
};
const flag = (v) => ["1", "true", "yes"].includes(String(v).toLowerCase());
const PORT = Number(arg("port", "SCIM_PORT", "0"));
const HOST = arg("host", "SCIM_HOST", "127.0.0.1");
const BASE = arg("base", "SCIM_BASE", "/scim/v2").replace(/\/$/, "");
const TOKEN = arg("token", "SCIM_TOKEN", "");
const ENTERPRISE = flag(arg("enterprise", "SCIM_ENTERPRISE", "0"));
const RAW = flag(arg("raw", "SCIM_RAW", "0"));

const {Error: SCIMError, Filter} = SCIMMY.Types;
const users = new Map();   // id -> stored JSON
const groups = new Map();  // id -> stored JSON
const clone = (o) => JSON.parse(JSON.stringify(o));
const now = () => new Date().toISOString();

function store(map, resourceType, resource, instance) {
    const data = clone(instance);
    delete data.schemas; delete data.id; delete data.meta; delete data.groups;
    if (resource.id) {                                   // PUT, or the write step of PATCH
        const old = map.get(resource.id);
        if (!old) throw new SCIMError(404, null, `Resource ${resource.id} not found`);
        const rec = {...data, id: old.id, meta: {...old.meta, lastModified: now()}};
        map.set(old.id, rec);
        return rec;
    }
    const id = randomUUID(), ts = now();               // POST
    const rec = {...data, id, meta: {resourceType, created: ts, lastModified: ts}};
    map.set(id, rec);
    return rec;
}

// FIX: SCIMMY's Filter.match compares strings case-sensitively; RFC 7643 says userName/displayName are
// caseExact=false. Lower-case those attributes on both sides before matching.
const CI = new Set(["username", "displayname"]);
const lowerExpr = (e) => Array.isArray(e[0]) ? e.map(lowerExpr)
    : e.map((v, i) => (i === e.length - 1 && typeof v === "string") ? v.toLowerCase() : v);
const ciFilter = (filter) => new Filter(filter.map(obj => Object.fromEntries(Object.entries(obj)
    .map(([k, v]) => [k, CI.has(k.toLowerCase()) && Array.isArray(v) ? lowerExpr(v) : v]))));
const ciProbe = (r) => Object.fromEntries(Object.entries(r)
    .map(([k, v]) => [k, CI.has(k.toLowerCase()) && typeof v === "string" ? v.toLowerCase() : v]));

function find(map, resource, decorate = (r) => r) {
    if (resource.id) {
        const rec = map.get(resource.id);
        if (!rec) throw new SCIMError(404, null, `Resource ${resource.id} not found`);
        return decorate(clone(rec));
    }
    const all = [...map.values()].map(r => decorate(clone(r)));
    if (!resource.filter) return all;                    // SCIMMY's ListResponse then sorts + pages this array
    if (RAW) return resource.filter.match(all);
    // FIX: match per record; SCIMMY throws (-> 400) when a complex attribute in the filter is absent on some record.
    const f = ciFilter(resource.filter);
    return all.filter(r => { try { return f.match([ciProbe(r)]).length > 0; } catch { return false; } });
}

const dedupe = (members) => members && [...new Map(members.map(m => [m.value, m])).values()];
function checkMembers(members = []) {
    for (const m of members)
        if (!users.has(m.value) && !groups.has(m.value))
            throw new SCIMError(400, "invalidValue", `Member ${m.value} does not exist`);
}
const dropMember = (id) => {
    for (const g of groups.values())
        if (g.members?.some(m => m.value === id)) {
            g.members = g.members.filter(m => m.value !== id);
            g.meta.lastModified = now();
        }
};

// Users get the read-only computed "groups" attribute.
const withGroups = (u) => {
    const gs = [...groups.values()].filter(g => (g.members ?? []).some(m => m.value === u.id))
        .map(g => ({value: g.id, display: g.displayName, $ref: `${BASE}/Groups/${g.id}`, type: "direct"}));
    return gs.length ? {...u, groups: gs} : u;
};

if (ENTERPRISE) SCIMMY.Resources.User.extend(SCIMMY.Schemas.EnterpriseUser, false);

SCIMMY.Resources.declare(SCIMMY.Resources.User)
    .ingress((resource, instance) => {
        const name = String(instance.userName ?? "").toLowerCase();
        for (const u of users.values())
            if (u.id !== resource.id && String(u.userName).toLowerCase() === name)
                throw new SCIMError(409, "uniqueness", `userName ${instance.userName} already exists`);
        return withGroups(store(users, "User", resource, instance));
    })
    .egress((resource) => find(users, resource, withGroups))
    .degress((resource) => {
        if (!users.delete(resource.id)) throw new SCIMError(404, null, `Resource ${resource.id} not found`);
        dropMember(resource.id);                         // deleted users disappear from groups
    });

SCIMMY.Resources.declare(SCIMMY.Resources.Group)
    .ingress((resource, instance) => {
        checkMembers(instance.members);
        // FIX: SCIMMY's PATCH "add" appends duplicates of existing members.
        if (!RAW && instance.members) instance = {...clone(instance), members: dedupe(instance.members)};
        return store(groups, "Group", resource, instance);
    })
    .egress((resource) => find(groups, resource))
    .degress((resource) => {
        if (!groups.delete(resource.id)) throw new SCIMError(404, null, `Resource ${resource.id} not found`);
        dropMember(resource.id);
    });

const app = express();
app.disable("x-powered-by");
app.set("etag", false);                  // express' body-hash ETag would contradict etag.supported=false
app.use((req, res, next) => {
    const send = res.send.bind(res);
    res.send = (body) => {
        if (body && typeof body === "object" && !Buffer.isBuffer(body)) {
            // RFC 7644 3.1: 201 carries Location = meta.location.
            if (res.statusCode === 201 && body.meta?.location) res.location(body.meta.location);
            if (!RAW && Array.isArray(body.Resources) && typeof body.totalResults === "number") {
                // FIX: SCIMMY returns the whole list when startIndex > number of results.
                if (body.startIndex > body.totalResults) body.Resources = [];
                // FIX: SCIMMY reports the requested count (default 20) as itemsPerPage.
                body.itemsPerPage = body.Resources.length;
            }
        }
        return send(body);
    };
    next();
});
app.use(BASE, new SCIMMYRouters({
    type: "bearer",
    baseUri: (req) => `${req.protocol}://${req.get("host")}`,          // absolute meta.location
    handler: (req) => {
        if (TOKEN && req.header("Authorization") !== `Bearer ${TOKEN}`) throw new Error("Invalid or missing bearer token");
        return undefined;                                                // no /Me user -> /Me answers 501
    },
}));
// SCIMMYRouters sets patch/filter/sort/bulk=true when constructed; turn off what the glue doesn't offer.
SCIMMY.Config.set({bulk: false, etag: false, changePassword: false, filter: {supported: true, maxResults: 1000}});

const server = app.listen(PORT, HOST, () => {
    process.stdout.write(`LISTENING http://${HOST}:${server.address().port}${BASE}\n`);
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => { server.close(); process.exit(0); });
