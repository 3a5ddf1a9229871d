"""HTTP routers, one module per resource, each an `APIRouter` named `router`; `api.app.ROUTERS` lists them (a new
resource is a module here plus its line there). Every route must declare a role dependency (`ViewerKey`,
`OperatorKey`, `PlatformKey`, `AdminKey` from `api.deps`); tests/api/test_auth.py enumerates all routes and fails on
one that does not."""
