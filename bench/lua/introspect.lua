-- POST /introspect (RFC 7662) of opaque access tokens read from the file given as the
-- script's argument, one a line, taken in turn. BENCH_AUTH: the Authorization header
-- of the calling (confidential) client. `inactive` (printed at the end) counts
-- answers that were not {"active":true,...}.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   tokens = {}
   for line in io.lines(args[1]) do
      tokens[#tokens + 1] = line
   end
   next_token, inactive = 1, 0
   headers = {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = os.getenv("BENCH_AUTH"),
   }
end

function request()
   local token = tokens[next_token]
   next_token = next_token % #tokens + 1
   return wrk.format("POST", "/introspect", headers,
      "token_type_hint=access_token&token=" .. token)
end

function response(status, headers, body)
   if not body:find('"active":true', 1, true) then
      inactive = inactive + 1
   end
end

function done(summary, latency, requests)
   local c = 0
   for _, t in ipairs(threads) do
      c = c + t:get("inactive")
   end
   io.write(string.format("inactive: %d\n", c))
end
