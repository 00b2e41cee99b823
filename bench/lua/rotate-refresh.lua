-- POST /token with grant_type=refresh_token (RFC 6749 §6; OAuth 2.1 rotation): each
-- request presents a refresh token once. The first tokens come from the file given as
-- the script's argument, one a line (each thread takes every n-th line); the new
-- refresh token of each answer joins the end of the queue, so a supply of a thousand
-- lasts any run. BENCH_AUTH: the client's Authorization header. An answer is good
-- when it is 200 with a new refresh token.
dofile(os.getenv("BENCH_LUA_DIR") .. "/check.lua")

function init(args)
   local nthreads = tonumber(os.getenv("BENCH_WRK_THREADS") or "1")
   queue, head, tail = {}, 1, 0
   local n = 0
   for line in io.lines(args[1]) do
      if n % nthreads == index - 1 then
         tail = tail + 1
         queue[tail] = line
      end
      n = n + 1
   end
   headers = {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = os.getenv("BENCH_AUTH"),
   }
end

function request()
   local token = "exhausted"
   if head <= tail then
      token = queue[head]
      queue[head] = nil
      head = head + 1
   end
   return wrk.format("POST", "/token", headers, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
   local token = body:match('"refresh_token":"([^"]+)"')
   if token then
      tail = tail + 1
      queue[tail] = token
   end
   check_response(status == 200 and token ~= nil, status, body)
end

function done(summary, latency, requests)
   check_done()
end
