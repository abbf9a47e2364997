"""Teaches schemathesis the one media type it has no serializer for.

`POST /api/v1/import` takes `application/x-ndjson`, documented as a binary string (the bytes of
the lines); it goes on the wire as those bytes, exactly as `application/octet-stream` would.
"""

import schemathesis

schemathesis.serializer.alias("application/x-ndjson", "application/octet-stream")
