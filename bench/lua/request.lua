-- One fixed request, sent again and again (bench/run.sh), each answer checked:
--   BENCH_METHOD (POST), BENCH_PATH, BENCH_BODY (form-encoded when POST), BENCH_AUTH
--   (Authorization header), BENCH_COOKIE (Cookie header), BENCH_EXPECT (the status,
--   200) and BENCH_EXPECT_BODY (a substring the body must hold, or the Location header
--   for a redirect).
dofile(os.getenv("BENCH_LUA_DIR") .. "/check.lua")

wrk.method = os.getenv("BENCH_METHOD") or "POST"
wrk.path = os.getenv("BENCH_PATH")
if wrk.method == "POST" then
   wrk.body = os.getenv("BENCH_BODY") or ""
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
for header, var in pairs({ Authorization = "BENCH_AUTH", Cookie = "BENCH_COOKIE" }) do
   local v = os.getenv(var)
   if v and v ~= "" then
      wrk.headers[header] = v
   end
end

local expect = tonumber(os.getenv("BENCH_EXPECT") or "200")
local expect_body = os.getenv("BENCH_EXPECT_BODY") or ""

function response(status, headers, body)
   local ok = status == expect
   if ok and expect_body ~= "" then
      local where = body
      if status >= 300 and status < 400 then
         where = headers["Location"] or headers["location"] or ""
      end
      ok = where:find(expect_body, 1, true) ~= nil
   end
   check_response(ok, status, body)
end

done = check_done
