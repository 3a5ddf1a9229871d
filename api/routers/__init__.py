"""HTTP routers, one module per resource. The router registry: `api.app.create_app` includes the `router` of every
module here (name order), so a new resource (cameras, detect) plugs in by adding a module. Every route must declare
a role dependency (`ViewerKey`, `OperatorKey`, `PlatformKey`, `AdminKey` from `api.deps`); tests/api/test_auth.py
enumerates all routes and fails on one that does not."""
