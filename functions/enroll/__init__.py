"""enroll: a blob created in the uploads container (delivered by Event Grid) becomes an enrollment photo."""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()


@bp.blob_trigger(arg_name="upload", path="%UPLOADS_CONTAINER%/{name}", connection="PhotoStorage",
                 source=func.BlobSource.EVENT_GRID)
def enroll(upload: func.InputStream) -> None:
    from shared.bootstrap import services
    from shared.commands import ProcessUpload

    # The host passes "<container>/<blob name>"; the service decides everything else, and raises
    # only for transient failures, which Event Grid then redelivers.
    services().enrollment.process_upload(ProcessUpload((upload.name or "").split("/", 1)[-1], upload.read()))
