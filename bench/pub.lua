-- wrk script of the publish-rate scenario (bench/bench.py): keep-alive POSTs
-- of a 64-byte text message, spread over 1000 channels (/pub?id=prN).
local counter = 0
local body = string.rep("x", 64)
local headers = { ["Content-Type"] = "text/plain" }

function setup(thread)
   thread:set("offset", math.random(0, 999))
end

request = function()
   counter = counter + 1
   local ch = ((offset or 0) + counter) % 1000
   return wrk.format("POST", wrk.path .. "?id=pr" .. ch, headers, body)
end
