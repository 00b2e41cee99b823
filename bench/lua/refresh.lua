-- POST /token with grant_type=refresh_token (RFC 6749 §6): each request presents a
-- refresh token once (Tessera rotates it). BENCH_AUTH: the Authorization header value.
--
-- The tokens come from the file given as the script's argument, one a line; with
-- several threads (BENCH_WRK_THREADS), each takes every n-th line. The new refresh
-- token of each answer joins the end of the queue, so a run that outlasts the file
-- goes on with fresh tokens; `chained` (printed at the end) counts those requests.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("index", #threads)
end

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
   from_file, sent, chained = tail, 0, 0
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
   sent = sent + 1
   if sent > from_file then
      chained = chained + 1
   end
   return wrk.format("POST", "/token", headers,
      "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
   local token = body:match('"refresh_token":"([^"]+)"')
   if token then
      tail = tail + 1
      queue[tail] = token
   end
end

function done(summary, latency, requests)
   local c = 0
   for _, t in ipairs(threads) do
      c = c + t:get("chained")
   end
   io.write(string.format("chained: %d\n", c))
end
