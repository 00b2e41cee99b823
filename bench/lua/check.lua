-- Shared by the wrk scripts of bench/run.sh (loaded with dofile): counts the answers
-- that are not what the scenario expects, keeps the first one as a sample, and prints
-- `bad: N` (and `bad sample: ...`) at the end, which run.sh reads and fails on.
--
--   check_response(ok, status, body)   count one answer
--   check_done()                       print the totals over all threads

threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("index", #threads)
end

bad, sample = 0, ""

function check_response(ok, status, body)
   if not ok then
      bad = bad + 1
      if sample == "" then
         sample = string.format("status %d: %s", status, (body or ""):sub(1, 200):gsub("%s+", " "))
      end
   end
end

function check_done()
   local n, first = 0, ""
   for _, t in ipairs(threads) do
      n = n + t:get("bad")
      if first == "" then
         first = t:get("sample")
      end
   end
   io.write(string.format("bad: %d\n", n))
   if first ~= "" then
      io.write("bad sample: " .. first .. "\n")
   end
end
