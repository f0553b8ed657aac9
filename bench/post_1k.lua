-- wrk script for the post-1k scenario: every request is a POST with a 1 KiB body.
-- Only static fields are set (no request() function), so wrk builds the request
-- once and keeps its fast path; it adds Content-Length itself.
wrk.method = "POST"
wrk.body = string.rep("x", 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
