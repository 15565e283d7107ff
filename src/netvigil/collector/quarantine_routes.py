"""GET /api/v1/quarantine (admin): what the analysis set aside, for an operator to inspect.

Each entry names the measurement (uid when it could be read), the stage that failed
(decode, judge, store), the reason, when, and where the line is in the collector's log;
`?lines=true` adds the line itself. The count is also in /api/v1/health and the metric
netvigil_quarantined_measurements.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from netvigil.collector.quarantine import as_dict, read_line
from netvigil.web.request import require_admin

router = APIRouter()

LINE_CAP = 1 << 20  # bytes of one line shown (the log holds it whole)


@router.get("/api/v1/quarantine", tags=["service"],
            summary="Measurements the analysis set aside (admin); e.g. /api/v1/quarantine?limit=10&lines=true")
async def quarantine(request: Request, limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=10**9),
                     lines: bool = False):
    """Newest first. `lines`: include each measurement's line as received (up to 1 MB)."""
    require_admin(request)
    nv = request.app.state.nv
    entries = await run_in_threadpool(nv.pump.quarantine.entries)
    page = entries[::-1][offset: offset + limit]
    results = []
    for e in page:
        item = as_dict(e)
        if lines and e.position.length:
            try:
                item["measurement"] = read_line(nv.data_dir, e.position, LINE_CAP).decode("utf-8", "replace")
            except OSError as exc:
                item["measurement"] = None
                item["measurement_error"] = f"cannot read the log: {exc.strerror or exc}"
        results.append(item)
    return {"count": len(entries), "offset": offset, "results": results}
