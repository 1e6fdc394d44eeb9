"""enroll: a blob created in the uploads container (delivered by Event Grid) becomes an enrollment photo."""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()

# Face's upper limit on a photo (shared.images.MAX_BYTES, not imported here: it would load Pillow at cold start).
MAX_UPLOAD_BYTES = 6 * 1024 * 1024


@bp.blob_trigger(arg_name="upload", path="%UPLOADS_CONTAINER%/{name}", connection="PhotoStorage",
                 source=func.BlobSource.EVENT_GRID)
def enroll(upload: func.InputStream) -> None:
    from shared.bootstrap import services
    from shared.commands import ProcessUpload

    # The host passes "<container>/<blob name>"; the service decides everything else, and raises
    # only for transient failures, which Event Grid then redelivers. The blob's length comes from the
    # trigger's metadata: an oversized blob is refused without its content being read or copied, and
    # no more than the limit (plus one byte, so the size check still fires) is ever read.
    declared = upload.length
    too_large = declared is not None and declared > MAX_UPLOAD_BYTES
    content = b"" if too_large else upload.read(MAX_UPLOAD_BYTES + 1)
    services().enrollment.process_upload(ProcessUpload((upload.name or "").split("/", 1)[-1], content, declared))
