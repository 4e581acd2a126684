"""Registers the lab's Keystone catalog and waits until the Keystone-authenticated services
answer with a real token (lab.sh start-keystone; runs on the host, standard library only).

    python3 keystone_catalog.py KEYSTONE_PORT NOVA_PORT PLACEMENT_PORT MASAKARI_PORT DEAD1 DEAD2

The catalog (region RegionOne unless said):
  identity     public, internal, admin   http://127.0.0.1:KEYSTONE/v3
  compute      public   http://127.0.0.1:NOVA/v2.1     (nova-api with auth_strategy = keystone)
  "nova"       internal http://localhost:NOVA/v2.1     (the same API by another name: the tests
                                                       see which entry umm took)
               admin    http://127.0.0.1:DEAD1/v2.1    (nothing listens there)
               public   http://127.0.0.1:DEAD2/v2.1    in region RegionTwo (nothing listens)
  placement    public   http://127.0.0.1:PLACEMENT     (Placement with auth_strategy = keystone)
               internal http://localhost:PLACEMENT
  instance-ha  public   http://127.0.0.1:MASAKARI/v1/$(tenant_id)s   (masakari-api, keystone)
  "masakari"   internal http://localhost:MASAKARI/v1/$(tenant_id)s
Prints the env lines for the tests (KEYSTONE_*, NOVA_KS_URL, ...).
"""
import json
import sys
import time
import urllib.error
import urllib.request

ADMIN_PASSWORD = "lab-admin-secret"   # build-keystone-layer.sh bootstraps it


def call(method, url, body=None, token=None, ok=(200, 201, 204)):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, headers, text = r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        status, headers, text = e.code, e.headers, e.read().decode()
    if status not in ok:
        raise RuntimeError(f"{method} {url} -> {status}: {text[:400]}")
    return headers, (json.loads(text) if text.strip() else None)


def wait(what, fn, timeout=180):
    end = time.time() + timeout
    while True:
        try:
            return fn()
        except (OSError, RuntimeError) as e:
            if time.time() > end:
                sys.exit(f"{what} not ready after {timeout}s: {e}")
            time.sleep(0.5)


def token(ks):
    h, _ = call("POST", f"{ks}/v3/auth/tokens", {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})
    return h["X-Subject-Token"]


def main():
    pk, pn, pp, pm, dead1, dead2 = sys.argv[1:7]
    ks = f"http://127.0.0.1:{pk}"
    t0 = time.time()
    tok = wait("Keystone", lambda: token(ks))
    t_ks = time.time() - t0
    call("POST", f"{ks}/v3/regions", {"region": {"id": "RegionTwo"}}, tok)
    entries = {
        # keystonemiddleware in the services looks for the internal one
        ("identity", "keystone"): [(r, i, f"{ks}/v3") for r in ("RegionOne",) for i in ("public", "internal", "admin")],
        ("compute", "nova"): [
            ("RegionOne", "public", f"http://127.0.0.1:{pn}/v2.1"),
            ("RegionOne", "internal", f"http://localhost:{pn}/v2.1"),
            ("RegionOne", "admin", f"http://127.0.0.1:{dead1}/v2.1"),
            ("RegionTwo", "public", f"http://127.0.0.1:{dead2}/v2.1")],
        ("placement", "placement"): [
            ("RegionOne", "public", f"http://127.0.0.1:{pp}"),
            ("RegionOne", "internal", f"http://localhost:{pp}")],
        ("instance-ha", "masakari"): [
            ("RegionOne", "public", f"http://127.0.0.1:{pm}/v1/$(tenant_id)s"),
            ("RegionOne", "internal", f"http://localhost:{pm}/v1/$(tenant_id)s")],
    }
    _, have = call("GET", f"{ks}/v3/services", token=tok)
    services = {s["type"]: s["id"] for s in have["services"]}
    for (kind, name), eps in entries.items():
        if kind not in services:
            _, s = call("POST", f"{ks}/v3/services", {"service": {"type": kind, "name": name}}, tok)
            services[kind] = s["service"]["id"]
        for region, iface, url in eps:
            call("POST", f"{ks}/v3/endpoints", {"endpoint": {
                "service_id": services[kind], "region_id": region, "interface": iface, "url": url}}, tok)
    _, proj = call("GET", f"{ks}/v3/auth/projects", token=token(ks))
    project = next(p["id"] for p in proj["projects"] if p["name"] == "admin")
    # the services validate a real token against Keystone; a fresh one each try (tokens
    # live 20 s here: build-keystone-layer.sh)
    wait("nova-api (keystone)", lambda: call("GET", f"http://127.0.0.1:{pn}/v2.1/os-services", token=token(ks)))
    wait("Placement (keystone)", lambda: call("GET", f"http://127.0.0.1:{pp}/resource_providers", token=token(ks)))
    wait("masakari-api", lambda: call("GET", f"http://127.0.0.1:{pm}/v1/{project}/segments", token=token(ks)))
    print(f"KEYSTONE_URL={ks}/v3")
    print("KEYSTONE_ADMIN_PASSWORD=" + ADMIN_PASSWORD)
    print(f"KEYSTONE_PROJECT_ID={project}")
    print(f"NOVA_KS_URL=http://127.0.0.1:{pn}/v2.1")
    print(f"PLACEMENT_KS_URL=http://127.0.0.1:{pp}")
    print(f"MASAKARI_URL=http://127.0.0.1:{pm}/v1/{project}")
    print(f"DEAD_ADMIN_URL=http://127.0.0.1:{dead1}/v2.1")
    print(f"DEAD_REGION_URL=http://127.0.0.1:{dead2}/v2.1")
    print(f"KEYSTONE_UP_S={t_ks:.1f}")
    print(f"KEYSTONE_ALL_UP_S={time.time() - t0:.1f}")


if __name__ == "__main__":
    main()
