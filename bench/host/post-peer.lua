-- wrk script: every request adds a new peer with a random public key (allocated address), so each one
-- is a real creation (a duplicate would be a 409). Counts answers other than 201.
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(bytes)
  local out = {}
  for i = 1, #bytes, 3 do
    local a, b, c = bytes:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local s1 = math.floor(n / 262144) % 64 + 1
    local s2 = math.floor(n / 4096) % 64 + 1
    local s3 = math.floor(n / 64) % 64 + 1
    local s4 = n % 64 + 1
    out[#out + 1] = alphabet:sub(s1, s1) .. alphabet:sub(s2, s2)
      .. (b and alphabet:sub(s3, s3) or "=") .. (c and alphabet:sub(s4, s4) or "=")
  end
  return table.concat(out)
end

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000) + tonumber(tostring({}):sub(8), 16) % 100000)
end

-- Set on wrk.headers (which also holds -H Authorization): a headers table given to wrk.format would replace them.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  local b = {}
  for i = 1, 32 do b[i] = string.char(math.random(0, 255)) end
  return wrk.format(nil, nil, nil, '{"publicKey":"' .. base64(table.concat(b)) .. '"}')
end
