"""`/ui`: the operators' and site managers' web UI (incident list, zone editor), static files from `api/ui/`.

Served without a key on purpose: the page holds no data. Every data call it makes sends the API key the user typed
in (kept in the browser's sessionStorage) in `X-API-Key`, so the roles of `api.auth` apply unchanged.
FastAPI's `frontend()` route (FastAPI ≥ 0.138) serves the directory: low priority (API routes match first), `/ui`
redirects to `/ui/`, no directory listing, paths cannot leave the directory. The files ship as package data.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

UI_DIR = Path(__file__).resolve().parent.parent / "ui"

router = APIRouter()
router.frontend("/ui", directory=UI_DIR, fallback=None, check_dir=True)
