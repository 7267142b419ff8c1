/* ps_redis_lua.c - the server-side scripts (see ps_redis_lua.h). */

#include <string.h>

#include <apr_sha1.h>

#include "ps_redis_lua.h"

#define PS_LUA_EPOCH                                                       \
    "local ep = redis.call('GET', KEYS[1])\n"                              \
    "if not ep then\n"                                                     \
    "  local t = redis.call('TIME')\n"                                     \
    "  ep = t[1] .. string.format('%06d', tonumber(t[2]))\n"               \
    "  redis.call('SET', KEYS[1], ep)\n"                                   \
    "end\n"

static const char ps_lua_publish[] =
    PS_LUA_EPOCH
    "local now = tonumber(redis.call('TIME')[1])\n"
    "local store = ARGV[4] == '1'\n"
    "local maxs, ttl, mttl = tonumber(ARGV[5]), tonumber(ARGV[6]), "
    "tonumber(ARGV[7])\n"
    "local head = ' ' .. #ARGV[2] .. ' ' .. #ARGV[3] .. '\\n' .. ARGV[2] "
    ".. ARGV[3]\n"
    "local out = {ep}\n"
    "local nch = (#KEYS - 1) / 2\n"
    "local node = ARGV[8 + 2 * nch]\n"
    "if node == '' then node = nil end\n"
    "local maxc, maxw = tonumber(ARGV[9 + 2 * nch]), "
    "tonumber(ARGV[10 + 2 * nch])\n"
    "local wpre = ARGV[11 + 2 * nch]\n"
    "local function cset(c)\n"
    "  if wpre ~= '' and string.sub(c, 1, #wpre) == wpre then\n"
    "    return 'ps:wchans', maxw\n"
    "  end\n"
    "  return 'ps:chans', maxc\n"
    "end\n"
    /* the channel limits count every node's channels; no message is
     * written before they are checked */
    "local newc = {['ps:chans'] = 0, ['ps:wchans'] = 0}\n"
    "for _, k in ipairs({'ps:chans', 'ps:wchans'}) do\n"
    "  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)\n"
    "end\n"
    "for i = 1, nch do\n"
    "  local k, m = cset(ARGV[6 + 2 * i])\n"
    "  if m > 0 and not redis.call('ZSCORE', k, ARGV[6 + 2 * i]) then\n"
    "    newc[k] = newc[k] + 1\n"
    "    if redis.call('ZCARD', k) + newc[k] > m then return 'LIMIT' end\n"
    "  end\n"
    "end\n"
    "for i = 1, nch do\n"
    "  local meta, msgs = KEYS[2 * i], KEYS[2 * i + 1]\n"
    "  local ch, floor = ARGV[6 + 2 * i], tonumber(ARGV[7 + 2 * i])\n"
    "  local m = redis.call('HMGET', meta, 'id', 't', 'g')\n"
    "  local id = math.max(tonumber(m[1]) or 0, floor) + 1\n"
    "  local t, g, lt = now, 1, tonumber(m[2]) or 0\n"
    "  if lt >= now then t = lt; g = (tonumber(m[3]) or 0) + 1 end\n"
    "  redis.call('HSET', meta, 'id', id, 't', t, 'g', g)\n"
    "  redis.call('EXPIRE', meta, mttl)\n"
    "  redis.call('ZADD', (cset(ch)), now + mttl, ch)\n"
    "  redis.call('INCR', 'ps:published')\n"
    "  local rec = id .. ' ' .. t .. ' ' .. g .. ' ' .. (t + ttl) .. head "
    ".. ARGV[1]\n"
    "  if store then\n"
    "    redis.call('ZADD', msgs, id, rec)\n"
    "    while true do\n"
    "      local f = redis.call('ZRANGE', msgs, 0, 0)\n"
    "      if #f == 0 then break end\n"
    "      local e = tonumber(string.match(f[1], '^%d+ %d+ %d+ (%d+)'))\n"
    "      if e > now then break end\n"
    "      redis.call('ZREMRANGEBYRANK', msgs, 0, 0)\n"
    "    end\n"
    "    if maxs > 0 then redis.call('ZREMRANGEBYRANK', msgs, 0, -(maxs + 1)) "
    "end\n"
    "    redis.call('EXPIRE', msgs, ttl + 1)\n"
    "  end\n"
    "  local stored = redis.call('ZCARD', msgs)\n"
    "  redis.call('PUBLISH', 'ps:' .. ch, ep .. ' ' .. (store and '1' or '0') "
    ".. ' ' .. rec)\n"
    "  local r = {id, t, g, stored}\n"
    "  if node then\n"
    "    local h = redis.call('HGETALL', string.sub(meta, 1, -5) .. 'subs')\n"
    "    local o = {}\n"
    "    for j = 1, #h, 2 do\n"
    "      local c, st = string.match(h[j + 1], '^(%d+)/(.+)$')\n"
    "      if h[j] ~= node and c\n"
    "         and redis.call('GET', 'ps:node:' .. h[j]) == st then\n"
    "        o[#o + 1] = h[j]\n"
    "        o[#o + 1] = c\n"
    "      end\n"
    "    end\n"
    "    r[5] = o\n"
    "  end\n"
    "  out[#out + 1] = r\n"
    "end\n"
    "return out\n";

