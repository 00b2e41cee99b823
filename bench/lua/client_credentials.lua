-- POST /token with grant_type=client_credentials (RFC 6749 §4.4), the client
-- authenticated by client_secret_basic. BENCH_AUTH: the Authorization header value.
wrk.method = "POST"
wrk.path = "/token"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
