-- POST /token with grant_type=authorization_code (RFC 6749 §4.1.3, PKCE RFC 7636
-- §4.5): each request redeems one code. The codes come from the file given as the
-- script's argument, lines `CODE VERIFIER` (bench/mint.py); with several threads,
-- each takes every n-th line. BENCH_AUTH: the client's Authorization header;
-- BENCH_REDIRECT_URI. A thread that runs out of codes stops, and `exhausted: N` says
-- how many threads did: wrk still divides by the whole duration, so the rate of such
-- a run is too low (bench/run.sh runs it again with more codes).
-- An answer is good when it is 200 with an access token.
dofile(os.getenv("BENCH_LUA_DIR") .. "/check.lua")

function init(args)
   local nthreads = tonumber(os.getenv("BENCH_WRK_THREADS") or "1")
   codes, next_code, n = {}, 1, 0
   for line in io.lines(args[1]) do
      if n % nthreads == index - 1 then
         codes[#codes + 1] = line
      end
      n = n + 1
   end
   exhausted = 0
   headers = {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = os.getenv("BENCH_AUTH"),
   }
   redirect = os.getenv("BENCH_REDIRECT_URI"):gsub("[^%w%-%._~]", function(c)
      return string.format("%%%02X", string.byte(c))
   end)
end

function request()
   local line = codes[next_code]
   if not line then
      exhausted = 1
      wrk.thread:stop()
      line = "exhausted exhausted"
   end
   codes[next_code] = nil
   next_code = next_code + 1
   local code, verifier = line:match("^(%S+) (%S+)$")
   return wrk.format("POST", "/token", headers, "grant_type=authorization_code&code=" .. code
      .. "&code_verifier=" .. verifier .. "&redirect_uri=" .. redirect)
end

function response(status, headers, body)
   if exhausted == 1 and status ~= 200 then
      return -- the placeholder sent as the thread stopped
   end
   check_response(status == 200 and body:find('"access_token":"', 1, true) ~= nil, status, body)
end

function done(summary, latency, requests)
   check_done()
   local n = 0
   for _, t in ipairs(threads) do
      n = n + t:get("exhausted")
   end
   io.write(string.format("exhausted: %d\n", n))
end
