"""The reference front end (web/), served on the API's own origin: ``GET /api/web/<path>``.

Anonymous like the API routes: App Service Authentication guards the whole app in Azure, and the
page itself holds nothing personal (it reads the user's data from the API after sign-in).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import azure.functions as func

bp = func.Blueprint()


@bp.route(route="web/{*path}", methods=["GET", "HEAD"], auth_level=func.AuthLevel.ANONYMOUS)
def web(req: func.HttpRequest) -> func.HttpResponse:
    from shared.settings import Settings
    from shared.static_site import serve

    reply = serve(req.route_params.get("path") or "", request_path=urlsplit(req.url).path,
                  settings=Settings.from_env())
    return func.HttpResponse(reply.body, status_code=reply.status, headers=reply.headers)