static const char ps_lua_sync[] =
    PS_LUA_EPOCH
    "local after = tonumber(ARGV[1])\n"
    "local id = tonumber(redis.call('HGET', KEYS[2], 'id')) or 0\n"
    "if id < after then\n"
    "  redis.call('HSET', KEYS[2], 'id', after)\n"
    "  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]))\n"
    "  id = after\n"
    "end\n"
    "local r = {ep, id}\n"
    "if id > after then\n"
    "  local ms = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. after, '+inf')\n"
    "  for _, v in ipairs(ms) do r[#r + 1] = v end\n"
    "end\n"
    "return r\n";

static const char ps_lua_delete[] =
    PS_LUA_EPOCH
    "local n = 0\n"
    "for i = 1, (#KEYS - 1) / 2 do\n"
    "  n = n + redis.call('DEL', KEYS[2 * i], KEYS[2 * i + 1])\n"
    "  redis.call('ZREM', 'ps:chans', ARGV[1 + i])\n"
    "  redis.call('ZREM', 'ps:wchans', ARGV[1 + i])\n"
    "  redis.call('PUBLISH', 'ps:' .. ARGV[1 + i], ep .. ' D\\n' .. ARGV[1])\n"
    "end\n"
    "return n\n";

/* Other nodes' subscribers of each channel: a field of ps:{ch}:subs
 * ("count/stamp") counts only while its node's ps:node:<id> key lives and
 * holds the same stamp (a node started again, or a writer killed, leaves
 * its old counts: ps_redis_counts.c). */
static const char ps_lua_subs[] =
    "local out = {}\n"
    "for i, k in ipairs(KEYS) do\n"
    "  local h = redis.call('HGETALL', k)\n"
    "  local r = {}\n"
    "  for j = 1, #h, 2 do\n"
    "    local c, st = string.match(h[j + 1], '^(%d+)/(.+)$')\n"
    "    if h[j] ~= ARGV[1] and c\n"
    "       and redis.call('GET', 'ps:node:' .. h[j]) == st then\n"
    "      r[#r + 1] = h[j]\n"
    "      r[#r + 1] = c\n"
    "    end\n"
    "  end\n"
    "  out[i] = r\n"
    "end\n"
    "return out\n";

/* The statistics summary of every node: channels (wildcard ones), messages
 * published, messages stored. */
static const char ps_lua_stats[] =
    "local now = tonumber(redis.call('TIME')[1])\n"
    "local r = {}\n"
    "local stored = 0\n"
    "for i, k in ipairs({'ps:chans', 'ps:wchans'}) do\n"
    "  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)\n"
    "  local cs = redis.call('ZRANGE', k, 0, -1)\n"
    "  r[i] = #cs\n"
    "  for _, c in ipairs(cs) do\n"
    "    stored = stored + redis.call('ZCARD', 'ps:{' .. c .. '}:msgs')\n"
    "  end\n"
    "end\n"
    "return {r[1] + r[2], r[2], "
    "tonumber(redis.call('GET', 'ps:published') or '0'), stored}\n";

static ps_redis_lua_t ps_lua[PS_LUA_COUNT] = {
    { ps_lua_publish, "" },
    { ps_lua_sync, "" },
    { ps_lua_delete, "" },
    { ps_lua_subs, "" },
    { ps_lua_stats, "" },
};

const ps_redis_lua_t *ps_redis_lua(ps_redis_lua_e which)
{
    ps_redis_lua_t *l = &ps_lua[which];

    if (!l->sha[0]) {
        static const char hex[] = "0123456789abcdef";
        unsigned char d[APR_SHA1_DIGESTSIZE];
        char sha[41];
        apr_sha1_ctx_t ctx;
        int i;

        apr_sha1_init(&ctx);
        apr_sha1_update_binary(&ctx, (const unsigned char *)l->body,
                               (unsigned int)strlen(l->body));
        apr_sha1_final(d, &ctx);
        for (i = 0; i < APR_SHA1_DIGESTSIZE; i++) {
            sha[2 * i] = hex[d[i] >> 4];
            sha[2 * i + 1] = hex[d[i] & 15];
        }
        sha[40] = '\0';
        memcpy(l->sha, sha, sizeof(sha));
    }
    return l;
}
